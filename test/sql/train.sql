-- ml_train: regression and classification on small deterministic data
SET extra_float_digits = 0;
CREATE TABLE houses (id int, area float8, rooms int, city text, built date, price float8);
-- price = 1000 + 2*area + 50*rooms + (city bonus), exactly
INSERT INTO houses
SELECT i, 50 + (i * 37) % 200, 1 + i % 5, (ARRAY['oslo','bergen','tromso'])[1 + i % 3],
       date '2000-01-01' + (i * 13) % 5000,
       1000 + 2 * (50 + (i * 37) % 200) + 50 * (1 + i % 5) + (ARRAY[300, 100, 0])[1 + i % 3]
FROM generate_series(1, 200) i;

SELECT model_id > 0 AS has_id, model, version, task, algorithm,
       round((metrics->>'r2')::numeric, 6) AS r2, round((metrics->>'rmse')::numeric, 6) AS rmse,
       rows_train, rows_test, deployed
FROM ml_train('houses', 'price', exclude => ARRAY['id']);

-- exact linear data: predictions equal the truth
SELECT id, price, round(ml_predict('houses_price', h)::numeric, 6) AS predicted
FROM houses h ORDER BY id LIMIT 5;

-- the row form matches columns by name, whatever their order
CREATE TABLE houses_reordered AS SELECT city, price, rooms, built, area, id FROM houses;
SELECT bool_and(abs(ml_predict('houses_price', r) - ml_predict('houses_price', h)) < 1e-9) AS same
FROM houses_reordered r JOIN houses h USING (id);

-- jsonb form; NULL numeric imputed with the training mean; unseen category is all-zero
SELECT round(ml_predict('houses_price', '{"area": 100, "rooms": 2, "city": "oslo", "built": "2001-01-01"}'::jsonb)::numeric, 4) AS oslo,
       round(ml_predict('houses_price', '{"area": 100, "rooms": 2, "city": "bergen", "built": "2001-01-01"}'::jsonb)::numeric, 4) AS bergen;
SELECT ml_predict('houses_price', '{"area": null, "rooms": 2, "city": "oslo", "built": null}'::jsonb) IS NOT NULL AS imputed;

-- the catalog knows the model
SELECT name, task, algorithm, target, deployed_version, relation FROM ml_models WHERE name = 'houses_price';
SELECT model, version, parent_version, deployed, mode, rows_train, rows_test,
       report->'rows_read' AS rows_read, preprocessing_state->'columns'->2->'levels' AS city_levels
FROM ml_versions WHERE model = 'houses_price';

-- explicit algorithm, name, features, seed; ridge hyperparameters are stored with defaults
SELECT model, algorithm, rows_train + rows_test AS rows
FROM ml_train('houses', 'price', algorithm => 'ridge', name => 'houses_ridge',
              features => ARRAY['area', 'rooms'], hyperparams => '{"alpha": 0.5}', seed => 7);
SELECT hyperparams, test_metrics ? 'r2' AS has_r2 FROM ml_versions WHERE model = 'houses_ridge';

-- classification: text target, binary
CREATE TABLE fruit (id int, weight float8, sweet bool, color text, kind text);
INSERT INTO fruit
SELECT i, CASE WHEN i % 2 = 0 THEN 150 + i % 20 ELSE 110 + i % 20 END, i % 3 = 0,
       CASE WHEN i % 2 = 0 THEN 'red' ELSE 'yellow' END,
       CASE WHEN i % 2 = 0 THEN 'apple' ELSE 'lemon' END
FROM generate_series(1, 100) i;
SELECT model, task, algorithm, round((metrics->>'accuracy')::numeric, 3) AS accuracy, rows_train, rows_test
FROM ml_train('fruit', 'kind', exclude => ARRAY['id']);
SELECT classes FROM ml_models WHERE name = 'fruit_kind';
SELECT kind, ml_predict_label('fruit_kind', f) AS label,
       array_length(ml_predict_proba('fruit_kind', f), 1) AS n_proba,
       round((ml_predict_proba('fruit_kind', f))[1]::numeric + (ml_predict_proba('fruit_kind', f))[2]::numeric, 6) AS total
FROM fruit f WHERE id IN (1, 2);
-- the metrics stored for classification
SELECT jsonb_object_keys(test_metrics) AS metric FROM ml_versions WHERE model = 'fruit_kind' ORDER BY 1;

