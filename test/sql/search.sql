-- Hyperparameter search: ml_train(search => 'grid' | 'random', search_params, search_args)
-- scores every trial by k-fold cross-validation (stratified for classification) or on one
-- validation split, inside the rows the version's split leaves for training, and trains the
-- version with the best mean fold score; ml_trials() shows every trial. algorithm => 'auto'
-- compares its candidates the same way on small relations.
SET client_min_messages = notice;
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
\set VERBOSITY default
-- a step in x with noise, and three columns of noise: a deep tree learns the noise
SELECT setseed(0.25);
CREATE TABLE st (x float8, n1 float8, n2 float8, n3 float8, y float8, c text);
INSERT INTO st SELECT x, random(), random(), random(), y, CASE WHEN y > 0.5 THEN 'up' ELSE 'down' END
FROM (SELECT random() AS x, random() AS r FROM generate_series(1, 400)) s,
     LATERAL (SELECT CASE WHEN s.x > 0.5 THEN 1 ELSE 0 END + (s.r - 0.5) * 1.6 AS y) t;

-- the default tree (unlimited depth) against a grid over max_depth
SELECT model, (metrics->>'r2')::float8 < 0.6 AS overfits
FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'st_default', exclude => ARRAY['c']);
SELECT model, version, (metrics->>'r2')::float8 > 0.6 AS better
FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'st_grid', exclude => ARRAY['c'],
              search => 'grid', search_params => '{"max_depth": [1, 2, 4, 8]}');
-- every trial, with its five fold scores: trial 1 is the hyperparameters as given (the baseline)
SELECT trial, hyperparams->'max_depth' AS max_depth, metric, pg_catalog.array_length(fold_scores, 1) AS folds,
       round(mean::numeric, 3) AS mean, sd > 0 AS sd, chosen, error
FROM ml_trials('st_grid') ORDER BY trial;
-- the chosen trial has the best mean, and beats the default's
SELECT (SELECT max(mean) FROM ml_trials('st_grid')) = (SELECT mean FROM ml_trials('st_grid') WHERE chosen) AS best,
       (SELECT mean FROM ml_trials('st_grid') WHERE chosen) > (SELECT mean FROM ml_trials('st_grid') WHERE trial = 1) AS beats_default;
-- the version trained with it; its report says how it was chosen
SELECT hyperparams->'max_depth' AS max_depth, report->'search'->>'kind' AS kind, report->'search'->>'metric' AS metric,
       report->'search'->'folds' AS folds, report->'search'->'trials' AS trials,
       report->'search'->'best'->'trial' AS best_trial, report->'search'->'rows' AS rows
FROM ml_versions WHERE model = 'st_grid';
-- the search never saw the test rows: the folds hold out the version's training rows only
SELECT (report->'search'->>'rows')::int = 400 AS read_all, rows_train + rows_test = 400 AS split FROM ml_versions WHERE model = 'st_grid';

SET client_min_messages = warning;
-- random search over a range on a log scale, three folds, the metric rmse (lower is better)
SELECT model FROM ml_train('st', 'y', algorithm => 'ridge', name => 'st_ridge', exclude => ARRAY['c'],
                           search => 'random', search_params => '{"alpha": {"min": 0.001, "max": 1000, "scale": "log"}}',
                           search_args => '{"trials": 6, "folds": 3, "metric": "rmse"}');
SELECT count(*) AS trials, bool_and(array_length(fold_scores, 1) = 3) AS three_folds, count(*) FILTER (WHERE chosen) AS chosen,
       bool_and((hyperparams->>'alpha')::float8 BETWEEN 0.001 AND 1000 OR trial = 1) AS in_range,
       count(DISTINCT hyperparams->>'alpha') AS distinct_alphas, min(metric) AS metric
FROM ml_trials('st_ridge');
SELECT (SELECT min(mean) FROM ml_trials('st_ridge')) = (SELECT mean FROM ml_trials('st_ridge') WHERE chosen) AS lowest_rmse;
-- integer ranges are rounded; lists mix with ranges; one validation split instead of folds
SELECT model FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'st_rand', exclude => ARRAY['c'],
                           search => 'random', search_params => '{"max_depth": {"min": 1, "max": 6}, "min_samples_leaf": [1, 5]}',
                           search_args => '{"trials": 4, "validation_size": 0.25}');
SELECT trial, hyperparams->'max_depth' AS max_depth, hyperparams->'min_samples_leaf' AS leaf, array_length(fold_scores, 1) AS scores
FROM ml_trials('st_rand') ORDER BY trial;
SELECT report->'search'->'validation_size' AS validation_size FROM ml_versions WHERE model = 'st_rand';

-- classification: stratified folds, the deploy metric by default (roc_auc for two classes)
SELECT model FROM ml_train('st', 'c', algorithm => 'logistic_regression', name => 'st_cls', exclude => ARRAY['y'],
                           search => 'grid', search_params => '{"C": [0.001, 1, 100]}', search_args => '{"folds": 4}');
