-- progress settings, the ml_training_progress view, ml_model_columns
-- (the exact notice format and the view seen from another session: test/integration/test_progress.py)
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
-- nothing is running in this session while the view is read (this also loads pg_ml)
SELECT count(*) FROM ml_training_progress WHERE pid = pg_backend_pid();
-- the settings: on by default, one notice a second at most
SELECT name, boot_val, unit, context FROM pg_settings WHERE name LIKE 'pg_ml.progress%' ORDER BY name;
SET pg_ml.progress_interval = -1;
SET pg_ml.progress_interval = '250ms';
SHOW pg_ml.progress_interval;
RESET pg_ml.progress_interval;
SET pg_ml.progress = 'maybe';
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
