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
