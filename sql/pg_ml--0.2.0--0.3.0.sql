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

-- A value as the row reader converts it: numeric beyond float8's range is 22003 naming the
-- column (the second argument; a cast would not name it), dates and timestamps as seconds since
-- 1970-01-01 (+-Infinity for +-infinity).
CREATE FUNCTION ml.to_float8(numeric, text) RETURNS float8
    AS 'MODULE_PATHNAME', 'pgml_numeric_to_float8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.to_float8(date) RETURNS float8
    AS 'MODULE_PATHNAME', 'pgml_date_to_float8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.to_float8(timestamp) RETURNS float8
    AS 'MODULE_PATHNAME', 'pgml_timestamp_to_float8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- (IMMUTABLE: the epoch of a timestamptz does not depend on the time zone)
CREATE FUNCTION ml.to_float8(timestamptz) RETURNS float8
    AS 'MODULE_PATHNAME', 'pgml_timestamp_to_float8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ml.to_float8(numeric, text) IS 'pg_ml: a numeric feature as training reads it (used by ml_train)';
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

-- ml.train_stats(params, target, target_level, cat_features text[], x1 float8, ..., xN float8)
-- for N = 8, 16, 32, 64, 95: the same aggregate with one float8 argument per numeric feature
-- (NULL padding after them), so a scan does not build an array per row. 95 is the most a
-- function takes (FUNC_MAX_ARGS = 100 with the state and the 4 arguments before them).
DO $pgml$
DECLARE
    n int;
    slots text;
BEGIN
    FOREACH n IN ARRAY ARRAY[8, 16, 32, 64, 95] LOOP
        slots := pg_catalog.array_to_string(pg_catalog.array_fill('float8'::text, ARRAY[n]), ', ');
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION ml.train_stats_transfn(float8[], float8[], float8, text, text[], %s) RETURNS float8[] '
            'AS %L, %L LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE COST 10',
            slots, 'MODULE_PATHNAME', 'pgml_train_stats_trans_slots');
        EXECUTE pg_catalog.format(
            'REVOKE ALL ON FUNCTION ml.train_stats_transfn(float8[], float8[], float8, text, text[], %s) FROM PUBLIC', slots);
        EXECUTE pg_catalog.format(
            'CREATE AGGREGATE ml.train_stats(float8[], float8, text, text[], %s) '
            '(SFUNC = ml.train_stats_transfn, STYPE = float8[], COMBINEFUNC = ml.train_stats_combinefn, PARALLEL = SAFE)',
            slots);
        EXECUTE pg_catalog.format(
            'COMMENT ON AGGREGATE ml.train_stats(float8[], float8, text, text[], %s) IS %L', slots,
            'pg_ml: training statistics of a relation, one argument per numeric feature (used by ml_train)');
    END LOOP;
END
$pgml$;

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

-- One Newton step of binary logistic regression (issue 14): over the training rows (draw >= cut,
-- as ml.eval_stats splits them), the log loss, gradient and Hessian at the coefficients in
-- params, the model giving the preprocessing and classes its two classes. A fixed-size float8[]
-- state with a combine function: PARALLEL SAFE.
CREATE FUNCTION ml.logit_step_transfn(float8[], float8[], bytea, text[], float8, float8, float8, text, float8[], text[])
    RETURNS float8[]
    AS 'MODULE_PATHNAME', 'pgml_logit_step_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE COST 100;
REVOKE ALL ON FUNCTION ml.logit_step_transfn(float8[], float8[], bytea, text[], float8, float8, float8, text, float8[], text[])
    FROM PUBLIC;
CREATE FUNCTION ml.logit_step_combinefn(float8[], float8[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'pgml_logit_step_combinefn' LANGUAGE C STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION ml.logit_step_combinefn(float8[], float8[]) FROM PUBLIC;
CREATE AGGREGATE ml.logit_step(params float8[], model bytea, classes text[], draw float8, cut float8,
                               target float8, target_level text, num_features float8[], cat_features text[]) (
    SFUNC = ml.logit_step_transfn,
    STYPE = float8[],
    COMBINEFUNC = ml.logit_step_combinefn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.logit_step(float8[], bytea, text[], float8, float8, float8, text, float8[], text[]) IS
    'pg_ml: one Newton step of binary logistic regression (used by ml_train; the state is a float8[])';

-- ---------------------------------------------------------------- model ownership (findings 2-4)
-- A model is an owned PostgreSQL object through its own sequence ml.model_<id>: the code that
-- creates a model (ml_train, ml_import) creates the sequence and makes the caller its owner, and
-- the model's owner IS the sequence's owner. PostgreSQL's shared dependencies then do the rest:
-- DROP ROLE of a model's owner fails ("owner of sequence ml.model_<id>"), REASSIGN OWNED moves
-- models, DROP OWNED drops them (the sql_drop event trigger below removes a model whose sequence
-- is dropped, with its versions, jobs and auto-retrain trigger). ml_grant / ml_revoke are GRANT /
-- REVOKE SELECT on the sequence, so grants are tracked the same way. The sequences are not
-- members of the extension: pg_dump dumps them with their owner and grants, and a restore into a
-- cluster that lacks one of the roles still loads every model (the failed ALTER ... OWNER leaves
-- those models to the restoring role). Role columns that are history, not ownership (trained_by,
-- deployed_by, created_by), become text: a restore never needs the role.

-- the event trigger: a dropped model sequence drops its model (DROP OWNED, DROP SEQUENCE, ...)
CREATE FUNCTION ml.drop_model_objects() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'pgml_drop_model_objects';
REVOKE ALL ON FUNCTION ml.drop_model_objects() FROM PUBLIC;
COMMENT ON FUNCTION ml.drop_model_objects() IS 'pg_ml: drops the models whose sequence was dropped (event trigger)';
CREATE EVENT TRIGGER pg_ml_drop_model_objects ON sql_drop EXECUTE FUNCTION ml.drop_model_objects();

-- what the jobs run (ml_retrain by id), in schema ml where nobody else can create an overload
CREATE FUNCTION ml.retrain(
    model        bigint,
    relation     text,
    mode         text DEFAULT 'auto',
    deploy       text DEFAULT 'if_better',
    test_size    float8 DEFAULT NULL,
    seed         integer DEFAULT NULL,
    allow_new_classes boolean DEFAULT false,
    OUT model_id bigint, OUT version integer, OUT parent_version integer, OUT mode text,
    OUT rows_train bigint, OUT rows_test bigint, OUT metrics jsonb, OUT previous_metrics jsonb,
    OUT deployed boolean, OUT reason text, OUT learned text)
    RETURNS record
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pgml_retrain';
COMMENT ON FUNCTION ml.retrain(bigint, text, text, text, float8, integer, boolean)
    IS 'pg_ml: ml_retrain by model id (what auto-retrain jobs run)';

-- every existing model gets its sequence, owned by its owner, carrying its grants
ALTER TABLE ml.models ADD COLUMN seq pg_catalog.regclass;
DO $migrate$
DECLARE
    r record;
    p record;
    s text;
BEGIN
    FOR r IN SELECT m.id, m.name, m.owner::pg_catalog.oid AS owner FROM ml.models m ORDER BY m.id LOOP
        s := pg_catalog.format('ml.%I', 'model_' OPERATOR(pg_catalog.||) r.id);
        EXECUTE pg_catalog.format('CREATE SEQUENCE %s', s);
        EXECUTE pg_catalog.format('ALTER EXTENSION pg_ml DROP SEQUENCE %s', s);
        -- no grant but the owner's (default privileges for sequences must not give the model away)
        FOR p IN SELECT DISTINCT a.grantee FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
                 WHERE c.oid OPERATOR(pg_catalog.=) s::pg_catalog.regclass::pg_catalog.oid
                   AND a.grantee OPERATOR(pg_catalog.<>) c.relowner LOOP
            EXECUTE pg_catalog.format('REVOKE ALL ON SEQUENCE %s FROM %s', s,
                CASE WHEN p.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                     ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(p.grantee)) END);
        END LOOP;
        EXECUTE pg_catalog.format('COMMENT ON SEQUENCE %s IS %L', s,
            pg_catalog.format('pg_ml model %s: its owner and the roles granted SELECT on it are the model''s', r.name));
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles o WHERE o.oid OPERATOR(pg_catalog.=) r.owner) THEN
            EXECUTE pg_catalog.format('ALTER SEQUENCE %s OWNER TO %I', s, pg_catalog.pg_get_userbyid(r.owner));
        ELSE
            RAISE WARNING 'the owner of model "%" (role %) no longer exists; the model is now owned by %',
                r.name, r.owner, CURRENT_USER;
        END IF;
        UPDATE ml.models SET seq = s::pg_catalog.regclass WHERE id OPERATOR(pg_catalog.=) r.id;
    END LOOP;
    FOR r IN SELECT g.model_id, g.grantee::pg_catalog.oid AS grantee FROM ml.grants g
             WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles o WHERE o.oid OPERATOR(pg_catalog.=) g.grantee::pg_catalog.oid)
             ORDER BY 1, 2 LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON SEQUENCE ml.%I TO %I', 'model_' OPERATOR(pg_catalog.||) r.model_id,
                                  pg_catalog.pg_get_userbyid(r.grantee));
    END LOOP;
