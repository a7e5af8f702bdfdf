-- The deploy metric (issue 11): per model, the user's choice, a default per task that does not
-- judge an imbalanced binary table by accuracy; both versions scored with every metric on the
-- same held-out rows on every training path; the reason states metric, both values and margin.
SET extra_float_digits = 0;
SET client_min_messages = warning;
\set SHOW_CONTEXT never
-- a churn-like table: 15% positive
CREATE TABLE churn AS
SELECT (i * 37) % 60 AS tenure, 20 + (i * 53) % 100 AS charges, (ARRAY['month','year','two'])[1 + i % 3] AS contract,
       ((i * 53) % 100) * 0.02 - ((i * 37) % 60) * 0.03 + ((i * 7919) % 101) / 101.0 * 1.5 > 1.8 AS churned
FROM generate_series(1, 600) i;
SELECT round(avg(churned::int), 2) AS positive_share FROM churn;
CREATE TABLE churn_new AS SELECT * FROM churn WHERE tenure % 2 = 0;

-- the numbers of a reason: the new version's value and the deployed one's
CREATE FUNCTION reason_numbers(reason text) RETURNS text[] LANGUAGE sql AS
$$ SELECT regexp_match(reason, '^(?:deploy => ''\w+'': (?:not )?deployed; )?test \w+ (\S+) vs (\S+) of version') $$;
-- the reason with its decimals masked (they are checked against the stored metrics instead)
CREATE FUNCTION masked(reason text) RETURNS text LANGUAGE sql AS
$$ SELECT regexp_replace(reason, '[-+]?\d+\.\d+(e[-+]?\d+)?|[-+]\d+(e[-+]?\d+)?(?=[,)])', 'X', 'g') $$;
-- whether a printed value is the stored one, rounded as printed
CREATE FUNCTION as_printed(printed text, stored jsonb) RETURNS boolean LANGUAGE sql AS
$$ SELECT printed::numeric = round(stored::text::numeric, pg_catalog.scale(printed::numeric)) $$;

-- the default deploy metric of a binary classification is roc_auc, not accuracy
SELECT model, task FROM ml_train('churn', 'churned', algorithm => 'logistic_regression', name => 'churn');
SELECT name, deploy_metric FROM ml_models WHERE name = 'churn';

-- if_better: the reason names the metric, both values, the margin and the rows
SELECT version, deployed, masked(reason) AS reason,
       as_printed((reason_numbers(reason))[1], metrics->'roc_auc') AS new_as_stored,
       as_printed((reason_numbers(reason))[2], previous_metrics->'roc_auc') AS previous_as_reported,
       (SELECT count(*) FROM jsonb_object_keys(metrics) k WHERE NOT previous_metrics ? k) AS missing_in_previous
FROM ml_retrain('churn', 'churn_new', mode => 'refit');
-- the value in the reason is the stored test metric of the new version
SELECT v.version, as_printed((reason_numbers(d.reason))[1], v.test_metrics->'roc_auc') AS as_stored
FROM ml_versions v JOIN ml.deployments d ON d.model_id = v.model_id AND d.version = v.version
WHERE v.model = 'churn' AND v.version = 2;
-- always and never state the comparison too
SELECT version, deployed, masked(reason) AS reason FROM ml_retrain('churn', 'churn_new', mode => 'refit', deploy => 'always');
SELECT version, deployed, masked(reason) AS reason FROM ml_retrain('churn', 'churn_new', mode => 'refit', deploy => 'never');

-- the user's choice: f1 at train, log_loss later (lower is better)
SELECT model FROM ml_train('churn', 'churned', algorithm => 'logistic_regression', name => 'churn_f1', deploy_metric => 'f1');
SELECT name, deploy_metric FROM ml_models WHERE name = 'churn_f1';
SELECT version, masked(reason) AS reason, as_printed((reason_numbers(reason))[1], metrics->'f1') AS as_stored
FROM ml_retrain('churn_f1', 'churn_new', mode => 'refit');
SELECT ml_set_deploy_metric('churn_f1', 'log_loss');
SELECT version, masked(reason) AS reason, as_printed((reason_numbers(reason))[1], metrics->'log_loss') AS as_stored,
       deployed = ((metrics->>'log_loss')::float8 <= (previous_metrics->>'log_loss')::float8) AS lower_wins
FROM ml_retrain('churn_f1', 'churn_new', mode => 'refit');
-- by id; NULL goes back to the task's default
SELECT ml_set_deploy_metric((SELECT id FROM ml_models WHERE name = 'churn_f1'), NULL);
SELECT name, deploy_metric FROM ml_models WHERE name = 'churn_f1';

