-- What a retrain learns (the README's retrain table): exact incremental adds only rows no version
-- learned, never the same rows twice; other algorithms refit on the earlier rows and the new
-- ones (refit_all) or continue, and say why; training on the new rows alone is mode => 'refit'.
SET client_min_messages = warning;
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE TABLE rm_base (x float8, z float8, y float8, k text);
INSERT INTO rm_base SELECT i, (i * 7) % 11, 2 * i - 3 * ((i * 7) % 11) + 1, CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END
FROM generate_series(1, 200) i;
CREATE TABLE rm_new (LIKE rm_base);
INSERT INTO rm_new SELECT i, (i * 7) % 11, 2 * i - 3 * ((i * 7) % 11) + 1, CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END
FROM generate_series(201, 260) i;
CREATE FUNCTION rm_sources(m text) RETURNS TABLE (version int, read_by int, relation text, rows bigint, snapshot boolean)
LANGUAGE sql AS $$
  SELECT v.version, (e->>'version')::int, e->>'relation', (e->>'rows')::bigint, e->>'snapshot' IS NOT NULL
  FROM ml_versions v, jsonb_array_elements(v.sources) e WHERE v.model = m AND v.deployed
$$;

-- ---------------------------------------------------------------- exact incremental (linear family, naive_bayes)
SELECT model, rows_train, metrics_from FROM ml_train('rm_base', 'y', algorithm => 'linear_regression', name => 'rm_lin',
                                                   exclude => ARRAY['k'], test_size => 0);
SELECT * FROM rm_sources('rm_lin');
-- the new relation: all its rows are new
SELECT version, parent_version, mode, rows_train, learned FROM ml_retrain('rm_lin', 'rm_new', test_size => 0);
-- the same relation again, and a copy of it: nothing new, refused (nothing written)
SELECT * FROM ml_retrain('rm_lin', 'rm_new');
CREATE TABLE rm_new_copy AS SELECT * FROM rm_new ORDER BY x DESC;
SELECT * FROM ml_retrain('rm_lin', 'rm_new_copy');
-- rows added to the training table since version 1 read it: only those are read
INSERT INTO rm_base SELECT i, (i * 7) % 11, 2 * i - 3 * ((i * 7) % 11) + 1, 'a' FROM generate_series(261, 270) i;
SELECT version, mode, rows_train, learned FROM ml_retrain('rm_lin', 'rm_base', test_size => 0);
SELECT * FROM rm_sources('rm_lin') ORDER BY relation;
SELECT * FROM ml_retrain('rm_lin', 'rm_base');
-- rows this transaction inserted are learned once
BEGIN;
INSERT INTO rm_base SELECT i, (i * 7) % 11, 2 * i - 3 * ((i * 7) % 11) + 1, 'b' FROM generate_series(271, 275) i;
SELECT version, mode, rows_train FROM ml_retrain('rm_lin', 'rm_base', test_size => 0);
COMMIT;
SELECT * FROM ml_retrain('rm_lin', 'rm_base');
SELECT version, mode, rows_train FROM ml_versions WHERE model = 'rm_lin' ORDER BY version;
-- it equals one fit on all 275 rows
CREATE TABLE rm_all AS SELECT * FROM rm_base UNION ALL SELECT * FROM rm_new;
SELECT model FROM ml_train('rm_all', 'y', algorithm => 'linear_regression', name => 'rm_lin_all', exclude => ARRAY['k'],
                           test_size => 0);
SELECT max(abs(ml_predict('rm_lin', r) - ml_predict('rm_lin_all', r))) < 1e-6 AS same FROM rm_all r;
-- mode => 'refit': from scratch on the relation alone, said so
SELECT version, mode, rows_train, learned FROM ml_retrain('rm_lin', 'rm_new', mode => 'refit', deploy => 'never');
-- a rollback to an earlier version learns from where that version stood
SELECT ml_deploy('rm_lin', 2);
SELECT version, parent_version, mode, rows_train FROM ml_retrain('rm_lin', 'rm_base', test_size => 0, deploy => 'never');
-- a view has no row snapshots: its rows can be learned once, then it cannot tell new rows apart
CREATE VIEW rm_view AS SELECT * FROM rm_new;
SELECT model, rows_train FROM ml_train('rm_view', 'y', algorithm => 'ridge', name => 'rm_ridge', exclude => ARRAY['k']);
SELECT * FROM ml_retrain('rm_ridge', 'rm_view');

-- naive_bayes with allow_new_classes: an exact update cannot add a class, so auto refits on all the rows
CREATE TABLE rm_nb AS SELECT x, z, k FROM rm_base WHERE x <= 120;
CREATE TABLE rm_nb_new AS SELECT x, z, CASE WHEN x::int % 5 = 0 THEN 'c' ELSE k END AS k FROM rm_base WHERE x > 120;
SELECT model FROM ml_train('rm_nb', 'k', algorithm => 'naive_bayes', name => 'rm_nb');
SELECT version, mode FROM ml_retrain('rm_nb', 'rm_nb_new');
SELECT version, mode, learned FROM ml_retrain('rm_nb', 'rm_nb_new', allow_new_classes => true);
SELECT version, classes FROM ml_versions WHERE model = 'rm_nb' ORDER BY version;
DROP TABLE rm_nb, rm_nb_new;

-- ---------------------------------------------------------------- no exact incremental form
SELECT model, rows_train + rows_test AS rows FROM ml_train('rm_base', 'k', algorithm => 'logistic_regression', name => 'rm_log');
-- auto: refit on the rows version 1 learned from and the new ones
SELECT version, mode, rows_train + rows_test AS rows, learned FROM ml_retrain('rm_log', 'rm_new');
SELECT * FROM rm_sources('rm_log') ORDER BY relation;
SELECT mode, report->'retrain' AS retrain FROM ml_versions WHERE model = 'rm_log' AND version = 2;
-- nothing new anywhere: refused
SELECT * FROM ml_retrain('rm_log', 'rm_base');
-- incremental is not possible
SELECT * FROM ml_retrain('rm_log', 'rm_new', mode => 'incremental');
-- an earlier relation gone: refused with what to do (nothing is dropped silently)
CREATE TABLE rm_more (LIKE rm_base);
INSERT INTO rm_more SELECT i, (i * 7) % 11, 2 * i - 3 * ((i * 7) % 11) + 1, CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END
FROM generate_series(301, 340) i;
CREATE TABLE rm_gone AS SELECT * FROM rm_new;
SELECT version, mode FROM ml_retrain('rm_log', 'rm_gone', mode => 'refit', deploy => 'always');
DROP TABLE rm_gone;
SELECT * FROM ml_retrain('rm_log', 'rm_more');
SELECT version, mode, rows_train + rows_test AS rows, learned FROM ml_retrain('rm_log', 'rm_more', mode => 'refit', deploy => 'never');
-- gradient_boosting: refit_all while the earlier rows are readable, else added rounds on the new rows
SELECT ml_deploy('rm_log', 2);
SELECT model FROM ml_train('rm_base', 'y', algorithm => 'gradient_boosting', name => 'rm_gb', exclude => ARRAY['k'],
                           hyperparams => '{"n_estimators": 20}');
SELECT version, mode, learned FROM ml_retrain('rm_gb', 'rm_more', deploy => 'always');
CREATE TABLE rm_gb_extra AS SELECT x + 0.5 AS x, z, y + 1 AS y, k FROM rm_more;
SELECT version, mode FROM ml_retrain('rm_gb', 'rm_gb_extra', deploy => 'always');
DROP TABLE rm_gb_extra;
SELECT version, mode, learned FROM ml_retrain('rm_gb', 'rm_new', deploy => 'always');
SELECT version, mode, rows_train FROM ml_versions WHERE model = 'rm_gb' ORDER BY version;

-- a relation that lost a column of the model
DROP VIEW rm_view;
ALTER TABLE rm_new DROP COLUMN z;
SELECT * FROM ml_retrain('rm_log', 'rm_more');

-- an imported model does not know what its rows were
SELECT model, version FROM ml_import('rm_log_copy', ml_export('rm_log'));
SELECT * FROM ml_retrain('rm_log_copy', 'rm_more');
SELECT version, mode FROM ml_retrain('rm_log_copy', 'rm_more', mode => 'refit');

SELECT ml_drop_model(name) FROM ml_models WHERE name LIKE 'rm\_%' ORDER BY name;
DROP TABLE rm_base, rm_new, rm_new_copy, rm_all, rm_more;
DROP FUNCTION rm_sources(text);
