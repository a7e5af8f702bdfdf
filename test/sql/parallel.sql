-- Prediction is PARALLEL SAFE: it runs in parallel workers and gives the same answers
SET client_min_messages = warning;
CREATE TABLE par (id int, a float8, c text, y float8);
INSERT INTO par SELECT i, i % 97, (ARRAY['p','q','r'])[1 + i % 3], 2 * (i % 97) + (i % 3) FROM generate_series(1, 20000) i;
ANALYZE par;
SELECT model FROM ml_train('par', 'y', algorithm => 'linear_regression', exclude => ARRAY['id']);
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial_result AS SELECT sum(ml_predict('par_y', p)) AS s FROM par p;
RESET max_parallel_workers_per_gather;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET force_parallel_mode = on;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT sum(ml_predict('par_y', p)) FROM par p;
SELECT abs(sum(ml_predict('par_y', p)) - (SELECT s FROM serial_result)) < 1e-6 AS same FROM par p;
-- errors raised in a worker reach the client as they are
SELECT sum(ml_predict('par_y', r)) FROM (SELECT a FROM par) r;
RESET force_parallel_mode;
RESET parallel_leader_participation;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SELECT ml_drop_model('par_y');
DROP TABLE par;
-- The predict functions declare their cost (a prediction is about 100 operators, not 1) and
-- are PARALLEL SAFE: with the default settings the planner parallelises a prediction over a
-- table above min_parallel_table_scan_size (here about 11 MB), with the model given by name
-- (row or array), and the parallel sum is the serial one.
SELECT DISTINCT p.proname, p.procost, p.proparallel FROM pg_catalog.pg_proc p
 WHERE p.proname IN ('ml_predict', 'ml_predict_label', 'ml_predict_proba', 'ml_class_probabilities', 'ml_explain')
 ORDER BY 1;
CREATE TABLE par_big (x0 float8, x1 float8, x2 float8, x3 float8, x4 float8, x5 float8, x6 float8, x7 float8, y float8);
INSERT INTO par_big SELECT i % 7, i % 11, i % 13, i % 17, i % 19, i % 23, i % 29, i % 31, (i % 7) * 2 - (i % 11)
  FROM generate_series(1, 110000) i;
ANALYZE par_big;
CREATE TABLE par_train AS SELECT * FROM par_big LIMIT 500;
SELECT model FROM ml_train('par_train', 'y', algorithm => 'gradient_boosting', name => 'par_gb',
                           hyperparams => '{"n_estimators": 5}');
EXPLAIN (COSTS OFF) SELECT sum(ml_predict('par_gb', t)) FROM par_big t;
EXPLAIN (COSTS OFF) SELECT sum(ml_predict('par_gb', ARRAY[x0, x1, x2, x3, x4, x5, x6, x7])) FROM par_big t;
SELECT sum(ml_predict('par_gb', t)) AS par_sum FROM par_big t \gset
SET max_parallel_workers_per_gather = 0;
SELECT abs(sum(ml_predict('par_gb', t)) - :par_sum) <= 1e-9 * greatest(1, abs(:par_sum)) AS same FROM par_big t;
RESET max_parallel_workers_per_gather;
SELECT ml_drop_model('par_gb');
DROP TABLE par_big, par_train;
