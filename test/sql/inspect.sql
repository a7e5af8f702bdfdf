-- ml_feature_importance and ml_training_log
SET client_min_messages = warning;
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
CREATE TABLE imp (strong float8, weak float8, noise float8, kind text, y float8);
INSERT INTO imp SELECT (i % 17), (i % 5), ((i * 7919) % 13) / 13.0, (ARRAY['a','b'])[1 + i % 2],
       10 * (i % 17) + (i % 5) + CASE WHEN i % 2 = 0 THEN 3 ELSE 0 END
FROM generate_series(1, 200) i;
SELECT model FROM ml_train('imp', 'y', algorithm => 'linear_regression');
-- standardized coefficients, largest magnitude first
SELECT feature, round(importance::numeric, 3) AS importance, kind FROM ml_feature_importance('imp_y');
SELECT feature FROM ml_feature_importance((SELECT id FROM ml_models WHERE name = 'imp_y'), 1) LIMIT 1;
-- linear models log one entry; logistic regression one per L-BFGS iteration
SELECT iteration, loss IS NOT NULL AS has_loss FROM ml_training_log('imp_y');
CREATE TABLE imp_c AS SELECT strong, weak, noise, kind, y > 100 AS big FROM imp;
SELECT model FROM ml_train('imp_c', 'big');
SELECT count(*) > 3 AS iterations, bool_and(loss > 0) AS positive,
       (array_agg(loss ORDER BY iteration))[1] > (array_agg(loss ORDER BY iteration DESC))[1] AS decreasing
FROM ml_training_log('imp_c_big');
SELECT feature, kind FROM ml_feature_importance('imp_c_big') LIMIT 1;
-- errors
SELECT * FROM ml_feature_importance('nope');
SELECT * FROM ml_feature_importance('imp_y', 7);
SELECT * FROM ml_training_log('nope');
SELECT * FROM ml_training_log('imp_y', 7);
SELECT ml_drop_model('imp_y'), ml_drop_model('imp_c_big');
DROP TABLE imp, imp_c;
