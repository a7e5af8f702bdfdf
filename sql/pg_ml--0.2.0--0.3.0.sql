-- pg_ml 0.2.0 -> 0.3.0: security and reliability (issue 10).
--
-- The full 0.3.0 install script (sql/pg_ml--0.3.0.sql) is built by the Makefile as
-- pg_ml--0.1.0.sql, pg_ml--0.1.0--0.2.0.sql and this file, so a fresh install and an update
-- run the same statements. Same rules as the install script: no CREATE OR REPLACE, no IF NOT
-- EXISTS, everything schema-qualified, search_path pinned.

\echo Use "ALTER EXTENSION pg_ml UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------- the library (issue 10)
-- First, before anything changes: the objects of 0.3.0 need the library of 0.3.0. A server
-- still running an older library (make install not done, or a preloaded library not restarted)
-- cannot find this function's symbol; say so, and the whole update rolls back.
DO $$
BEGIN
    CREATE FUNCTION ml.library_version() RETURNS text
        AS 'MODULE_PATHNAME', 'pgml_library_version_0_3' LANGUAGE C STRICT STABLE PARALLEL SAFE;
EXCEPTION WHEN undefined_function THEN
    RAISE EXCEPTION 'pg_ml 0.3.0 needs the pg_ml 0.3.0 library, but this server runs an older one'
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = SQLERRM,
              HINT = 'Install pg_ml 0.3.0 (make install), then restart the server if pg_ml is in '
                     'shared_preload_libraries, or reconnect: a loaded library stays in memory.';
END
$$;
COMMENT ON FUNCTION ml.library_version() IS 'pg_ml: the version of the loaded pg_ml library';

-- ---------------------------------------------------------------- internal aggregates (finding 1)
-- (fixed argument types, in schema ml)
--
-- ml_train / ml_retrain / ml_run_jobs and the auto-retrain worker compute statistics with
-- aggregate queries over the caller's relation. Up to 0.2.0 the aggregates were
-- @extschema@.ml_train_stats(float8[], "any", VARIADIC "any") and siblings: where that schema
-- is writable by others (public before PostgreSQL 15, or after GRANT CREATE ON SCHEMA public),
-- an exact-typed overload created there won the call and ran as whoever trained. They now
-- live in schema ml, which only the extension's owner can write, have fixed argument types,
-- and every query names them schema-qualified (src/pg/aggregate.cpp, eval_aggregate.cpp,
-- kmeans_aggregate.cpp):
--
--   ml.train_stats(params float8[], target float8, target_level text,
--                  num_features float8[], cat_features text[]) -> float8[]  (aggregate)
--   ml.row_draw(params float8[], target float8, target_level text,
--               num_features float8[], cat_features text[]) -> float8
--   ml.row_band(params float8[], lo float8, hi float8, target float8, target_level text,
--               num_features float8[], cat_features text[]) -> float8
--   ml.eval_stats(params float8[], model bytea, classes text[], draw float8, cut float8,
--                 target float8, target_level text,
--                 num_features float8[], cat_features text[]) -> float8[]  (aggregate)
--   ml.kmeans_step(params float8[], levels text[],
--                  num_features float8[], cat_features text[]) -> float8[]  (aggregate)
--
-- A row is passed as two arrays: num_features holds the numeric features (numeric, boolean,
-- date and timestamp columns) in the order the params give, converted to float8 by the query
-- as the row reader converts them (integers and floats with a pg_catalog cast, booleans
-- through pg_catalog.int4, numeric, dates and timestamps with ml.to_float8 below), and
-- cat_features the categorical ones (text, varchar, char(n) with its padding, enum) as text.
-- The params say which feature is in which array. The target is `target` (a numeric one, as
-- float8) or `target_level` (a categorical one, as text), the other NULL; both NULL for
-- clustering. No argument type is looked up at call time, and any number of features fits
-- (the 100-argument limit of VARIADIC is gone). The states stay float8[] (a lossless text
-- form) with combine functions: PARALLEL SAFE, and a distributed PostgreSQL can push the
-- aggregates down. The combine functions are unchanged; the transition functions, in schema
-- ml too, are not usable by PUBLIC (the aggregates check them as their owner). Everything
-- else those queries use is pg_catalog-qualified, operators and casts included. The 0.2.0
-- objects are dropped (their C symbols stay, raising an error, for the 0.1.0 -> 0.2.0 script
-- that creates them before this one drops them). The LANGUAGE sql / plpgsql functions of
-- 0.1.0 and 0.2.0 already pin search_path = pg_catalog, pg_temp.

DROP AGGREGATE @extschema@.ml_train_stats(float8[], "any", VARIADIC "any");
DROP FUNCTION ml.train_stats_transfn(float8[], float8[], "any", VARIADIC "any");
DROP AGGREGATE @extschema@.ml_eval_stats(float8[], bytea, text[], float8, float8, "any", VARIADIC "any");
DROP FUNCTION ml.eval_stats_transfn(float8[], float8[], bytea, text[], float8, float8, "any", VARIADIC "any");
DROP FUNCTION @extschema@.ml_row_draw(float8[], "any", VARIADIC "any");
DROP FUNCTION @extschema@.ml_row_band(float8[], float8, float8, "any", VARIADIC "any");
DROP AGGREGATE @extschema@.ml_kmeans_step(float8[], text[], VARIADIC "any");
DROP FUNCTION ml.kmeans_step_transfn(float8[], float8[], text[], VARIADIC "any");

