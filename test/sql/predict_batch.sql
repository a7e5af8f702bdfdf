-- ml_predict_batch: every row of a relation, equal to ml_predict row by row; its errors
SET client_min_messages = warning;
SET extra_float_digits = 0;
CREATE TABLE pb_houses (id int, area float8, rooms int, city text, price float8);
INSERT INTO pb_houses
SELECT i, 50 + (i * 37) % 200, 1 + i % 5, (ARRAY['oslo','bergen','tromso'])[1 + i % 3],
       1000 + 2 * (50 + (i * 37) % 200) + 50 * (1 + i % 5) + (ARRAY[300, 100, 0])[1 + i % 3] + (i % 7)
FROM generate_series(1, 300) i;
-- a NULL feature (imputed) and an unseen category
INSERT INTO pb_houses VALUES (301, NULL, 3, 'oslo', NULL), (302, 120, 2, 'paris', NULL);
CREATE TABLE pb_fruit (id int, weight float8, color text, kind text, grade int);
INSERT INTO pb_fruit
SELECT i, 100 + (i * 7) % 80 + CASE WHEN i % 3 = 0 THEN 60 ELSE 0 END,
       (ARRAY['red','yellow','green'])[1 + i % 3],
       (ARRAY['apple','lemon','lime'])[1 + i % 3], 1 + i % 3
FROM generate_series(1, 240) i;

SELECT model FROM ml_train('pb_houses', 'price', algorithm => 'linear_regression', name => 'pb_price',
                           exclude => ARRAY['id'], test_size => 0);
SELECT model FROM ml_train('pb_fruit', 'kind', algorithm => 'logistic_regression', name => 'pb_kind',
                           features => ARRAY['weight', 'color'], test_size => 0);
SELECT model FROM ml_train('pb_fruit', 'grade', algorithm => 'decision_tree', task => 'classification',
                           name => 'pb_grade', features => ARRAY['weight', 'color'], test_size => 0);
SELECT model FROM ml_train('pb_fruit', NULL, algorithm => 'kmeans', name => 'pb_clusters',
                           features => ARRAY['weight'], hyperparams => '{"k": 3}');

-- small batches, so the relation is read in several
SET pg_ml.batch_rows = 100;

-- regression: every row, equal to ml_predict
SELECT count(*) AS rows, count(b.key) AS keyed,
       bool_and(abs(b.prediction - ml_predict('pb_price', h)) <= 1e-9 * abs(b.prediction)) AS same,
       bool_and(b.label IS NULL AND b.probabilities IS NULL) AS no_classes
FROM ml_predict_batch('pb_price', 'pb_houses', 'id') b JOIN pb_houses h ON h.id = b.key::int;
SELECT key, round(prediction::numeric, 4) AS prediction, label, probabilities
FROM ml_predict_batch('pb_price', 'pb_houses', key_column => 'id') WHERE key::int IN (1, 301, 302) ORDER BY key::int;

-- text classes: label and probabilities; prediction is NULL (ml_predict cannot return text)
SELECT count(*) AS rows,
       bool_and(b.label = ml_predict_label('pb_kind', f)) AS same_label,
       bool_and((SELECT bool_and(abs(p - q) < 1e-12)
                 FROM unnest(b.probabilities, ml_predict_proba('pb_kind', f)) AS u(p, q))) AS same_proba,
       bool_and(b.prediction IS NULL) AS no_value
FROM ml_predict_batch('pb_kind', 'pb_fruit', 'id') b JOIN pb_fruit f ON f.id = b.key::int;

-- numeric classes (a tree): prediction is the class value, as ml_predict returns it
SELECT count(*) AS rows, bool_and(b.prediction = ml_predict('pb_grade', f)) AS same_value,
       bool_and(b.label = ml_predict_label('pb_grade', f)) AS same_label,
       bool_and(array_length(b.probabilities, 1) = 3) AS three_proba
FROM ml_predict_batch('pb_grade', 'pb_fruit', 'id') b JOIN pb_fruit f ON f.id = b.key::int;

-- clustering: the cluster
SELECT count(*) AS rows, bool_and(b.prediction = ml_predict('pb_clusters', f)) AS same_cluster
FROM ml_predict_batch('pb_clusters', 'pb_fruit', 'id') b JOIN pb_fruit f ON f.id = b.key::int;

