-- ml.train_stats: the linear family's training statistics as one aggregate query
SET pg_ml.progress = off;
CREATE TABLE sales (id int, region text, channel text, units float8, price float8, promo bool, revenue float8);
INSERT INTO sales
SELECT i,
       (ARRAY['north', 'south', 'east', 'west'])[1 + i % 4],
       CASE WHEN i % 9 = 0 THEN NULL ELSE (ARRAY['web', 'store'])[1 + i % 2] END,
       CASE WHEN i % 13 = 0 THEN NULL ELSE (i % 17)::float8 END,
       10 + (i % 7),
       i % 5 = 0,
       3 * coalesce(i % 17, 8) + 2 * (10 + i % 7) + CASE WHEN i % 4 = 1 THEN 5 ELSE 0 END + (i % 3) * 0.1
FROM generate_series(1, 3000) i;
ANALYZE sales;

-- the aggregate and the row reader give the same model (one query either way)
SELECT model, rows_train, rows_test, round((metrics->>'r2')::numeric, 10) AS r2
FROM ml_train('sales', 'revenue', 'linear_regression', name => 'sales_agg', exclude => ARRAY['id']);
SET pg_ml.stats_aggregate = off;
SELECT model, rows_train, rows_test, round((metrics->>'r2')::numeric, 10) AS r2
FROM ml_train('sales', 'revenue', 'linear_regression', name => 'sales_rows', exclude => ARRAY['id']);
RESET pg_ml.stats_aggregate;
SELECT v.report->>'reader' AS reader, v.data_fingerprint = w.data_fingerprint AS same_rows,
       v.report->'imputed' AS imputed,
       (SELECT max(abs(a.importance - b.importance)) < 1e-9
          FROM ml_feature_importance('sales_agg') a JOIN ml_feature_importance('sales_rows') b USING (feature)) AS same_coefficients
FROM ml_versions v, ml_versions w WHERE v.model = 'sales_agg' AND w.model = 'sales_rows';
SELECT report->>'reader' AS reader FROM ml_versions WHERE model = 'sales_rows';

-- dedupe needs the rows: the row reader is used
SELECT model FROM ml_train('sales', 'revenue', 'ridge', name => 'sales_dedupe', exclude => ARRAY['id'],
                           preprocess => '{"dedupe": true}');
SELECT report->>'reader' AS reader FROM ml_versions WHERE model = 'sales_dedupe';

-- parallel query: partial aggregates on workers, combined in the leader; the same model
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT region, ml.train_stats('{1,5,1,0,42,0.2,0,100,256,1,1,1,1,0,0,0}', revenue, NULL,
                              ARRAY[units, price, promo::int::float8], ARRAY[region, channel]) FROM sales GROUP BY region;
SELECT model, rows_train, rows_test, round((metrics->>'r2')::numeric, 10) AS r2
FROM ml_train('sales', 'revenue', 'linear_regression', name => 'sales_parallel', exclude => ARRAY['id']);
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- incremental retraining adds the new rows' statistics
CREATE TABLE sales_more AS SELECT * FROM sales WHERE id <= 500;
SELECT version, mode, rows_train FROM ml_retrain('sales_agg', 'sales_more', mode => 'incremental', deploy => 'always');

-- the state's text form is lossless
SELECT s::text::float8[] = s AS lossless
FROM (SELECT ml.train_stats('{1,2,1,0,42,0.2,0,100,256,1,1,0,0}', revenue, NULL, ARRAY[units, price], '{}') AS s FROM sales) q;

-- errors: the aggregate checks what it is given
SELECT ml.train_stats(NULL, revenue, NULL, ARRAY[units], '{}') FROM sales;
SELECT ml.train_stats('{1,2,1,0,42,0.2,0,100,256,1,1,0,0}', revenue, NULL, ARRAY[units], '{}') FROM sales;
SELECT ml.train_stats('{1,1,1,0,42,1.5,0,100,256,1,1,0}', revenue, NULL, ARRAY[units], '{}') FROM sales;
SELECT ml.train_stats('{1,1,1,0,42,0.2,0,100,256,1,1,0}', revenue, NULL, '{}', ARRAY[region]) FROM sales;
SELECT ml.train_stats('{1,1,1,0,42,0.2,0,100,256,1,1,0}', revenue, NULL, NULL, '{}') FROM sales;
SELECT ml.train_stats('{1,1,1,0,42,0.2,0,100,256,1,1,0}', revenue, NULL, ARRAY[[units]], '{}') FROM sales;
SELECT ml.train_stats('{1,1,1,0,42,0.2,0,100,256,1,1,0}', NULL, region, ARRAY[units], '{}') FROM sales;
SELECT ml.train_stats_transfn(NULL, '{1}', 1, NULL, '{2}', '{}');
-- the overloads with one float8 argument per numeric feature (8, 16, 32, 64 or 95 of them, NULL
-- after the features) give the state the arrays give; fewer slots than features are an error
SELECT ml.train_stats('{1,3,1,0,42,0.2,0,100,256,1,1,0,0,1}', revenue, NULL, ARRAY[region], units, price,
                      NULL, NULL, NULL, NULL, NULL, NULL) =
       ml.train_stats('{1,3,1,0,42,0.2,0,100,256,1,1,0,0,1}', revenue, NULL, ARRAY[units, price], ARRAY[region]) AS same_state
