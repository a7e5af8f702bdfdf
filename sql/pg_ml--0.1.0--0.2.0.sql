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



-- ---------------------------------------------------------------- naive Bayes through aggregates
-- ml_train of naive_bayes (src/pg/eval_aggregate.cpp) runs ml_train_stats grouped by the
-- categorical features, the class and the split, then evaluates the fitted model with
-- ml_eval_stats: plain aggregates that parallel query spreads over workers.
-- ml_row_draw(params, target, VARIADIC features): a row's split draw (its hash, as the row
-- reader computes it; NULL for a row training skips), params as ml_train_stats's;
-- ml_row_band(params, lo, hi, target, VARIADIC features) the same against a band.
-- ml_eval_stats(params, model, classes, draw, cut, target, VARIADIC features): classification
-- metrics of a model (blob) over rows, a row with draw < cut counting as a test row. The
-- state is a float8[] (lossless text form) with a combine function.

CREATE FUNCTION @extschema@.ml_row_draw(float8[], "any", VARIADIC "any") RETURNS float8
    AS 'MODULE_PATHNAME', 'pgml_row_draw' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE COST 10;
COMMENT ON FUNCTION @extschema@.ml_row_draw(float8[], "any", VARIADIC "any") IS
    'pg_ml: the split draw of a row (used by ml_train)';
CREATE FUNCTION @extschema@.ml_row_band(float8[], float8, float8, "any", VARIADIC "any") RETURNS float8
    AS 'MODULE_PATHNAME', 'pgml_row_band' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE COST 10;
COMMENT ON FUNCTION @extschema@.ml_row_band(float8[], float8, float8, "any", VARIADIC "any") IS
    'pg_ml: where a row''s split draw is against a band [lo, hi): -1 under, 2 over, else the draw (used by ml_train)';

CREATE FUNCTION ml.eval_stats_transfn(float8[], float8[], bytea, text[], float8, float8, "any", VARIADIC "any")
    RETURNS float8[]
    AS 'MODULE_PATHNAME', 'pgml_eval_transfn' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE COST 100;
