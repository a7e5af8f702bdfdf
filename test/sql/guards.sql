-- Guards for common modelling mistakes (issue 11): key-like columns leave the default
-- features (NOTICE naming each), a key-like or constant target is refused, a float target is
-- no classification, test_size => 0 says its metrics are training metrics; and auto-retrain
-- says what runs its jobs (NOTICE, ml_auto_retrains.job_runner, ml_jobs.job_runner).
-- Each error's SQLSTATE is echoed after it.
SET extra_float_digits = 0;
SET pg_ml.progress = off;
\set VERBOSITY default

-- ---------------------------------------------------------------- key-like features
-- declared keys: a serial primary key, an identity column, a unique text column, a serial
-- without a key (its default is a sequence it owns); genuine features x, k
CREATE TABLE g_keys (id serial PRIMARY KEY, ident int GENERATED ALWAYS AS IDENTITY, email text UNIQUE,
                     n serial, x float8, k text, y float8);
INSERT INTO g_keys (email, x, k, y)
SELECT 'u' || i || '@example.com', i % 17, (ARRAY['a', 'b'])[1 + i % 2], 2 * (i % 17) + (i % 2)
FROM generate_series(1, 200) i;
SELECT model, metrics_from FROM ml_train('g_keys', 'y', algorithm => 'linear_regression');
SELECT name FROM ml_model_columns('g_keys_y') ORDER BY ordinal;
-- listed in features => a key stays (no NOTICE)
SELECT model FROM ml_train('g_keys', 'y', algorithm => 'linear_regression', name => 'g_keys_listed',
                           features => ARRAY['id', 'x', 'k']);
SELECT name FROM ml_model_columns('g_keys_listed') ORDER BY ordinal;
-- excluded by the caller: no NOTICE either
SELECT model FROM ml_train('g_keys', 'y', algorithm => 'linear_regression', name => 'g_keys_excluded',
                           exclude => ARRAY['id', 'ident', 'email', 'n']);
-- a uuid primary key (a type pg_ml cannot use, left out before it is refused)
CREATE TABLE g_uuid (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), x float8, y float8);
INSERT INTO g_uuid (x, y) SELECT i, 2 * i + (i % 3) FROM generate_series(1, 30) i;
SELECT model FROM ml_train('g_uuid', 'y', algorithm => 'linear_regression');
-- a unique index over two columns, a partial one, one on an expression: no key of one column
CREATE TABLE g_notkeys (a int, b int, c int, d text, y float8);
CREATE UNIQUE INDEX ON g_notkeys (a, b);
CREATE UNIQUE INDEX ON g_notkeys (c) WHERE c > 100;
CREATE UNIQUE INDEX ON g_notkeys (lower(d));
INSERT INTO g_notkeys SELECT i % 10, i, i, 'd' || i, i % 7 FROM generate_series(1, 50) i;
SELECT model FROM ml_train('g_notkeys', 'y', algorithm => 'linear_regression');
SELECT name FROM ml_model_columns('g_notkeys_y') ORDER BY ordinal;
-- only the sole column with nothing else: the error says why
CREATE TABLE g_only_key (id int PRIMARY KEY, y float8);
INSERT INTO g_only_key SELECT i, i % 3 FROM generate_series(1, 20) i;
SELECT * FROM ml_train('g_only_key', 'y');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- measured keys (ANALYZE's statistics, 1000 rows or more): consecutive unique integers (an id
-- without a constraint) and a text column with a distinct value in every row; a unique integer
-- feature spread far wider than the row count, and unique floats, are genuine features
CREATE TABLE g_stats (rid int, code text, amount int, x float8, k text, y float8);
INSERT INTO g_stats
SELECT i, 'c' || i, (i * 104729) % 10000019, i * 0.5, (ARRAY['a', 'b', 'c'])[1 + i % 3], (i % 11) + (i % 3)
FROM generate_series(1, 2000) i;
ANALYZE g_stats;
SELECT model FROM ml_train('g_stats', 'y', algorithm => 'linear_regression');
SELECT name FROM ml_model_columns('g_stats_y') ORDER BY ordinal;

