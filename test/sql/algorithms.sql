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
FROM unnest(ARRAY['linear_regression', 'ridge', 'lasso', 'elastic_net', 'decision_tree', 'random_forest', 'gradient_boosting', 'svm']) alg,
     LATERAL ml_train('reg', 'y', algorithm => alg, name => 'reg_' || alg,
                      hyperparams => CASE alg WHEN 'lasso' THEN '{"alpha": 0.01}'::jsonb
                                              WHEN 'elastic_net' THEN '{"alpha": 0.01, "l1_ratio": 0.9}'
                                              WHEN 'random_forest' THEN '{"n_estimators": 20}'
                                              WHEN 'svm' THEN '{"C": 100, "max_iter": 10000}' ELSE '{}' END) t
ORDER BY 1;
SELECT m.algorithm, abs(ml_predict(m.name, '{"a": 5, "b": 1, "c": "p"}'::jsonb) - 18) < 1.5 AS close
FROM ml_models m WHERE m.name LIKE 'reg\_%' ORDER BY 1;
SELECT m.algorithm, (ml_evaluate(m.name, 'reg')->>'r2')::float8 > 0.9 AS evaluates
FROM ml_models m WHERE m.name LIKE 'reg\_%' ORDER BY 1;
-- lasso drives useless coefficients to exactly zero
SELECT feature, importance = 0 AS zero FROM ml_feature_importance('reg_lasso') WHERE feature IN ('c=q', 'c=r') ORDER BY 1;
-- trees report split gain
SELECT kind, round(sum(importance)::numeric, 6) AS total FROM ml_feature_importance('reg_random_forest') GROUP BY kind;
-- lasso and elastic net retrain incrementally (sufficient statistics) on the new rows; trees refit on all
INSERT INTO reg SELECT (i % 23) / 2.0, (i % 11) / 3.0, (ARRAY['p','q','r'])[1 + i % 3],
       3 * ((i % 23) / 2.0) - 2 * ((i % 11) / 3.0) + CASE WHEN i % 3 = 0 THEN 5 ELSE 0 END + ((i * 37) % 7 - 3) / 10.0
FROM generate_series(401, 440) i;
SELECT v.mode FROM ml_retrain('reg_lasso', 'reg', deploy => 'never') v;
SELECT v.mode FROM ml_retrain('reg_decision_tree', 'reg', deploy => 'never') v;
SELECT * FROM ml_retrain('reg_decision_tree', 'reg', mode => 'incremental');

-- classification algorithms
SELECT t.algorithm, (t.metrics->>'accuracy')::float8 >= 0.9 AS good_accuracy
FROM unnest(ARRAY['logistic_regression', 'decision_tree', 'random_forest', 'gradient_boosting', 'svm', 'mlp']) alg,
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

-- a second copy of the classification data for the algorithms below
CREATE TABLE cls2 (a float8, b float8, c text, k text);
INSERT INTO cls2 SELECT (i % 3) * 4 + (i % 7) / 3.0, (i % 3) * -2 + (i % 5) / 4.0, (ARRAY['u','v'])[1 + i % 2],
       (ARRAY['one','two','three'])[1 + i % 3]
FROM generate_series(1, 300) i;
-- and new rows to retrain on
CREATE TABLE cls2_new AS SELECT (i % 3) * 4 + (i % 7) / 3.0 AS a, (i % 3) * -2 + (i % 5) / 4.0 AS b,
       (ARRAY['u','v'])[1 + i % 2] AS c, (ARRAY['one','two','three'])[1 + i % 3] AS k
FROM generate_series(301, 330) i;
CREATE TABLE cls2_more AS SELECT * FROM cls2_new LIMIT 0;
INSERT INTO cls2_more SELECT (i % 3) * 4 + (i % 7) / 3.0, (i % 3) * -2 + (i % 5) / 4.0, (ARRAY['u','v'])[1 + i % 2],
       (ARRAY['one','two','three'])[1 + i % 3]
FROM generate_series(331, 345) i;
-- gradient_boosting: early stopping on a validation split, continued boosting on retrain
SELECT (metrics->>'accuracy')::float8 >= 0.9 AS good FROM ml_train('cls2', 'k', algorithm => 'gradient_boosting', name => 'gb',
       hyperparams => '{"early_stopping_rounds": 5, "learning_rate": 0.1}');
SELECT count(*) >= 5 AS rounds, count(valid_metric) = count(*) AS validated FROM ml_training_log('gb');
SELECT version, mode FROM ml_retrain('gb', 'cls2_new', deploy => 'always');
SELECT version, mode FROM ml_retrain('gb', 'cls2_more', mode => 'incremental', deploy => 'never');
SELECT kind, round(sum(importance)::numeric, 6) AS total FROM ml_feature_importance('gb') GROUP BY kind;

-- svm with the RBF kernel, and its size limit
SELECT (metrics->>'accuracy')::float8 >= 0.9 AS good FROM ml_train('cls2', 'k', algorithm => 'svm', name => 'rbf',
                                                                   hyperparams => '{"kernel": "rbf"}');
