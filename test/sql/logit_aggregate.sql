-- ml.logit_step: binary logistic_regression trains through aggregates (the class statistics,
-- then one Newton step per query, then ml.eval_stats): the same model as the row reader's.
-- Newton's method ends at the optimum (to about 1e-8); the row reader's L-BFGS stops at its tol
-- (1e-6 on the gradient per row: some 1e-5 short of the optimum), so it is compared here with
-- tol 1e-12.
SET pg_ml.progress = off;
CREATE TABLE lgt (id int, color text, size text, x float8, z numeric, flag bool, won bool, lbl int, cls text);
INSERT INTO lgt
SELECT i,
       CASE WHEN i % 11 = 0 THEN NULL ELSE (ARRAY['red', 'green', 'blue'])[1 + i % 3] END,
       (ARRAY['s', 'm', 'l', 'xl'])[1 + (i * 7) % 4],
       CASE WHEN i % 13 = 0 THEN NULL ELSE sin(i) * 3 + (i % 3) END,
       round(((i % 17) * 0.5 + cos(i * 0.7))::numeric, 3),
       i % 5 = 0,
       CASE WHEN i % 97 = 0 THEN NULL ELSE sin(i) * 3 + (i % 3) * 0.5 - (i % 17) * 0.2 + 2 * cos(i * 1.3) > 0 END,
       ((i % 17) + 4 * sin(i * 0.3) > 8)::int,
       (ARRAY['a', 'b', 'c'])[1 + ((i % 3) + (i % 7 > 3)::int) % 3]
FROM generate_series(1, 3000) i;
ANALYZE lgt;

-- two versions' metrics agree to 1e-6: the same counts, the same numbers
CREATE FUNCTION metrics_match(a jsonb, b jsonb) RETURNS boolean LANGUAGE sql AS $$
  SELECT a->'confusion_matrix' = b->'confusion_matrix' AND a->'classes' = b->'classes' AND a->'rows' = b->'rows'
     AND (a ? 'roc_auc') = (b ? 'roc_auc') AND (a ? 'log_loss') = (b ? 'log_loss')
     AND (SELECT coalesce(bool_and(abs((a->>k)::float8 - (b->>k)::float8) < 1e-6), true)
            FROM unnest(ARRAY['accuracy', 'precision', 'recall', 'f1', 'log_loss', 'roc_auc']) k)
$$;
-- two models: the same rows, metrics, coefficients and probabilities (1e-6)
CREATE FUNCTION same_models(m1 text, m2 text) RETURNS TABLE (readers text, same_rows boolean, same_metrics boolean,
                                                             same_coefficients boolean, same_proba boolean)
LANGUAGE sql AS $$
  SELECT (v.report->>'reader') || ' / ' || (w.report->>'reader'),
         v.data_fingerprint = w.data_fingerprint AND v.rows_train = w.rows_train AND v.rows_test = w.rows_test
           AND v.report - 'reader' - 'newton_scans' - 'newton_converged' - 'newton_sample_scans' = w.report - 'reader',
         metrics_match(v.train_metrics, w.train_metrics) AND
           CASE WHEN v.test_metrics IS NULL THEN w.test_metrics IS NULL ELSE metrics_match(v.test_metrics, w.test_metrics) END,
         (SELECT count(*) > 1 AND bool_and(abs(a.importance - b.importance) < 1e-6)
            FROM ml_feature_importance(m1) a JOIN ml_feature_importance(m2) b USING (feature)),
         (SELECT max(abs(p - q)) < 1e-6 FROM lgt t, unnest(ml_predict_proba(m1, t), ml_predict_proba(m2, t)) u(p, q))
  FROM ml_versions v, ml_versions w
  WHERE v.model = m1 AND w.model = m2 AND v.deployed AND w.deployed
$$;

