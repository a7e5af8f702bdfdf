-- Every error a user can hit while training, retraining or predicting, and that nothing
-- is lost after it: the deployed version and the versions list stay as they were.
SET extra_float_digits = 0;
\set VERBOSITY default
SET client_min_messages = warning;
CREATE TABLE t (a float8, b int, c text, y float8);
INSERT INTO t SELECT i, i % 7, (ARRAY['x','y','z'])[1 + i % 3], 3 * i + (i % 7) FROM generate_series(1, 60) i;
SELECT model, version FROM ml_train('t', 'y', algorithm => 'linear_regression', name => 'm');

-- unknown relation
SELECT * FROM ml_train('no_such_table', 'y');
-- unknown target column
SELECT * FROM ml_train('t', 'nope');
-- unknown feature and excluded columns
SELECT * FROM ml_train('t', 'y', features => ARRAY['a', 'nope']);
SELECT * FROM ml_train('t', 'y', exclude => ARRAY['nope']);
SELECT * FROM ml_train('t', 'y', features => ARRAY['a', 'y']);
-- unsupported column type
CREATE TABLE tj (a float8, doc jsonb, y float8);
INSERT INTO tj VALUES (1, '{}', 1);
SELECT * FROM ml_train('tj', 'y');
-- ... which exclude => fixes
SELECT rows_train FROM ml_train('tj', 'y', exclude => ARRAY['doc'], algorithm => 'linear_regression', test_size => 0);
SELECT ml_drop_model('tj_y');
-- empty relation
CREATE TABLE empty_t (a float8, y float8);
SELECT * FROM ml_train('empty_t', 'y');
-- target all NULL
CREATE TABLE null_target (a float8, y float8);
INSERT INTO null_target SELECT i, NULL FROM generate_series(1, 10) i;
SELECT * FROM ml_train('null_target', 'y', algorithm => 'linear_regression');
-- one class only
CREATE TABLE one_class (a float8, k text);
INSERT INTO one_class SELECT i, 'same' FROM generate_series(1, 10) i;
SELECT * FROM ml_train('one_class', 'k');
-- NaN / Infinity in a feature, and in the target
CREATE TABLE nan_t (a float8, y float8);
INSERT INTO nan_t SELECT i, i FROM generate_series(1, 10) i;
INSERT INTO nan_t VALUES ('NaN', 1);
SELECT * FROM ml_train('nan_t', 'y', algorithm => 'linear_regression');
UPDATE nan_t SET a = 'Infinity' WHERE a = 'NaN';
SELECT * FROM ml_train('nan_t', 'y', algorithm => 'linear_regression');
UPDATE nan_t SET a = 1, y = '-Infinity' WHERE a = 'Infinity';
SELECT * FROM ml_train('nan_t', 'y', algorithm => 'linear_regression');
-- unknown algorithm, task, hyperparameter key, out-of-range values, bad preprocess options
SELECT * FROM ml_train('t', 'y', algorithm => 'magic');
SELECT * FROM ml_train('t', 'y', task => 'prophecy');
SELECT * FROM ml_train('t', 'y', algorithm => 'logistic_regression', task => 'regression');
SELECT * FROM ml_train('t', 'y', algorithm => 'ridge', hyperparams => '{"alpah": 1}');
SELECT * FROM ml_train('t', 'y', algorithm => 'ridge', hyperparams => '{"alpha": -1}');
SELECT * FROM ml_train('t', 'y', algorithm => 'ridge', hyperparams => '{"alpha": "big"}');
SELECT * FROM ml_train('t', 'y', algorithm => 'linear_regression', hyperparams => '{"alpha": 1}');
SELECT * FROM ml_train('t', 'c', algorithm => 'logistic_regression', hyperparams => '{"C": 0}');
SELECT * FROM ml_train('t', 'c', algorithm => 'logistic_regression', hyperparams => '{"max_iter": 2.5}');
SELECT * FROM ml_train('t', 'y', hyperparams => '[1, 2]');
SELECT * FROM ml_train('t', 'y', preprocess => '{"scale": "log"}');
SELECT * FROM ml_train('t', 'y', preprocess => '{"colour": 1}');
SELECT * FROM ml_train('t', 'y', preprocess => '{"columns": {"nope": {"impute": "median"}}}');
SELECT * FROM ml_train('t', 'y', preprocess => '{"columns": {"c": {"max_levels": 2}}}');
-- a regression algorithm on a text target
SELECT * FROM ml_train('t', 'c', algorithm => 'linear_regression');
-- test_size out of range, NULL arguments
SELECT * FROM ml_train('t', 'y', test_size => 1);
SELECT * FROM ml_train('t', 'y', test_size => -0.1);
SELECT model, task, algorithm FROM ml_train('t', NULL); -- a NULL target is clustering, not an error
SELECT * FROM ml_train(NULL, 'y');
-- the model name is taken
SELECT * FROM ml_train('t', 'y', name => 'm');
-- clustering is not there yet
SELECT * FROM ml_train('t', 'y', task => 'clustering');

