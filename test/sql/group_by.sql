-- ml_train(group_by => ...): one model per group of rows in one call, versioned together;
-- ml_predict routes each row to its group's model. A table whose groups follow different
-- true functions (y = 3x in store a, y = -2x + 5 in store b, y = x + 100 in store c):
-- per-group linear models recover each, a single model could not.
SET client_min_messages = warning;
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE TABLE gb (id int, store text, region int, x float8, y float8, label text);
INSERT INTO gb SELECT i, s, CASE WHEN s = 'c' THEN 2 ELSE 1 END, x,
       CASE s WHEN 'a' THEN 3 * x WHEN 'b' THEN -2 * x + 5 ELSE x + 100 END,
       CASE WHEN (s = 'a') = (x > 50) THEN 'up' ELSE 'down' END
FROM (SELECT i, (ARRAY['a', 'b', 'c'])[1 + i % 3] AS s, ((i * 37) % 101)::float8 AS x FROM generate_series(1, 600) i) r;

-- linear regression per store: each group's coefficients are its true function
SELECT model, version, task, algorithm, round((metrics->>'r2')::numeric, 6) AS r2, rows_train, rows_test, deployed
FROM ml_train('gb', 'y', algorithm => 'linear_regression', name => 'gb_lin', features => ARRAY['x'], group_by => ARRAY['store']);
SELECT g->'group'->>'store' AS store, round((g->'coefficients'->>'intercept')::numeric, 6) AS intercept,
       round((g->'coefficients'->'coefficients'->>'x')::numeric, 6) AS x
FROM ml.versions v, ml.models m, jsonb_array_elements(v.coefficients->'groups') g
WHERE m.name = 'gb_lin' AND v.model_id = m.id ORDER BY 1;
-- predictions route each row to its group's model
SELECT store, x, round(ml_predict('gb_lin', t)::numeric, 6) AS prediction, y FROM gb t WHERE id IN (1, 2, 3, 301, 302, 303) ORDER BY id;
SELECT count(*) AS rows, max(abs(ml_predict('gb_lin', t) - y)) < 1e-6 AS exact FROM gb t;
-- the same through jsonb (the group column is a key) and ml_predict_batch
SELECT round(ml_predict('gb_lin', '{"x": 10, "store": "b"}'::jsonb)::numeric, 6) AS b_at_10;
SELECT count(*) AS rows, max(abs(p.prediction - t.y)) < 1e-6 AS exact
FROM ml_predict_batch('gb_lin', 'gb', 'id') p JOIN gb t ON t.id = p.key::int;
-- metrics per group and pooled over every group's held-out rows (not an average)
SELECT round((v.metrics->'test'->>'r2')::numeric, 6) AS pooled_r2, (v.metrics->'test'->>'rows')::int = v.rows_test AS pooled_rows,
       jsonb_array_length(v.metrics->'groups') AS groups, v.report->'group_by' AS group_by, v.report->>'fallback' AS fallback
FROM ml.versions v JOIN ml.models m ON m.id = v.model_id WHERE m.name = 'gb_lin';
SELECT g->'group'->>'store' AS store, (g->>'rows_train')::int + (g->>'rows_test')::int AS rows,
       round((g->'test'->>'r2')::numeric, 6) AS test_r2
FROM ml.versions v JOIN ml.models m ON m.id = v.model_id, jsonb_array_elements(v.metrics->'groups') g
WHERE m.name = 'gb_lin' ORDER BY 1;
-- one model on every row cannot fit three functions
SELECT round((metrics->>'r2')::numeric, 2) < 0.9 AS single_model_worse
FROM ml_train('gb', 'y', algorithm => 'linear_regression', name => 'gb_single', features => ARRAY['x', 'store']);
-- ml_models / ml_versions: the algorithm is the algorithm; the report names the group columns,
-- the model's columns mark them
SELECT m.algorithm, v.report->'group_by' AS group_by, round((m.test_metrics->>'r2')::numeric, 6) AS r2
FROM ml_models m JOIN ml_versions v ON v.model = m.name AND v.version = m.deployed_version WHERE m.name = 'gb_lin';
SELECT features FROM ml.models WHERE name = 'gb_lin';
SELECT name, role FROM ml_model_columns('gb_lin') ORDER BY ordinal;
-- ml_evaluate routes the rows too
SELECT round((ml_evaluate('gb_lin', 'gb')->>'r2')::numeric, 6) AS evaluate_r2;