FROM sales;
SELECT ml.train_stats('{1,9,1,0,42,0.2,0,100,256,1,1,0,0,0,0,0,0,0,0,0}', revenue, NULL, NULL, units, units, units, units,
                      units, units, units, units) FROM sales;
SELECT ml.train_stats('{1,2,1,0,42,0.2,0,100,256,1,1,0,1}', revenue, NULL, NULL, units, NULL, NULL, NULL, NULL, NULL,
                      NULL, NULL) FROM sales;
-- the 0.2.0 aggregate ("any" arguments, in the extension's schema) is gone
SELECT ml_train_stats('{1,1,1,0,42,0.2,0,100,256,1,1,0}', revenue, units) FROM sales;

-- 150 feature columns: the aggregates take the features as two arrays, so there is no argument
-- limit (0.2.0 passed one argument per column: 54023 cannot pass more than 100 arguments)
DO $$
BEGIN
    EXECUTE 'CREATE TABLE wide AS SELECT i AS id, '
        || (SELECT string_agg(format('sin(i * %s) AS f%s', k, k), ', ') FROM generate_series(1, 140) k) || ', '
        || (SELECT string_agg(format('(ARRAY[''a'', ''b'', ''c''])[1 + (i * %s) %% 3] AS c%s', k, k), ', ')
              FROM generate_series(1, 10) k)
        || ', sin(i) + 2 * sin(2 * i) + CASE WHEN i % 3 = 0 THEN 0.5 ELSE 0 END AS y'
        || ', CASE WHEN sin(i) + 2 * sin(2 * i) > 0 THEN ''hi'' ELSE ''lo'' END AS label FROM generate_series(1, 600) i';
END
$$;
ANALYZE wide;
SELECT model, rows_train, rows_test FROM ml_train('wide', 'y', 'linear_regression', name => 'wide_linear', exclude => ARRAY['id', 'label']);
SELECT model, rows_train, rows_test FROM ml_train('wide', 'y', 'ridge', name => 'wide_ridge', exclude => ARRAY['id', 'label']);
SELECT model, rows_train, rows_test FROM ml_train('wide', 'label', 'logistic_regression', name => 'wide_logistic',
                                                  exclude => ARRAY['id', 'y']);
SELECT model, rows_train, rows_test FROM ml_train('wide', 'label', 'naive_bayes', name => 'wide_nb', exclude => ARRAY['id', 'y']);
SELECT model, rows_train, rows_test FROM ml_train('wide', NULL, 'kmeans', name => 'wide_kmeans', exclude => ARRAY['id', 'y', 'label'],
                                                  hyperparams => '{"k": 3}');
SET pg_ml.stats_aggregate = off;
SELECT model FROM ml_train('wide', 'y', 'ridge', name => 'wide_ridge_rows', exclude => ARRAY['id', 'label']);
RESET pg_ml.stats_aggregate;
SELECT m.name, v.report->>'reader' AS reader,
       CASE WHEN m.task = 'regression' THEN (m.test_metrics->>'r2')::float8 > 0.95
            WHEN m.task = 'classification' THEN (m.test_metrics->>'accuracy')::float8 > 0.7
            ELSE (m.train_metrics->>'inertia')::float8 > 0 END AS good,
       (SELECT count(*) FROM ml_model_columns(m.name) c WHERE c.role = 'feature') AS features
FROM ml_models m JOIN ml_versions v ON v.model = m.name AND v.deployed
WHERE m.name LIKE 'wide\_%' ORDER BY m.name;
SELECT (SELECT max(abs(a.importance - b.importance)) < 1e-9
          FROM ml_feature_importance('wide_ridge') a JOIN ml_feature_importance('wide_ridge_rows') b USING (feature)) AS same_coefficients,
       (SELECT max(abs(ml_predict('wide_ridge', w) - ml_predict('wide_ridge_rows', w))) < 1e-9 FROM wide w) AS same_predictions;

-- 70 numeric features: ml.train_stats' 95-slot form (the classification scans' forms stop at
-- 64 slots: they take the arrays), the same model as the row reader's
DO $$
BEGIN
    EXECUTE 'CREATE TABLE w70 AS SELECT i AS id, '
        || (SELECT string_agg(format('CASE WHEN (i + %s) %% 11 = 0 THEN NULL ELSE sin(i * %s) END AS f%s', k, k, k), ', ')
              FROM generate_series(1, 70) k)
        || ', sin(i) + 2 * sin(2 * i) AS y, sin(i) + cos(i * 0.37) > 0 AS label FROM generate_series(1, 400) i';