-- errors: an unknown metric, a metric of another task, another role's model, an unknown model
SELECT model FROM ml_train('churn', 'churned', algorithm => 'logistic_regression', name => 'bad', deploy_metric => 'auc');
\echo :LAST_ERROR_SQLSTATE
SELECT model FROM ml_train('churn', 'churned', algorithm => 'logistic_regression', name => 'bad', deploy_metric => 'r2');
\echo :LAST_ERROR_SQLSTATE
SELECT ml_set_deploy_metric('churn', 'silhouette');
\echo :LAST_ERROR_SQLSTATE
SELECT ml_set_deploy_metric('churn', 'F1');
\echo :LAST_ERROR_SQLSTATE
SELECT ml_set_deploy_metric('no_such_model', 'f1');
\echo :LAST_ERROR_SQLSTATE
CREATE ROLE pgml_dm_other;
GRANT USAGE ON SCHEMA public TO pgml_dm_other;
SELECT ml_grant('churn', 'pgml_dm_other');
SET ROLE pgml_dm_other;
SELECT ml_set_deploy_metric('churn', 'f1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) AS bad_models FROM ml_models WHERE name = 'bad';
SELECT deploy_metric FROM ml_models WHERE name = 'churn';

-- multiclass: macro f1 by default (naive Bayes through its class aggregate and ml.eval_stats)
CREATE TABLE flowers AS
SELECT (i % 3) * 2.0 + ((i * 13) % 17) / 10.0 AS a, ((i * 7) % 11) / 3.0 + (i % 3) AS b,
       (ARRAY['red','green','blue'])[1 + i % 3] AS species
FROM generate_series(1, 300) i;
SELECT model FROM ml_train('flowers', 'species', algorithm => 'naive_bayes', name => 'fl');
SELECT deploy_metric FROM ml_models WHERE name = 'fl';
SELECT version, masked(reason) AS reason, as_printed((reason_numbers(reason))[1], metrics->'f1') AS as_stored,
       (SELECT count(*) FROM jsonb_object_keys(metrics) k WHERE NOT previous_metrics ? k) AS missing_in_previous,
       previous_metrics ? 'roc_auc' AND previous_metrics ? 'log_loss' AS previous_has_probabilities
FROM ml_retrain('fl', 'flowers', mode => 'refit', seed => 7);

-- regression through the statistics aggregate: both versions on every held-out row (exact),
-- with the default r2 and then rmse (lower is better)
CREATE TABLE houses AS
SELECT i % 97 AS rooms, (i * 31) % 53 AS age, 100 + 3 * (i % 97) - 0.5 * ((i * 31) % 53) + ((i * 7919) % 13) AS price
FROM generate_series(1, 2000) i;
CREATE TABLE houses_new AS SELECT rooms, age, price + 1 AS price FROM houses WHERE age % 3 = 0;
SELECT model FROM ml_train('houses', 'price', algorithm => 'linear_regression', name => 'houses');
SELECT deploy_metric FROM ml_models WHERE name = 'houses';
SELECT version, mode, masked(reason) AS reason, as_printed((reason_numbers(reason))[1], metrics->'r2') AS as_stored,
       (SELECT count(*) FROM jsonb_object_keys(metrics) k WHERE NOT previous_metrics ? k) AS missing_in_previous,
       metrics->'rows' = previous_metrics->'rows' AND (metrics->>'rows')::bigint = rows_test AS same_rows
FROM ml_retrain('houses', 'houses_new', mode => 'incremental');
SELECT ml_set_deploy_metric('houses', 'rmse');
SELECT version, masked(reason) AS reason, as_printed((reason_numbers(reason))[1], metrics->'rmse') AS as_stored
FROM ml_retrain('houses', 'houses_new', mode => 'refit');
SELECT ml_set_deploy_metric('houses', 'accuracy');
\echo :LAST_ERROR_SQLSTATE
-- the same through the row reader (the linear family streams its rows: one more pass too)
SET pg_ml.stats_aggregate = off;
SELECT version, masked(reason) AS reason, as_printed((reason_numbers(reason))[1], metrics->'rmse') AS as_stored,
       (SELECT count(*) FROM jsonb_object_keys(metrics) k WHERE NOT previous_metrics ? k) AS missing_in_previous
FROM ml_retrain('houses', 'houses_new', mode => 'refit');
RESET pg_ml.stats_aggregate;
-- duplicate rows removed by the read are removed by the comparison's pass too
CREATE TABLE houses_dup AS SELECT * FROM houses UNION ALL SELECT * FROM houses WHERE rooms < 40;
SELECT model FROM ml_train('houses', 'price', algorithm => 'ridge', name => 'houses_dd', preprocess => '{"dedupe": true}');
SELECT version, masked(reason) AS reason, rows_test = (metrics->>'rows')::bigint AS same_rows,
       (SELECT count(*) FROM jsonb_object_keys(metrics) k WHERE NOT previous_metrics ? k) AS missing_in_previous
FROM ml_retrain('houses_dd', 'houses_dup', mode => 'refit');

-- clustering: silhouette by default; k-means through its aggregates (refit), and in memory
CREATE TABLE blobs AS
SELECT (i % 3) * 10 + ((i * 13) % 7) / 7.0 AS x, (i % 3) * -5 + ((i * 11) % 5) / 5.0 AS y FROM generate_series(1, 300) i;
SELECT model FROM ml_train('blobs', NULL, algorithm => 'kmeans', hyperparams => '{"k": 3}', name => 'bl');
SELECT deploy_metric FROM ml_models WHERE name = 'bl';
SELECT version, masked(reason) AS reason, as_printed((reason_numbers(reason))[1], metrics->'silhouette') AS as_stored,
       (SELECT count(*) FROM jsonb_object_keys(metrics) k WHERE NOT previous_metrics ? k) AS missing_in_previous
FROM ml_retrain('bl', 'blobs', mode => 'refit', seed => 3);
SET pg_ml.stats_aggregate = off;
SELECT version, masked(reason) AS reason,
       (SELECT count(*) FROM jsonb_object_keys(metrics) k WHERE NOT previous_metrics ? k) AS missing_in_previous
FROM ml_retrain('bl', 'blobs', mode => 'refit', seed => 5);
RESET pg_ml.stats_aggregate;
SELECT ml_set_deploy_metric('bl', 'inertia');
SELECT version, masked(reason) AS reason FROM ml_retrain('bl', 'blobs', mode => 'refit', seed => 3);

SELECT ml_drop_model(name) FROM ml_models WHERE name IN ('churn', 'churn_f1', 'fl', 'houses', 'houses_dd', 'bl') ORDER BY name;
REVOKE USAGE ON SCHEMA public FROM pgml_dm_other;
DROP ROLE pgml_dm_other;