END
$migrate$;
ALTER TABLE ml.models ALTER COLUMN seq SET NOT NULL;
ALTER TABLE ml.models ADD CONSTRAINT models_seq_key UNIQUE (seq);

-- the views are defined again without ml.models.owner and ml.grants
DROP VIEW @extschema@.ml_models;
DROP VIEW @extschema@.ml_versions;
DROP VIEW ml.training_log_visible;
DROP VIEW @extschema@.ml_jobs;
DROP VIEW @extschema@.ml_auto_retrains;
ALTER EXTENSION pg_ml DROP TABLE ml.grants;
DROP TABLE ml.grants;
ALTER TABLE ml.models DROP COLUMN owner;
ALTER TABLE ml.versions ALTER COLUMN trained_by TYPE text USING trained_by::pg_catalog.text;
ALTER TABLE ml.deployments ALTER COLUMN deployed_by TYPE text USING deployed_by::pg_catalog.text;
ALTER TABLE ml.auto_retrain ALTER COLUMN created_by TYPE text USING created_by::pg_catalog.text;
COMMENT ON COLUMN ml.models.seq IS 'the model''s sequence: its owner is the model''s owner, SELECT on it is ml_grant';
COMMENT ON COLUMN ml.versions.trained_by IS 'the role that trained the version (its name when it did)';
COMMENT ON COLUMN ml.deployments.deployed_by IS 'the role that deployed the version (its name when it did)';
COMMENT ON COLUMN ml.auto_retrain.created_by IS 'the role that set auto-retrain up (its name when it did)';

-- ---------------------------------------------------------------- auto-retrain: who runs the jobs (issue 11)
-- (before the views, which show it)
-- ml.job_runner(): what runs this database's queued jobs: 'worker' (pg_ml preloaded, its launcher
-- alive, pg_ml.worker_enabled on here), 'ml_run_jobs' (no worker, but ml_run_jobs() ran here
-- within the last day: taken as scheduled) or 'none' (queued jobs wait). ml_auto_retrain says
-- so with a NOTICE; ml_jobs (queued jobs) and ml_auto_retrains show it as job_runner.
-- ml.job_runners: the last call of ml_run_jobs() (one row; a call updates it unless a concurrent
-- call holds it, so it never waits).
CREATE TABLE ml.job_runners (
    runner    text PRIMARY KEY CONSTRAINT job_runners_runner_check CHECK (runner = 'ml_run_jobs'),
    last_run  timestamptz,
    last_role text
);
INSERT INTO ml.job_runners (runner) VALUES ('ml_run_jobs');
COMMENT ON TABLE ml.job_runners IS 'pg_ml: when ml_run_jobs() last ran in this database (see ml.job_runner())';
CREATE FUNCTION ml.job_runner() RETURNS text
    AS 'MODULE_PATHNAME', 'pgml_job_runner' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION ml.job_runner() IS
    'pg_ml: what runs this database''s auto-retrain jobs: worker, ml_run_jobs (within the last day) or none';

