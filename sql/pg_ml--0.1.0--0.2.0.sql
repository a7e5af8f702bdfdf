-- pg_ml 0.1.0 -> 0.2.0: aggregates for single-pass parallel training, the batch predict path,
-- auto-retrain jobs, progress, export / import.
--
-- The full 0.2.0 install script (sql/pg_ml--0.2.0.sql) is built by the Makefile as
-- pg_ml--0.1.0.sql followed by this file, so a fresh install and an update run the same
-- statements. Same rules as the install script: no CREATE OR REPLACE, no IF NOT EXISTS,
-- everything schema-qualified.

\echo Use "ALTER EXTENSION pg_ml UPDATE TO '0.2.0'" to load this file. \quit

-- ---------------------------------------------------------------- training-statistics aggregate
-- ml_train_stats(params, target, VARIADIC features): the first and second moments of a
-- relation's rows (src/core/stats_state.hpp). ml_train runs it as one aggregate query over the
-- relation for the linear family, so parallel query (or a distributed PostgreSQL, which pushes
-- down aggregates with a non-internal state and a combine function) spreads the scan. The
-- state is a float8[]: its text form is lossless. The support functions live in schema ml
-- (not usable by PUBLIC); the aggregate checks their execute permission as its owner.

CREATE FUNCTION ml.train_stats_transfn(float8[], float8[], "any", VARIADIC "any") RETURNS float8[]
    AS 'MODULE_PATHNAME', 'pgml_stats_transfn' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE COST 10;
CREATE FUNCTION ml.train_stats_combinefn(float8[], float8[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'pgml_stats_combinefn' LANGUAGE C STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION ml.train_stats_transfn(float8[], float8[], "any", VARIADIC "any") FROM PUBLIC;
REVOKE ALL ON FUNCTION ml.train_stats_combinefn(float8[], float8[]) FROM PUBLIC;

CREATE AGGREGATE @extschema@.ml_train_stats(float8[], "any", VARIADIC "any") (
    SFUNC = ml.train_stats_transfn,
    STYPE = float8[],
    COMBINEFUNC = ml.train_stats_combinefn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.ml_train_stats(float8[], "any", VARIADIC "any") IS
    'pg_ml: training statistics of the linear family (used by ml_train; the state is a float8[])';

