-- One model name, many experiments: ml_retrain(algorithm =>, hyperparams =>) trains a new version
-- of the same model (its columns, task and classes) with another algorithm or other
-- hyperparameters, on the rows the deployed version learned from and the new ones, compared and
-- deployed by the usual policy. Queries that name the model follow its deployed version.
SET client_min_messages = warning;
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE TABLE rx (x float8, z float8, k text, y float8, c text);
INSERT INTO rx SELECT i, (i * 7) % 11, CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END,
       CASE WHEN (i * 7) % 11 > 5 THEN 40 ELSE 0 END + (i % 5), CASE WHEN (i * 7) % 11 > 5 THEN 'hi' ELSE 'lo' END
FROM generate_series(1, 300) i;

-- regression: a linear model first
SELECT model, algorithm FROM ml_train('rx', 'y', algorithm => 'linear_regression', name => 'rx_reg', exclude => ARRAY['c']);
-- a shallow tree on the same rows: a new version of the same model, compared on the same held-out rows
SELECT version, parent_version, mode, deployed, learned
FROM ml_retrain('rx_reg', 'rx', algorithm => 'decision_tree', hyperparams => '{"max_depth": 1}', deploy => 'never');
-- a deeper one wins and is deployed: the model's algorithm is now its deployed version's
SELECT version, mode, deployed, reason ~ '^test r2 [0-9.]+ vs [0-9.]+ of version 1' AS compared
FROM ml_retrain('rx_reg', 'rx', algorithm => 'decision_tree', hyperparams => '{"max_depth": 6}');
SELECT name, algorithm, deployed_version FROM ml_models WHERE name = 'rx_reg';
-- only other hyperparameters: the same algorithm keeps the ones not named
SELECT version, mode FROM ml_retrain('rx_reg', 'rx', hyperparams => '{"min_samples_leaf": 3}', deploy => 'never');
SELECT version, algorithm, hyperparams->'max_depth' AS max_depth, hyperparams->'min_samples_leaf' AS min_samples_leaf,
       report->'retrain'->>'why' AS why
FROM ml_versions WHERE model = 'rx_reg' ORDER BY version;
-- predictions by name follow the deployed version; every version stays loadable
SELECT x, y, round(ml_predict('rx_reg', r)::numeric, 3) AS predicted FROM rx r WHERE x IN (7, 8) ORDER BY x;
SELECT version, (ml_evaluate('rx_reg', 'rx', version) ->> 'r2')::float8 > 0.5 AS fits FROM generate_series(1, 4) version;
-- back to version 1: the model is linear again
SELECT ml_deploy('rx_reg', 1);
SELECT algorithm, deployed_version FROM ml_models WHERE name = 'rx_reg';
SELECT ml_rollback('rx_reg');
SELECT algorithm, deployed_version FROM ml_models WHERE name = 'rx_reg';

-- classification: the classes stay the model's
SELECT model, algorithm FROM ml_train('rx', 'c', algorithm => 'logistic_regression', name => 'rx_cls', exclude => ARRAY['y']);
SELECT version, mode, deployed FROM ml_retrain('rx_cls', 'rx', algorithm => 'random_forest',
                                               hyperparams => '{"n_estimators": 10, "max_depth": 4}', deploy => 'always');
SELECT algorithm, classes FROM ml_models WHERE name = 'rx_cls';
SELECT ml_predict_label('rx_cls', r) AS predicted, c FROM rx r WHERE x IN (1, 2) ORDER BY x;

-- what cannot be done, each with what to do instead; nothing is written
SELECT * FROM ml_retrain('rx_reg', 'rx', algorithm => 'deep_magic');
SELECT * FROM ml_retrain('rx_reg', 'rx', algorithm => 'kmeans');
SELECT * FROM ml_retrain('rx_reg', 'rx', algorithm => 'naive_bayes');
SELECT * FROM ml_retrain('rx_reg', 'rx', algorithm => 'gradient_boosting', hyperparams => '{"C": 1}');
SELECT * FROM ml_retrain('rx_reg', 'rx', algorithm => 'linear_regression', mode => 'incremental');
SELECT * FROM ml_retrain('rx_reg', 'rx', hyperparams => '{"max_depth": 2}', mode => 'incremental');
SELECT count(*) AS versions FROM ml_versions WHERE model = 'rx_reg';

SELECT ml_drop_model(name) FROM ml_models WHERE name LIKE 'rx\_%' ORDER BY name;
DROP TABLE rx;