END
$$;
SELECT model FROM ml_train('w70', 'y', 'ridge', name => 'w70_agg', exclude => ARRAY['id', 'label']);
SELECT model FROM ml_train('w70', 'label', 'logistic_regression', name => 'w70_logit', exclude => ARRAY['id', 'y']);
SET pg_ml.stats_aggregate = off;
SELECT model FROM ml_train('w70', 'y', 'ridge', name => 'w70_rows', exclude => ARRAY['id', 'label']);
SELECT model FROM ml_train('w70', 'label', 'logistic_regression', name => 'w70_logit_rows', exclude => ARRAY['id', 'y'],
                           hyperparams => '{"tol": 1e-12}'); -- the row reader's L-BFGS to Newton's optimum (logit_aggregate)
RESET pg_ml.stats_aggregate;
SELECT v.report->>'reader' AS reader, w.report->>'reader' AS row_reader, v.data_fingerprint = w.data_fingerprint AS same_rows,
       (SELECT max(abs(a.importance - b.importance)) < 1e-9
          FROM ml_feature_importance('w70_agg') a JOIN ml_feature_importance('w70_rows') b USING (feature)) AS same_coefficients
FROM ml_versions v, ml_versions w WHERE v.model = 'w70_agg' AND w.model = 'w70_rows';
SELECT (SELECT max(abs(a.importance - b.importance)) < 1e-6
          FROM ml_feature_importance('w70_logit') a JOIN ml_feature_importance('w70_logit_rows') b USING (feature)) AS same_logistic;
SELECT count(ml_drop_model(m)) FROM unnest(ARRAY['w70_agg', 'w70_rows', 'w70_logit', 'w70_logit_rows']) m;
DROP TABLE w70;

-- numeric beyond float8's range and infinite dates: read as the row reader reads them (a numeric
-- out of float8's range is 22003 naming the column, an infinite date is +-Infinity, named in the
-- error or dropped), not failing an unnamed cast
CREATE TABLE extreme (a numeric, d date, ts timestamptz, y float8);
INSERT INTO extreme SELECT i, date '2020-01-01' + i, timestamptz '2020-01-01 00:00:00.25+00' + i * interval '1 day 1 second', i
FROM generate_series(1, 50) i;
INSERT INTO extreme VALUES (1e400, '2020-01-01', '2020-01-01', 3);
\set SHOW_CONTEXT never
SELECT model FROM ml_train('extreme', 'y', 'ridge', name => 'extreme_agg');
SET pg_ml.stats_aggregate = off;
SELECT model FROM ml_train('extreme', 'y', 'ridge', name => 'extreme_rows');
RESET pg_ml.stats_aggregate;
UPDATE extreme SET a = 1, d = 'infinity' WHERE y = 3;
SELECT model FROM ml_train('extreme', 'y', 'ridge', name => 'extreme_agg');
\set SHOW_CONTEXT errors
SELECT model, rows_train FROM ml_train('extreme', 'y', 'ridge', name => 'extreme_agg', preprocess => '{"nonfinite": "drop"}');
SET pg_ml.stats_aggregate = off;
SELECT model, rows_train FROM ml_train('extreme', 'y', 'ridge', name => 'extreme_rows', preprocess => '{"nonfinite": "drop"}');
RESET pg_ml.stats_aggregate;
SELECT v.report->>'reader' AS reader, w.report->>'reader' AS row_reader, v.data_fingerprint = w.data_fingerprint AS same_values
FROM ml_versions v, ml_versions w WHERE v.model = 'extreme_agg' AND w.model = 'extreme_rows';

DROP TABLE sales, sales_more, wide, extreme;
SELECT count(ml_drop_model(m)) FROM unnest(ARRAY['sales_agg', 'sales_rows', 'sales_dedupe', 'sales_parallel']) m;
SELECT count(ml_drop_model(name)) FROM ml_models WHERE name LIKE 'wide\_%' OR name LIKE 'extreme\_%';
