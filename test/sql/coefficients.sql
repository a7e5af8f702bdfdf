-- ml_coefficients (issue 12): per term the coefficient, standard error, t / z statistic,
-- p-value and 95% interval of linear_regression and unpenalized logistic_regression, the
-- model-level figures in the version's report, and the R-compatible options: penalty 'none',
-- preprocess {"nulls": "drop"} (counted in the report) and {"encoding": "drop_first"}
-- (R's treatment contrasts). Each error's SQLSTATE is echoed after it.
SET extra_float_digits = 0;
SET pg_ml.progress = off;
SET client_min_messages = warning;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE co (x float8, g text, y float8);
INSERT INTO co
SELECT CASE WHEN i % 25 = 7 THEN NULL ELSE (i % 13) + 0.1 * (i % 3) END,
       CASE WHEN i % 31 = 5 THEN NULL ELSE (ARRAY['b', 'a', 'c'])[1 + i % 3] END,
       1 + 2 * (i % 13) + 0.2 * (i % 3) + CASE i % 3 WHEN 0 THEN 1.5 WHEN 2 THEN -1 ELSE 0 END
         + 0.3 * sin(i)
FROM generate_series(1, 120) i;

-- rows with a NULL feature left out (counted), the first level 'a' as the reference
SELECT model, rows_train FROM ml_train('co', 'y', algorithm => 'linear_regression', name => 'co_lm', test_size => 0,
                                       preprocess => '{"nulls": "drop", "encoding": "drop_first"}');
SELECT term, round(estimate::numeric, 4) AS estimate, round(std_error::numeric, 4) AS std_error,
       round(statistic::numeric, 2) AS t, p_value < 1e-6 AS significant,
       round(conf_low::numeric, 4) AS conf_low, round(conf_high::numeric, 4) AS conf_high
FROM ml_coefficients('co_lm');
SELECT report -> 'rows_dropped_null' AS dropped, report -> 'inference' ->> 'statistic' AS statistic,
       report -> 'inference' -> 'df_residual' AS df_residual, report -> 'inference' -> 'rank' AS rank,
       round((report -> 'inference' ->> 'r2')::numeric, 4) AS r2,
       round((report -> 'inference' ->> 'adj_r2')::numeric, 4) AS adj_r2,
       round((report -> 'inference' ->> 'sigma')::numeric, 4) AS sigma,
       round((report -> 'inference' ->> 'f_statistic')::numeric, 1) AS f,
       report -> 'inference' -> 'f_df' AS f_df,
       round((report -> 'inference' ->> 'aic')::numeric, 3) AS aic,
       round((report -> 'inference' ->> 'bic')::numeric, 3) AS bic
FROM ml_versions WHERE model = 'co_lm';
SELECT preprocess ->> 'nulls' AS nulls, preprocess ->> 'encoding' AS encoding,
       preprocessing_state -> 'columns' -> 1 ->> 'encoding' AS g_encoding,
       preprocessing_state -> 'columns' -> 1 ->> 'reference' AS g_reference
FROM ml_versions WHERE model = 'co_lm';
-- the reference level is known: predicting it counts no unseen level, and gives the intercept part
SELECT round(ml_predict('co_lm', '{"x": 0, "g": "a"}'::jsonb)::numeric, 4) AS at_reference,
       round(ml_predict('co_lm', '{"x": 0, "g": "b"}'::jsonb)::numeric, 4) AS at_b;
-- by id, and by version
SELECT count(*) FROM ml_coefficients((SELECT id FROM ml_models WHERE name = 'co_lm'), 1);

-- incremental retraining: the statistics come from the moments, so they are exact
CREATE TABLE co_half AS SELECT * FROM co LIMIT 60;
CREATE TABLE co_rest AS SELECT * FROM co OFFSET 60;
SELECT model FROM ml_train('co_half', 'y', algorithm => 'linear_regression', name => 'co_inc', test_size => 0,
                           preprocess => '{"nulls": "drop", "encoding": "drop_first"}');
SELECT version, mode FROM ml_retrain('co_inc', 'co_rest', mode => 'incremental', test_size => 0);
SELECT bool_and(abs(a.std_error - b.std_error) <= 1e-9 * abs(b.std_error)
                AND abs(a.p_value - b.p_value) <= 1e-9 * greatest(b.p_value, 1e-300)) AS same_statistics,
       count(*) AS terms
FROM ml_coefficients('co_inc', 2) a JOIN ml_coefficients('co_lm') b USING (term);

-- unpenalized logistic regression (two classes): z statistics, deviance in the report
CREATE TABLE co_bin AS
SELECT (i % 13) + 0.1 * (i % 3) AS x, (ARRAY['b', 'a', 'c'])[1 + i % 3] AS g,
       (i % 13) + CASE i % 3 WHEN 0 THEN 2 ELSE 0 END + 8 * (((i * 7919) % 101) / 101.0) > 11 AS big
FROM generate_series(1, 200) i;
SELECT model FROM ml_train('co_bin', 'big', algorithm => 'logistic_regression', name => 'co_glm', test_size => 0,
                           hyperparams => '{"penalty": "none"}', preprocess => '{"encoding": "drop_first"}');
SELECT term, round(estimate::numeric, 3) AS estimate, round(std_error::numeric, 3) AS std_error,
       round(statistic::numeric, 2) AS z, round(p_value::numeric, 4) AS p_value
FROM ml_coefficients('co_glm');
SELECT report -> 'inference' ->> 'statistic' AS statistic, report -> 'inference' -> 'converged' AS converged,
       report -> 'inference' -> 'fitted_0_or_1' AS fitted_0_or_1,
       round((report -> 'inference' ->> 'deviance')::numeric, 3) AS deviance,
       round((report -> 'inference' ->> 'null_deviance')::numeric, 3) AS null_deviance,
       report -> 'inference' -> 'df_residual' AS df_residual, hyperparams ->> 'penalty' AS penalty
FROM ml_versions WHERE model = 'co_glm';

-- separated classes: the maximum likelihood does not exist; the report says so as R's glm
-- warns ("fitted probabilities numerically 0 or 1 occurred")
CREATE TABLE co_sep AS SELECT i::float8 AS x, i > 20 AS big FROM generate_series(1, 40) i;
SELECT model FROM ml_train('co_sep', 'big', algorithm => 'logistic_regression', name => 'co_sep', test_size => 0,
                           hyperparams => '{"penalty": "none"}');
SELECT (report -> 'inference' ->> 'fitted_0_or_1')::int > 0 AS separated FROM ml_versions WHERE model = 'co_sep';

-- ---------------------------------------------------------------- errors
SELECT * FROM ml_coefficients('no_such_model');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ml_coefficients('co_lm', 9);
\echo :LAST_ERROR_SQLSTATE
-- a model that is not linear_regression / logistic_regression
SELECT model FROM ml_train('co', 'y', algorithm => 'ridge', name => 'co_ridge', test_size => 0);
SELECT * FROM ml_coefficients('co_ridge');
\echo :LAST_ERROR_SQLSTATE
SELECT model FROM ml_train('co', 'y', algorithm => 'decision_tree', name => 'co_tree', test_size => 0);
SELECT * FROM ml_coefficients('co_tree');
\echo :LAST_ERROR_SQLSTATE
-- a penalized logistic regression (the default penalty 'l2')
SELECT model FROM ml_train('co_bin', 'big', algorithm => 'logistic_regression', name => 'co_l2', test_size => 0);
SELECT * FROM ml_coefficients('co_l2');
\echo :LAST_ERROR_SQLSTATE
-- more than two classes
SELECT model FROM ml_train('co', 'g', algorithm => 'logistic_regression', name => 'co_multi', test_size => 0,
                           exclude => ARRAY['y'], hyperparams => '{"penalty": "none"}');
SELECT * FROM ml_coefficients('co_multi');
\echo :LAST_ERROR_SQLSTATE
-- invalid option values
SELECT * FROM ml_train('co_bin', 'big', algorithm => 'logistic_regression', hyperparams => '{"penalty": "l1"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ml_train('co', 'y', algorithm => 'linear_regression', preprocess => '{"nulls": "skip"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ml_train('co', 'y', algorithm => 'linear_regression', preprocess => '{"encoding": "dummy"}');
\echo :LAST_ERROR_SQLSTATE

SELECT ml_drop_model(m) FROM unnest(ARRAY['co_lm', 'co_inc', 'co_glm', 'co_ridge', 'co_tree', 'co_l2', 'co_multi', 'co_sep']) m;
DROP TABLE co, co_half, co_rest, co_bin, co_sep;
