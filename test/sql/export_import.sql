-- ml_export / ml_import: a round trip in one database, and every error
SET client_min_messages = warning;
SET extra_float_digits = 0;
CREATE TABLE ex_rows (id int, x float8, c text, y float8, k text);
INSERT INTO ex_rows
SELECT i, (i * 37) % 101 / 10.0, (ARRAY['a','b','c'])[1 + i % 3], 3 + 2 * ((i * 37) % 101 / 10.0) + (i % 3),
       CASE WHEN (i * 37) % 101 > 50 THEN 'big' ELSE 'small' END
FROM generate_series(1, 120) i;
SELECT model FROM ml_train('ex_rows', 'y', algorithm => 'linear_regression', name => 'ex_lin',
                           features => ARRAY['x', 'c']);
SELECT model FROM ml_train('ex_rows', 'k', algorithm => 'random_forest', name => 'ex_forest',
                           features => ARRAY['x', 'c'], hyperparams => '{"n_estimators": 5}');
SELECT version FROM ml_retrain('ex_lin', 'ex_rows', mode => 'refit', deploy => 'never');

-- the envelope: magic and format version
SELECT substring(ml_export('ex_lin') FROM 1 FOR 8) AS magic,
       get_byte(ml_export('ex_lin'), 8) AS format;

-- round trip: a new model owned by the caller, version 1 deployed, identical predictions
SELECT model_id > 0 AS has_id, model, version FROM ml_import('ex_lin_copy', ml_export('ex_lin'));
SELECT model_id > 0 AS has_id, model, version FROM ml_import('ex_forest_copy', ml_export('ex_forest', 1));
SELECT name, owner = current_user::regrole AS mine, task, algorithm, target, deployed_version, classes
FROM ml_models WHERE name LIKE 'ex\_%' ORDER BY name;
SELECT bool_and(ml_predict('ex_lin', r) = ml_predict('ex_lin_copy', r)) AS same_value,
       bool_and(ml_predict_label('ex_forest', r) = ml_predict_label('ex_forest_copy', r)) AS same_label,
       bool_and(ml_predict_proba('ex_forest', r) = ml_predict_proba('ex_forest_copy', r)) AS same_proba
FROM ex_rows r;
-- metadata and provenance
SELECT v.mode, v.parent_version, v.rows_train = o.rows_train AS same_rows, v.test_metrics = o.test_metrics AS same_metrics,
       v.hyperparams = o.hyperparams AS same_hyperparams, v.coefficients = o.coefficients AS same_coefficients,
       v.preprocessing_state = o.preprocessing_state AS same_state,
       v.report -> 'imported' ->> 'model' AS from_model, v.report -> 'imported' ->> 'version' AS from_version,
       v.report -> 'imported' ->> 'database' = current_database() AS from_database,
       v.report -> 'original' = o.report AS original_report
FROM ml_versions v, ml_versions o
WHERE v.model = 'ex_lin_copy' AND o.model = 'ex_lin' AND o.version = 1;
-- an older version, by model id
SELECT version FROM ml_import('ex_lin_v2', ml_export((SELECT id FROM ml_models WHERE name = 'ex_lin'), 2));
SELECT report -> 'imported' ->> 'version' AS from_version FROM ml_versions WHERE model = 'ex_lin_v2';
-- an imported model exports again, and can be retrained
SELECT model FROM ml_import('ex_lin_copy2', ml_export('ex_lin_copy'));
SELECT version, parent_version FROM ml_retrain('ex_lin_copy', 'ex_rows', mode => 'refit', deploy => 'never');

-- errors: corrupt, truncated, wrong magic, another format, empty, a raw model blob
CREATE TABLE ex_data AS SELECT ml_export('ex_lin') AS d;
SELECT ml_import('ex_bad', (SELECT overlay(d PLACING '\xff'::bytea FROM 200) FROM ex_data));
-- (terse: the detail names the body's length, which depends on the export time's digits)
\set VERBOSITY terse
SELECT ml_import('ex_bad', (SELECT substring(d FROM 1 FOR length(d) - 1) FROM ex_data));
\set VERBOSITY default
SELECT ml_import('ex_bad', (SELECT substring(d FROM 1 FOR 10) FROM ex_data));
SELECT ml_import('ex_bad', (SELECT overlay(d PLACING 'XXXX'::bytea FROM 1) FROM ex_data));
SELECT ml_import('ex_bad', (SELECT set_byte(d, 8, 9) FROM ex_data));
SELECT ml_import('ex_bad', ''::bytea);
SELECT ml_import('ex_bad', 'not an export at all'::bytea);
-- errors: the name is taken, or invalid; NULLs
SELECT ml_import('ex_lin', (SELECT d FROM ex_data));
SELECT ml_import('', (SELECT d FROM ex_data));
SELECT ml_import(NULL, (SELECT d FROM ex_data));
SELECT ml_import('ex_bad', NULL);
-- errors: unknown model or version
SELECT ml_export('no_such_model');
SELECT ml_export('ex_lin', 99);
SELECT ml_export(NULL::text);
SELECT count(*) AS nothing_imported FROM ml_models WHERE name = 'ex_bad';

-- privileges: exporting needs the access predicting needs; importing makes the caller the owner
CREATE ROLE pgml_ex_user;
SET ROLE pgml_ex_user;
SELECT ml_export('ex_lin');
RESET ROLE;
SELECT ml_grant('ex_lin', 'pgml_ex_user');
SET ROLE pgml_ex_user;
SELECT length(ml_export('ex_lin')) > 100 AS exported;
SELECT model, version FROM ml_import('ex_user_copy', ml_export('ex_lin'));
RESET ROLE;
SELECT owner::text FROM ml_models WHERE name = 'ex_user_copy';
SET ROLE pgml_ex_user;
SELECT ml_drop_model('ex_user_copy');
RESET ROLE;

SELECT ml_drop_model(name) FROM ml_models WHERE name LIKE 'ex\_%' ORDER BY name;
DROP TABLE ex_rows, ex_data;
DROP ROLE pgml_ex_user;
