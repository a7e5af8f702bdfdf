-- pg_ml 0.1.0 -> 0.2.0: aggregates for single-pass parallel training, the batch predict path,
-- auto-retrain jobs, progress, export / import.
--
-- The full 0.2.0 install script (sql/pg_ml--0.2.0.sql) is built by the Makefile as
-- pg_ml--0.1.0.sql followed by this file, so a fresh install and an update run the same
-- statements. Same rules as the install script: no CREATE OR REPLACE, no IF NOT EXISTS,
-- everything schema-qualified.

\echo Use "ALTER EXTENSION pg_ml UPDATE TO '0.2.0'" to load this file. \quit


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