-- retraining: unknown model, missing column, wrong type, bad mode / deploy, NULL model
SELECT * FROM ml_retrain('nope', 't');
SELECT * FROM ml_retrain(123456, 't');
CREATE TABLE t_missing AS SELECT a, y FROM t;
SELECT * FROM ml_retrain('m', 't_missing');
CREATE TABLE t_wrong AS SELECT a::text AS a, b, c, y FROM t;
SELECT * FROM ml_retrain('m', 't_wrong');
CREATE TABLE t_both AS SELECT a::text AS a, c, y FROM t;
SELECT * FROM ml_retrain('m', 't_both');
SELECT * FROM ml_retrain('m', 't', mode => 'sideways');
SELECT * FROM ml_retrain('m', 't', deploy => 'maybe');
CREATE TABLE t_empty AS SELECT * FROM t WHERE false;
SELECT * FROM ml_retrain('m', 't_empty');
SELECT * FROM ml_retrain(NULL::text, 't');
-- nothing was lost
SELECT name, deployed_version FROM ml_models WHERE name = 'm';
SELECT version, deployed FROM ml_versions WHERE model = 'm';

-- prediction: unknown model, missing feature, wrong types, bad arrays and jsonb
SELECT ml_predict('nope', t) FROM t LIMIT 1;
SELECT ml_predict('m', r) FROM (SELECT a, c FROM t) r LIMIT 1;
SELECT ml_predict('m', r) FROM (SELECT a, b::text AS b, c FROM t) r LIMIT 1;
SELECT ml_predict('m', ARRAY[1.0, 2.0]);
SELECT ml_predict('m', '{"a": 1, "b": 2}'::jsonb);
SELECT ml_predict('m', '{"a": "one", "b": 2, "c": "x"}'::jsonb);
SELECT ml_predict('m', '[1, 2, 3]'::jsonb);
SELECT ml_predict('m', '{"a": "NaN", "b": 2, "c": "x"}'::jsonb);
SELECT ml_predict('m', 42);
SELECT ml_predict_proba('m', t) FROM t LIMIT 1;
SELECT ml_predict_label('m', t) FROM t LIMIT 1;
-- text classes cannot come back as float8
SELECT model FROM ml_train('t', 'c', algorithm => 'logistic_regression', name => 'mc');
SELECT ml_predict('mc', t) FROM t LIMIT 1;
SELECT ml_predict_label('mc', t) IS NOT NULL AS ok FROM t LIMIT 1;
-- NULL model or row: NULL
SELECT ml_predict(NULL::text, t) IS NULL AS null_model, ml_predict('m', NULL::t) IS NULL AS null_row FROM t LIMIT 1;

-- a corrupted blob (one byte altered in the catalog) is an error, not a crash;
-- deploying another version recovers
SELECT version, deployed FROM ml_retrain('m', 't', mode => 'refit', deploy => 'always');
UPDATE ml.versions SET blob = set_byte(blob, 40, get_byte(blob, 40) # 255)
WHERE model_id = (SELECT id FROM ml_models WHERE name = 'm') AND version = 2;
SELECT ml_predict('m', t) FROM t LIMIT 1;
SELECT version FROM ml_retrain('m', 't');
SELECT ml_evaluate('m', 't');
SELECT version, deployed FROM ml_versions WHERE model = 'm' ORDER BY version;
-- a truncated blob, and one with a wrong magic
UPDATE ml.versions SET blob = substring(blob FROM 1 FOR 10), blob_length = 10
WHERE model_id = (SELECT id FROM ml_models WHERE name = 'm') AND version = 2;
SELECT ml_predict('m', t) FROM t LIMIT 1;
UPDATE ml.versions SET blob = '\x00112233445566778899aabbccddeeff00112233445566'::bytea, blob_length = 23
WHERE model_id = (SELECT id FROM ml_models WHERE name = 'm') AND version = 2;
SELECT ml_predict('m', t) FROM t LIMIT 1;
SELECT ml_deploy('m', 1);
SELECT round(ml_predict('m', t)::numeric, 3) AS works_again FROM t ORDER BY a LIMIT 1;

-- lifecycle errors
SELECT ml_deploy('m', 99);
SELECT ml_deploy('nope', 1);
SELECT ml_evaluate('m', 't', 99);
SELECT ml_evaluate('m', 't_missing');
SELECT ml_rollback('mc');
SELECT ml_drop_model('nope');
SELECT ml_evaluate('m', 't_empty');

-- names are data, never SQL
SELECT model FROM ml_train('t', 'y', algorithm => 'linear_regression', name => 'x''; DROP TABLE t; --');
SELECT count(*) AS t_still_there FROM t;
SELECT ml_drop_model('x''; DROP TABLE t; --');
CREATE TABLE "we""ird tab" ("sp ace" float8, "Quote""d" float8);
INSERT INTO "we""ird tab" SELECT i, 2 * i FROM generate_series(1, 20) i;
SELECT model FROM ml_train('"we""ird tab"', 'Quote"d', algorithm => 'linear_regression', test_size => 0);
SELECT round(ml_predict('we"ird tab_Quote"d', w)::numeric, 6) FROM "we""ird tab" w ORDER BY 1 LIMIT 2;

SELECT ml_drop_model(name) FROM ml_models ORDER BY name;
DROP TABLE t, t_empty, tj, empty_t, null_target, one_class, nan_t, t_missing, t_wrong, t_both, "we""ird tab";