-- ---------------------------------------------------------------- key-like targets
-- declared
SELECT * FROM ml_train('g_keys', 'id');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM ml_train('g_keys', 'email', task => 'classification');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- measured
SELECT * FROM ml_train('g_stats', 'code');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM ml_train('g_stats', 'rid', task => 'regression');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- neither declared nor measured (a small table, no statistics): every row its own class
CREATE TABLE g_names (x float8, who text);
INSERT INTO g_names SELECT i, 'name ' || i FROM generate_series(1, 30) i;
SELECT * FROM ml_train('g_names', 'who', algorithm => 'decision_tree');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- naive Bayes, trained through aggregates grouped by class
SELECT * FROM ml_train('g_names', 'who', algorithm => 'naive_bayes');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- ---------------------------------------------------------------- constant targets
CREATE TABLE g_const (x float8, k text, y float8, c text, b bool);
INSERT INTO g_const SELECT i, (ARRAY['a', 'b'])[1 + i % 2], 2.5, 'same', true FROM generate_series(1, 40) i;
-- through the statistics (linear family) and in memory
SELECT * FROM ml_train('g_const', 'y', algorithm => 'linear_regression');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM ml_train('g_const', 'y', algorithm => 'ridge', test_size => 0, name => 'g_const_ridge');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM ml_train('g_const', 'y', algorithm => 'random_forest', name => 'g_const_forest');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- one class (text, boolean)
SELECT * FROM ml_train('g_const', 'c', exclude => ARRAY['y', 'b']);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM ml_train('g_const', 'b', algorithm => 'logistic_regression', exclude => ARRAY['y', 'c']);
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- ---------------------------------------------------------------- a float target as classes
CREATE TABLE g_price (x float8, price float8, dollars numeric, units int);
INSERT INTO g_price SELECT i, round((10 + i * 1.37)::numeric, 2), round((10 + i * 1.37)::numeric, 2), i % 300
FROM generate_series(1, 500) i;
SELECT * FROM ml_train('g_price', 'price', task => 'classification', algorithm => 'decision_tree',
                       features => ARRAY['x']);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- an algorithm that only classifies makes the task classification: the same
SELECT * FROM ml_train('g_price', 'dollars', algorithm => 'logistic_regression', features => ARRAY['x']);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- the default task for a float target is regression; whole numbers may have many classes
SELECT task FROM ml_train('g_price', 'price', features => ARRAY['x'], name => 'g_price_regression');
SELECT task, (metrics ? 'accuracy') AS classified FROM ml_train('g_price', 'units', task => 'classification',
                                                                algorithm => 'decision_tree', features => ARRAY['x']);

-- ---------------------------------------------------------------- test_size => 0
CREATE TABLE g_lin (x float8, y float8);
INSERT INTO g_lin SELECT i, 3 * i + (i % 5) FROM generate_series(1, 60) i;
SELECT metrics_from, rows_test, metrics ? 'r2' AS r2
FROM ml_train('g_lin', 'y', algorithm => 'linear_regression', test_size => 0);
SELECT metrics_from, rows_test > 0 AS held_out FROM ml_train('g_lin', 'y', algorithm => 'linear_regression',
                                                           name => 'g_lin_test');
SELECT COALESCE(test_metrics, train_metrics) ? 'r2' AS r2, test_metrics IS NULL AS training_metrics
FROM ml_models WHERE name = 'g_lin_y';
-- ml_retrain has no metrics_from: its reason says it
SELECT rows_test, metrics ? 'r2' AS r2, deployed, reason
FROM ml_retrain('g_lin_y', 'g_lin', mode => 'refit', deploy => 'always', test_size => 0);

-- ---------------------------------------------------------------- auto-retrain: who runs the jobs
-- here (pg_regress preloads pg_ml) the worker is turned off for this database: nothing runs the
-- jobs, unless ml_run_jobs() ran within the last day
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET pg_ml.worker_enabled = off;
UPDATE ml.job_runners SET last_run = NULL;
SELECT ml.job_runner();
SELECT ml_auto_retrain('g_lin_y', 'g_lin', 5, 'refit');
SELECT model, job_runner FROM ml_auto_retrains;
INSERT INTO g_lin SELECT i, 3 * i FROM generate_series(61, 70) i;
SELECT model, status, job_runner FROM ml_jobs WHERE model = 'g_lin_y';
-- ml_run_jobs() ran: it counts as the runner (and says so in the NOTICE)
SELECT model, status FROM ml_run_jobs();
SELECT model, status, job_runner FROM ml_jobs WHERE model = 'g_lin_y';
SELECT model, job_runner FROM ml_auto_retrains;
\set VERBOSITY terse
SELECT ml_auto_retrain('g_lin_y', 'g_lin', 5, 'refit');
\set VERBOSITY default
SELECT ml_auto_retrain('g_lin_y', NULL);
-- the worker on again: it runs the jobs, no NOTICE
ALTER DATABASE :"db" RESET pg_ml.worker_enabled;
SELECT ml.job_runner();
SELECT ml_auto_retrain('g_lin_y', 'g_lin', 1000, 'refit');
SELECT model, job_runner FROM ml_auto_retrains;
SELECT ml_auto_retrain('g_lin_y', NULL);

SELECT ml_drop_model(name) FROM ml_models WHERE name LIKE 'g\_%' ORDER BY name;
DROP TABLE g_keys, g_uuid, g_notkeys, g_only_key, g_stats, g_names, g_const, g_price, g_lin;
