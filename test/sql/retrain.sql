-- ml_retrain, versions, deploy policies, ml_deploy / ml_rollback, ml_evaluate
SET extra_float_digits = 0;
SET client_min_messages = warning;
CREATE TABLE sales (id int, ads float8, region text, promo bool, revenue float8);
INSERT INTO sales
SELECT i, (i * 7) % 100, (ARRAY['north','south'])[1 + i % 2], i % 5 = 0,
       10 + 3 * ((i * 7) % 100) + CASE WHEN i % 2 = 0 THEN 5 ELSE 0 END + CASE WHEN i % 5 = 0 THEN 20 ELSE 0 END
       + ((i * 13) % 11 - 5) * 0.5
FROM generate_series(1, 300) i;
CREATE TABLE sales_old AS SELECT * FROM sales WHERE id <= 200;
-- new rows bring a region never seen before
CREATE TABLE sales_new AS SELECT id, ads, CASE WHEN id % 10 = 1 THEN 'west' ELSE region END AS region, promo, revenue
FROM sales WHERE id > 200;

SELECT model, version, round((metrics->>'r2')::numeric, 4) AS r2, rows_train, rows_test
FROM ml_train('sales_old', 'revenue', algorithm => 'linear_regression', name => 'rev', exclude => ARRAY['id']);

-- incremental (auto for linear models): version 2, parent 1, rows are the old and the new training rows
SELECT version, parent_version, mode, rows_train, rows_test, deployed, reason ~ '^test r2 ' AS compared
FROM ml_retrain('rev', 'sales_new');
-- the unseen level is part of the model now (incremental refits the encoding on all rows)
SELECT preprocessing_state->'columns'->1->'levels' AS levels FROM ml_versions WHERE model = 'rev' AND version = 2;
-- refit trains from scratch on the new relation only
SELECT version, parent_version, mode, rows_train + rows_test AS rows FROM ml_retrain('rev', 'sales', mode => 'refit', deploy => 'always');
-- never: a version is saved, the deployed one stays
SELECT version, parent_version, deployed, reason FROM ml_retrain('rev', 'sales', mode => 'refit', deploy => 'never');
SELECT version, parent_version, deployed, mode FROM ml_versions WHERE model = 'rev' ORDER BY version;

-- if_better compares on the new relation's held-out rows: a model refit on noise beats the
-- deployed one there (the deployed model does not predict noise either)...
CREATE TABLE sales_noise AS SELECT id, ads, region, promo, ((id * 7919) % 1000)::float8 AS revenue FROM sales;
SELECT version, deployed, reason ~ '^test r2 \S+ vs \S+ of version 3 \([-+]\S+\) on the same \d+ held-out rows: deployed$' AS reason_ok,
       round((metrics->>'r2')::numeric, 2) > round((previous_metrics->>'r2')::numeric, 2) AS better
FROM ml_retrain('rev', 'sales_noise', mode => 'refit');
SELECT ml_deploy('rev', 3) AS undo;
-- ... while a refit on a handful of rows is worse than the deployed model and is not deployed
CREATE TABLE sales_few AS SELECT * FROM sales WHERE id <= 16;
SELECT version, deployed, reason ~ '^test r2 \S+ vs \S+ of version 3 \([-+]\S+\) on the same \d+ held-out rows: not deployed, version 3 stays$' AS reason_ok
FROM ml_retrain('rev', 'sales_few', mode => 'refit', test_size => 0.5);
SELECT deployed_version FROM ml_models WHERE name = 'rev';

-- ml_deploy returns the version it replaced; ml_rollback walks back through deployments
SELECT ml_deploy('rev', 1) AS replaced;
SELECT deployed_version FROM ml_models WHERE name = 'rev';
SELECT ml_deploy('rev', 1) AS already;
SELECT ml_rollback('rev') AS back_to;
SELECT ml_rollback('rev') AS back_to;
SELECT ml_rollback('rev') AS back_to;
SELECT ml_rollback('rev') AS back_to;
SELECT ml_rollback('rev');
-- predict uses whatever is deployed: version 1 and version 3 differ on a row with the new region
SELECT ml_deploy('rev', 3);
SELECT round(ml_predict('rev', '{"ads": 50, "region": "west", "promo": false}'::jsonb)::numeric, 3) AS v3;
SELECT ml_deploy('rev', 1);
SELECT round(ml_predict('rev', '{"ads": 50, "region": "west", "promo": false}'::jsonb)::numeric, 3) AS v1;

-- ml_evaluate: deployed or given version, unseen levels counted
SELECT round((e->>'r2')::numeric, 4) AS r2, e->'rows' AS rows, e->'unseen_levels' AS unseen
FROM ml_evaluate('rev', 'sales_new') e;
SELECT round((e->>'r2')::numeric, 4) AS r2, e->'unseen_levels' AS unseen FROM ml_evaluate('rev', 'sales_new', 2) e;

-- classification: refit, if_better on accuracy, evaluate with labels the model does not know
CREATE TABLE iris_like (x1 float8, x2 float8, kind text);
INSERT INTO iris_like SELECT (i % 3) * 2 + (i % 7) * 0.1, (i % 3) - (i % 5) * 0.1, (ARRAY['a','b','c'])[1 + i % 3]
FROM generate_series(1, 150) i;
SELECT model, round((metrics->>'accuracy')::numeric, 3) AS accuracy FROM ml_train('iris_like', 'kind', name => 'il');
SELECT version, mode, deployed, reason FROM ml_retrain('il', 'iris_like', mode => 'refit');
SELECT * FROM ml_retrain('il', 'iris_like', mode => 'incremental');
INSERT INTO iris_like VALUES (0, 0, 'd');
SELECT e->'accuracy' AS accuracy, e->'unknown_labels' AS unknown FROM ml_evaluate('il', 'iris_like') e;
SELECT ml_training_log_rows > 0 AS has_log FROM (SELECT count(*) AS ml_training_log_rows FROM ml.training_log) s;

-- a model by id
SELECT version FROM ml_retrain((SELECT id FROM ml_models WHERE name = 'rev'), 'sales', mode => 'refit', deploy => 'never');

SELECT ml_drop_model('rev'), ml_drop_model('il');
SELECT count(*) AS versions_left FROM ml.versions;
DROP TABLE sales, sales_old, sales_new, sales_noise, sales_few, iris_like;