-- multiclass with an integer target: task detection picks classification, classes sorted numerically
CREATE TABLE grades (x float8, y float8, grade int);
INSERT INTO grades SELECT i % 10, (i * 7) % 10, CASE WHEN i % 10 < 3 THEN 2 WHEN i % 10 < 7 THEN 10 ELSE 9 END
FROM generate_series(1, 300) i;
SELECT model, task, algorithm FROM ml_train('grades', 'grade');
SELECT classes FROM ml_models WHERE name = 'grades_grade';
SELECT ml_predict('grades_grade', ARRAY[1, 1]) AS class_of_low, ml_predict('grades_grade', ARRAY[8.0, 1]) AS class_of_high;

-- boolean target: ml_predict returns 0/1
CREATE TABLE churn (tenure float8, calls float8, churned bool);
INSERT INTO churn SELECT i % 50, (i * 3) % 17, i % 50 < 10 FROM generate_series(1, 200) i;
SELECT task, algorithm FROM ml_train('churn', 'churned');
SELECT ml_predict('churn_churned', ARRAY[2.0, 5.0]) AS early, ml_predict('churn_churned', ARRAY[45.0, 5.0]) AS late;

-- a model can be addressed by id
SELECT ml_predict((SELECT id FROM ml_models WHERE name = 'churn_churned'), ARRAY[2.0, 5.0]) AS by_id;

-- test_size => 0 trains on every row and says so
SELECT rows_train, rows_test FROM ml_train('churn', 'churned', name => 'churn_all', test_size => 0);

-- NULL targets are skipped and counted; NULL features imputed and counted
CREATE TABLE gaps (a float8, b float8, y float8);
INSERT INTO gaps SELECT i, CASE WHEN i % 4 = 0 THEN NULL ELSE i * 2 END, CASE WHEN i % 10 = 0 THEN NULL ELSE 3 * i + 1 END
FROM generate_series(1, 100) i;
SELECT rows_train + rows_test AS rows_used FROM ml_train('gaps', 'y', algorithm => 'linear_regression', test_size => 0);
SELECT report->'rows_skipped_null_target' AS skipped, report->'imputed' AS imputed FROM ml_versions WHERE model = 'gaps_y';

-- dedupe removes exact duplicate rows and reports them
CREATE TABLE dups AS SELECT * FROM gaps UNION ALL SELECT * FROM gaps WHERE a <= 20;
SELECT rows_train FROM ml_train('dups', 'y', algorithm => 'linear_regression', test_size => 0, preprocess => '{"dedupe": true}');
SELECT report->'rows_duplicate_removed' AS removed FROM ml_versions WHERE model = 'dups_y';

-- non-finite values can be dropped instead of refused
CREATE TABLE weird (a float8, y float8);
INSERT INTO weird SELECT i, 2 * i FROM generate_series(1, 50) i;
INSERT INTO weird VALUES ('NaN', 1), ('Infinity', 2);
SELECT rows_train FROM ml_train('weird', 'y', algorithm => 'linear_regression', test_size => 0, preprocess => '{"nonfinite": "drop"}');
SELECT report->'rows_dropped_nonfinite' AS dropped FROM ml_versions WHERE model = 'weird_y';

-- views, materialized views and partitioned tables train like tables
CREATE VIEW houses_v AS SELECT area, rooms, price FROM houses WHERE id <= 150;
SELECT rows_train + rows_test AS rows FROM ml_train('houses_v', 'price', algorithm => 'linear_regression');
CREATE MATERIALIZED VIEW houses_mv AS SELECT area, rooms, price FROM houses;
SELECT rows_train + rows_test AS rows FROM ml_train('houses_mv', 'price', algorithm => 'linear_regression');
CREATE TABLE parts (k int, x float8, y float8) PARTITION BY RANGE (k);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (50);
CREATE TABLE parts_2 PARTITION OF parts FOR VALUES FROM (50) TO (100);
INSERT INTO parts SELECT i, i, 5 * i FROM generate_series(0, 99) i;
SELECT rows_train + rows_test AS rows FROM ml_train('parts', 'y', algorithm => 'linear_regression');

SELECT ml_drop_model(name) FROM ml_models ORDER BY name;
SELECT count(*) AS models_left FROM ml_models;
DROP VIEW houses_v; DROP MATERIALIZED VIEW houses_mv;
DROP TABLE houses, houses_reordered, fruit, grades, churn, gaps, dups, weird, parts;