-- the RBF kernel has no coefficients: importance is by permutation
SELECT kind, count(*) AS features FROM ml_feature_importance('rbf') GROUP BY kind;
SELECT * FROM ml_train('cls2', 'k', algorithm => 'svm', name => 'rbf_big', hyperparams => '{"kernel": "rbf", "max_kernel_rows": 100}');
-- mlp: per-epoch log, early stopping, warm start on retrain
SELECT (metrics->>'accuracy')::float8 > 0.8 AS good FROM ml_train('cls2', 'k', algorithm => 'mlp', name => 'mlp_es',
       hyperparams => '{"early_stopping": true, "hidden_units": 20, "learning_rate": 0.01}');
SELECT count(*) > 1 AS epochs, count(valid_metric) = count(*) AS validated FROM ml_training_log('mlp_es');
SELECT version, mode FROM ml_retrain('mlp_es', 'cls2_new', deploy => 'never');

-- naive_bayes: classification, incremental retraining adds to its counts
SELECT algorithm, (metrics->>'accuracy')::float8 >= 0.9 AS good FROM ml_train('cls2', 'k', algorithm => 'naive_bayes', name => 'nb');
SELECT version, mode, deployed FROM ml_retrain('nb', 'cls2_new');
SELECT ml_predict_label('nb', '{"a": 8.5, "b": -3.5, "c": "u"}'::jsonb) AS label;
INSERT INTO cls2 VALUES (1, 1, 'u', 'four');
SELECT * FROM ml_retrain('nb', 'cls2', mode => 'incremental');
SELECT version, mode FROM ml_retrain('nb', 'cls2', mode => 'refit', allow_new_classes => true, deploy => 'never');

-- kmeans: a NULL target is clustering; predict returns the cluster
CREATE TABLE blobs (x float8, y float8);
INSERT INTO blobs SELECT cx + (i % 5) * 0.1, cy + (i % 3) * 0.1
FROM generate_series(1, 60) i, (VALUES (0, 0), (10, 0), (0, 10)) c(cx, cy);
SELECT model, task, algorithm, (metrics->>'silhouette')::float8 > 0.9 AS separated
FROM ml_train('blobs', NULL, hyperparams => '{"k": 3}');
SELECT count(DISTINCT ml_predict('blobs_clusters', b)) AS clusters FROM blobs b;
SELECT ml_predict('blobs_clusters', ARRAY[0.2, 0.1]) = ml_predict('blobs_clusters', ARRAY[0.0, 0.0]) AS same_cluster;
SELECT (ml_evaluate('blobs_clusters', 'blobs')->>'inertia')::float8 < 50 AS tight;
INSERT INTO blobs VALUES (0.05, 0.05), (10.05, 0.05), (0.05, 10.05);
SELECT version, mode, deployed, reason FROM ml_retrain('blobs_clusters', 'blobs');
SELECT ml_predict_proba('blobs_clusters', ARRAY[0.0, 0.0]);
SELECT * FROM ml_train('blobs', NULL, algorithm => 'random_forest');
SELECT * FROM ml_train('blobs', 'x', task => 'clustering');
SELECT * FROM ml_train('blobs', NULL, task => 'regression');
SELECT * FROM ml_train('blobs', NULL, hyperparams => '{"k": 500}', name => 'too_many');
-- trees and boosting keep a NULL number as a missing value (each split learns where missing
-- values go): x is NULL exactly for class 'hi', which imputing the mean of x cannot tell apart
CREATE TABLE holes (x float8, z float8, label text);
INSERT INTO holes SELECT CASE WHEN i % 3 = 0 THEN NULL ELSE (i * 7) % 11 END, (i * 5) % 13,
       CASE WHEN i % 3 = 0 THEN 'hi' ELSE 'lo' END
FROM generate_series(1, 90) i;
SELECT t.algorithm, (t.metrics->>'accuracy')::float8 = 1 AS perfect
FROM unnest(ARRAY['decision_tree', 'random_forest', 'gradient_boosting', 'logistic_regression']) alg,
     LATERAL ml_train('holes', 'label', algorithm => alg, name => 'holes_' || alg, test_size => 0,
                      hyperparams => CASE alg WHEN 'random_forest' THEN '{"n_estimators": 10, "max_features": 1}'::jsonb
                                              WHEN 'gradient_boosting' THEN '{"n_estimators": 10}' ELSE '{}' END) t
ORDER BY 1;
SELECT m.algorithm, ml_predict_label(m.name, '{"x": null, "z": 4}'::jsonb) AS null_x,
       ml_predict_label(m.name, '{"x": 5, "z": 4}'::jsonb) AS x_5,
       v.report->'missing_native' AS missing_native, v.report->'imputed' AS imputed
FROM ml_models m JOIN ml_versions v ON v.model = m.name AND v.version = 1
WHERE m.name LIKE 'holes\_%' ORDER BY 1;
-- asking for median or constant imputation makes a tree impute
SELECT model FROM ml_train('holes', 'label', algorithm => 'decision_tree', name => 'holes_constant', test_size => 0,
                           preprocess => '{"impute": "constant", "impute_value": -1}');
SELECT report->'imputed' AS imputed, report ? 'missing_native' AS native,
       ml_predict_label('holes_constant', '{"x": null, "z": 4}'::jsonb) AS null_x
FROM ml_versions WHERE model = 'holes_constant';

SELECT ml_drop_model(name) FROM ml_models ORDER BY name;
DROP TABLE cls2, cls2_new, cls2_more, blobs, holes;
