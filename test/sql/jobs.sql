-- Auto-retrain: ml_auto_retrain, the counting trigger, ml_auto_retrains, ml_jobs, ml_run_jobs
SET extra_float_digits = 0;
SET client_min_messages = warning;
-- When pg_ml is preloaded, the background worker must leave this database's jobs to
-- ml_run_jobs(), so that what runs them here is deterministic (it rechecks before each claim).
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET pg_ml.worker_enabled = off;

CREATE TABLE stream (id int, x float8, y float8);
INSERT INTO stream SELECT i, i, 2 * i + 1 FROM generate_series(1, 100) i;
SELECT model, version FROM ml_train('stream', 'y', algorithm => 'linear_regression', name => 'stream_m',
                                    exclude => ARRAY['id'], test_size => 0);

-- refit once 50 new rows arrived
SELECT ml_auto_retrain('stream_m', 'stream', 50, 'refit');
SELECT model, relation, min_new_rows, mode, pending_rows FROM ml_auto_retrains;
-- one statement-level trigger with a transition table
SELECT regexp_replace(pg_get_triggerdef(oid), '\d+', 'N', 'g') AS trigger FROM pg_trigger WHERE tgrelid = 'stream'::regclass;

-- counting: statements add their rows; an empty statement adds nothing, COPY counts too
INSERT INTO stream SELECT i, i, 2 * i + 1 FROM generate_series(101, 110) i;
INSERT INTO stream SELECT i, i, 2 * i + 1 FROM generate_series(111, 130) i;
INSERT INTO stream SELECT 1, 1, 1 WHERE false;
COPY stream FROM stdin;
131	131	263
132	132	265
133	133	267
134	134	269
135	135	271
\.
SELECT pending_rows FROM ml_auto_retrains WHERE model = 'stream_m';
SELECT count(*) AS jobs FROM ml_jobs;
-- a rolled back insert counts nothing
BEGIN;
INSERT INTO stream SELECT i, i, 2 * i + 1 FROM generate_series(1000, 1100) i;
ROLLBACK;
SELECT pending_rows FROM ml_auto_retrains WHERE model = 'stream_m';
-- crossing 50 queues exactly one job (with every row counted so far); counting starts again
INSERT INTO stream SELECT i, i, 2 * i + 1 FROM generate_series(136, 160) i;
INSERT INTO stream SELECT i, i, 2 * i + 1 FROM generate_series(161, 170) i;
SELECT pending_rows FROM ml_auto_retrains WHERE model = 'stream_m';
-- one statement crossing the threshold twice queues one job too
INSERT INTO stream SELECT i, i, 2 * i + 1 FROM generate_series(171, 290) i;
SELECT id, model, kind, status, mode, relation, rows, attempts, version, error FROM ml_jobs ORDER BY id;

