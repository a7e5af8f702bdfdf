-- ml.kmeans_step: k-means trains through aggregates (statistics, then one Lloyd step per query)
SET pg_ml.progress = off;
CREATE TABLE pts (id int, a float8, b float8, c float8, g text);
INSERT INTO pts
SELECT i,
       (i % 3) * 10 + sin(i),
       (i % 3) * -5 + cos(i * 7),
       CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 5)::float8 END,
       CASE WHEN i % 13 = 0 THEN NULL ELSE (ARRAY['north', 'it''s', 'south"; DROP TABLE pts; --'])[1 + i % 3] END
FROM generate_series(1, 3000) i;
ANALYZE pts;

-- the aggregates and the row reader give the same clusters
SELECT model, rows_train, rows_test, round((metrics->>'silhouette')::numeric, 6) AS silhouette
FROM ml_train('pts', NULL, 'kmeans', name => 'km_agg', exclude => ARRAY['id'], hyperparams => '{"k": 3}');
SET pg_ml.stats_aggregate = off;
SELECT model, rows_train, rows_test, round((metrics->>'silhouette')::numeric, 6) AS silhouette
FROM ml_train('pts', NULL, 'kmeans', name => 'km_rows', exclude => ARRAY['id'], hyperparams => '{"k": 3}');
RESET pg_ml.stats_aggregate;
SELECT v.report->>'reader' AS reader, w.report->>'reader' AS row_reader,
       v.data_fingerprint = w.data_fingerprint AS same_rows,
       abs((v.train_metrics->>'inertia')::float8 / (w.train_metrics->>'inertia')::float8 - 1) < 1e-9 AS same_train_inertia,
       abs((v.test_metrics->>'inertia')::float8 / (w.test_metrics->>'inertia')::float8 - 1) < 1e-9 AS same_test_inertia,
       v.report->'imputed' AS imputed, v.report->>'kmeans_converged' AS converged,
       (v.report->>'kmeans_scans')::int BETWEEN 1 AND 31 AS scans_bounded
FROM ml_versions v, ml_versions w WHERE v.model = 'km_agg' AND w.model = 'km_rows';
-- the same partition of the rows; ml_predict works unchanged
SELECT count(DISTINCT ml_predict('km_agg', p)) AS clusters,
       count(DISTINCT (ml_predict('km_agg', p), ml_predict('km_rows', p))) AS pairs
FROM pts p;

-- parallel query: partial states on workers, combined in the leader; the same model
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT ml.kmeans_step('{1,2,2,2,42,0,0,0,0,0,-1,0,1,0,0,-1,0,0,1,1,0,0,10,10}', '{}', ARRAY[a, b], '{}') FROM pts;
SELECT model FROM ml_train('pts', NULL, 'kmeans', name => 'km_parallel', exclude => ARRAY['id'], hyperparams => '{"k": 3}');
SELECT abs((v.train_metrics->>'inertia')::float8 / (w.train_metrics->>'inertia')::float8 - 1) < 1e-9 AS same_inertia,
       v.report->>'reader' AS reader
FROM ml_versions v, ml_versions w WHERE v.model = 'km_parallel' AND w.model = 'km_agg';
-- one step by hand: rows per cluster, then the sums of a and b
SELECT s[11:12] AS counts, round(s[13]) AS sum_a0, round(s[15]) AS sum_a1
FROM (SELECT ml.kmeans_step('{1,2,2,2,42,0,0,0,0,0,-1,0,1,0,0,-1,0,0,1,1,0,0,10,10}', '{}', ARRAY[a, b], '{}') AS s FROM pts) q;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- incremental retraining warm-starts from the stored centres on the rows (kept path); refit
-- trains through the aggregates again
CREATE TABLE pts_more AS SELECT * FROM pts WHERE id <= 600;
SELECT version, mode, rows_train FROM ml_retrain('km_agg', 'pts_more', mode => 'incremental', deploy => 'always');
SELECT version, mode, rows_train FROM ml_retrain('km_agg', 'pts', mode => 'refit', deploy => 'never');
SELECT version, mode, report->>'reader' AS reader FROM ml_versions WHERE model = 'km_agg' ORDER BY version;