-- a boolean target, categoricals with NULLs, imputed numbers
SELECT model, rows_train, rows_test, round((metrics->>'accuracy')::numeric, 6) AS accuracy
FROM ml_train('lgt', 'won', 'logistic_regression', name => 'lg_agg', exclude => ARRAY['id', 'lbl', 'cls']);
SET pg_ml.stats_aggregate = off;
SELECT model, rows_train, rows_test, round((metrics->>'accuracy')::numeric, 6) AS accuracy
FROM ml_train('lgt', 'won', 'logistic_regression', name => 'lg_rows', exclude => ARRAY['id', 'lbl', 'cls'],
              hyperparams => '{"tol": 1e-12}');
RESET pg_ml.stats_aggregate;
SELECT * FROM same_models('lg_agg', 'lg_rows');
SELECT report->>'newton_converged' AS converged, (report->>'newton_scans')::int BETWEEN 2 AND 10 AS few_scans,
       (SELECT count(*) FROM ml_training_log('lg_agg')) = (report->>'newton_scans')::int AS logged
FROM ml_versions WHERE model = 'lg_agg';

-- an integer target, a small C, min-max scaling, constant imputation, another split
SELECT model, rows_train, rows_test FROM ml_train('lgt', 'lbl', 'logistic_regression', name => 'lg_int_agg',
       exclude => ARRAY['id', 'won', 'cls'], hyperparams => '{"C": 0.05}', test_size => 0.3,
       preprocess => '{"scale": "minmax", "columns": {"x": {"impute": "constant", "impute_value": -1}}}');
SET pg_ml.stats_aggregate = off;
SELECT model FROM ml_train('lgt', 'lbl', 'logistic_regression', name => 'lg_int_rows',
       exclude => ARRAY['id', 'won', 'cls'], hyperparams => '{"C": 0.05, "tol": 1e-12}', test_size => 0.3,
       preprocess => '{"scale": "minmax", "columns": {"x": {"impute": "constant", "impute_value": -1}}}');
RESET pg_ml.stats_aggregate;
SELECT * FROM same_models('lg_int_agg', 'lg_int_rows');

-- no test rows
SELECT model, rows_train, rows_test FROM ml_train('lgt', 'won', 'logistic_regression', name => 'lg_all_agg',
       exclude => ARRAY['id', 'lbl', 'cls'], test_size => 0);
SET pg_ml.stats_aggregate = off;
SELECT model FROM ml_train('lgt', 'won', 'logistic_regression', name => 'lg_all_rows',
       exclude => ARRAY['id', 'lbl', 'cls'], test_size => 0, hyperparams => '{"tol": 1e-12}');
RESET pg_ml.stats_aggregate;
SELECT * FROM same_models('lg_all_agg', 'lg_all_rows');

-- a relation large enough for the start on a page sample (TABLESAMPLE): the same model
CREATE TABLE lgt_big AS SELECT (i % 7)::float8 AS a, sin(i * 0.01) AS b, (ARRAY['u', 'v'])[1 + i % 2] AS g,
       sin(i * 0.01) + (i % 7) * 0.3 - 1 + sin(i * 1.7) * 2 > 0.5 * (i % 2) AS k
FROM generate_series(1, 150000) i;
ANALYZE lgt_big;
SELECT model, rows_train, rows_test FROM ml_train('lgt_big', 'k', 'logistic_regression', name => 'lg_big_agg');
SET pg_ml.stats_aggregate = off;
SELECT model FROM ml_train('lgt_big', 'k', 'logistic_regression', name => 'lg_big_rows', hyperparams => '{"tol": 1e-12}');
RESET pg_ml.stats_aggregate;
SELECT (report->>'newton_sample_scans')::int > 0 AS sampled, (report->>'newton_scans')::int <= 4 AS few_scans,
       report->>'newton_converged' AS converged
FROM ml_versions WHERE model = 'lg_big_agg';
SELECT (v.report->>'reader') || ' / ' || (w.report->>'reader') AS readers,
       metrics_match(v.train_metrics, w.train_metrics) AND metrics_match(v.test_metrics, w.test_metrics) AS same_metrics,
       (SELECT bool_and(abs(a.importance - b.importance) < 1e-6)
          FROM ml_feature_importance('lg_big_agg') a JOIN ml_feature_importance('lg_big_rows') b USING (feature)) AS same_coefficients
