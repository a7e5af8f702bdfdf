-- Every algorithm through train / predict / predict_proba / evaluate / retrain / versions
SET client_min_messages = warning;
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
-- regression data: y = 3a - 2b + 5 [c = 'p'] + small deterministic noise
CREATE TABLE reg (a float8, b float8, c text, y float8);
INSERT INTO reg SELECT (i % 23) / 2.0, (i % 11) / 3.0, (ARRAY['p','q','r'])[1 + i % 3],
       3 * ((i % 23) / 2.0) - 2 * ((i % 11) / 3.0) + CASE WHEN i % 3 = 0 THEN 5 ELSE 0 END + ((i * 37) % 7 - 3) / 10.0
FROM generate_series(1, 400) i;
-- classification data: three classes separated by a and b
CREATE TABLE cls (a float8, b float8, c text, k text);
INSERT INTO cls SELECT (i % 3) * 4 + (i % 7) / 3.0, (i % 3) * -2 + (i % 5) / 4.0, (ARRAY['u','v'])[1 + i % 2],
       (ARRAY['one','two','three'])[1 + i % 3]
FROM generate_series(1, 300) i;

-- regression algorithms: test R2 of each (rounded), a prediction, evaluation on the training table
SELECT t.algorithm, round((t.metrics->>'r2')::numeric, 2) >= 0.9 AS good_r2, t.rows_train, t.rows_test
FROM unnest(ARRAY['linear_regression', 'ridge', 'lasso', 'elastic_net', 'decision_tree', 'random_forest']) alg,
     LATERAL ml_train('reg', 'y', algorithm => alg, name => 'reg_' || alg,
                      hyperparams => CASE alg WHEN 'lasso' THEN '{"alpha": 0.01}'::jsonb
                                              WHEN 'elastic_net' THEN '{"alpha": 0.01, "l1_ratio": 0.9}'
                                              WHEN 'random_forest' THEN '{"n_estimators": 20}' ELSE '{}' END) t
ORDER BY 1;
SELECT m.algorithm, abs(ml_predict(m.name, '{"a": 5, "b": 1, "c": "p"}'::jsonb) - 18) < 1.5 AS close
FROM ml_models m WHERE m.name LIKE 'reg\_%' ORDER BY 1;
SELECT m.algorithm, (ml_evaluate(m.name, 'reg')->>'r2')::float8 > 0.9 AS evaluates
FROM ml_models m WHERE m.name LIKE 'reg\_%' ORDER BY 1;
-- lasso drives useless coefficients to exactly zero
SELECT feature, importance = 0 AS zero FROM ml_feature_importance('reg_lasso') WHERE feature IN ('c=q', 'c=r') ORDER BY 1;
-- trees report split gain
SELECT kind, round(sum(importance)::numeric, 6) AS total FROM ml_feature_importance('reg_random_forest') GROUP BY kind;
-- lasso and elastic net retrain incrementally (sufficient statistics); trees refit
SELECT v.mode FROM ml_retrain('reg_lasso', 'reg', deploy => 'never') v;
SELECT v.mode FROM ml_retrain('reg_decision_tree', 'reg', deploy => 'never') v;
SELECT * FROM ml_retrain('reg_decision_tree', 'reg', mode => 'incremental');

-- classification algorithms
SELECT t.algorithm, (t.metrics->>'accuracy')::float8 >= 0.9 AS good_accuracy
FROM unnest(ARRAY['logistic_regression', 'decision_tree', 'random_forest']) alg,
     LATERAL ml_train('cls', 'k', algorithm => alg, name => 'cls_' || alg) t
ORDER BY 1;
SELECT m.algorithm, ml_predict_label(m.name, '{"a": 8.5, "b": -3.5, "c": "u"}'::jsonb) AS label,
       round((SELECT sum(p) FROM unnest(ml_predict_proba(m.name, '{"a": 8.5, "b": -3.5, "c": "u"}'::jsonb)) p)::numeric, 6) AS total
FROM ml_models m WHERE m.name LIKE 'cls\_%' ORDER BY 1;
-- random_forest logs the out-of-bag score per tree
SELECT count(*) AS trees, bool_and(valid_metric BETWEEN 0 AND 1) AS oob_scores FROM ml_training_log('cls_random_forest');
-- the same seed trains the same model
SELECT model FROM ml_train('cls', 'k', algorithm => 'random_forest', name => 'rf_again');
SELECT bool_and(ml_predict_proba('rf_again', t) = ml_predict_proba('cls_random_forest', t)) AS deterministic FROM cls t;

-- hyperparameter errors list the valid keys
SELECT * FROM ml_train('cls', 'k', algorithm => 'decision_tree', hyperparams => '{"depth": 3}');
SELECT * FROM ml_train('cls', 'k', algorithm => 'decision_tree', hyperparams => '{"criterion": "purity"}');
SELECT * FROM ml_train('reg', 'y', algorithm => 'elastic_net', hyperparams => '{"l1_ratio": 2}');
SELECT * FROM ml_train('reg', 'y', algorithm => 'lasso', task => 'classification');
-- defaults are stored, so a version can be reproduced
SELECT hyperparams FROM ml_versions WHERE model = 'cls_decision_tree';

SELECT ml_drop_model(name) FROM ml_models ORDER BY name;
DROP TABLE reg, cls;