-- algorithm => 'auto' with group_by: the size rule, one algorithm for every group (no search)
SELECT algorithm, deployed FROM ml_train('gb', 'y', features => ARRAY['x'], group_by => ARRAY['store'], name => 'gb_auto');
-- an integer group column, two group columns, gradient boosting
SELECT model, round((metrics->>'r2')::numeric, 2) >= 0.9 AS good FROM ml_train('gb', 'y', algorithm => 'gradient_boosting',
    name => 'gb_gb', features => ARRAY['x'], group_by => ARRAY['region', 'store'], hyperparams => '{"n_estimators": 30}');
SELECT jsonb_array_elements(v.metrics->'groups')->'group' AS grp FROM ml.versions v JOIN ml.models m ON m.id = v.model_id
WHERE m.name = 'gb_gb' ORDER BY 1::text;
SELECT abs(ml_predict('gb_gb', t) - y) < 10 AS close FROM gb t WHERE id = 3;

-- classification per group: the label flips its rule in store a
SELECT model, task, round((metrics->>'accuracy')::numeric, 2) >= 0.9 AS accurate
FROM ml_train('gb', 'label', algorithm => 'decision_tree', name => 'gb_cls', features => ARRAY['x'], group_by => ARRAY['store']);
SELECT store, x, ml_predict_label('gb_cls', t) AS predicted, label FROM gb t WHERE id IN (3, 30, 31, 61) ORDER BY id;
SELECT array_length(ml_predict_proba('gb_cls', t), 1) AS classes FROM gb t WHERE id = 1;
SELECT classes FROM ml_models WHERE name = 'gb_cls';

-- an unseen group: an error naming the model and the group, unless a fallback model serves it
SELECT ml_predict('gb_lin', '{"x": 10, "store": "zz"}'::jsonb);
SELECT ml_predict('gb_lin', '{"x": 10, "store": null}'::jsonb);
SELECT model FROM ml_train('gb', 'y', algorithm => 'linear_regression', name => 'gb_fb', features => ARRAY['x'],
    group_by => ARRAY['store'], group_fallback => 'all');
SELECT model FROM ml_train('gb', 'y', algorithm => 'linear_regression', name => 'gb_single_all', features => ARRAY['x']);
-- the fallback is the model of every training row
SELECT round(ml_predict('gb_fb', '{"x": 10, "store": "zz"}'::jsonb)::numeric, 6) = round(ml_predict('gb_single_all', '{"x": 10}'::jsonb)::numeric, 6) AS is_fallback;
SELECT (v.metrics->'fallback') IS NOT NULL AS fallback_metrics, v.report->>'fallback' AS fallback
FROM ml.versions v JOIN ml.models m ON m.id = v.model_id WHERE m.name = 'gb_fb';
SELECT round(ml_predict('gb_fb', '{"x": 10, "store": "a"}'::jsonb)::numeric, 6) AS routed;

-- ml_explain: the row's group's model explains the row (base + contributions = its prediction),
-- "group" names the group (null: the fallback model served it); a classifier's class is the container's
SELECT e->'group' AS grp, e->'columns' ? 'x' AS x_column, e->'columns' ? 'store' AS store_column,
       round((e->>'value')::numeric, 6) AS value, round(ml_predict(model, row)::numeric, 6) AS prediction,
       abs((e->>'base')::float8 + (SELECT sum(v::float8) FROM jsonb_each_text(e->'features') f(k, v)) - (e->>'value')::float8) < 1e-9 AS sums
FROM (VALUES ('gb_lin', '{"x": 10, "store": "a"}'::jsonb), ('gb_lin', '{"x": 10, "store": "b"}'),
             ('gb_fb', '{"x": 10, "store": "zz"}'), ('gb_gb', '{"x": 10, "store": "c", "region": 2}')) r(model, row),
     LATERAL (SELECT ml_explain(model, row) AS e) x;
SELECT t.id, e->>'class' = ml_predict_label('gb_cls', t) AS class_predicted, e->'group' AS grp,
       abs((e->>'base')::float8 + (SELECT sum(v::float8) FROM jsonb_each_text(e->'features') f(k, v)) - (e->>'value')::float8) < 1e-9 AS sums
FROM gb t, LATERAL (SELECT ml_explain('gb_cls', t) AS e) x WHERE t.id IN (3, 31) ORDER BY t.id;
SELECT ml_explain('gb_lin', '{"x": 10, "store": "zz"}'::jsonb);