-- ---------------------------------------------------------------- retraining (issue 11): catalog
-- What a version learned from (src/pg/learned.cpp), carried along the versions a retrain builds
-- on: one entry per read of a relation, {"version", "relation", "oid", "system", "snapshot",
-- "rows", "fingerprint"}. "snapshot" (a pg_snapshot, tables only) tells which of a table's rows
-- the read saw, so an incremental retrain on the same table learns only the rows added since;
-- "system" is the cluster's system identifier and the database's OID ("<sysid>/<oid>": a restored
-- database has other relation OIDs and transaction ids).
ALTER TABLE ml.versions ADD COLUMN sources jsonb NOT NULL DEFAULT '[]';
COMMENT ON COLUMN ml.versions.sources IS 'the reads of relations this version learned from, its ancestors'' included';
-- the retrain modes a version records: incremental (exact statistics, the rows not yet learned),
-- continue (warm start / added boosting rounds on them), refit (from scratch on the relation
-- alone), refit_all (from scratch on the earlier versions' relations and the new one)
ALTER TABLE ml.versions DROP CONSTRAINT versions_mode_check;
ALTER TABLE ml.versions ADD CONSTRAINT versions_mode_check
    CHECK (mode IN ('train', 'refit', 'refit_all', 'incremental', 'continue', 'import'));

-- ---------------------------------------------------------------- retraining (issue 11): classes
-- A classifier's classes are part of its contract: ml_predict_proba returns one probability per
-- class of the deployed version, in that version's order. Each version keeps its classes
-- (written with the version by ml_train, ml_retrain and ml_import; NULL for regression and
-- clustering), and ml_models.classes (below) is the deployed version's, so the view and
-- ml_predict_proba agree after any retrain, ml_deploy or ml_rollback. Up to 0.2.0 the view showed
-- the classes of version 1 (ml.models.classes, which still holds them). The versions trained
-- before this update get the classes their blob holds (the truth ml_predict_proba reads), through
-- a function that is dropped again once it has run.
ALTER TABLE ml.versions ADD COLUMN classes jsonb;
COMMENT ON COLUMN ml.versions.classes IS
    'the version''s classes (a classifier''s), in the order of ml_predict_proba''s probabilities';
COMMENT ON COLUMN ml.models.classes IS
    'the classes of the model''s first version (ml_models.classes shows the deployed version''s)';
CREATE FUNCTION ml.version_classes(model_id bigint, version integer) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'pgml_version_classes' LANGUAGE C STABLE STRICT;
REVOKE ALL ON FUNCTION ml.version_classes(bigint, integer) FROM PUBLIC;
DO $classes$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT v.model_id, v.version, m.name FROM ml.versions v
             JOIN ml.models m ON m.id OPERATOR(pg_catalog.=) v.model_id
             WHERE m.task OPERATOR(pg_catalog.=) 'classification' ORDER BY 1, 2 LOOP
        BEGIN
            UPDATE ml.versions SET classes = ml.version_classes(r.model_id, r.version)
            WHERE model_id OPERATOR(pg_catalog.=) r.model_id AND version OPERATOR(pg_catalog.=) r.version;
        EXCEPTION WHEN data_corrupted THEN
            -- an unreadable version predicts nothing either; its classes stay unknown (NULL)
            RAISE WARNING 'version % of model "%" is unreadable; its classes are unknown', r.version, r.name
                USING DETAIL = SQLERRM;
        END;
    END LOOP;
END
$classes$;
DROP FUNCTION ml.version_classes(bigint, integer);

-- ml_class_probabilities(model, features) -> jsonb: {"class": probability, ...}, the
-- probabilities of ml_predict_proba under their class labels. Same overloads as ml_predict_proba
-- (model by name or id; a row matched by column name, float8[] in feature order, or jsonb).
-- STABLE (the deployed version can change between statements), PARALLEL SAFE (a plain function
-- of the row and the catalog, like ml_predict_proba); NULL in, NULL out, written in C.
CREATE FUNCTION @extschema@.ml_class_probabilities(model text, features record) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_class_probabilities';
CREATE FUNCTION @extschema@.ml_class_probabilities(model bigint, features record) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_class_probabilities';
CREATE FUNCTION @extschema@.ml_class_probabilities(model text, features float8[]) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_class_probabilities';
CREATE FUNCTION @extschema@.ml_class_probabilities(model bigint, features float8[]) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_class_probabilities';
CREATE FUNCTION @extschema@.ml_class_probabilities(model text, features jsonb) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_class_probabilities';
CREATE FUNCTION @extschema@.ml_class_probabilities(model bigint, features jsonb) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_class_probabilities';
COMMENT ON FUNCTION @extschema@.ml_class_probabilities(text, record) IS
    'pg_ml: class probabilities of a classifier as jsonb, {"class": probability, ...}';
COMMENT ON FUNCTION @extschema@.ml_class_probabilities(bigint, record) IS
    'pg_ml: class probabilities of a classifier as jsonb, {"class": probability, ...}';
COMMENT ON FUNCTION @extschema@.ml_class_probabilities(text, float8[]) IS
    'pg_ml: class probabilities of a classifier as jsonb, {"class": probability, ...}';
COMMENT ON FUNCTION @extschema@.ml_class_probabilities(bigint, float8[]) IS
    'pg_ml: class probabilities of a classifier as jsonb, {"class": probability, ...}';
COMMENT ON FUNCTION @extschema@.ml_class_probabilities(text, jsonb) IS
    'pg_ml: class probabilities of a classifier as jsonb, {"class": probability, ...}';
COMMENT ON FUNCTION @extschema@.ml_class_probabilities(bigint, jsonb) IS
    'pg_ml: class probabilities of a classifier as jsonb, {"class": probability, ...}';

-- ---------------------------------------------------------------- deploy metric (issue 11): catalog
-- The metric ml_retrain's deploy => 'if_better' compares (src/core/deploy_metric.hpp): set by
-- ml_train(deploy_metric => ...) or ml_set_deploy_metric(), else the task's default, which an
-- existing model gets here (two classes: roc_auc; more: f1; regression: r2; clustering: silhouette).
ALTER TABLE ml.models ADD COLUMN deploy_metric text;
UPDATE ml.models SET deploy_metric = CASE
    WHEN task OPERATOR(pg_catalog.=) 'regression' THEN 'r2'
    WHEN task OPERATOR(pg_catalog.=) 'clustering' THEN 'silhouette'
    WHEN pg_catalog.jsonb_typeof(classes) OPERATOR(pg_catalog.=) 'array'
         AND pg_catalog.jsonb_array_length(classes) OPERATOR(pg_catalog.=) 2 THEN 'roc_auc'
    ELSE 'f1' END;
COMMENT ON COLUMN ml.models.deploy_metric IS 'the metric ml_retrain(deploy => ''if_better'') compares (ml_set_deploy_metric)';

-- ---------------------------------------------------------------- monitoring (issue 13): catalog
-- Each version stores the profile of its training rows (src/core/monitor.hpp): per feature
-- column the NULL share and the shares in the training deciles (numeric) or per level
-- (categorical). The in-memory algorithms profile every training row; the streaming ones
-- (linear family, k-means) their sample of training rows; naive Bayes trained through the class
-- aggregate its counts by level and moments (normal deciles for numbers). "rows" and "from" say which.
-- Versions trained before, and imported ones, have none (NULL). ml_versions shows it.
ALTER TABLE ml.versions ADD COLUMN profile jsonb;
COMMENT ON COLUMN ml.versions.profile IS
    'the training rows'' profile ml_monitor compares with: per feature the NULL share and the shares per decile or level';

-- Views run with their owner's rights on ml.*; each row is filtered to the models the caller owns
-- (the sequence's owner, directly or through role membership) or was granted (SELECT on it).
CREATE VIEW @extschema@.ml_models AS
SELECT m.name, m.id, s.relowner::pg_catalog.regrole AS owner, m.task, m.algorithm, m.target, m.relation,
       m.deployed_version, v.metrics OPERATOR(pg_catalog.->) 'test' AS test_metrics, v.metrics OPERATOR(pg_catalog.->) 'train' AS train_metrics,
       v.classes, m.created_at, m.updated_at, m.deploy_metric
FROM ml.models m
JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) m.seq::pg_catalog.oid
LEFT JOIN ml.versions v ON v.model_id OPERATOR(pg_catalog.=) m.id AND v.version OPERATOR(pg_catalog.=) m.deployed_version
WHERE pg_catalog.pg_has_role(s.relowner, 'USAGE') OR pg_catalog.has_table_privilege(m.seq::pg_catalog.oid, 'SELECT');
COMMENT ON VIEW @extschema@.ml_models IS 'pg_ml: one row per model visible to the current role';

CREATE VIEW @extschema@.ml_versions AS
SELECT m.name AS model, v.model_id, v.version, v.parent_version,
       (v.version OPERATOR(pg_catalog.=) m.deployed_version) AS deployed,
       v.algorithm, v.mode, v.relation, v.metrics OPERATOR(pg_catalog.->) 'test' AS test_metrics, v.metrics OPERATOR(pg_catalog.->) 'train' AS train_metrics,
       v.hyperparams, v.preprocess, v.preprocessing_state, v.coefficients, v.rows_train, v.rows_test, v.report,
       v.duration_ms, v.trained_by, v.trained_at, v.data_fingerprint,
       v.format_version, v.model_kind, v.blob_length, v.checksum, v.sources, v.classes, v.profile
FROM ml.versions v
JOIN ml.models m ON m.id OPERATOR(pg_catalog.=) v.model_id
JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) m.seq::pg_catalog.oid
WHERE pg_catalog.pg_has_role(s.relowner, 'USAGE') OR pg_catalog.has_table_privilege(m.seq::pg_catalog.oid, 'SELECT');
COMMENT ON VIEW @extschema@.ml_versions IS 'pg_ml: every version of every model visible to the current role';

