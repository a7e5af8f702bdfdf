-- A model's classes are part of its contract (issue 11): a retrain whose rows hold labels the
-- deployed version does not know is an error naming each label and its rows, in every mode and
-- on every read path, and writes nothing; allow_new_classes => true lets a refit add them (an
-- incremental update cannot). ml_models.classes is the deployed version's, in the order of
-- ml_predict_proba, after every retrain, ml_deploy and ml_rollback; ml_class_probabilities
-- gives the probabilities under their labels.
SET extra_float_digits = 0;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SET pg_ml.progress = off;

-- two classes, "neg" / "pos", separated by x
CREATE TABLE cl (id int, x float8, z float8, tag text, y text);
INSERT INTO cl SELECT i, (i % 10) + CASE WHEN i % 2 = 0 THEN 6 ELSE 0 END, (i * 7) % 13,
                      (ARRAY['a', 'b'])[1 + i % 2 * (i % 3 % 2)], CASE WHEN i % 2 = 0 THEN 'pos' ELSE 'neg' END
FROM generate_series(1, 200) i;
-- new rows with one mistyped label ("negative", once) and an unknown one ("maybe", three times)
CREATE TABLE cl_new AS SELECT id, x, z, tag,
    CASE WHEN id = 17 THEN 'negative' WHEN id IN (4, 9, 12) THEN 'maybe' ELSE y END AS y
FROM cl WHERE id <= 60;
-- the same rows with known labels only
CREATE TABLE cl_ok AS SELECT * FROM cl WHERE id <= 60;

SELECT model, version FROM ml_train('cl', 'y', algorithm => 'logistic_regression', name => 'cl_lr', exclude => '{id}');
SELECT model, version FROM ml_train('cl', 'y', algorithm => 'naive_bayes', name => 'cl_nb', exclude => '{id}');
SELECT name, deployed_version, classes FROM ml_models WHERE name LIKE 'cl\_%' ORDER BY name;

-- refused, naming each unknown label with its rows: a refit (logistic_regression, rows in memory)
SELECT * FROM ml_retrain('cl_lr', 'cl_new', mode => 'refit');
\echo :LAST_ERROR_SQLSTATE
-- mode auto (a refit for logistic_regression)
SELECT * FROM ml_retrain('cl_lr', 'cl_new');
\echo :LAST_ERROR_SQLSTATE
-- NULL allow_new_classes is false
SELECT * FROM ml_retrain('cl_lr', 'cl_new', mode => 'refit', allow_new_classes => NULL);
\echo :LAST_ERROR_SQLSTATE
-- naive Bayes through the class aggregates: refit, incremental (and auto, which is incremental)
SELECT * FROM ml_retrain('cl_nb', 'cl_new', mode => 'refit');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ml_retrain('cl_nb', 'cl_new', mode => 'incremental');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ml_retrain('cl_nb', 'cl_new');
\echo :LAST_ERROR_SQLSTATE
-- an incremental update cannot add a class, even when allowed
SELECT * FROM ml_retrain('cl_nb', 'cl_new', mode => 'incremental', allow_new_classes => true);
\echo :LAST_ERROR_SQLSTATE
-- naive Bayes through the row reader: the same errors
SET pg_ml.stats_aggregate = off;
SELECT * FROM ml_retrain('cl_nb', 'cl_new', mode => 'refit');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ml_retrain('cl_nb', 'cl_new', mode => 'incremental', allow_new_classes => true);
\echo :LAST_ERROR_SQLSTATE
RESET pg_ml.stats_aggregate;
-- a numeric target: labels are numbers, listed in numeric order, at most ten of them
CREATE TABLE grades (x float8, g int);
INSERT INTO grades SELECT i, i % 3 FROM generate_series(1, 90) i;
CREATE TABLE grades_new AS SELECT x, CASE WHEN x <= 12 THEN 10 + x::int ELSE g END AS g FROM grades;
SELECT model, version FROM ml_train('grades', 'g', algorithm => 'decision_tree', name => 'cl_tree');
SELECT classes FROM ml_models WHERE name = 'cl_tree';
SELECT * FROM ml_retrain('cl_tree', 'grades_new', mode => 'refit');
\echo :LAST_ERROR_SQLSTATE
-- nothing was written: the versions and deployments are as before
SELECT model, count(*) AS versions, max(version) AS last FROM ml_versions WHERE model LIKE 'cl\_%' GROUP BY 1 ORDER BY 1;
SELECT name, deployed_version, classes FROM ml_models WHERE name LIKE 'cl\_%' ORDER BY name;

-- rows with known labels only retrain as before, and keep the classes
SELECT version, mode, deployed FROM ml_retrain('cl_nb', 'cl_ok', mode => 'incremental', deploy => 'always');
SELECT version, classes FROM ml_versions WHERE model = 'cl_nb' ORDER BY version;

-- allow_new_classes => true: a refit learns the new classes; deploy => 'never' keeps the
-- deployed version's classes in ml_models until ml_deploy
SELECT version, mode, deployed FROM ml_retrain('cl_lr', 'cl_new', mode => 'refit', allow_new_classes => true,
                                               deploy => 'never');