-- A value as the row reader converts it: numeric beyond float8's range as +-Infinity (a cast
-- fails), dates and timestamps as seconds since 1970-01-01 (+-Infinity for +-infinity).
CREATE FUNCTION ml.to_float8(numeric) RETURNS float8
    AS 'MODULE_PATHNAME', 'pgml_numeric_to_float8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.to_float8(date) RETURNS float8
    AS 'MODULE_PATHNAME', 'pgml_date_to_float8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.to_float8(timestamp) RETURNS float8
    AS 'MODULE_PATHNAME', 'pgml_timestamp_to_float8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- (IMMUTABLE: the epoch of a timestamptz does not depend on the time zone)
CREATE FUNCTION ml.to_float8(timestamptz) RETURNS float8
    AS 'MODULE_PATHNAME', 'pgml_timestamp_to_float8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ml.to_float8(numeric) IS 'pg_ml: a numeric feature as training reads it (used by ml_train)';
COMMENT ON FUNCTION ml.to_float8(date) IS 'pg_ml: a date feature as training reads it, seconds since 1970 (used by ml_train)';
COMMENT ON FUNCTION ml.to_float8(timestamp) IS 'pg_ml: a timestamp feature as training reads it, seconds since 1970 (used by ml_train)';
COMMENT ON FUNCTION ml.to_float8(timestamptz) IS 'pg_ml: a timestamptz feature as training reads it, seconds since 1970 (used by ml_train)';

CREATE FUNCTION ml.train_stats_transfn(float8[], float8[], float8, text, float8[], text[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'pgml_train_stats_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE COST 10;
REVOKE ALL ON FUNCTION ml.train_stats_transfn(float8[], float8[], float8, text, float8[], text[]) FROM PUBLIC;
CREATE AGGREGATE ml.train_stats(params float8[], target float8, target_level text,
                                num_features float8[], cat_features text[]) (
    SFUNC = ml.train_stats_transfn,
    STYPE = float8[],
    COMBINEFUNC = ml.train_stats_combinefn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.train_stats(float8[], float8, text, float8[], text[]) IS
    'pg_ml: training statistics of a relation (used by ml_train; the state is a float8[])';

CREATE FUNCTION ml.row_draw(params float8[], target float8, target_level text,
                            num_features float8[], cat_features text[]) RETURNS float8
    AS 'MODULE_PATHNAME', 'pgml_split_draw' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE COST 10;
COMMENT ON FUNCTION ml.row_draw(float8[], float8, text, float8[], text[]) IS
    'pg_ml: the split draw of a row (used by ml_train)';
CREATE FUNCTION ml.row_band(params float8[], lo float8, hi float8, target float8, target_level text,
                            num_features float8[], cat_features text[]) RETURNS float8
    AS 'MODULE_PATHNAME', 'pgml_split_band' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE COST 10;
COMMENT ON FUNCTION ml.row_band(float8[], float8, float8, float8, text, float8[], text[]) IS
    'pg_ml: where a row''s split draw is against a band [lo, hi): -1 under, 2 over, else the draw (used by ml_train)';

CREATE FUNCTION ml.eval_stats_transfn(float8[], float8[], bytea, text[], float8, float8, float8, text, float8[], text[])
    RETURNS float8[]
    AS 'MODULE_PATHNAME', 'pgml_eval_stats_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE COST 100;
REVOKE ALL ON FUNCTION ml.eval_stats_transfn(float8[], float8[], bytea, text[], float8, float8, float8, text, float8[], text[])
    FROM PUBLIC;
CREATE AGGREGATE ml.eval_stats(params float8[], model bytea, classes text[], draw float8, cut float8,
                               target float8, target_level text, num_features float8[], cat_features text[]) (
    SFUNC = ml.eval_stats_transfn,
    STYPE = float8[],
    COMBINEFUNC = ml.eval_stats_combinefn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.eval_stats(float8[], bytea, text[], float8, float8, float8, text, float8[], text[]) IS
    'pg_ml: classification metrics of a model over rows (used by ml_train; the state is a float8[])';

CREATE FUNCTION ml.kmeans_step_transfn(float8[], float8[], text[], float8[], text[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'pgml_kmeans_step_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE COST 10;
REVOKE ALL ON FUNCTION ml.kmeans_step_transfn(float8[], float8[], text[], float8[], text[]) FROM PUBLIC;
CREATE AGGREGATE ml.kmeans_step(params float8[], levels text[], num_features float8[], cat_features text[]) (
    SFUNC = ml.kmeans_step_transfn,
    STYPE = float8[],
    COMBINEFUNC = ml.kmeans_step_combinefn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.kmeans_step(float8[], text[], float8[], text[]) IS
    'pg_ml: one Lloyd step of k-means (used by ml_train; the state is a float8[])';

-- ---------------------------------------------------------------- model ownership (findings 2-4)

-- ---------------------------------------------------------------- other changes
