-- Resource limits (issue 10, findings 5 and 6). A categorical column past max_levels is refused
-- while its levels are read, before any work that grows with their square, and within a
-- statement_timeout; models, caches and matrices are checked against pg_ml.max_memory before
-- they are allocated (54000 program_limit_exceeded, naming the setting, the estimate and what
-- to lower).
SET extra_float_digits = 0;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- true when the statement fails with the level cap's error or is cancelled by the statement
-- timeout, within 10 seconds (the output does not depend on which comes first)
CREATE FUNCTION pg_temp.stops_promptly(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	EXECUTE q;
	RETURN false;
EXCEPTION WHEN OTHERS THEN
	RETURN ((SQLSTATE = '54000' AND SQLERRM LIKE '%distinct values, more than max_levels (100)') OR SQLSTATE = '57014')
	       AND clock_timestamp() - t0 < interval '10 seconds';
END $$;

-- a 10,000-level text column
CREATE TABLE hc AS
	SELECT i AS x, 'level' || i AS c, (i % 10)::float8 AS y, (ARRAY['a', 'b'])[1 + i % 2] AS k
	FROM generate_series(1, 10000) i;
ANALYZE hc;
-- the statistics aggregate (one group per level), the row cursor, the in-memory algorithms
SELECT model FROM ml_train('hc', 'y', algorithm => 'linear_regression', features => ARRAY['x', 'c']);
\echo :LAST_ERROR_SQLSTATE
SET pg_ml.stats_aggregate = off;
SELECT model FROM ml_train('hc', 'y', algorithm => 'ridge', features => ARRAY['x', 'c']);
\echo :LAST_ERROR_SQLSTATE
RESET pg_ml.stats_aggregate;
SELECT model FROM ml_train('hc', 'k', algorithm => 'logistic_regression', features => ARRAY['x', 'c']);
\echo :LAST_ERROR_SQLSTATE
SELECT model FROM ml_train('hc', 'k', algorithm => 'naive_bayes', features => ARRAY['x', 'c']);
\echo :LAST_ERROR_SQLSTATE
-- a per-column max_levels below the levels: the same error with that limit
SELECT model FROM ml_train('hc', 'y', algorithm => 'decision_tree', features => ARRAY['x', 'c'],
                           preprocess => '{"columns": {"c": {"max_levels": 5}}}');
\echo :LAST_ERROR_SQLSTATE
-- under a short statement_timeout every path ends at once
SET statement_timeout = '2s';
SELECT pg_temp.stops_promptly($$SELECT ml_train('hc', 'y', algorithm => 'linear_regression', features => ARRAY['x', 'c'])$$);
SELECT pg_temp.stops_promptly($$SELECT ml_train('hc', 'k', algorithm => 'gradient_boosting', features => ARRAY['x', 'c'])$$);
SELECT pg_temp.stops_promptly($$SELECT ml_train('hc', 'k', algorithm => 'mlp', features => ARRAY['x', 'c'])$$);
SELECT pg_temp.stops_promptly($$SELECT ml_train('hc', NULL, algorithm => 'kmeans', features => ARRAY['x', 'c'])$$);
RESET statement_timeout;
-- raising max_levels does not lift the memory bound: 10,000 levels are two 10,000 x 10,000
-- matrices of statistics
SET pg_ml.max_memory = '64MB';
SELECT model FROM ml_train('hc', 'y', algorithm => 'linear_regression', features => ARRAY['x', 'c'],
                           preprocess => '{"max_levels": 100000}');
\echo :LAST_ERROR_SQLSTATE
RESET pg_ml.max_memory;

-- memory: 1000 / 3000 rows of four numbers
CREATE TABLE num AS
	SELECT i, sin(i) AS a, cos(i * 7) AS b, (i % 13)::float8 AS c, (i * 37 % 101)::float8 / 10 AS d,
	       sin(i) + (i % 13) / 4.0 AS y, CASE WHEN sin(i) > 0 THEN 'p' ELSE 'n' END AS k
	FROM generate_series(1, 3000) i;
CREATE VIEW num1000 AS SELECT a, b, c, d, y, k FROM num WHERE i <= 1000;
SET pg_ml.max_memory = '16MB';
-- gradient_boosting: 100000 rounds of depth 32 are refused before boosting
SELECT model FROM ml_train('num1000', 'y', algorithm => 'gradient_boosting', features => ARRAY['a', 'b', 'c', 'd'],
                           hyperparams => '{"n_estimators": 100000, "max_depth": 32}');
\echo :LAST_ERROR_SQLSTATE
-- ... and with early stopping, round by round (a slow learning rate never stops early)
SET pg_ml.max_memory = '1MB';
SELECT model FROM ml_train('num1000', 'y', algorithm => 'gradient_boosting', features => ARRAY['a', 'b', 'c', 'd'],
                           hyperparams => '{"n_estimators": 100000, "max_depth": 3, "learning_rate": 0.001,
                                            "early_stopping_rounds": 10}');
\echo :LAST_ERROR_SQLSTATE
SET pg_ml.max_memory = '16MB';
-- the defaults fit in 16 MB
SELECT model, rows_train FROM ml_train('num1000', 'y', algorithm => 'gradient_boosting', name => 'gb_small',
                                       features => ARRAY['a', 'b', 'c', 'd']);
-- svm: the rbf kernel of 2400 training rows (46 MB) past 16 MB, whatever max_kernel_rows allows
SELECT model FROM ml_train('num', 'k', algorithm => 'svm', features => ARRAY['a', 'b', 'c', 'd'],
                           hyperparams => '{"kernel": "rbf", "max_kernel_rows": 10000000}');
\echo :LAST_ERROR_SQLSTATE
-- mlp: two layers of 2000 units (32 million bytes of weights, five times over)
SELECT model FROM ml_train('num1000', 'y', algorithm => 'mlp', features => ARRAY['a', 'b', 'c', 'd'],
                           hyperparams => '{"hidden_layers": 2, "hidden_units": 2000}');
\echo :LAST_ERROR_SQLSTATE
-- random_forest: the nodes of 100 unlimited trees on 2400 rows, charged as they grow
SET pg_ml.max_memory = '1MB';
SELECT model FROM ml_train('num', 'y', algorithm => 'random_forest', features => ARRAY['a', 'b', 'c', 'd']);
\echo :LAST_ERROR_SQLSTATE
RESET pg_ml.max_memory;
SELECT ml_drop_model('gb_small');