CREATE VIEW ml.training_log_visible AS
SELECT m.name AS model, l.model_id, l.version, l.iteration, l.loss, l.grad_norm, l.valid_metric
FROM ml.training_log l
JOIN ml.models m ON m.id OPERATOR(pg_catalog.=) l.model_id
JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) m.seq::pg_catalog.oid
WHERE pg_catalog.pg_has_role(s.relowner, 'USAGE') OR pg_catalog.has_table_privilege(m.seq::pg_catalog.oid, 'SELECT');

CREATE VIEW @extschema@.ml_jobs AS
SELECT j.id, m.name AS model, j.model_id, j.kind, j.status, j.mode, j.relation, j.rows,
       j.queued_at, j.started_at, j.finished_at, j.attempts, j.retry_at, j.version, j.deployed,
       j.error, j.error_code, j.runner, j.runner_pid,
       CASE WHEN j.status OPERATOR(pg_catalog.=) 'queued' THEN r.job_runner END AS job_runner
FROM ml.jobs j
JOIN ml.models m ON m.id OPERATOR(pg_catalog.=) j.model_id
CROSS JOIN ml.job_runner() r(job_runner)
JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) m.seq::pg_catalog.oid
WHERE pg_catalog.pg_has_role(s.relowner, 'USAGE') OR pg_catalog.has_table_privilege(m.seq::pg_catalog.oid, 'SELECT');
COMMENT ON VIEW @extschema@.ml_jobs IS 'pg_ml: the jobs (auto-retrain) of the models visible to the current role; job_runner: what will run a queued job (worker, ml_run_jobs or none)';

CREATE VIEW @extschema@.ml_auto_retrains AS
SELECT m.name AS model, a.model_id, a.relation, a.min_new_rows, a.mode,
       a.pending_rows OPERATOR(pg_catalog.+) COALESCE((SELECT pg_catalog.sum(b.rows) FROM ml.auto_retrain_batches b
                                WHERE b.model_id OPERATOR(pg_catalog.=) a.model_id AND b.window_no IS NULL), 0)
           AS pending_rows,
       a.created_by, a.created_at, r.job_runner
FROM ml.auto_retrain a
JOIN ml.models m ON m.id OPERATOR(pg_catalog.=) a.model_id
CROSS JOIN ml.job_runner() r(job_runner)
JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) m.seq::pg_catalog.oid
WHERE pg_catalog.pg_has_role(s.relowner, 'USAGE') OR pg_catalog.has_table_privilege(m.seq::pg_catalog.oid, 'SELECT');
COMMENT ON VIEW @extschema@.ml_auto_retrains IS 'pg_ml: auto-retrain settings and the new rows counted so far, per visible model; job_runner: what runs its jobs (worker, ml_run_jobs or none)';

GRANT SELECT ON @extschema@.ml_models, @extschema@.ml_versions, ml.training_log_visible,
    @extschema@.ml_jobs, @extschema@.ml_auto_retrains TO PUBLIC;


-- ---------------------------------------------------------------- other changes