-- the state's text form is lossless
SELECT s::text::float8[] = s AS lossless
FROM (SELECT ml.kmeans_step('{1,2,2,2,42,0.2,0,0,0,0,-1,0,1,0,0,-1,0.5,0.5,3,3,0,0,1,1}', '{}', ARRAY[a, b], '{}') AS s FROM pts) q;

-- a relation whose rows change between the scans (a volatile filter)
CREATE VIEW pts_random AS SELECT a, b FROM pts WHERE random() < 0.5;
SELECT setseed(0.25);
SELECT model FROM ml_train('pts_random', NULL, 'kmeans', name => 'km_random', hyperparams => '{"k": 2}');

-- a database whose pg_ml predates ml.kmeans_step reads the rows
BEGIN;
ALTER EXTENSION pg_ml DROP AGGREGATE ml.kmeans_step(float8[], text[], float8[], text[]);
DROP AGGREGATE ml.kmeans_step(float8[], text[], float8[], text[]);
SELECT model FROM ml_train('pts', NULL, 'kmeans', name => 'km_old', exclude => ARRAY['id'], hyperparams => '{"k": 3}');
SELECT report->>'reader' AS reader FROM ml_versions WHERE model = 'km_old';
ROLLBACK;

-- errors: the aggregate checks what it is given
SELECT ml.kmeans_step(NULL, '{}', ARRAY[a, b], '{}') FROM pts;
SELECT ml.kmeans_step('{1,2,2,2,42,0,0,0,0,0,-1,0,1,0,0,-1,0,0,1,1,0,0,10,10}', NULL, ARRAY[a, b], '{}') FROM pts;
SELECT ml.kmeans_step('{2,2,2,2,42,0,0,0,0,0,-1,0,1,0,0,-1,0,0,1,1,0,0,10,10}', '{}', ARRAY[a, b], '{}') FROM pts;
SELECT ml.kmeans_step('{1,2,2,2,42,0,0,0,0,0,-1,0,1,0,0,-1,0,0,0,1,0,0,10,10}', '{}', ARRAY[a, b], '{}') FROM pts;
SELECT ml.kmeans_step('{1,2,2,2,42,0,0,0,0,0,-1,0,1,0,0,-1,0,0,1,1,0,0,10,10}', '{}', ARRAY[a], '{}') FROM pts;
SELECT ml.kmeans_step('{1,2,2,2,42,0,0,0,0,0,-1,0,1,0,0,-1,0,0,1,1,0,0,10,10}', '{}', ARRAY[a], ARRAY[g]) FROM pts;
SELECT ml.kmeans_step('{1,2,2,2,42,0,0,0,0,0,-1,0,1,0,0,-1,0,0,1,1,0,0,10,10}', '{x}', ARRAY[a, b], '{}') FROM pts;
SELECT ml.kmeans_step('{1,2,3,2,42,0,0,0,0,0,-1,1,1,0,2,-1,0,0,0,1,1,1,0,0,0,10,10,10}', '{x,x}', ARRAY[a], ARRAY[g]) FROM pts;
SELECT ml.kmeans_step('{1,2,3,2,42,0,0,0,0,0,-1,1,1,0,2,-1,0,0,0,1,1,1,0,0,0,10,10,10}', '{x,NULL}', ARRAY[a], ARRAY[g]) FROM pts;
SELECT ml.kmeans_step('{1,2,2,2,42,0,0,0,0,0,-1,0,1,0,0,-1,0,0,1,1,0,0,10,10}', '{{x},{y}}', ARRAY[a, b], '{}') FROM pts;
SELECT ml.kmeans_step_transfn(NULL, '{1}', '{}', '{1}', '{}');
-- the 0.2.0 aggregate ("any" arguments, in the extension's schema) is gone
SELECT ml_kmeans_step('{1,2,2,2,42,0,0,0,0,0,-1,0,1,0,0,-1,0,0,1,1,0,0,10,10}', '{}', a, b) FROM pts;
SELECT ml.kmeans_step_combinefn('{1}', '{1}');

DROP VIEW pts_random;
DROP TABLE pts, pts_more;
SELECT count(ml_drop_model(m)) FROM unnest(ARRAY['km_agg', 'km_rows', 'km_parallel']) m;