-- user errors, one per line
SELECT ml_train('gb', 'y', group_by => ARRAY['nope']);
SELECT ml_train('gb', 'y', group_by => ARRAY['y']);
SELECT ml_train('gb', 'y', features => ARRAY['x', 'store'], group_by => ARRAY['store']);
SELECT ml_train('gb', 'y', group_by => ARRAY['x']);
SELECT ml_train('gb', 'y', group_by => ARRAY['store', 'store']);
SELECT ml_train('gb', 'y', group_by => ARRAY[]::text[]);
SELECT ml_train('gb', 'y', features => ARRAY['x'], group_by => ARRAY['store'], group_fallback => 'nearest');
SELECT ml_train('gb', 'y', features => ARRAY['x'], group_fallback => 'all');
SELECT ml_train('gb', NULL, features => ARRAY['x'], group_by => ARRAY['store']);
SELECT ml_train('gb', 'y', features => ARRAY['x'], group_by => ARRAY['store'], algorithm => 'decision_tree',
    search => 'grid', search_params => '{"max_depth": [2, 3]}');
SET pg_ml.max_groups = 2;
SELECT ml_train('gb', 'y', features => ARRAY['x'], group_by => ARRAY['store'], name => 'gb_many');
RESET pg_ml.max_groups;
SELECT ml_train('gb', 'y', features => ARRAY['x'], group_by => ARRAY['id'], name => 'gb_tiny');
SELECT ml_predict('gb_lin', ARRAY[1.0]);
SELECT ml_predict('gb_lin', '{"x": 10}'::jsonb);
SELECT ml_predict('gb_lin', t) FROM (SELECT x FROM gb LIMIT 1) t;
SELECT ml_retrain('gb_lin', 'gb');
SELECT ml_retrain('gb_lin', 'gb', mode => 'refit', algorithm => 'ridge');
SELECT ml_export('gb_lin');


-- ml_retrain(mode => 'refit'): every group refitted from the relation in one scan; both versions
-- scored on the same held-out rows, deployed by the model's policy
CREATE TABLE gb2 AS SELECT id, store, region, x, CASE WHEN store = 'a' THEN 4 * x ELSE y END AS y, label FROM gb;
SELECT version, parent_version, mode, rows_train + rows_test AS rows, round((metrics->>'r2')::numeric, 6) AS r2,
       round((previous_metrics->>'r2')::numeric, 6) < 1 AS previous_worse, deployed, reason
FROM ml_retrain('gb_lin', 'gb2', mode => 'refit');
SELECT round(ml_predict('gb_lin', '{"x": 10, "store": "a"}'::jsonb)::numeric, 6) AS a_now_4x,
       round(ml_predict('gb_lin', '{"x": 10, "store": "b"}'::jsonb)::numeric, 6) AS b_unchanged;
-- a relation with a group the deployed version does not know: not comparable on the same rows;
-- the confirmation's drift shows the new group (store) and the unchanged x
INSERT INTO gb2 SELECT id + 1000, 'd', 1, x, 7 * x, label FROM gb2 WHERE store = 'a';
SELECT version, deployed, reason, drift->'store'->>'severity' AS store_drift, drift->'x'->>'severity' AS x_drift
FROM ml_retrain('gb_lin', 'gb2', mode => 'refit');
SELECT round(ml_predict('gb_lin', '{"x": 10, "store": "d"}'::jsonb)::numeric, 6) AS d_new;
SELECT v.version, jsonb_array_length(v.metrics->'groups') AS groups FROM ml.versions v JOIN ml.models m ON m.id = v.model_id
WHERE m.name = 'gb_lin' ORDER BY 1;
-- a classifier's classes are its contract
UPDATE gb2 SET label = 'sideways' WHERE id IN (1003, 1006, 1009, 1012, 1015, 1018);
SELECT ml_retrain('gb_cls', 'gb2', mode => 'refit');
SELECT version, deployed, metrics->'classes' AS classes FROM ml_retrain('gb_cls', 'gb2', mode => 'refit', allow_new_classes => true);
SELECT classes FROM ml_models WHERE name = 'gb_cls';
DROP TABLE gb2;

SELECT ml_drop_model(name) FROM ml_models WHERE name LIKE 'gb\_%' ORDER BY name;
DROP TABLE gb;