-- ---------------------------------------------------------------- retraining (issue 11): functions
-- ml_train: deploy_metric (the metric a retrain's deploy => 'if_better' compares) and
-- metrics_from ('test', or 'train' when test_size => 0 held no rows out). ml_retrain:
-- allow_new_classes (labels the deployed version does not know are an error without it) and
-- learned (what the version learned from, and why that way); drift (issue 13: see monitoring below).
DROP FUNCTION @extschema@.ml_train(text, text, text, text, text, text[], text[], jsonb, jsonb, float8, integer);
CREATE FUNCTION @extschema@.ml_train(
    relation     text,
    target       text,
    algorithm    text DEFAULT 'auto',
    task         text DEFAULT 'auto',
    name         text DEFAULT NULL,
    features     text[] DEFAULT NULL,
    exclude      text[] DEFAULT NULL,
    hyperparams  jsonb DEFAULT '{}',
    preprocess   jsonb DEFAULT '{}',
    test_size    float8 DEFAULT 0.2,
    seed         integer DEFAULT 42,
    deploy_metric text DEFAULT NULL,
    search       text DEFAULT NULL,
    search_params jsonb DEFAULT NULL,
    search_args  jsonb DEFAULT NULL,
    -- per-group models (src/core/grouped.hpp): one model per group of rows, in one call
    group_by     text[] DEFAULT NULL,
    group_fallback text DEFAULT NULL,
    -- the headline a person reads first (metric: the model's deploy metric, score: its value
    -- on the held-out rows, or the training rows with test_size => 0, rounded to 4 decimals);
    -- every metric at full precision in metrics
    OUT model_id bigint, OUT model text, OUT version integer, OUT task text, OUT algorithm text,
    OUT metric text, OUT score numeric, OUT rows_train bigint, OUT rows_test bigint, OUT deployed boolean,
    OUT metrics jsonb, OUT metrics_from text)
    RETURNS record
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pgml_train';
COMMENT ON FUNCTION @extschema@.ml_train(text, text, text, text, text, text[], text[], jsonb, jsonb, float8, integer, text, text, jsonb, jsonb, text[], text)
    IS 'pg_ml: train a new model on a relation and deploy its version 1';

DROP FUNCTION @extschema@.ml_retrain(text, text, text, text, float8, integer);
DROP FUNCTION @extschema@.ml_retrain(bigint, text, text, text, float8, integer);
CREATE FUNCTION @extschema@.ml_retrain(
    model        text,
    relation     text,
    mode         text DEFAULT 'auto',
    deploy       text DEFAULT 'if_better',
    test_size    float8 DEFAULT NULL,
    seed         integer DEFAULT NULL,
    allow_new_classes boolean DEFAULT false,
    algorithm    text DEFAULT NULL,
    hyperparams  jsonb DEFAULT NULL,
    OUT model_id bigint, OUT version integer, OUT parent_version integer, OUT mode text,
    OUT rows_train bigint, OUT rows_test bigint, OUT metrics jsonb, OUT previous_metrics jsonb,
    OUT deployed boolean, OUT reason text, OUT learned text, OUT drift jsonb)
    RETURNS record
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pgml_retrain';
CREATE FUNCTION @extschema@.ml_retrain(
    model        bigint,
    relation     text,
    mode         text DEFAULT 'auto',
    deploy       text DEFAULT 'if_better',
    test_size    float8 DEFAULT NULL,
    seed         integer DEFAULT NULL,
    allow_new_classes boolean DEFAULT false,
    algorithm    text DEFAULT NULL,
    hyperparams  jsonb DEFAULT NULL,
    OUT model_id bigint, OUT version integer, OUT parent_version integer, OUT mode text,
    OUT rows_train bigint, OUT rows_test bigint, OUT metrics jsonb, OUT previous_metrics jsonb,
    OUT deployed boolean, OUT reason text, OUT learned text, OUT drift jsonb)
    RETURNS record
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pgml_retrain';
COMMENT ON FUNCTION @extschema@.ml_retrain(text, text, text, text, float8, integer, boolean, text, jsonb)
    IS 'pg_ml: train a new version of a model on a relation (see the README''s retrain table)';
COMMENT ON FUNCTION @extschema@.ml_retrain(bigint, text, text, text, float8, integer, boolean, text, jsonb)
    IS 'pg_ml: train a new version of a model on a relation (see the README''s retrain table)';

-- what an incremental retrain reads of a table it learned from before: the rows whose inserting
-- transaction the recorded snapshot did not see (src/pg/learned.cpp)
CREATE FUNCTION ml.row_is_new(xmin xid, learned text, seen text) RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_row_is_new';
COMMENT ON FUNCTION ml.row_is_new(xid, text, text)
    IS 'pg_ml: whether a row (by its xmin) is unseen by snapshot learned and seen by snapshot seen (used by ml_retrain)';

-- auto-retrain keeps mode 'auto' and each job's retrain resolves it (the README's retrain table);
-- its jobs read the table itself (what the deployed version has not learned of it)
ALTER TABLE ml.auto_retrain DROP CONSTRAINT auto_retrain_mode_check;
ALTER TABLE ml.auto_retrain ADD CONSTRAINT auto_retrain_mode_check CHECK (mode IN ('auto', 'refit', 'incremental'));
ALTER TABLE ml.jobs DROP CONSTRAINT jobs_mode_check;
ALTER TABLE ml.jobs ADD CONSTRAINT jobs_mode_check CHECK (mode IN ('auto', 'refit', 'incremental'));

-- ---------------------------------------------------------------- deploy metric (issue 11): functions
-- ml_set_deploy_metric(model, metric): the metric ml_retrain(deploy => 'if_better') compares
-- from now on (NULL: the task's default); returns it. Owner only (checked inside, as for
-- ml_deploy). Volatile, parallel unsafe: it writes the catalog.
CREATE FUNCTION @extschema@.ml_set_deploy_metric(model text, metric text) RETURNS text
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pgml_set_deploy_metric';
CREATE FUNCTION @extschema@.ml_set_deploy_metric(model bigint, metric text) RETURNS text
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pgml_set_deploy_metric';
COMMENT ON FUNCTION @extschema@.ml_set_deploy_metric(text, text)
    IS 'pg_ml: set the metric ml_retrain(deploy => ''if_better'') compares (NULL: the task''s default)';
COMMENT ON FUNCTION @extschema@.ml_set_deploy_metric(bigint, text)
    IS 'pg_ml: set the metric ml_retrain(deploy => ''if_better'') compares (NULL: the task''s default)';

