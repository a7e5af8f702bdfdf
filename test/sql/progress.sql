-- progress settings, the ml_training_progress view, ml_model_columns
-- (the exact notice format and the view seen from another session: test/integration/test_progress.py)
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
-- nothing is running in this session while the view is read (this also loads pg_ml)
SELECT count(*) FROM ml_training_progress WHERE pid = pg_backend_pid();
-- the settings: auto by default (nothing before 3 s, no detail), one notice a second at most
SELECT name, boot_val, unit, context, enumvals FROM pg_settings WHERE name LIKE 'pg_ml.progress%' ORDER BY name;
SET pg_ml.progress_interval = -1;
SET pg_ml.progress_interval = '250ms';
SHOW pg_ml.progress_interval;
RESET pg_ml.progress_interval;
SET pg_ml.progress_delay = -1;
SET pg_ml.progress_delay = '2s';
SHOW pg_ml.progress_delay;
RESET pg_ml.progress_delay;
SET pg_ml.progress = 'maybe';
SET pg_ml.progress = true;
SHOW pg_ml.progress;
SET pg_ml.progress = no;
SHOW pg_ml.progress;
RESET pg_ml.progress;
-- a small training at the default settings says nothing: no progress, no NOTICE of its choice
-- (the algorithm is in the result)
CREATE TABLE prog_small AS
SELECT i AS id, (i % 7) / 7.0 AS z, (ARRAY['a','b','c'])[1 + i % 3] AS kind, 2 * (i % 50) + (i % 7) AS y
FROM generate_series(1, 342) i;
ANALYZE prog_small;
-- the result's headline: typed columns a person reads (the full metrics are in the jsonb column metrics)
SELECT model, task, algorithm, metric, score, rows_train, rows_test, deployed, metrics_from FROM ml_train('prog_small', 'y');
-- with no delay: a line per phase change, the rows read of the planner's estimate while
-- reading, the iteration of the planned rounds; no DETAIL (a tiny training: elapsed 0 s)
SET pg_ml.progress_delay = 0;
CREATE TABLE prog_tiny AS SELECT i AS x, (i % 4) * 1.5 AS y FROM generate_series(1, 40) i;
ANALYZE prog_tiny;
SELECT model, algorithm FROM ml_train('prog_tiny', 'y', algorithm => 'gradient_boosting', name => 'prog_gb',
    hyperparams => '{"n_estimators": 3}', test_size => 0.25);
RESET pg_ml.progress_delay;
SELECT ml_drop_model('prog_small_y'), ml_drop_model('prog_gb');
DROP TABLE prog_small, prog_tiny;
-- trainings with progress off (test_progress.py checks that no progress notice is sent) and interval 0
SET pg_ml.progress = off;
SET pg_ml.progress_interval = 0;
CREATE TABLE prog (x integer, z float8, kind text, y float8);
INSERT INTO prog SELECT i, (i % 7) / 7.0, (ARRAY['a','b','c'])[1 + i % 3], 2 * i + (i % 7) FROM generate_series(1, 200) i;
SELECT model, version, algorithm FROM ml_train('prog', 'y', algorithm => 'linear_regression', name => 'prog_m');
INSERT INTO prog SELECT i, (i % 7) / 7.0, (ARRAY['a','b','c'])[1 + i % 3], 2 * i + (i % 7) FROM generate_series(201, 210) i;
SELECT version, parent_version, mode FROM ml_retrain('prog_m', 'prog');
SELECT (ml_evaluate('prog_m', 'prog') ->> 'rows')::int AS rows;
CREATE TABLE prog_c AS SELECT x, z, kind, y > 200 AS big FROM prog;
SELECT model, algorithm FROM ml_train('prog_c', 'big', algorithm => 'logistic_regression');
RESET pg_ml.progress_interval;
-- the view's columns; the trainings above are gone from it
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'ml_training_progress'::regclass AND attnum > 0 ORDER BY attnum;
SELECT count(*) FROM ml_training_progress WHERE pid = pg_backend_pid();
-- ml_model_columns: features in the model's order, then the target
SELECT * FROM ml_model_columns('prog_m');
SELECT name, role FROM ml_model_columns((SELECT id FROM ml_models WHERE name = 'prog_c_big'), 1);
SELECT * FROM ml_model_columns('prog_m', 7);
SELECT * FROM ml_model_columns('nope');
SELECT * FROM ml_model_columns(NULL::text);
-- a role that may not use the model cannot read its columns
CREATE ROLE pgml_prog_other;
SET ROLE pgml_prog_other;
SELECT * FROM ml_model_columns('prog_m');
RESET ROLE;
DROP ROLE pgml_prog_other;
SELECT ml_drop_model('prog_m'), ml_drop_model('prog_c_big');
DROP TABLE prog, prog_c;