SELECT trial, hyperparams->'C' AS c, metric, array_length(fold_scores, 1) AS folds, mean > 0.5 AS learns
FROM ml_trials('st_cls') ORDER BY trial;
SELECT model FROM ml_train('st', 'c', algorithm => 'decision_tree', name => 'st_cls_f1', exclude => ARRAY['y'],
                           deploy_metric => 'f1', search => 'grid', search_params => '{"max_depth": [1, 3]}');
SELECT DISTINCT metric FROM ml_trials('st_cls_f1');

-- algorithm => 'auto' on a small relation: the candidates compared by cross-validation (quietly:
-- the choice and why are in report->>'algorithm_choice', the message at DEBUG1)
SET client_min_messages = notice;
SELECT model, algorithm FROM ml_train('st', 'y', name => 'st_auto', exclude => ARRAY['c']);
SET client_min_messages = warning;
SELECT trial, algorithm, array_length(fold_scores, 1) AS folds, chosen FROM ml_trials('st_auto') ORDER BY trial;
SELECT report->>'algorithm_choice' ~ 'compared by cross-validation' AS says_how,
       report->'search'->>'kind' AS kind
FROM ml_versions WHERE model = 'st_auto';
-- the candidates' folds and budget can be set; hyperparams turn the comparison off (the size rule chooses)
SELECT model, algorithm FROM ml_train('st', 'c', name => 'st_auto_cls', exclude => ARRAY['y'], search_args => '{"folds": 3}');
SELECT count(*) AS candidates, bool_and(array_length(fold_scores, 1) = 3) AS three_folds FROM ml_trials('st_auto_cls');
SELECT model, algorithm FROM ml_train('st', 'y', name => 'st_auto_hp', exclude => ARRAY['c'], hyperparams => '{"fit_intercept": true}');
SELECT count(*) AS trials FROM ml_trials('st_auto_hp');
-- a version trained without a search has no trials; ml_trials takes the model's id and a version
SELECT count(*) FROM ml_trials('st_default');
SELECT count(*) FROM ml_trials((SELECT id FROM ml_models WHERE name = 'st_grid'), 1);
-- a dropped model takes its trials along
SELECT ml_drop_model('st_rand');
SELECT count(*) FROM ml.trials t WHERE NOT EXISTS (SELECT 1 FROM ml.models m WHERE m.id = t.model_id);

-- errors
SELECT * FROM ml_train('st', 'y', name => 'e', search => 'grid', search_params => '{"max_depth": [1]}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search_params => '{"max_depth": [1]}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search_args => '{"folds": 3}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'bayes', search_params => '{"max_depth": [1]}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '{"depth": [1]}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '{"max_depth": [1, 2]}',
                       hyperparams => '{"max_depth": 3}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '{"max_depth": {"min": 1, "max": 4}}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'random', search_params => '{"max_depth": {"min": 4, "max": 1}}');
SELECT * FROM ml_train('st', 'y', algorithm => 'ridge', name => 'e', search => 'random', search_params => '{"alpha": {"min": 0, "max": 1, "scale": "log"}}');
SELECT * FROM ml_train('st', 'y', algorithm => 'ridge', name => 'e', search => 'random', search_params => '{"alpha": {"min": 1}}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'random', search_params => '{"criterion": {"min": 1, "max": 2}}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '{"max_depth": 3}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '{"max_depth": [[1, 2]]}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '[1, 2]');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '{"max_depth": [1, -2]}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '{"max_depth": [1]}',
                       search_args => '{"folds": 1}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '{"max_depth": [1]}',
                       search_args => '{"trials": 5}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '{"max_depth": [1]}',
                       search_args => '{"folds": 3, "validation_size": 0.2}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '{"max_depth": [1]}',
                       search_args => '{"shuffle": true}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '{"max_depth": [1]}',
                       search_args => '{"metric": "accuracy"}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid', search_params => '{"max_depth": [1]}',
                       search_args => '{"metric": "precision_at_k"}');
SELECT * FROM ml_train('st', NULL, algorithm => 'kmeans', name => 'e', exclude => ARRAY['c'], search => 'grid', search_params => '{"k": [2, 3]}');
SELECT * FROM ml_train('st', 'y', algorithm => 'decision_tree', name => 'e', search => 'grid',
                       search_params => '{"max_depth": [1,2,3,4,5,6,7,8,9,10,11], "min_samples_split": [2,3,4,5,6,7,8,9,10,11], "min_samples_leaf": [1,2,3,4,5,6,7,8,9,10]}');
-- a search on too few rows to score a fold
CREATE TABLE st_tiny AS SELECT * FROM st LIMIT 4;
SELECT * FROM ml_train('st_tiny', 'y', algorithm => 'decision_tree', name => 'e', exclude => ARRAY['c'], test_size => 0,
                       search => 'grid', search_params => '{"max_depth": [1]}', search_args => '{"folds": 5}');
SELECT * FROM ml_trials('nope');
SELECT * FROM ml_trials('st_grid', 7);
\set VERBOSITY default
SELECT count(*) FROM ml_models WHERE name = 'e';
