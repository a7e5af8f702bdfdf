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



-- ---------------------------------------------------------------- progress and the command line (issue 5)

-- The running ml_train / ml_retrain / ml_evaluate calls of every backend, from shared memory
-- (pg_ml in shared_preload_libraries; no rows otherwise). Rows of other roles are shown only to
-- members of those roles and to pg_read_all_stats, like pg_stat_activity. VOLATILE: every call
-- reads the live state; PARALLEL RESTRICTED like pg_stat_get_activity.
CREATE FUNCTION ml.training_progress(
    OUT pid integer, OUT datname name, OUT usename name, OUT command text, OUT model text,
    OUT phase text, OUT rows bigint, OUT rows_estimate bigint, OUT iteration integer,
    OUT metric text, OUT value float8, OUT started_at timestamptz, OUT elapsed float8)
    RETURNS SETOF record
    LANGUAGE c VOLATILE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'pgml_training_progress';
COMMENT ON FUNCTION ml.training_progress() IS 'pg_ml: running trainings (read through ml_training_progress)';

CREATE VIEW @extschema@.ml_training_progress AS
SELECT p.pid, p.datname, p.usename, p.command, p.model, p.phase, p.rows, p.rows_estimate,
       p.iteration, p.metric, p.value, p.started_at, p.elapsed
FROM ml.training_progress() p;
COMMENT ON VIEW @extschema@.ml_training_progress
    IS 'pg_ml: every running ml_train, ml_retrain and ml_evaluate the current role may see (needs shared_preload_libraries)';
GRANT SELECT ON @extschema@.ml_training_progress TO PUBLIC;

-- The columns a relation needs to retrain or evaluate a model (features in the model's order,
-- then the target), with their types: what `pg_ml retrain --csv` types its staging table with.
-- STABLE (reads the catalog), PARALLEL UNSAFE (switches to the catalog owner like ml_evaluate).
CREATE FUNCTION @extschema@.ml_model_columns(model text, version integer DEFAULT NULL,
    OUT ordinal integer, OUT name text, OUT type text, OUT type_class text, OUT role text)
    RETURNS SETOF record
    LANGUAGE c STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pgml_model_columns';
CREATE FUNCTION @extschema@.ml_model_columns(model bigint, version integer DEFAULT NULL,
    OUT ordinal integer, OUT name text, OUT type text, OUT type_class text, OUT role text)
    RETURNS SETOF record
    LANGUAGE c STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pgml_model_columns';
COMMENT ON FUNCTION @extschema@.ml_model_columns(text, integer)
    IS 'pg_ml: feature and target columns of a version (default: deployed) with their types';
COMMENT ON FUNCTION @extschema@.ml_model_columns(bigint, integer)
    IS 'pg_ml: feature and target columns of a version (default: deployed) with their types';


-- ---------------------------------------------------------------- batch prediction
-- Scores a whole relation with the deployed version, for BI tools and batch jobs: the rows are
-- read with the caller's rights through a cursor and predicted pg_ml.batch_rows at a time.
-- STABLE (one statement sees one version); PARALLEL RESTRICTED: it runs its own query.

CREATE FUNCTION @extschema@.ml_predict_batch(model text, relation text, key_column text DEFAULT NULL)
    RETURNS TABLE (key text, prediction float8, label text, probabilities float8[])
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'pgml_predict_batch';
CREATE FUNCTION @extschema@.ml_predict_batch(model bigint, relation text, key_column text DEFAULT NULL)
    RETURNS TABLE (key text, prediction float8, label text, probabilities float8[])
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'pgml_predict_batch';
COMMENT ON FUNCTION @extschema@.ml_predict_batch(text, text, text) IS
    'pg_ml: predict every row of a relation with the deployed version: (key, prediction, label, probabilities)';
COMMENT ON FUNCTION @extschema@.ml_predict_batch(bigint, text, text) IS
    'pg_ml: predict every row of a relation with the deployed version: (key, prediction, label, probabilities)';

-- ---------------------------------------------------------------- export / import
-- ml_export: one version with its metadata in a documented, versioned envelope
-- (docs/export-format.md); the same access as prediction. ml_import: a new model owned by the
-- caller from those bytes, checked like any untrusted blob, its version 1 deployed.

CREATE FUNCTION @extschema@.ml_export(model text, version integer DEFAULT NULL) RETURNS bytea
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'pgml_export';
CREATE FUNCTION @extschema@.ml_export(model bigint, version integer DEFAULT NULL) RETURNS bytea
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'pgml_export';
CREATE FUNCTION @extschema@.ml_import(name text, data bytea,
    OUT model_id bigint, OUT model text, OUT version integer)
    RETURNS record
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pgml_import';
COMMENT ON FUNCTION @extschema@.ml_export(text, integer) IS
    'pg_ml: a version (default: the deployed one) and its metadata as bytes for ml_import in another database';
COMMENT ON FUNCTION @extschema@.ml_export(bigint, integer) IS
    'pg_ml: a version (default: the deployed one) and its metadata as bytes for ml_import in another database';
COMMENT ON FUNCTION @extschema@.ml_import(text, bytea) IS
    'pg_ml: create a model from ml_export() bytes (checked like any untrusted data); its version 1 is deployed';