SELECT version, classes FROM ml_versions WHERE model = 'cl_lr' ORDER BY version;
-- after every change of the deployed version, ml_models.classes is ml_predict_proba's order:
-- the labels of ml_class_probabilities, each with the element of ml_predict_proba at its position
CREATE VIEW cl_agree AS
SELECT m.deployed_version, m.classes,
       bool_and(jsonb_array_length(m.classes) = array_length(ml_predict_proba('cl_lr', c), 1)) AS same_length,
       bool_and((SELECT bool_and((ml_class_probabilities('cl_lr', c) ->> (m.classes ->> (k - 1)))::float8
                                  = (ml_predict_proba('cl_lr', c))[k])
                   FROM generate_series(1, jsonb_array_length(m.classes)) k)) AS same_order,
       bool_and((SELECT count(*) FROM jsonb_object_keys(ml_class_probabilities('cl_lr', c)))
                = jsonb_array_length(m.classes)) AS same_keys
FROM ml_models m, cl c WHERE m.name = 'cl_lr' GROUP BY 1, 2;
SELECT * FROM cl_agree;
SELECT ml_deploy('cl_lr', 2);
SELECT * FROM cl_agree;
SELECT ml_rollback('cl_lr');
SELECT * FROM cl_agree;
SELECT ml_deploy('cl_lr', 2);
-- a retrain of the four-class version knows "negative" and "maybe" now
SELECT version, parent_version, deployed FROM ml_retrain('cl_lr', 'cl_new', mode => 'refit', deploy => 'always');
SELECT * FROM cl_agree;
-- ... and a version without "maybe" (a subset) is no error either; the view follows the deployed version
SELECT version, parent_version, deployed FROM ml_retrain('cl_lr', 'cl_ok', mode => 'refit', deploy => 'always');
SELECT * FROM cl_agree;

-- ml_class_probabilities: every overload (model by name or id; a row, float8[], jsonb), and
-- the probabilities are ml_predict_proba's
SELECT ml_class_probabilities('cl_nb', c) = ml_class_probabilities((SELECT id FROM ml_models WHERE name = 'cl_nb'), c)
       AS by_id,
       ml_class_probabilities('cl_nb', c) = ml_class_probabilities('cl_nb', jsonb_build_object('x', c.x, 'z', c.z, 'tag', c.tag))
       AS jsonb_form
FROM cl c WHERE id = 3;
SELECT model FROM ml_train('cl', 'y', algorithm => 'naive_bayes', name => 'cl_nb2', features => '{x,z}');
SELECT (SELECT jsonb_object_agg(key, round(value::text::numeric, 6)) FROM jsonb_each(p)) AS labelled,
       (p->>'neg')::float8 = (ml_predict_proba('cl_nb2', ARRAY[x, z]))[1]
       AND (p->>'pos')::float8 = (ml_predict_proba('cl_nb2', ARRAY[x, z]))[2] AS same
FROM (SELECT x, z, ml_class_probabilities('cl_nb2', ARRAY[x, z]) AS p FROM cl WHERE id = 3) q;
SELECT ml_class_probabilities((SELECT id FROM ml_models WHERE name = 'cl_nb2'), ARRAY[5.0, 1.0])
       = ml_class_probabilities('cl_nb2', ARRAY[5.0, 1.0]) AS by_id_array,
       ml_class_probabilities((SELECT id FROM ml_models WHERE name = 'cl_nb2'), '{"x": 5, "z": 1}'::jsonb)
       = ml_class_probabilities('cl_nb2', ARRAY[5.0, 1.0]) AS by_id_jsonb;
-- numeric classes are labels too
SELECT jsonb_object_keys(ml_class_probabilities('cl_tree', ARRAY[4.0])) AS label ORDER BY 1;
-- NULL in, NULL out
SELECT ml_class_probabilities('cl_nb', NULL::float8[]) IS NULL AS null_features,
       ml_class_probabilities(NULL::text, ARRAY[1.0]) IS NULL AS null_model;
-- STABLE and PARALLEL SAFE, like ml_predict_proba
SELECT pg_get_function_identity_arguments(oid) AS args, provolatile, proparallel, proisstrict
FROM pg_proc WHERE proname = 'ml_class_probabilities' ORDER BY 1;
-- errors as ml_predict_proba's: a model that is not a classifier, an unknown model
CREATE TABLE reg (x float8, y float8);
INSERT INTO reg SELECT i, 2 * i FROM generate_series(1, 20) i;
SELECT model FROM ml_train('reg', 'y', algorithm => 'linear_regression', name => 'cl_reg');
SELECT ml_class_probabilities('cl_reg', ARRAY[1.0]);
\echo :LAST_ERROR_SQLSTATE
SELECT ml_predict_proba('cl_reg', ARRAY[1.0]);
\echo :LAST_ERROR_SQLSTATE
SELECT ml_class_probabilities('no_such_model', ARRAY[1.0]);
\echo :LAST_ERROR_SQLSTATE
SELECT ml_class_probabilities('cl_nb', ARRAY[1.0]);
\echo :LAST_ERROR_SQLSTATE
-- regression and clustering versions have no classes
SELECT model, version, classes FROM ml_versions WHERE model = 'cl_reg';

-- ml_import keeps the version's classes (the four-class version of cl_lr)
SELECT model, version FROM ml_import('cl_lr_copy', ml_export('cl_lr', 2));
SELECT m.classes, m.classes = v.classes AS same_classes
FROM ml_models m, ml_versions v WHERE m.name = 'cl_lr_copy' AND v.model = 'cl_lr' AND v.version = 2;

SELECT count(*) AS dropped FROM (SELECT ml_drop_model(name) FROM ml_models WHERE name LIKE 'cl\_%') d;
DROP VIEW cl_agree;
DROP TABLE cl, cl_new, cl_ok, grades, grades_new, reg;
