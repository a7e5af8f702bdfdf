-- Least squares that is right or says why not: the linear fit equilibrates whatever the
-- scaling, stores its rank and condition number in the version's report, and warns (naming
-- the columns) when the fit is rank-deficient or ill-conditioned.
SET extra_float_digits = 0;
\set VERBOSITY default
SET client_min_messages = warning;

-- epoch seconds next to a small-valued rate, with scale none: the rate's coefficient is 3
-- (it came back as -1.7e-21 with r2 0.000005 and no warning)
CREATE TABLE ts_rate (t float8, rate float8, y float8);
INSERT INTO ts_rate
SELECT 1.7e9 + i * 86400, (i % 10) * 0.01 + (i % 7) * 0.003,
       5 + 3 * ((i % 10) * 0.01 + (i % 7) * 0.003) + 2e-9 * (1.7e9 + i * 86400)
FROM generate_series(1, 200) i;
SELECT model, version FROM ml_train('ts_rate', 'y', algorithm => 'linear_regression', name => 'ts_rate',
                                    preprocess => '{"scale": "none"}', test_size => 0);
SELECT round((coefficients->'coefficients'->>'rate')::numeric, 6) AS rate,
       round((coefficients->'coefficients'->>'t')::numeric, 15) AS t,
       round((train_metrics->>'r2')::numeric, 6) AS r2,
       report->'rank' AS rank, (report->>'condition_number')::float8 < 1e4 AS well_conditioned,
       report ? 'collinear' AS has_collinear
FROM ml_versions WHERE model = 'ts_rate';

-- rank-deficient: b = 2a + 3. WARNING naming a and b; the report says rank 2 of 3
CREATE TABLE dep (a float8, b float8, c float8, y float8);
INSERT INTO dep SELECT i, 2 * i + 3, (i * 7) % 13, 1 + i + (i * 7) % 13 + (i % 5) * 0.1 FROM generate_series(1, 100) i;
SELECT model, version FROM ml_train('dep', 'y', algorithm => 'linear_regression', name => 'dep');
SELECT report->'rank' AS rank, report->'features' AS features, report->'condition_number' AS condition_number,
       report->'collinear' AS collinear
FROM ml_versions WHERE model = 'dep';
-- the same with scale none, and an incremental retrain: the same warning each time
SELECT model, version FROM ml_train('dep', 'y', algorithm => 'linear_regression', name => 'dep_none',
                                    preprocess => '{"scale": "none"}');
INSERT INTO dep SELECT i, 2 * i + 3, (i * 7) % 13, 1 + i + (i * 7) % 13 + (i % 5) * 0.1 FROM generate_series(101, 150) i;
SELECT version, mode FROM ml_retrain('dep', 'dep', mode => 'incremental');
SELECT version, report->'rank' AS rank, report->'collinear' AS collinear FROM ml_versions WHERE model = 'dep' ORDER BY version;

-- a constant column: WARNING naming it, coefficient 0
CREATE TABLE konst (a float8, k float8, y float8);
INSERT INTO konst SELECT i, 7.25, 2 * i + (i % 3) FROM generate_series(1, 50) i;
SELECT model, version FROM ml_train('konst', 'y', algorithm => 'linear_regression', name => 'konst', features => ARRAY['a', 'k']);
SELECT report->'rank' AS rank, report->'constant' AS constant, coefficients->'coefficients'->'k' AS k
FROM ml_versions WHERE model = 'konst';

-- ill-conditioned: b is a plus noise of 1e-9 (condition number about 1e10). Double statistics
-- see a dependence; the precise pass (the rows read again into double-double statistics) solves
-- it, and the WARNING names a and b: the data's own rounding leaves fewer than 7 digits
CREATE TABLE near (a float8, b float8, y float8);
INSERT INTO near SELECT i, i + 1e-9 * ((i * 37) % 11 - 5), 2 * i + (i % 3) FROM generate_series(1, 100) i;
SELECT model, version FROM ml_train('near', 'y', algorithm => 'linear_regression', name => 'near');
SELECT report->'rank' AS rank, (report->>'condition_number')::float8 > 1e9 AS ill_conditioned,
       report->'collinear' AS collinear, report->'precision' AS precision
FROM ml_versions WHERE model = 'near';
-- noise of 1e-4 (condition number about 2e5): the coefficients are precise; the intercept is
-- what the large, opposite contributions of a and b at their means leave, and it warns
CREATE TABLE near4 (a float8, b float8, y float8);
INSERT INTO near4 SELECT i, i + 1e-4 * ((i * 37) % 11 - 5), 2 * i + (i % 3) FROM generate_series(1, 100) i;
SELECT model, version FROM ml_train('near4', 'y', algorithm => 'linear_regression', name => 'near4');
SELECT report->'rank' AS rank, round((report->>'digits')::numeric, 1) AS digits, report->'precision' AS precision
FROM ml_versions WHERE model = 'near4';

-- Wampler1 (NIST): y = 1 + x + ... + x^5, x = 0 .. 20. The intercept is 1 next to features
-- up to 3.2e6: from double statistics it had 5.9 digits; the precise pass gives all of them
CREATE TABLE wampler1 (x1 float8, x2 float8, x3 float8, x4 float8, x5 float8, y float8);
INSERT INTO wampler1 SELECT x, x^2, x^3, x^4, x^5, 1 + x + x^2 + x^3 + x^4 + x^5 FROM generate_series(0, 20) x;
SELECT model, version FROM ml_train('wampler1', 'y', algorithm => 'linear_regression', name => 'wampler1', test_size => 0);
SELECT coefficients->'intercept' AS intercept, coefficients->'coefficients' AS coefficients,
       report->'precision' AS precision FROM ml_versions WHERE model = 'wampler1';

-- a categorical column's full one-hot group sums to the intercept: by design, no warning
CREATE TABLE cat (x float8, region text, y float8);
INSERT INTO cat SELECT i, (ARRAY['north', 'south', 'west'])[1 + i % 3], i + (i % 3) * 10 + (i % 7) * 0.1
FROM generate_series(1, 90) i;
SELECT model, version FROM ml_train('cat', 'y', algorithm => 'linear_regression', name => 'cat');
SELECT report->'rank' AS rank, report->'features' AS features, report ? 'collinear' AS has_collinear
FROM ml_versions WHERE model = 'cat';

-- fit_intercept => false: a line through the origin (NIST NoInt1: 2.07438016528926)
CREATE TABLE noint1 (x float8, y float8);
INSERT INTO noint1 SELECT 60 + i, 130 + i FROM generate_series(0, 10) i;
SELECT model, version FROM ml_train('noint1', 'y', algorithm => 'linear_regression', name => 'noint1',
                                    hyperparams => '{"fit_intercept": false}', test_size => 0);
SELECT round((coefficients->'coefficients'->>'x')::numeric, 13) AS x, coefficients->'intercept' AS intercept,
       hyperparams FROM ml_versions WHERE model = 'noint1';
SELECT * FROM ml_train('noint1', 'y', algorithm => 'linear_regression', hyperparams => '{"fit_intercept": 2}');

SELECT count(ml_drop_model(m)) FROM unnest(ARRAY['ts_rate', 'dep', 'dep_none', 'konst', 'near', 'near4', 'wampler1', 'cat', 'noint1']) m;
DROP TABLE ts_rate, dep, konst, near, near4, wampler1, cat, noint1;