FROM ml_versions v, ml_versions w WHERE v.model = 'lg_big_agg' AND w.model = 'lg_big_rows';
-- a view cannot be sampled: full scans only, the same model
CREATE VIEW lgt_big_v AS SELECT * FROM lgt_big;
SELECT model FROM ml_train('lgt_big_v', 'k', 'logistic_regression', name => 'lg_big_view');
SELECT (report->>'newton_sample_scans')::int AS sample_scans,
       (SELECT bool_and(abs(a.importance - b.importance) < 1e-6)
          FROM ml_feature_importance('lg_big_view') a JOIN ml_feature_importance('lg_big_agg') b USING (feature)) AS same_coefficients
FROM ml_versions WHERE model = 'lg_big_view';

-- what stays on the row reader: three classes (with and without test rows), penalty 'none'
-- (its standard errors need the rows), median imputation
SELECT model FROM ml_train('lgt', 'cls', 'logistic_regression', name => 'lg_multi', exclude => ARRAY['id', 'lbl', 'won']);
SELECT model FROM ml_train('lgt', 'cls', 'logistic_regression', name => 'lg_multi_all', exclude => ARRAY['id', 'lbl', 'won'],
                           test_size => 0);
SELECT model FROM ml_train('lgt', 'won', 'logistic_regression', name => 'lg_none', exclude => ARRAY['id', 'lbl', 'cls'],
                           hyperparams => '{"penalty": "none"}');
SELECT model FROM ml_train('lgt', 'won', 'logistic_regression', name => 'lg_median', exclude => ARRAY['id', 'lbl', 'cls'],
                           preprocess => '{"impute": "median"}');
SELECT model, report->>'reader' AS reader, report ? 'newton_scans' AS newton FROM ml_versions
WHERE model IN ('lg_multi', 'lg_multi_all', 'lg_none', 'lg_median') ORDER BY model;

-- parallel query: partial states on workers, combined in the leader; the same model
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT ml.logit_step('{1,1,0,0}', '\x00', '{f,t}', 0.5, 0.2, NULL, won::text, ARRAY[x], '{}') FROM lgt;
SELECT model FROM ml_train('lgt', 'won', 'logistic_regression', name => 'lg_parallel', exclude => ARRAY['id', 'lbl', 'cls']);
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT * FROM same_models('lg_parallel', 'lg_rows');

-- ml.logit_step is internal: malformed arguments are errors
SELECT ml.logit_step(NULL, '\x00', '{f,t}', 0.5, 0.2, NULL, 'true', ARRAY[1.0::float8], '{}');
SELECT ml.logit_step('{2,1,0,0}', (SELECT blob FROM ml.versions v JOIN ml.models m ON m.id = v.model_id
                                   WHERE m.name = 'lg_agg' LIMIT 1), '{f,t}', 0.5, 0.2, NULL, 'true', ARRAY[1.0::float8], '{}');
SELECT ml.logit_step('{1,1,0,0}', (SELECT blob FROM ml.versions v JOIN ml.models m ON m.id = v.model_id
                                   WHERE m.name = 'lg_agg' LIMIT 1), '{f,t}', 0.5, 0.2, NULL, 'true', ARRAY[1.0::float8], '{}');
SELECT ml.logit_step_combinefn('{7064,1,1,0,0,0,0,0,0,0,0,0}', '{1,2,3}');
SELECT ml_drop_model(m) FROM unnest(ARRAY['lg_agg', 'lg_rows', 'lg_int_agg', 'lg_int_rows', 'lg_all_agg', 'lg_all_rows',
                                          'lg_multi', 'lg_multi_all', 'lg_none', 'lg_median', 'lg_parallel',
                                          'lg_big_agg', 'lg_big_rows', 'lg_big_view']) m;
DROP VIEW lgt_big_v;
DROP TABLE lgt, lgt_big;
DROP FUNCTION same_models(text, text);
DROP FUNCTION metrics_match(jsonb, jsonb);