-- no key: NULL keys; by model id; a view; an empty relation
SELECT count(*) AS rows, count(key) AS keys FROM ml_predict_batch('pb_price', 'pb_houses');
SELECT count(*) AS rows FROM ml_predict_batch((SELECT id FROM ml_models WHERE name = 'pb_price'), 'pb_houses');
CREATE VIEW pb_oslo AS SELECT * FROM pb_houses WHERE city = 'oslo';
SELECT count(*) = (SELECT count(*) FROM pb_oslo) AS all_rows FROM ml_predict_batch('pb_price', 'pb_oslo', 'id');
CREATE TABLE pb_empty (LIKE pb_houses);
SELECT count(*) AS rows FROM ml_predict_batch('pb_price', 'pb_empty');
RESET pg_ml.batch_rows;

-- the per-query resolution of ml_predict: a model argument that changes from row to row (each
-- model maps the row's columns its own way), arrays of another element type and with NULLs
SELECT model FROM ml_train('pb_houses', 'price', algorithm => 'ridge', name => 'pb_area',
                           features => ARRAY['area'], test_size => 0);
SELECT bool_and(ml_predict(CASE WHEN id % 2 = 0 THEN 'pb_price' ELSE 'pb_area' END, h)
                = CASE WHEN id % 2 = 0 THEN ml_predict('pb_price', h) ELSE ml_predict('pb_area', h) END) AS same
FROM pb_houses h;
SELECT ml_predict('pb_area', ARRAY[100]::int[]) = ml_predict('pb_area', ARRAY[100.0]) AS int_array,
       ml_predict('pb_area', ARRAY[NULL]::float8[]) = ml_predict('pb_area', '{"area": null}'::jsonb) AS null_imputed;
SELECT ml_predict('pb_price', ARRAY[1.0, 2.0, 3.0]);
SELECT ml_predict('pb_area', ARRAY[1.0, 2.0]);

-- errors
SELECT * FROM ml_predict_batch('pb_price', 'pb_houses', 'no_such_key');
CREATE TABLE pb_partial AS SELECT id, area, city FROM pb_houses;
SELECT * FROM ml_predict_batch('pb_price', 'pb_partial', 'id');
CREATE TABLE pb_mistyped AS SELECT id, area, rooms::text AS rooms, city FROM pb_houses;
SELECT * FROM ml_predict_batch('pb_price', 'pb_mistyped', 'id');
SELECT * FROM ml_predict_batch('no_such_model', 'pb_houses');
SELECT * FROM ml_predict_batch('pb_price', 'no_such_table');
-- the relation is a name, never SQL
SELECT count(*) AS rows FROM ml_predict_batch('pb_price', '(SELECT 1)');
SELECT * FROM ml_predict_batch('pb_price', NULL);
INSERT INTO pb_houses VALUES (303, 'NaN', 3, 'oslo', NULL);
SELECT * FROM ml_predict_batch('pb_price', 'pb_houses', 'id');
DELETE FROM pb_houses WHERE id = 303;

-- privileges: the relation is read with the caller's rights; the model needs a grant
CREATE ROLE pgml_pb_user;
SET ROLE pgml_pb_user;
SELECT * FROM ml_predict_batch('pb_price', 'pb_houses', 'id');
RESET ROLE;
SELECT ml_grant('pb_price', 'pgml_pb_user');
SET ROLE pgml_pb_user;
SELECT * FROM ml_predict_batch('pb_price', 'pb_houses', 'id');
RESET ROLE;
GRANT SELECT (id, area, rooms, city) ON pb_houses TO pgml_pb_user;
SET ROLE pgml_pb_user;
SELECT count(*) AS rows FROM ml_predict_batch('pb_price', 'pb_houses', 'id');
RESET ROLE;
-- row-level security applies to the caller
ALTER TABLE pb_houses ENABLE ROW LEVEL SECURITY;
CREATE POLICY pb_oslo_only ON pb_houses FOR SELECT TO pgml_pb_user USING (city = 'oslo');
SET ROLE pgml_pb_user;
SELECT count(*) AS rows FROM ml_predict_batch('pb_price', 'pb_houses', 'id');
RESET ROLE;

SELECT ml_drop_model(m) FROM unnest(ARRAY['pb_price', 'pb_kind', 'pb_grade', 'pb_clusters', 'pb_area']) m;
DROP VIEW pb_oslo;
DROP TABLE pb_houses, pb_fruit, pb_partial, pb_mistyped, pb_empty;
DROP ROLE pgml_pb_user;