-- ---------------------------------------------------------------- coefficient statistics (issue 12)
-- ml_coefficients(model, version): per term (the intercept first, then each feature) the
-- coefficient, its standard error, t (linear_regression) or z (logistic_regression with
-- penalty 'none', two classes) statistic, two-sided p-value and 95% confidence interval, as
-- R's summary(lm(...)) / summary(glm(..., family = binomial)) and confint (Wald intervals for
-- glm, as confint.default). Training computes them (src/core/inference.cpp) into the
-- version's report ("inference", with the model-level figures); this reads them. Coefficients
-- aliased in a rank-deficient fit have NULL statistics (lm's NA).
CREATE FUNCTION @extschema@.ml_coefficients(model text, version integer DEFAULT NULL)
    RETURNS TABLE (term text, estimate float8, std_error float8, statistic float8, p_value float8,
                   conf_low float8, conf_high float8)
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v record;
BEGIN
    SELECT x.version, x.algorithm, x.hyperparams, x.report INTO v
    FROM @extschema@.ml_versions x
    WHERE x.model OPERATOR(pg_catalog.=) $1
      AND CASE WHEN $2 IS NULL THEN x.deployed ELSE x.version OPERATOR(pg_catalog.=) $2 END;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM @extschema@.ml_models m WHERE m.name OPERATOR(pg_catalog.=) $1) THEN
            RAISE EXCEPTION 'model "%" does not exist', $1 USING ERRCODE = 'undefined_object',
                HINT = 'ml_models lists the models you can use.';
        END IF;
        RAISE EXCEPTION 'version % of model "%" does not exist', $2, $1 USING ERRCODE = 'undefined_object',
            HINT = 'ml_versions lists the versions of a model.';
    END IF;
    IF v.algorithm OPERATOR(pg_catalog.<>) ALL (ARRAY['linear_regression', 'logistic_regression']) THEN
        RAISE EXCEPTION 'version % of model "%" is a % model, which has no coefficient statistics',
            v.version, $1, v.algorithm USING ERRCODE = 'feature_not_supported',
            HINT = 'ml_coefficients covers linear_regression and logistic_regression with penalty ''none''; '
                   'ml_feature_importance shows the coefficients of the other linear models.';
    END IF;
    IF v.algorithm OPERATOR(pg_catalog.=) 'logistic_regression'
       AND v.hyperparams ->> 'penalty' IS DISTINCT FROM 'none' THEN
        RAISE EXCEPTION 'version % of model "%" is a penalized logistic regression (penalty ''%''): its coefficients have no standard errors',
            v.version, $1, coalesce(v.hyperparams ->> 'penalty', 'l2') USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Train with hyperparams => ''{"penalty": "none"}'' (maximum likelihood, as R''s glm).';
    END IF;
    IF NOT (v.report ? 'inference') THEN
        IF v.algorithm OPERATOR(pg_catalog.=) 'logistic_regression' THEN
            RAISE EXCEPTION 'version % of model "%" has more than two classes: coefficient statistics need a binary target',
                v.version, $1 USING ERRCODE = 'feature_not_supported',
                HINT = 'Train one model per class against the rest, as R''s glm(family = binomial) does.';
        END IF;
        RAISE EXCEPTION 'version % of model "%" has no coefficient statistics', v.version, $1
            USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Versions trained before pg_ml 0.3.0 have none; retrain the model.';
    END IF;
    RETURN QUERY
    SELECT c ->> 'term', (c ->> 'estimate')::float8, (c ->> 'std_error')::float8, (c ->> 'statistic')::float8,
           (c ->> 'p_value')::float8, (c ->> 'conf_low')::float8, (c ->> 'conf_high')::float8
    FROM jsonb_array_elements(v.report -> 'inference' -> 'coefficients') WITH ORDINALITY AS e (c, i)
    ORDER BY e.i;
END
$$;
CREATE FUNCTION @extschema@.ml_coefficients(model bigint, version integer DEFAULT NULL)
    RETURNS TABLE (term text, estimate float8, std_error float8, statistic float8, p_value float8,
                   conf_low float8, conf_high float8)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM @extschema@.ml_coefficients(
              (SELECT m.name FROM @extschema@.ml_models m WHERE m.id OPERATOR(pg_catalog.=) $1), $2) $$;
COMMENT ON FUNCTION @extschema@.ml_coefficients(text, integer)
    IS 'pg_ml: coefficient, standard error, t / z statistic, p-value and 95% interval per term of a linear_regression or unpenalized logistic_regression version (default: deployed)';
COMMENT ON FUNCTION @extschema@.ml_coefficients(bigint, integer)
    IS 'pg_ml: coefficient, standard error, t / z statistic, p-value and 95% interval per term of a linear_regression or unpenalized logistic_regression version (default: deployed)';

-- ---------------------------------------------------------------- explanations (issue 13)
-- ml_explain(model, features) -> jsonb: the row's prediction as a base value plus one
-- contribution per feature and per input column (exact for the linear family, tree SHAP for
-- gradient_boosting). Same overloads as ml_predict; STABLE, PARALLEL SAFE, NULL in, NULL out.
CREATE FUNCTION @extschema@.ml_explain(model text, features record) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_explain';
CREATE FUNCTION @extschema@.ml_explain(model bigint, features record) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_explain';
CREATE FUNCTION @extschema@.ml_explain(model text, features float8[]) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_explain';
CREATE FUNCTION @extschema@.ml_explain(model bigint, features float8[]) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_explain';
CREATE FUNCTION @extschema@.ml_explain(model text, features jsonb) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_explain';
CREATE FUNCTION @extschema@.ml_explain(model bigint, features jsonb) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_explain';
COMMENT ON FUNCTION @extschema@.ml_explain(text, record) IS
    'pg_ml: a prediction explained: base value plus one contribution per feature and per column';
COMMENT ON FUNCTION @extschema@.ml_explain(text, float8[]) IS
    'pg_ml: a prediction explained: base value plus one contribution per feature and per column';
COMMENT ON FUNCTION @extschema@.ml_explain(text, jsonb) IS
    'pg_ml: a prediction explained: base value plus one contribution per feature and per column';
COMMENT ON FUNCTION @extschema@.ml_explain(bigint, record) IS
    'pg_ml: a prediction explained: base value plus one contribution per feature and per column';
COMMENT ON FUNCTION @extschema@.ml_explain(bigint, float8[]) IS
    'pg_ml: a prediction explained: base value plus one contribution per feature and per column';
COMMENT ON FUNCTION @extschema@.ml_explain(bigint, jsonb) IS
    'pg_ml: a prediction explained: base value plus one contribution per feature and per column';


-- ---------------------------------------------------------------- search (issue 13)
-- ml_train(search => 'grid' | 'random', search_params, search_args) and algorithm => 'auto' by
-- cross-validation record every trial of the version's search (src/core/search.hpp).
CREATE TABLE ml.trials (
    model_id        bigint NOT NULL,
    version         integer NOT NULL,
    trial           integer NOT NULL,
    algorithm       text NOT NULL,
    hyperparams     jsonb NOT NULL,
    metric          text NOT NULL,
    fold_scores     float8[] NOT NULL,
    mean            float8,
    sd              float8,
    ms              float8 NOT NULL,
    chosen          boolean NOT NULL,
    error           text,
    CONSTRAINT trials_pkey PRIMARY KEY (model_id, version, trial),
    CONSTRAINT trials_version_fkey FOREIGN KEY (model_id, version)
        REFERENCES ml.versions (model_id, version) ON DELETE CASCADE
);
COMMENT ON TABLE ml.trials IS 'pg_ml: the trials of the search that chose a version''s algorithm and hyperparameters';
SELECT pg_catalog.pg_extension_config_dump('ml.trials', '');
REVOKE ALL ON ml.trials FROM PUBLIC;

