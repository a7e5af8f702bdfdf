-- One rule for the names of relations and columns (README, "Names"): in double quotes, a name is
-- taken as written; without quotes it is folded to lower case as SQL folds identifiers, and a
-- name that is exactly a column's (or, without dots, a relation's) name finds it too.
SET pg_ml.progress = off;
CREATE TABLE "Sales" ("Revenue" float8, "Units" float8, price float8, "Region" text);
INSERT INTO "Sales" SELECT 2 * i + 1 + (i % 3), i, i % 7, (ARRAY['North', 'South'])[1 + i % 2] FROM generate_series(1, 200) i;

-- quoted the SQL way
SELECT model, rows_train FROM ml_train('"Sales"', '"Revenue"', 'linear_regression', name => 'names_quoted',
                                   features => ARRAY['"Units"', 'PRICE']);
SELECT name, role FROM ml_model_columns('names_quoted') ORDER BY ordinal;
-- as the catalog spells them
SELECT model, rows_train FROM ml_train('Sales', 'Revenue', 'linear_regression', name => 'names_exact', exclude => ARRAY['Region']);
-- the same columns either way
SELECT (SELECT array_agg(name ORDER BY name) FROM ml_model_columns('names_quoted') WHERE role = 'feature') =
       (SELECT array_agg(name ORDER BY name) FROM ml_model_columns('names_exact') WHERE role = 'feature') AS same_features;
-- group_by and retrain follow the rule too
SELECT model FROM ml_train('"Sales"', 'Revenue', 'linear_regression', name => 'names_grouped', group_by => ARRAY['"Region"']);
INSERT INTO "Sales" SELECT 2 * i + 1, i, i % 7, 'North' FROM generate_series(201, 260) i;
SELECT version, rows_train > 155 AS more_rows FROM ml_retrain('names_exact', '"Sales"');

-- errors name what was given
SELECT model FROM ml_train('"Sales"', 'revenue', 'linear_regression', name => 'names_bad');
SELECT model FROM ml_train('"Sales"', '"Revenue"', 'linear_regression', name => 'names_bad', features => ARRAY['Units', '"Units"']);
SELECT model FROM ml_train('"Sales"', '"Revenue"', 'linear_regression', name => 'names_bad', features => ARRAY['"Revenue"']);
SELECT model FROM ml_train('"Sales"', '"Revenue"', 'linear_regression', name => 'names_bad', features => ARRAY['"Units']);
SELECT model FROM ml_train('"sales"', 'Revenue', 'linear_regression', name => 'names_bad');
SELECT model FROM ml_train('"Sales"', '"Revenue"', 'linear_regression', name => 'names_bad', group_by => ARRAY['region']);

SELECT count(ml_drop_model(m)) FROM unnest(ARRAY['names_quoted', 'names_exact', 'names_grouped']) m;
DROP TABLE "Sales";

-- A query instead of a relation (ml_train, ml_retrain, ml_evaluate): read with the caller's
-- rights through a temporary view that is gone after the call
CREATE TABLE qs (id int, x float8, y float8, year int);
INSERT INTO qs SELECT i, i % 17, 3 * (i % 17) + (i % 5) * 0.1, 2020 + i % 5 FROM generate_series(1, 500) i;
SELECT model, rows_train + rows_test AS rows FROM ml_train('SELECT x, y FROM qs WHERE year < 2024', 'y', 'linear_regression',
                                                           name => 'names_query');
SELECT model, rows_train + rows_test AS rows FROM ml_train('  with t AS (SELECT x, y FROM qs) select * from t', 'y', 'ridge');
SELECT count(*) AS views_left FROM pg_class WHERE relname LIKE 'pgml\_query\_%' AND relpersistence = 't';
SELECT version, mode, rows_train + rows_test AS rows
FROM ml_retrain('names_query', 'SELECT x, y FROM qs WHERE year = 2024', mode => 'incremental');
SELECT (ml_evaluate('names_query', '(SELECT x, y FROM qs)')->>'r2')::float8 > 0.99 AS fits;
-- one SELECT only, and nothing that writes
\set SHOW_CONTEXT never
SELECT model FROM ml_train('SELECT x, y FROM qs; DROP TABLE qs', 'y', 'linear_regression', name => 'names_bad');
SELECT model FROM ml_train('WITH d AS (DELETE FROM qs RETURNING x, y) SELECT * FROM d', 'y', 'linear_regression', name => 'names_bad');
SELECT model FROM ml_train('SELECT x, y FROM qs', 'z', 'linear_regression', name => 'names_bad');
\set SHOW_CONTEXT errors
SELECT count(*) FROM qs;
SELECT count(ml_drop_model(m)) FROM unnest(ARRAY['names_query', 'query_y']) m;
DROP TABLE qs;