-- ml_run_jobs runs them in order, each as a new version (trained as the model's owner)
SELECT job_id, model, status, attempts, version, deployed, error FROM ml_run_jobs();
SELECT id, status, attempts, version, deployed, finished_at >= started_at AS timed, runner, error FROM ml_jobs ORDER BY id;
SELECT version, parent_version, mode, rows_train, trained_by::text = current_user AS trained_by_me FROM ml_versions WHERE model = 'stream_m' ORDER BY version;
SELECT count(*) AS nothing_left FROM ml_run_jobs();

-- incremental (auto picks it for linear models): a job trains on the rows the deployed version has
-- not learned, found by the inserting transactions (nothing is copied)
CREATE TABLE inc (x float8, y float8);
INSERT INTO inc SELECT i, 3 * i - 2 FROM generate_series(1, 40) i;
SELECT model, version FROM ml_train('inc', 'y', algorithm => 'linear_regression', name => 'inc_m', test_size => 0);
SELECT ml_auto_retrain('inc_m', 'inc', 20);
SELECT model, mode, min_new_rows FROM ml_auto_retrains WHERE model = 'inc_m';
INSERT INTO inc SELECT i, 3 * i - 2 FROM generate_series(41, 55) i;
INSERT INTO inc SELECT i, 3 * i - 2 FROM generate_series(56, 65) i;
INSERT INTO inc SELECT i, 3 * i - 2 FROM generate_series(66, 72) i;
SELECT count(*) AS batches FROM ml.auto_retrain_batches;
SELECT job_id, model, status, version, error FROM ml_run_jobs();
-- version 2 = the 40 rows of version 1 + every row inserted since (a job reads the table's rows the
-- deployed version has not learned: the 25 of the window and the 7 after it)
SELECT version, parent_version, mode, rows_train FROM ml_versions WHERE model = 'inc_m' ORDER BY version;
SELECT pending_rows FROM ml_auto_retrains WHERE model = 'inc_m';
SELECT count(*) AS batches FROM ml.auto_retrain_batches;
-- a REPEATABLE READ insert never takes the counter (it cannot wait, nor fail on it): its rows
-- are counted by the next runner, which then queues and runs the job
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO inc SELECT i, 3 * i - 2 FROM generate_series(73, 85) i;
COMMIT;
SELECT pending_rows FROM ml_auto_retrains WHERE model = 'inc_m';
SELECT count(*) AS queued FROM ml_jobs WHERE model = 'inc_m' AND status = 'queued';
SELECT job_id, model, status, version, error FROM ml_run_jobs();
SELECT version, parent_version, mode, rows_train FROM ml_versions WHERE model = 'inc_m' ORDER BY version;
SELECT round((ml_predict('inc_m', ARRAY[100.0]))::numeric, 6) AS predicted;
-- the rows of one transaction are trained on together: when it crossed the threshold twice,
-- the first job takes all of them and the second has nothing left (no version)
BEGIN;
INSERT INTO inc SELECT i, 3 * i - 2 FROM generate_series(86, 105) i;
INSERT INTO inc SELECT i, 3 * i - 2 FROM generate_series(106, 125) i;
COMMIT;
SELECT model, status, rows FROM ml_jobs WHERE model = 'inc_m' AND status = 'queued' ORDER BY id;
SELECT model, status, version, deployed, error FROM ml_run_jobs();
SELECT version, parent_version, mode, rows_train FROM ml_versions WHERE model = 'inc_m' ORDER BY version;
SELECT count(*) AS batches FROM ml.auto_retrain_batches;

-- a failing job leaves the deployed version as it was, records the error, and is retried
-- until pg_ml.job_max_attempts
SELECT ml_auto_retrain('stream_m', 'stream', 5, 'refit');
SELECT pending_rows FROM ml_auto_retrains WHERE model = 'stream_m';
ALTER TABLE stream RENAME COLUMN x TO x_renamed;
INSERT INTO stream (id, x_renamed, y) SELECT i, i, 2 * i + 1 FROM generate_series(291, 300) i;
SELECT job_id, model, status, attempts, version, deployed, error FROM ml_run_jobs();
SELECT status, attempts, error, error_code, retry_at - finished_at BETWEEN interval '9 s' AND interval '11 s' AS retry_in_10s FROM ml_jobs WHERE status <> 'succeeded';
SELECT deployed_version, (SELECT max(version) FROM ml_versions WHERE model = 'stream_m') AS last_version
FROM ml_models WHERE name = 'stream_m';
-- not due yet: nothing runs
SELECT count(*) AS ran FROM ml_run_jobs();
SET pg_ml.job_max_attempts = 2;
UPDATE ml.jobs SET retry_at = now() WHERE status = 'queued';
SELECT job_id, status, attempts, error FROM ml_run_jobs();
RESET pg_ml.job_max_attempts;
SELECT status, attempts FROM ml_jobs WHERE status <> 'succeeded';
-- a renamed table is followed (the trigger moves with it)
ALTER TABLE stream RENAME COLUMN x_renamed TO x;
ALTER TABLE stream RENAME TO stream2;
INSERT INTO stream2 SELECT i, i, 2 * i + 1 FROM generate_series(301, 305) i;
SELECT job_id, status, version, error FROM ml_run_jobs();
ALTER TABLE stream2 RENAME TO stream;

-- errors
SELECT ml_auto_retrain('no_such_model', 'stream');
SELECT ml_auto_retrain(123456789::bigint, 'stream');
SELECT ml_auto_retrain(NULL::text, 'stream');
SELECT ml_auto_retrain('stream_m', 'no_such_table');
SELECT ml_auto_retrain('stream_m', 'stream', 0);
SELECT ml_auto_retrain('stream_m', 'stream', NULL);
SELECT ml_auto_retrain('stream_m', 'stream', 10, 'sometimes');
SELECT ml_auto_retrain('stream_m', 'stream', 10, NULL);
CREATE VIEW stream_v AS SELECT * FROM stream;
SELECT ml_auto_retrain('stream_m', 'stream_v');
CREATE TEMP TABLE stream_tmp (LIKE stream);
SELECT ml_auto_retrain('stream_m', 'stream_tmp');
CREATE TABLE unrelated (a int, b text);
SELECT ml_auto_retrain('stream_m', 'unrelated');
SELECT model FROM ml_train('stream', 'y', algorithm => 'decision_tree', name => 'tree_m', exclude => ARRAY['id']);
SELECT ml_auto_retrain('tree_m', 'stream', 10, 'incremental');
SELECT ml_auto_retrain('tree_m', 'stream', 10, 'auto');
SELECT mode FROM ml_auto_retrains WHERE model = 'tree_m';
SELECT * FROM ml_run_jobs(-1);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM ml_run_jobs();
ROLLBACK;
-- the counting function is not for hand-made triggers: not executable by users, never per row
SELECT ml.auto_retrain_trigger();
CREATE TRIGGER per_row AFTER INSERT ON unrelated FOR EACH ROW EXECUTE FUNCTION ml.auto_retrain_trigger('1');
INSERT INTO unrelated VALUES (1, 'a');
DROP TRIGGER per_row ON unrelated;
CREATE TRIGGER no_table AFTER INSERT ON unrelated FOR EACH STATEMENT EXECUTE FUNCTION ml.auto_retrain_trigger('1');
INSERT INTO unrelated VALUES (1, 'a');
DROP TRIGGER no_table ON unrelated;

-- ownership: only the model's owner sets up auto-retrain; others see neither its settings nor its jobs
CREATE ROLE pgml_jobs_alice;
CREATE ROLE pgml_jobs_bob;
GRANT CREATE ON SCHEMA public TO pgml_jobs_alice, pgml_jobs_bob;
CREATE TABLE readings (x float8, y float8);
INSERT INTO readings SELECT i, 5 * i FROM generate_series(1, 30) i;
GRANT SELECT ON readings TO pgml_jobs_alice, pgml_jobs_bob;
SET ROLE pgml_jobs_alice;
SELECT model FROM ml_train('readings', 'y', algorithm => 'linear_regression', name => 'alice_jobs_m', test_size => 0);
-- alice may read readings but not put a trigger on it
SELECT ml_auto_retrain('alice_jobs_m', 'readings', 10);
RESET ROLE;
GRANT TRIGGER, INSERT ON readings TO pgml_jobs_alice, pgml_jobs_bob;
SET ROLE pgml_jobs_alice;
SELECT ml_auto_retrain('alice_jobs_m', 'readings', 10);
SELECT model, relation, mode, created_by FROM ml_auto_retrains;
RESET ROLE;
SET ROLE pgml_jobs_bob;
SELECT ml_auto_retrain('alice_jobs_m', 'readings', 10);
SELECT ml_auto_retrain('alice_jobs_m', NULL);
CREATE TABLE bobs (x float8, y float8);
CREATE TRIGGER sneaky AFTER INSERT ON bobs REFERENCING NEW TABLE AS n FOR EACH STATEMENT
    EXECUTE FUNCTION ml.auto_retrain_trigger('1');
-- bob's inserts into readings are counted for alice's model, but he cannot see or run its jobs
INSERT INTO readings SELECT i, 5 * i FROM generate_series(31, 45) i;
SELECT count(*) AS visible_jobs FROM ml_jobs;
SELECT count(*) AS visible_settings FROM ml_auto_retrains;
SELECT count(*) AS ran FROM ml_run_jobs();
RESET ROLE;
SET ROLE pgml_jobs_alice;
SELECT model, status, rows FROM ml_jobs;
-- the job runs as alice (trained_by), whoever inserted the rows
SELECT model, status, attempts, error FROM ml_run_jobs();
SELECT version, mode, rows_train, trained_by FROM ml_versions WHERE model = 'alice_jobs_m' ORDER BY version;
-- off: the trigger goes, queued jobs fail with the reason
INSERT INTO readings SELECT i, 5 * i FROM generate_series(46, 60) i;
SELECT ml_auto_retrain('alice_jobs_m', NULL);
SELECT status, error FROM ml_jobs WHERE model = 'alice_jobs_m' ORDER BY id;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'readings'::regclass;
SET client_min_messages = notice;
SELECT ml_auto_retrain('alice_jobs_m', NULL);
SET client_min_messages = warning;
RESET ROLE;

-- dropping a model drops its trigger, batches and jobs
SELECT ml_auto_retrain('inc_m', 'inc', 5);
INSERT INTO inc SELECT i, 3 * i - 2 FROM generate_series(126, 135) i;
SELECT count(*) AS jobs_before FROM ml.jobs WHERE model_id = (SELECT id FROM ml_models WHERE name = 'inc_m');
SELECT ml_drop_model('inc_m');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'inc'::regclass;
SELECT count(*) AS jobs_after FROM ml.jobs j WHERE NOT EXISTS (SELECT 1 FROM ml.models m WHERE m.id = j.model_id);
SELECT count(*) AS batches FROM ml.auto_retrain_batches;
INSERT INTO inc VALUES (1000, 2998);

SELECT ml_drop_model(m) FROM unnest(ARRAY['stream_m', 'tree_m', 'alice_jobs_m']) m;
DROP VIEW stream_v;
DROP TABLE stream, inc, unrelated, readings, bobs;
REVOKE CREATE ON SCHEMA public FROM pgml_jobs_alice, pgml_jobs_bob;
DROP ROLE pgml_jobs_alice;
DROP ROLE pgml_jobs_bob;
ALTER DATABASE :"db" RESET pg_ml.worker_enabled;