CREATE VIEW ml.trials_visible AS
SELECT m.name AS model, t.model_id, t.version, t.trial, t.algorithm, t.hyperparams, t.metric, t.fold_scores,
       t.mean, t.sd, t.ms, t.chosen, t.error
FROM ml.trials t
JOIN ml.models m ON m.id OPERATOR(pg_catalog.=) t.model_id
JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) m.seq::pg_catalog.oid
WHERE pg_catalog.pg_has_role(s.relowner, 'USAGE') OR pg_catalog.has_table_privilege(m.seq::pg_catalog.oid, 'SELECT');
GRANT SELECT ON ml.trials_visible TO PUBLIC;

CREATE FUNCTION @extschema@.ml_trials(model text, version integer DEFAULT NULL)
    RETURNS TABLE (model_version integer, trial integer, algorithm text, hyperparams jsonb, metric text,
                   fold_scores float8[], mean float8, sd float8, ms float8, chosen boolean, error text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM @extschema@.ml_models m WHERE m.name OPERATOR(pg_catalog.=) $1) THEN
        RAISE EXCEPTION 'model "%" does not exist', $1 USING ERRCODE = 'undefined_object',
            HINT = 'ml_models lists the models you can use.';
    END IF;
    IF $2 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM @extschema@.ml_versions x
                      WHERE x.model OPERATOR(pg_catalog.=) $1 AND x.version OPERATOR(pg_catalog.=) $2) THEN
        RAISE EXCEPTION 'version % of model "%" does not exist', $2, $1 USING ERRCODE = 'undefined_object',
            HINT = 'ml_versions lists the versions of a model.';
    END IF;
    RETURN QUERY
    SELECT t.version, t.trial, t.algorithm, t.hyperparams, t.metric, t.fold_scores, t.mean, t.sd, t.ms, t.chosen, t.error
    FROM ml.trials_visible t
    WHERE t.model OPERATOR(pg_catalog.=) $1 AND ($2 IS NULL OR t.version OPERATOR(pg_catalog.=) $2)
    ORDER BY t.version, t.trial;
END
$$;
CREATE FUNCTION @extschema@.ml_trials(model bigint, version integer DEFAULT NULL)
    RETURNS TABLE (model_version integer, trial integer, algorithm text, hyperparams jsonb, metric text,
                   fold_scores float8[], mean float8, sd float8, ms float8, chosen boolean, error text)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM @extschema@.ml_trials(
              (SELECT m.name FROM @extschema@.ml_models m WHERE m.id OPERATOR(pg_catalog.=) $1), $2) $$;
COMMENT ON FUNCTION @extschema@.ml_trials(text, integer)
    IS 'pg_ml: the trials of the searches that chose the versions of a model (every version, or one)';
COMMENT ON FUNCTION @extschema@.ml_trials(bigint, integer)
    IS 'pg_ml: the trials of the searches that chose the versions of a model (every version, or one)';

-- ---------------------------------------------------------------- monitoring (issue 13)
-- (ml.versions.profile, which ml_monitor reads, is added before the views above show it)

-- ml_monitor(model, relation, version): the drift of each feature of the relation's rows against
-- the version's training profile (PSI, with severity none < 0.1 <= moderate < 0.25 <= major), the
-- shares of NULLs (beside the training share) and of unseen levels; when the relation has the
-- target column, one row per compared metric (the deploy metric, and accuracy / r2 when it
-- differs) against the version's test metric. Reads the relation as the caller and is declared
-- as ml_evaluate is: STABLE (it only reads), PARALLEL UNSAFE (it runs a query of its own and
-- reports progress).
CREATE FUNCTION @extschema@.ml_monitor(model text, relation text, version integer DEFAULT NULL)
    RETURNS TABLE (name text, kind text, psi float8, severity text, rows bigint, null_share float8,
                   train_null_share float8, unseen_share float8, value float8, test_value float8,
                   change float8, detail jsonb)
    LANGUAGE c STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pgml_monitor';
CREATE FUNCTION @extschema@.ml_monitor(model bigint, relation text, version integer DEFAULT NULL)
    RETURNS TABLE (name text, kind text, psi float8, severity text, rows bigint, null_share float8,
                   train_null_share float8, unseen_share float8, value float8, test_value float8,
                   change float8, detail jsonb)
    LANGUAGE c STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pgml_monitor';
COMMENT ON FUNCTION @extschema@.ml_monitor(text, text, integer) IS
    'pg_ml: drift of a relation''s rows against a version''s training data (PSI per feature) and, with labels, its metrics against the test metrics';
COMMENT ON FUNCTION @extschema@.ml_monitor(bigint, text, integer) IS
    'pg_ml: drift of a relation''s rows against a version''s training data (PSI per feature) and, with labels, its metrics against the test metrics';

-- ml_retrain's confirmation has `drift` (its definition above): per feature the PSI and severity
-- of the rows the retrain read against the parent version's profile (NULL when the parent has
-- none). ml.retrain (what the jobs run) keeps its columns; the C function fills what the caller declares.

