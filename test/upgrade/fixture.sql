-- The models of test/upgrade/pg_ml-<version>.sql (see make_fixtures.sh): run with the library of a
-- released version, as a superuser, in a new database where that version is installed and the
-- roles pgml_fx_alice and pgml_fx_bob exist. Every algorithm the version has, versions and
-- deployments, a grant, a model of another owner; with 0.2.0 also an auto-retrain job.
-- fx_expected keeps what the released library predicted, to be compared after the update.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE TABLE fx_reg AS
SELECT i AS id, (i % 17)::float8 AS x1, pg_catalog.sin(i)::float8 AS x2,
       (ARRAY['north', 'south', 'east'])[i % 3 + 1] AS region,
       3 * (i % 17) - 2 * pg_catalog.sin(i) + (i % 3) + (i % 7) * 0.1 AS y
FROM pg_catalog.generate_series(1, 300) i;
CREATE TABLE fx_cls AS
SELECT id, x1, x2, region, CASE WHEN y > 24 THEN 'high' ELSE 'low' END AS label FROM fx_reg;
GRANT SELECT ON fx_reg, fx_cls TO PUBLIC;

SET ROLE pgml_fx_alice;
SELECT model, version, algorithm FROM (VALUES
  ('fx_linear',   'fx_reg', 'y',     'linear_regression',   '{}'),
  ('fx_ridge',    'fx_reg', 'y',     'ridge',               '{"alpha": 0.5}'),
  ('fx_lasso',    'fx_reg', 'y',     'lasso',               '{}'),
  ('fx_enet',     'fx_reg', 'y',     'elastic_net',         '{}'),
  ('fx_logistic', 'fx_cls', 'label', 'logistic_regression', '{}'),
  ('fx_tree',     'fx_cls', 'label', 'decision_tree',       '{"max_depth": 4}'),
  ('fx_forest',   'fx_reg', 'y',     'random_forest',       '{"n_estimators": 8, "max_depth": 5}'),
  ('fx_boost',    'fx_cls', 'label', 'gradient_boosting',   '{"n_estimators": 12, "max_depth": 3}'),
  ('fx_svm',      'fx_cls', 'label', 'svm',                 '{}'),
  ('fx_mlp',      'fx_reg', 'y',     'mlp',                 '{"max_iter": 30}'),
  ('fx_bayes',    'fx_cls', 'label', 'naive_bayes',         '{}')
) AS s(name, rel, target, algo, hp),
LATERAL ml_train(s.rel, s.target, algorithm => s.algo, name => s.name, exclude => '{id}',
                 hyperparams => s.hp::jsonb) t;
SELECT model, version FROM ml_train('fx_reg', NULL, algorithm => 'kmeans', name => 'fx_kmeans',
                                   exclude => '{id,y}', hyperparams => '{"k": 3}');
-- a second version (refit, always deployed), and a rollback to version 1: deployments history
SELECT version, deployed FROM ml_retrain('fx_ridge', 'fx_reg', mode => 'refit', deploy => 'always');
SELECT version, deployed FROM ml_retrain('fx_tree', 'fx_cls', mode => 'refit', deploy => 'always');
SELECT ml_rollback('fx_tree');
SELECT ml_grant('fx_ridge', 'pgml_fx_bob');
RESET ROLE;
SET ROLE pgml_fx_bob;
SELECT model FROM ml_train('fx_cls', 'label', algorithm => 'logistic_regression', name => 'fx_bob_model',
                           exclude => '{id}');
RESET ROLE;

-- what the released library predicts, per model and row (label, value and probabilities)
CREATE TABLE fx_expected AS
SELECT m.name AS model, r.id,
       CASE WHEN m.task = 'classification' THEN NULL ELSE ml_predict(m.name, r) END AS value,
       CASE WHEN m.task = 'classification' THEN ml_predict_label(m.name, r) END AS label,
       CASE WHEN m.task = 'classification' THEN ml_predict_proba(m.name, r) END AS proba
FROM ml_models m, fx_reg r WHERE m.name LIKE 'fx\_%' AND m.target IS DISTINCT FROM 'label'
UNION ALL
SELECT m.name, r.id, NULL, ml_predict_label(m.name, r), ml_predict_proba(m.name, r)
FROM ml_models m, fx_cls r WHERE m.target = 'label';