CREATE FUNCTION ml.eval_stats_combinefn(float8[], float8[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'pgml_eval_combinefn' LANGUAGE C STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION ml.eval_stats_transfn(float8[], float8[], bytea, text[], float8, float8, "any", VARIADIC "any") FROM PUBLIC;
REVOKE ALL ON FUNCTION ml.eval_stats_combinefn(float8[], float8[]) FROM PUBLIC;

CREATE AGGREGATE @extschema@.ml_eval_stats(float8[], bytea, text[], float8, float8, "any", VARIADIC "any") (
    SFUNC = ml.eval_stats_transfn,
    STYPE = float8[],
    COMBINEFUNC = ml.eval_stats_combinefn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.ml_eval_stats(float8[], bytea, text[], float8, float8, "any", VARIADIC "any") IS
    'pg_ml: classification metrics of a model over rows (used by ml_train; the state is a float8[])';



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


-- ---------------------------------------------------------------- auto-retrain and jobs
-- ml_auto_retrain(model, relation, min_new_rows, mode) puts a statement-level AFTER INSERT
-- trigger with a transition table on the relation. The trigger counts each statement's rows;
-- the first inserting transaction that finds the model's counter row unlocked (SKIP LOCKED,
-- never waiting) adds its rows and the rows counted meanwhile by others (ml.auto_retrain_batches)
-- to the open window and, once the window holds min_new_rows, queues ONE job and opens the next
-- window. An incremental job trains on exactly the rows its window's transactions inserted.
-- Jobs run in their own (sub)transactions as the model's owner: in the background worker when
-- pg_ml is preloaded, or through ml_run_jobs().
-- No foreign key from the tables an inserting transaction writes (batches, jobs)
-- to ml.models: its check would lock the model row (KEY SHARE), which a running retrain holds
-- FOR UPDATE, and an insert would then wait for the training. ml_drop_model() removes them.

CREATE TABLE ml.auto_retrain (
    model_id        bigint NOT NULL,
    relation        text NOT NULL,
    min_new_rows    bigint NOT NULL,
    mode            text NOT NULL,
    pending_rows    bigint NOT NULL DEFAULT 0,
    window_no       bigint NOT NULL DEFAULT 1,
    created_by      regrole NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT auto_retrain_pkey PRIMARY KEY (model_id),
    CONSTRAINT auto_retrain_model_fkey FOREIGN KEY (model_id) REFERENCES ml.models (id) ON DELETE CASCADE,
    CONSTRAINT auto_retrain_min_new_rows_check CHECK (min_new_rows >= 1),
    CONSTRAINT auto_retrain_pending_check CHECK (pending_rows >= 0),
    CONSTRAINT auto_retrain_mode_check CHECK (mode IN ('refit', 'incremental'))
);
COMMENT ON TABLE ml.auto_retrain IS 'pg_ml: auto-retrain settings and the row counter of the open window';

-- Rows counted by statements that found the counter busy (window_no NULL until they are folded
-- into a window) and, for incremental mode, every statement's batch: xid is the inserting
-- (sub)transaction, the watermark by which an incremental job finds exactly its window's rows
-- in the relation (WHERE xmin = ANY (...)), so new rows are never copied. Not kept by pg_dump:
-- transaction ids mean nothing in a restored database (its rows have new ones); after a restore,
-- counting starts again from the restored counters.
CREATE SEQUENCE ml.auto_retrain_batches_id_seq AS bigint;
CREATE TABLE ml.auto_retrain_batches (
    id              bigint NOT NULL DEFAULT nextval('ml.auto_retrain_batches_id_seq'),
    model_id        bigint NOT NULL,
    rows            bigint NOT NULL,
    window_no       bigint,
    xid             bigint,          -- 64-bit (epoch and xid) inserting transaction id
    CONSTRAINT auto_retrain_batches_pkey PRIMARY KEY (id)
);
ALTER SEQUENCE ml.auto_retrain_batches_id_seq OWNED BY ml.auto_retrain_batches.id;
CREATE INDEX auto_retrain_batches_model_idx ON ml.auto_retrain_batches (model_id, window_no);

CREATE SEQUENCE ml.jobs_id_seq AS bigint;
CREATE TABLE ml.jobs (
    id              bigint NOT NULL DEFAULT nextval('ml.jobs_id_seq'),
    model_id        bigint NOT NULL,
    kind            text NOT NULL DEFAULT 'auto_retrain',
    status          text NOT NULL DEFAULT 'queued',
    mode            text NOT NULL,
    relation        text NOT NULL,
    rows            bigint NOT NULL,
    window_no       bigint,
    queued_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    retry_at        timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    started_at      timestamptz,
    finished_at     timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    runner_pid      integer,
    runner          text,
    version         integer,
    deployed        boolean,
    error           text,
    error_code      text,
    CONSTRAINT jobs_pkey PRIMARY KEY (id),
    CONSTRAINT jobs_kind_check CHECK (kind IN ('auto_retrain')),
    CONSTRAINT jobs_status_check CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    CONSTRAINT jobs_mode_check CHECK (mode IN ('refit', 'incremental')),
    CONSTRAINT jobs_runner_check CHECK (runner IN ('worker', 'ml_run_jobs'))
);
ALTER SEQUENCE ml.jobs_id_seq OWNED BY ml.jobs.id;
CREATE INDEX jobs_open_idx ON ml.jobs (model_id, id) WHERE status IN ('queued', 'running');
COMMENT ON TABLE ml.jobs IS 'pg_ml: the job queue (auto-retrain); read it through ml_jobs';

SELECT pg_catalog.pg_extension_config_dump('ml.auto_retrain', '');
SELECT pg_catalog.pg_extension_config_dump('ml.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('ml.jobs_id_seq', '');
REVOKE ALL ON ml.auto_retrain, ml.auto_retrain_batches, ml.jobs FROM PUBLIC;
REVOKE ALL ON SEQUENCE ml.auto_retrain_batches_id_seq, ml.jobs_id_seq FROM PUBLIC;

CREATE VIEW @extschema@.ml_jobs AS
SELECT j.id, m.name AS model, j.model_id, j.kind, j.status, j.mode, j.relation, j.rows,
       j.queued_at, j.started_at, j.finished_at, j.attempts, j.retry_at, j.version, j.deployed,
       j.error, j.error_code, j.runner, j.runner_pid
FROM ml.jobs j
JOIN ml.models m ON m.id = j.model_id
WHERE pg_catalog.pg_has_role(m.owner, 'USAGE')
   OR EXISTS (SELECT 1 FROM ml.grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.id AND pg_catalog.pg_has_role(g.grantee, 'USAGE'));
COMMENT ON VIEW @extschema@.ml_jobs IS 'pg_ml: the jobs (auto-retrain) of the models visible to the current role';

CREATE VIEW @extschema@.ml_auto_retrains AS
SELECT m.name AS model, a.model_id, a.relation, a.min_new_rows, a.mode,
       a.pending_rows OPERATOR(pg_catalog.+) COALESCE((SELECT pg_catalog.sum(b.rows) FROM ml.auto_retrain_batches b
                                WHERE b.model_id OPERATOR(pg_catalog.=) a.model_id AND b.window_no IS NULL), 0)
           AS pending_rows,
       a.created_by, a.created_at
FROM ml.auto_retrain a
JOIN ml.models m ON m.id = a.model_id
WHERE pg_catalog.pg_has_role(m.owner, 'USAGE')
   OR EXISTS (SELECT 1 FROM ml.grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.id AND pg_catalog.pg_has_role(g.grantee, 'USAGE'));
COMMENT ON VIEW @extschema@.ml_auto_retrains IS 'pg_ml: auto-retrain settings and the new rows counted so far, per visible model';

GRANT SELECT ON @extschema@.ml_jobs, @extschema@.ml_auto_retrains TO PUBLIC;

-- Volatile, parallel unsafe: they change the catalog (and ml_auto_retrain a trigger).
CREATE FUNCTION @extschema@.ml_auto_retrain(model text, relation text, min_new_rows integer DEFAULT 10000,
                                            mode text DEFAULT 'auto') RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pgml_auto_retrain';
CREATE FUNCTION @extschema@.ml_auto_retrain(model bigint, relation text, min_new_rows integer DEFAULT 10000,
                                            mode text DEFAULT 'auto') RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pgml_auto_retrain';
COMMENT ON FUNCTION @extschema@.ml_auto_retrain(text, text, integer, text)
    IS 'pg_ml: queue a retrain of the model each time min_new_rows rows were inserted into relation; relation NULL turns it off';
COMMENT ON FUNCTION @extschema@.ml_auto_retrain(bigint, text, integer, text)
    IS 'pg_ml: queue a retrain of the model each time min_new_rows rows were inserted into relation; relation NULL turns it off';

-- The counting trigger. Not executable by PUBLIC, so only ml_auto_retrain() (running as the
-- catalog owner) can create a trigger with it: nobody can feed rows into another's model.
CREATE FUNCTION ml.auto_retrain_trigger() RETURNS trigger
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pgml_auto_retrain_trigger';
REVOKE ALL ON FUNCTION ml.auto_retrain_trigger() FROM PUBLIC;
COMMENT ON FUNCTION ml.auto_retrain_trigger() IS 'pg_ml: counts inserted rows (statement-level trigger); created by ml_auto_retrain()';

CREATE FUNCTION @extschema@.ml_run_jobs(max_jobs integer DEFAULT NULL,
    OUT job_id bigint, OUT model text, OUT status text, OUT attempts integer, OUT version integer,
    OUT deployed boolean, OUT error text)
    RETURNS SETOF record
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pgml_run_jobs';
COMMENT ON FUNCTION @extschema@.ml_run_jobs(integer)
    IS 'pg_ml: run queued jobs of the models the caller owns (all for a superuser), each in a subtransaction';


-- ---------------------------------------------------------------- k-means Lloyd step aggregate (issue 4)
-- ml_kmeans_step(params, levels, VARIADIC features): one Lloyd step of k-means over a relation.
-- ml_train / ml_retrain (mode refit) fit kmeans with ml_train_stats (preprocessing statistics
-- and a row sample the starting centres are fitted on), then one ml_kmeans_step query per
-- step: params carries the centres and each column's preprocessing, levels the kept levels
-- of the categorical columns. The state is a float8[] (lossless text form) with per cluster
-- the count and feature sums of the training rows and the inertia of the training and the
-- held-out rows; the combine function adds states, so parallel query spreads each scan.
-- The support functions live in schema ml (not usable by PUBLIC), like ml_train_stats's.

CREATE FUNCTION ml.kmeans_step_transfn(float8[], float8[], text[], VARIADIC "any") RETURNS float8[]
    AS 'MODULE_PATHNAME', 'pgml_kmeans_step_transfn' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE COST 10;
CREATE FUNCTION ml.kmeans_step_combinefn(float8[], float8[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'pgml_kmeans_step_combinefn' LANGUAGE C STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION ml.kmeans_step_transfn(float8[], float8[], text[], VARIADIC "any") FROM PUBLIC;
REVOKE ALL ON FUNCTION ml.kmeans_step_combinefn(float8[], float8[]) FROM PUBLIC;

CREATE AGGREGATE @extschema@.ml_kmeans_step(float8[], text[], VARIADIC "any") (
    SFUNC = ml.kmeans_step_transfn,
    STYPE = float8[],
    COMBINEFUNC = ml.kmeans_step_combinefn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.ml_kmeans_step(float8[], text[], VARIADIC "any") IS
    'pg_ml: one Lloyd step of k-means (used by ml_train; the state is a float8[])';