-- ---------------------------------------------------------------- feature importance per column (issue 13)
-- ml_feature_importance gains `column` (the input column each feature comes from: a one-hot
-- feature "plan=gold" from column plan) and by_column: true gives one row per input column
-- instead, its importance the sum of its features' magnitudes (a one-hot column's levels summed;
-- a numeric column's own magnitude). The per-feature rows keep their order and values.
DROP FUNCTION @extschema@.ml_feature_importance(bigint, integer);
DROP FUNCTION @extschema@.ml_feature_importance(text, integer);
CREATE FUNCTION @extschema@.ml_feature_importance(model text, version integer DEFAULT NULL,
                                                  by_column boolean DEFAULT false)
    RETURNS TABLE (feature text, importance float8, kind text, "column" text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    c jsonb;
    s jsonb;
BEGIN
    SELECT x.coefficients, x.preprocessing_state INTO c, s
    FROM @extschema@.ml_versions x
    WHERE x.model OPERATOR(pg_catalog.=) $1
      AND CASE WHEN $2 IS NULL THEN x.deployed ELSE x.version OPERATOR(pg_catalog.=) $2 END;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM @extschema@.ml_models m WHERE m.name OPERATOR(pg_catalog.=) $1) THEN
            RAISE EXCEPTION 'model "%" does not exist', $1 USING ERRCODE = 'undefined_object',
                HINT = 'ml_models lists the models you can use.';
        END IF;
        RAISE EXCEPTION 'version % of model "%" does not exist', $2, $1 USING ERRCODE = 'undefined_object',
            HINT = 'ml_versions lists the versions of a model.';
    END IF;
    RETURN QUERY
    WITH f (feature, importance, kind, ord) AS (
        -- linear models: standardized coefficients, signed (mean absolute value over classes
        -- for multinomial)
        SELECT e.key, CASE jsonb_typeof(e.value)
                          WHEN 'number' THEN (e.value #>> '{}')::float8
                          ELSE (SELECT avg(abs(a::text::float8)) FROM jsonb_array_elements(e.value) a) END,
               'coefficient', 0
        FROM jsonb_each(c -> 'standardized') e
        WHERE c ? 'standardized'
        UNION ALL
        -- other algorithms: their own importance (split gain, weights, ...)
        SELECT e.key, (e.value #>> '{}')::float8, c ->> 'kind', 0
        FROM jsonb_each(c -> 'importance') e
        WHERE c ? 'importance'
    ),
    -- the input columns as feature names spell them (quoted when the name holds = or ")
    cols (col, part) AS (
        SELECT k ->> 'name',
               CASE WHEN k ->> 'name' = '' OR k ->> 'name' ~ '[="]'
                    THEN '"' || replace(k ->> 'name', '"', '""') || '"' ELSE k ->> 'name' END
        FROM jsonb_array_elements(s -> 'columns') k
    ),
    fc AS (
        SELECT f.feature, f.importance, f.kind,
               (SELECT cols.col FROM cols
                WHERE f.feature = cols.part OR starts_with(f.feature, cols.part || '=')
                ORDER BY length(cols.part) DESC LIMIT 1) AS col
        FROM f
    )
    SELECT r.feature, r.importance, r.kind, r.col FROM (
        SELECT fc.feature, fc.importance, fc.kind, fc.col FROM fc WHERE NOT $3
        UNION ALL
        SELECT fc.col, sum(abs(fc.importance)), min(fc.kind), fc.col FROM fc WHERE $3 GROUP BY fc.col
    ) r
    ORDER BY abs(r.importance) DESC NULLS LAST, r.feature;
END
$$;
CREATE FUNCTION @extschema@.ml_feature_importance(model bigint, version integer DEFAULT NULL,
                                                  by_column boolean DEFAULT false)
    RETURNS TABLE (feature text, importance float8, kind text, "column" text)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM @extschema@.ml_feature_importance(
              (SELECT m.name FROM @extschema@.ml_models m WHERE m.id OPERATOR(pg_catalog.=) $1), $2, $3) $$;
COMMENT ON FUNCTION @extschema@.ml_feature_importance(text, integer, boolean)
    IS 'pg_ml: importance of each feature (standardized coefficients, split gain, ...) of a version (default: deployed) and the input column it comes from; by_column: one row per input column, its features'' magnitudes summed';
COMMENT ON FUNCTION @extschema@.ml_feature_importance(bigint, integer, boolean)
    IS 'pg_ml: importance of each feature (standardized coefficients, split gain, ...) of a version (default: deployed) and the input column it comes from; by_column: one row per input column, its features'' magnitudes summed';

-- ml.row_draw, ml.row_band, ml.eval_stats and ml.logit_step with one float8 argument per numeric
-- feature after the categorical features' text[] (N = 8, 16, 32 or 64, NULL after the features),
-- as ml.train_stats has: the scans of classification training build no array per row. The C
-- functions tell the two forms apart by their argument count.
DO $pgml$
DECLARE
    n int;
    slots text;
    step_args text;
    agg text;
BEGIN
    FOREACH n IN ARRAY ARRAY[8, 16, 32, 64] LOOP
        slots := pg_catalog.array_to_string(pg_catalog.array_fill('float8'::text, ARRAY[n]), ', ');
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION ml.row_draw(float8[], float8, text, text[], %s) RETURNS float8 '
            'AS %L, %L LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE COST 10', slots, 'MODULE_PATHNAME', 'pgml_split_draw');
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION ml.row_band(float8[], float8, float8, float8, text, text[], %s) RETURNS float8 '
            'AS %L, %L LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE COST 10', slots, 'MODULE_PATHNAME', 'pgml_split_band');
        step_args := 'float8[], bytea, text[], float8, float8, float8, text, text[], ' || slots;
        FOREACH agg IN ARRAY ARRAY['eval_stats', 'logit_step'] LOOP
            EXECUTE pg_catalog.format(
                'CREATE FUNCTION ml.%I(float8[], %s) RETURNS float8[] '
                'AS %L, %L LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE COST 100',
                agg || '_transfn', step_args, 'MODULE_PATHNAME', 'pgml_' || agg || '_trans');
            EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION ml.%I(float8[], %s) FROM PUBLIC', agg || '_transfn', step_args);
            EXECUTE pg_catalog.format(
                'CREATE AGGREGATE ml.%I(%s) (SFUNC = ml.%I, STYPE = float8[], COMBINEFUNC = ml.%I, PARALLEL = SAFE)',
                agg, step_args, agg || '_transfn', agg || '_combinefn');
        END LOOP;
    END LOOP;
END
$pgml$;

-- ---------------------------------------------------------------- prediction cost (issue 15)
-- A prediction costs about 100 simple operators (0.2-3 us a row: a linear model at the low
-- end, 100 trees at the high end), not the 1 of a C function's default: with it the planner
-- parallelises a scan that predicts on a large table (and keeps the predictions below a
-- Gather rather than above it). ml_explain walks every tree for every feature: 10000.
DO $$
DECLARE
    f text;
    t text;
BEGIN
    FOREACH f IN ARRAY ARRAY['ml_predict', 'ml_predict_label', 'ml_predict_proba', 'ml_class_probabilities',
                             'ml_explain'] LOOP
        FOREACH t IN ARRAY ARRAY['text, record', 'bigint, record', 'text, float8[]', 'bigint, float8[]',
                                 'text, jsonb', 'bigint, jsonb'] LOOP
            EXECUTE pg_catalog.format('ALTER FUNCTION @extschema@.%I(%s) COST %s PARALLEL SAFE', f, t,
                                      CASE WHEN f = 'ml_explain' THEN 10000 ELSE 100 END);
        END LOOP;
    END LOOP;
END
$$;
