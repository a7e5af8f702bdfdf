-- Values and identities (issue 10, findings 7 to 9): out-of-range values are 22003 naming the
-- column, a deleted deployed version and a concurrent name clash have their own errors, forged
-- imports are 22P03 as docs/export-format.md says, a blob is bound to its catalog row, and
-- derived feature names never collide. After each error, its SQLSTATE.
SET extra_float_digits = 0;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- ---------------------------------------------------------------- values out of range (22003)
CREATE TABLE v_big8 (x int8, z float8, y float8);
INSERT INTO v_big8 SELECT CASE i WHEN 1 THEN 9223372036854775807 WHEN 2 THEN -9223372036854775808 ELSE i END,
                          i % 5, i % 7 FROM generate_series(1, 100) i;
-- int8 extremes fit a double, and their squares too: trained as before
SELECT model FROM ml_train('v_big8', 'y', algorithm => 'gradient_boosting', name => 'v_gb8');
-- ... without scaling too: 9.2e18 fits xgboost's single precision (3.4e38)
SELECT model FROM ml_train('v_big8', 'y', algorithm => 'gradient_boosting', name => 'v_gb8n',
                           preprocess => '{"scale": "none"}');
CREATE TABLE v_huge (x numeric, z float8, y float8);
INSERT INTO v_huge SELECT CASE WHEN i = 1 THEN 1e300 ELSE i END, i % 5, i % 7 FROM generate_series(1, 100) i;
-- a value whose square overflows: every algorithm, every path (rows or aggregates)
SELECT model FROM ml_train('v_huge', 'y', algorithm => 'gradient_boosting', name => 'v_gbh');
\echo :LAST_ERROR_SQLSTATE
SELECT model FROM ml_train('v_huge', 'y', algorithm => 'gradient_boosting', name => 'v_gbh',
                           preprocess => '{"scale": "none"}');
\echo :LAST_ERROR_SQLSTATE
SELECT model FROM ml_train('v_huge', 'y', algorithm => 'linear_regression', name => 'v_lrh');
\echo :LAST_ERROR_SQLSTATE
SELECT model FROM ml_train('v_huge', 'y', algorithm => 'elastic_net', name => 'v_enh');
\echo :LAST_ERROR_SQLSTATE
SELECT model FROM ml_train('v_huge', NULL, algorithm => 'kmeans', name => 'v_kmh');
\echo :LAST_ERROR_SQLSTATE
SELECT model FROM ml_train('v_huge', 'y', algorithm => 'naive_bayes', name => 'v_nbh', task => 'classification');
\echo :LAST_ERROR_SQLSTATE
SELECT model FROM ml_train('v_huge', 'y', algorithm => 'decision_tree', name => 'v_dth');
\echo :LAST_ERROR_SQLSTATE
-- fine in double, infinite in xgboost's single precision (no scaling)
CREATE TABLE v_single (x float8, y float8);
INSERT INTO v_single SELECT CASE WHEN i = 1 THEN 1e100 ELSE i END, i % 7 FROM generate_series(1, 100) i;
SELECT model FROM ml_train('v_single', 'y', algorithm => 'gradient_boosting', name => 'v_gbs',
                           preprocess => '{"scale": "none"}');
\echo :LAST_ERROR_SQLSTATE
-- a regression target out of range, and one beyond xgboost's single precision
CREATE TABLE v_target (x float8, y float8);
INSERT INTO v_target SELECT i, CASE WHEN i = 5 THEN 1e300 ELSE i END FROM generate_series(1, 100) i;
SELECT model FROM ml_train('v_target', 'y', algorithm => 'linear_regression', name => 'v_th');
\echo :LAST_ERROR_SQLSTATE
UPDATE v_target SET y = 1e100 WHERE y > 1e200;
SELECT model FROM ml_train('v_target', 'y', algorithm => 'gradient_boosting', name => 'v_th');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM ml_models WHERE name LIKE 'v\_%h' OR name = 'v_gbs';

-- predictions that overflow: jsonb, float8[], a row
CREATE TABLE v_small (x float8, y float8);
INSERT INTO v_small SELECT i, 2 * i + 1 FROM generate_series(1, 100) i;
SELECT model FROM ml_train('v_small', 'y', algorithm => 'linear_regression', name => 'v_lr');
SELECT model FROM ml_train('v_small', 'y', algorithm => 'gradient_boosting', name => 'v_gbp',
                           preprocess => '{"scale": "none"}');
SELECT round(ml_predict('v_lr', '{"x": 1e10}'::jsonb)::numeric, 0);
SELECT ml_predict('v_lr', '{"x": 1e308}'::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT ml_predict('v_lr', ARRAY[-1e308]::float8[]);
\echo :LAST_ERROR_SQLSTATE
SELECT ml_predict('v_lr', r) FROM (SELECT 1e308::float8 AS x) r;
\echo :LAST_ERROR_SQLSTATE
-- a number beyond double precision, from jsonb and from a numeric column
SELECT ml_predict('v_lr', '{"x": 1e400}'::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT ml_predict('v_lr', r) FROM (SELECT 1e400::numeric AS x) r;
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE v_wide (x numeric, y float8);
INSERT INTO v_wide SELECT i, i FROM generate_series(1, 20) i;
INSERT INTO v_wide VALUES (1e400, 1);
SELECT model FROM ml_train('v_wide', 'y', algorithm => 'random_forest', name => 'v_wide');
\echo :LAST_ERROR_SQLSTATE
SELECT ml_predict('v_gbp', ARRAY[1e300]::float8[]);
\echo :LAST_ERROR_SQLSTATE
SELECT ml_predict('v_gbp', '{"x": 1e300}'::jsonb);
\echo :LAST_ERROR_SQLSTATE

-- ---------------------------------------------------------------- a deleted deployed version (55000)
SELECT model FROM ml_train('v_small', 'y', algorithm => 'linear_regression', name => 'v_gone');
DELETE FROM ml.versions WHERE model_id = (SELECT id FROM ml.models WHERE name = 'v_gone');
SELECT ml_predict('v_gone', ARRAY[1]::float8[]);
\echo :LAST_ERROR_SQLSTATE
SELECT ml_export('v_gone');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ml_model_columns('v_gone');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ml_retrain('v_gone', 'v_small');
\echo :LAST_ERROR_SQLSTATE
SELECT ml_drop_model('v_gone');

-- ---------------------------------------------------------------- blobs bound to their row (XX001)
SELECT model FROM ml_train('v_small', 'y', algorithm => 'linear_regression', name => 'v_a', seed => 1);
SELECT model FROM ml_train('v_small', 'y', algorithm => 'linear_regression', name => 'v_b', seed => 2);
SELECT version FROM ml_retrain('v_b', 'v_small', mode => 'refit', deploy => 'never');
-- the blobs written by training, retraining and import carry the current format
SELECT DISTINCT format_version, get_byte(blob, 4) FROM ml.versions;
-- model B's blob in model A's row: same kind, same columns, refused
UPDATE ml.versions SET (blob, blob_length) = (SELECT v.blob, v.blob_length FROM ml.versions v
                                              JOIN ml.models m ON m.id = v.model_id
                                              WHERE m.name = 'v_b' AND v.version = 1)
WHERE model_id = (SELECT id FROM ml.models WHERE name = 'v_a');
\set VERBOSITY terse
SELECT ml_predict('v_a', ARRAY[3]::float8[]);
\echo :LAST_ERROR_SQLSTATE
-- version 1's blob in version 2's row of the same model
UPDATE ml.versions SET (blob, blob_length) = (SELECT v.blob, v.blob_length FROM ml.versions v
                                              JOIN ml.models m ON m.id = v.model_id
                                              WHERE m.name = 'v_b' AND v.version = 1)
WHERE model_id = (SELECT id FROM ml.models WHERE name = 'v_b') AND version = 2;
SELECT ml_evaluate('v_b', 'v_small', 2);
\echo :LAST_ERROR_SQLSTATE
SELECT ml_export('v_b', 2);
\echo :LAST_ERROR_SQLSTATE
-- another algorithm's blob
SELECT model FROM ml_train('v_small', 'y', algorithm => 'ridge', name => 'v_r');
UPDATE ml.versions SET (blob, blob_length) = (SELECT v.blob, v.blob_length FROM ml.versions v
                                              JOIN ml.models m ON m.id = v.model_id
                                              WHERE m.name = 'v_b' AND v.version = 1)
WHERE model_id = (SELECT id FROM ml.models WHERE name = 'v_r');
SELECT ml_predict('v_r', ARRAY[3]::float8[]);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
-- the model's own version still predicts
SELECT round(ml_predict('v_b', ARRAY[3]::float8[])::numeric, 3);

-- ---------------------------------------------------------------- forged imports (22P03)
SELECT model FROM ml_train('v_small', 'y', algorithm => 'linear_regression', name => 'v_ex');
CREATE TABLE v_data AS SELECT ml_export('v_ex') AS d;
-- CRC-32 as zlib computes it, to forge envelopes whose checksum is right
CREATE FUNCTION v_crc32(b bytea) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    c bigint := 4294967295;
BEGIN
    FOR i IN 0 .. length(b) - 1 LOOP
        c := c # get_byte(b, i);
        FOR k IN 1 .. 8 LOOP
            IF (c & 1) = 1 THEN c := (c >> 1) # 3988292384; ELSE c := c >> 1; END IF;
        END LOOP;
    END LOOP;
    RETURN c # 4294967295;
END $$;
CREATE FUNCTION v_reseal(d bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    c bigint := v_crc32(substring(d FROM 25));
BEGIN
    FOR i IN 0 .. 3 LOOP
        d := set_byte(d, 12 + i, ((c >> (8 * i)) & 255)::int);
    END LOOP;
    RETURN d;
END $$;
SELECT v_reseal(d) = d AS crc_helper_agrees FROM v_data;
-- a \u0000 escape in the report (a JSON text of the envelope), same length, checksum right
SELECT position(convert_to('"rows_train"', 'UTF8') IN d) > 0 AS has_key FROM v_data;
SELECT (ml_import('v_forged', v_reseal(overlay(d PLACING convert_to(chr(92) || 'u0000', 'UTF8')
                                               FROM position(convert_to('rows_t', 'UTF8') IN d))))).model
FROM v_data;
\echo :LAST_ERROR_SQLSTATE
-- metrics that are not JSON at all
SELECT (ml_import('v_forged', v_reseal(overlay(d PLACING convert_to('{{{', 'UTF8')
                                               FROM position(convert_to('{"test"', 'UTF8') IN d))))).model
FROM v_data;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM ml_models WHERE name = 'v_forged';
-- an import is bound to its new row, and predicts
SELECT model, version FROM ml_import('v_imported', (SELECT d FROM v_data));
SELECT round(ml_predict('v_imported', ARRAY[3]::float8[])::numeric, 3) = round(ml_predict('v_ex', ARRAY[3]::float8[])::numeric, 3) AS same;
SELECT get_byte(blob, 4) AS format FROM ml.versions WHERE model_id = (SELECT id FROM ml.models WHERE name = 'v_imported');

-- ---------------------------------------------------------------- blobs of format 1 (pg_ml 0.1.0 / 0.2.0)
-- a format-1 blob, as 0.2.0 wrote it: no binding after the payload's marker (22 bytes: a u64
-- length and "pg_ml model v1") and no last byte (format 3's precision flag), format 1, payload
-- length and CRC-32 to match
CREATE FUNCTION v_format1(b bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    o bytea := substring(b FROM 1 FOR 42) || substring(b FROM 55 FOR length(b) - 55);
    n bigint := length(o) - 20;
    c bigint;
BEGIN
    o := set_byte(o, 4, 1);
    FOR i IN 0 .. 7 LOOP
        o := set_byte(o, 8 + i, ((n >> (8 * i)) & 255)::int);
    END LOOP;
    c := v_crc32(substring(o FROM 21));
    FOR i IN 0 .. 3 LOOP
        o := set_byte(o, 16 + i, ((c >> (8 * i)) & 255)::int);
    END LOOP;
    RETURN o;
END $$;
SELECT model FROM ml_train('v_small', 'y', algorithm => 'linear_regression', name => 'v_old');
SELECT round(ml_predict('v_old', ARRAY[3]::float8[])::numeric, 3) AS before;
UPDATE ml.versions SET blob = v_format1(blob), blob_length = length(v_format1(blob)), format_version = 1
WHERE model_id = (SELECT id FROM ml.models WHERE name = 'v_old');
SELECT get_byte(blob, 4) AS format FROM ml.versions WHERE model_id = (SELECT id FROM ml.models WHERE name = 'v_old');
-- it still predicts (a database updated from 0.2.0), is exported, and retrains into format 3
SELECT round(ml_predict('v_old', ARRAY[3]::float8[])::numeric, 3) AS after;
SELECT length(ml_export('v_old')) > 0 AS exported;
SELECT version FROM ml_retrain('v_old', 'v_small', mode => 'refit', deploy => 'always');
SELECT version, get_byte(blob, 4) AS format FROM ml.versions
WHERE model_id = (SELECT id FROM ml.models WHERE name = 'v_old') ORDER BY version;
-- bound by kind only: in the row of a model of another algorithm it is refused
SELECT model FROM ml_train('v_small', 'y', algorithm => 'ridge', name => 'v_old_ridge');
UPDATE ml.versions SET (blob, blob_length) = (SELECT v.blob, v.blob_length FROM ml.versions v
                                              JOIN ml.models m ON m.id = v.model_id
                                              WHERE m.name = 'v_old' AND v.version = 1)
WHERE model_id = (SELECT id FROM ml.models WHERE name = 'v_old_ridge');
SELECT ml_predict('v_old_ridge', ARRAY[3]::float8[]);
\echo :LAST_ERROR_SQLSTATE

-- ---------------------------------------------------------------- feature names (finding 9)
-- a numeric column "c=a" beside a text column c with level a, the string 'NULL' beside NULLs
CREATE TABLE v_names ("c=a" float8, c text, y float8);
INSERT INTO v_names SELECT i % 7, (ARRAY['a', 'NULL', NULL, 'b'])[1 + i % 4], 3 * (i % 7) + i % 4 + 0.01 * i
FROM generate_series(1, 80) i;
SELECT model FROM ml_train('v_names', 'y', algorithm => 'linear_regression', name => 'v_names_lr');
SELECT model FROM ml_train('v_names', 'y', algorithm => 'random_forest', name => 'v_names_rf');
SELECT feature, kind FROM ml_feature_importance('v_names_lr') ORDER BY feature;
SELECT feature, kind FROM ml_feature_importance('v_names_rf') ORDER BY feature;
SELECT (SELECT count(*) FROM jsonb_object_keys(coefficients -> 'coefficients')) AS coefficients
FROM ml_versions WHERE model = 'v_names_lr';
-- prediction tells the two NULLs apart
SELECT round(ml_predict('v_names_lr', '{"c=a": 1, "c": "NULL"}'::jsonb)::numeric, 2) <>
       round(ml_predict('v_names_lr', '{"c=a": 1, "c": null}'::jsonb)::numeric, 2) AS distinct_levels;

SELECT count(*) FROM (SELECT ml_drop_model(name) FROM ml_models WHERE name LIKE 'v\_%') d;
