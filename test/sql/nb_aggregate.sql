-- naive_bayes through aggregates: statistics grouped by class and split, then ml.eval_stats
SET pg_ml.progress = off;
CREATE TABLE nbt (id int, color text, size text, x float8, y float8, flag bool, cls text, lbl int);
INSERT INTO nbt
SELECT i,
       CASE WHEN i % 11 = 0 THEN NULL ELSE (ARRAY['red', 'green', 'blue'])[1 + i % 3] END,
       (ARRAY['s', 'm', 'l', 'xl'])[1 + (i * 7) % 4],
       CASE WHEN i % 13 = 0 THEN NULL ELSE sin(i) * 3 + (i % 3) END,
       (i % 17) * 0.5 + cos(i * 0.7),
       i % 5 = 0,
       CASE WHEN i % 97 = 0 THEN NULL ELSE (ARRAY['a', 'b', 'c'])[1 + ((i % 3) + (i % 7 > 3)::int + (i % 17 > 12)::int) % 3] END,
       ((i % 17) > 8)::int
FROM generate_series(1, 3000) i;
ANALYZE nbt;

-- two versions' metrics agree: the same counts, the same numbers to 1e-9
CREATE FUNCTION metrics_match(a jsonb, b jsonb) RETURNS boolean LANGUAGE sql AS $$
  SELECT a->'confusion_matrix' = b->'confusion_matrix' AND a->'classes' = b->'classes' AND a->'rows' = b->'rows'
     AND a->'per_class' IS NOT NULL AND (a ? 'roc_auc') = (b ? 'roc_auc') AND (a ? 'log_loss') = (b ? 'log_loss')
     AND (SELECT coalesce(bool_and(abs((a->>k)::float8 - (b->>k)::float8) < 1e-9), true)
            FROM unnest(ARRAY['accuracy', 'precision', 'recall', 'f1', 'log_loss', 'roc_auc']) k)
$$;
-- two models give the same probabilities on every row of nbt, and their versions agree
CREATE FUNCTION same_models(m1 text, m2 text) RETURNS TABLE (readers text, same_rows boolean, same_metrics boolean,
                                                             same_log boolean, same_proba boolean)
LANGUAGE sql AS $$
  SELECT (v.report->>'reader') || ' / ' || (w.report->>'reader'),
         v.data_fingerprint = w.data_fingerprint AND v.rows_train = w.rows_train AND v.rows_test = w.rows_test
           AND v.report - 'reader' = w.report - 'reader',
         metrics_match(v.train_metrics, w.train_metrics) AND
           CASE WHEN v.test_metrics IS NULL THEN w.test_metrics IS NULL ELSE metrics_match(v.test_metrics, w.test_metrics) END,
         (SELECT bool_and(abs(a.loss - b.loss) < 1e-9) FROM ml_training_log(m1) a JOIN ml_training_log(m2) b USING (iteration)),
         (SELECT max(abs(p - q)) < 1e-9 FROM nbt t, unnest(ml_predict_proba(m1, t), ml_predict_proba(m2, t)) u(p, q))
  FROM ml_versions v, ml_versions w
  WHERE v.model = m1 AND w.model = m2 AND v.deployed AND w.deployed
$$;

-- the aggregate and the row reader give the same model and metrics
SELECT model, rows_train, rows_test, round((metrics->>'accuracy')::numeric, 10) AS accuracy
FROM ml_train('nbt', 'cls', 'naive_bayes', name => 'nb_agg', exclude => ARRAY['id', 'lbl']);
SET pg_ml.stats_aggregate = off;
SELECT model, rows_train, rows_test, round((metrics->>'accuracy')::numeric, 10) AS accuracy
FROM ml_train('nbt', 'cls', 'naive_bayes', name => 'nb_rows', exclude => ARRAY['id', 'lbl']);
RESET pg_ml.stats_aggregate;
SELECT * FROM same_models('nb_agg', 'nb_rows');
SELECT train_metrics ? 'roc_auc_sample_rows' AS sampled, report->'imputed' AS imputed FROM ml_versions WHERE model = 'nb_agg';

-- an integer target, min-max scaling, constant imputation, no test rows
SELECT model, rows_train, rows_test FROM ml_train('nbt', 'lbl', 'naive_bayes', name => 'nb_int_agg', exclude => ARRAY['id', 'cls'],
       preprocess => '{"scale": "minmax", "columns": {"x": {"impute": "constant", "impute_value": -1}}}', test_size => 0.3);
SET pg_ml.stats_aggregate = off;
SELECT model FROM ml_train('nbt', 'lbl', 'naive_bayes', name => 'nb_int_rows', exclude => ARRAY['id', 'cls'],
       preprocess => '{"scale": "minmax", "columns": {"x": {"impute": "constant", "impute_value": -1}}}', test_size => 0.3);
RESET pg_ml.stats_aggregate;
SELECT * FROM same_models('nb_int_agg', 'nb_int_rows');
SELECT model, rows_train, rows_test FROM ml_train('nbt', 'cls', 'naive_bayes', name => 'nb_all_agg', exclude => ARRAY['id', 'lbl'], test_size => 0);
SET pg_ml.stats_aggregate = off;
SELECT model FROM ml_train('nbt', 'cls', 'naive_bayes', name => 'nb_all_rows', exclude => ARRAY['id', 'lbl'], test_size => 0);
RESET pg_ml.stats_aggregate;
SELECT * FROM same_models('nb_all_agg', 'nb_all_rows');

-- median imputation and dedupe need the rows: the row reader is used
SELECT model FROM ml_train('nbt', 'cls', 'naive_bayes', name => 'nb_median', exclude => ARRAY['id', 'lbl'],
                           preprocess => '{"impute": "median"}');
SELECT report->>'reader' AS reader FROM ml_versions WHERE model = 'nb_median';

-- duplicate rows whose equal draws fall on both sides of a class's cut: the row reader is used
CREATE TABLE nbdup AS SELECT (ARRAY['p', 'q'])[1 + i % 2] AS k, (i % 3)::float8 AS v FROM generate_series(1, 40) i, generate_series(1, 25) j;
SELECT model, rows_train, rows_test FROM ml_train('nbdup', 'k', 'naive_bayes', name => 'nb_dup');
SELECT report->>'reader' AS reader FROM ml_versions WHERE model = 'nb_dup';

-- parallel query: partial aggregates on workers, combined in the leader; the same model
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT ml.eval_stats('{1,100}', '\x00', '{a,b,c}', ml.row_draw('{1,1,1,1,42,0,0,0,256,1,1,0}', NULL, cls, ARRAY[x], '{}'), 0.2,
                     NULL, cls, ARRAY[x], '{}') FROM nbt;
SELECT model, rows_train, rows_test FROM ml_train('nbt', 'cls', 'naive_bayes', name => 'nb_parallel', exclude => ARRAY['id', 'lbl']);
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT * FROM same_models('nb_parallel', 'nb_rows');

-- incremental retraining adds the new rows' statistics; the deployed version is compared on the same rows
CREATE TABLE nbt_more AS SELECT * FROM nbt WHERE id <= 700;
CREATE TABLE r_agg AS SELECT * FROM ml_retrain('nb_agg', 'nbt_more', mode => 'incremental');
SET pg_ml.stats_aggregate = off;
CREATE TABLE r_rows AS SELECT * FROM ml_retrain('nb_rows', 'nbt_more', mode => 'incremental');
RESET pg_ml.stats_aggregate;
SELECT a.version, a.mode, a.rows_train, a.deployed, a.reason, a.reason = b.reason AS same_reason,
       metrics_match(a.previous_metrics, b.previous_metrics) AS same_previous
FROM r_agg a, r_rows b;
SELECT ml_deploy('nb_agg', 2), ml_deploy('nb_rows', 2);
SELECT * FROM same_models('nb_agg', 'nb_rows');
INSERT INTO nbt_more (cls, x, y) VALUES ('d', 1, 1);
SELECT * FROM ml_retrain('nb_agg', 'nbt_more', mode => 'incremental');

-- the state's text form is lossless
SELECT s::text::float8[] = s AS lossless
FROM (SELECT ml.eval_stats('{1,100}', (SELECT blob FROM ml.versions v JOIN ml.models m ON m.id = v.model_id
                                       WHERE m.name = 'nb_all_agg'),
                           '{a,b,c}', ml.row_draw('{1,5,1,1,42,0,0,0,256,1,1,1,1,0,0,0}', NULL, cls,
                                                  ARRAY[x, y, flag::int::float8], ARRAY[color, size]), 0.2,
                           NULL, cls, ARRAY[x, y, flag::int::float8], ARRAY[color, size]) AS s FROM nbt) q;

-- errors: the functions check what they are given
SELECT ml.row_draw(NULL, NULL, cls, ARRAY[x], '{}') FROM nbt LIMIT 1;
SELECT ml.row_draw('{1,2,1,1,42,0,0,0,256,1,1,0,0}', NULL, cls, ARRAY[x], '{}') FROM nbt LIMIT 1;
SELECT ml.row_draw('{1,1,1,1,42,0,0,0,256,1,1,0}', NULL, cls, '{}', ARRAY[color]) FROM nbt LIMIT 1;
SELECT ml.row_draw('{1,1,1,1,42,0,0,0,256,1,1,0}', 1, NULL, ARRAY[x], '{}') FROM nbt LIMIT 1;
SELECT ml.row_band(NULL, 0.1, 0.3, NULL, cls, ARRAY[x], '{}') FROM nbt LIMIT 1;
SELECT k, count(*) > 0 AS some FROM (SELECT ml.row_band('{1,1,1,1,42,0,0,0,256,1,1,0}', 0.1, 0.3, NULL, cls, ARRAY[x], '{}') AS k FROM nbt) q
WHERE k IS NULL OR k < 0 OR k > 1 GROUP BY k ORDER BY k;
SELECT ml.eval_stats(NULL, '\x00', '{a}', 0.5, 0.2, NULL, cls, ARRAY[x], '{}') FROM nbt;
SELECT ml.eval_stats('{1,100,3}', '\x00', '{a}', 0.5, 0.2, NULL, cls, ARRAY[x], '{}') FROM nbt;
SELECT ml.eval_stats('{1,-1}', '\x00', '{a}', 0.5, 0.2, NULL, cls, ARRAY[x], '{}') FROM nbt;
SELECT ml.eval_stats('{1,100}', '\x00', '{a}', 0.5, 0.2, NULL, cls, ARRAY[x], '{}') FROM nbt;
SELECT ml.eval_stats('{1,100}', (SELECT blob FROM ml.versions v JOIN ml.models m ON m.id = v.model_id WHERE m.name = 'nb_all_agg'),
                     '{}', 0.5, 0.2, NULL, cls, ARRAY[x, y, flag::int::float8], ARRAY[color, size]) FROM nbt;
SELECT ml.eval_stats('{1,100}', (SELECT blob FROM ml.versions v JOIN ml.models m ON m.id = v.model_id WHERE m.name = 'nb_all_agg'),
                     '{a,b,c}', 0.5, 0.2, NULL, cls, ARRAY[x, y], ARRAY[color, size]) FROM nbt;
SELECT ml.eval_stats('{1,100}', (SELECT blob FROM ml.versions v JOIN ml.models m ON m.id = v.model_id WHERE m.name = 'nb_all_agg'),
                     '{a,b,c}', 0.5, 0.2, NULL, cls, ARRAY[x, y, flag::int::float8], ARRAY[color, size, color]) FROM nbt;
SELECT ml.eval_stats_transfn(NULL, '{1,100}', '\x00', '{a}', 0.5, 0.2, NULL, 'a', '{1}', '{}');
-- a state of three classes continued by the transition function for two (a superuser's own
-- aggregate over ml.eval_stats_transfn with that state as INITCOND): refused as corrupt, never a
-- read past the model's outputs (found reviewing fuzz_eval_state)
DO $$
DECLARE st text;
BEGIN
    SELECT ml.eval_stats('{1,100}', (SELECT blob FROM ml.versions v JOIN ml.models m ON m.id = v.model_id
                                     WHERE m.name = 'nb_all_agg'), '{a,b,c}', 0.5, 0.2, NULL, cls,
                         ARRAY[x, y, flag::int::float8], ARRAY[color, size])::text
      INTO st FROM nbt;
    EXECUTE format('CREATE AGGREGATE forged_eval(float8[], bytea, text[], float8, float8, float8, text, float8[], text[]) '
                   '(SFUNC = ml.eval_stats_transfn, STYPE = float8[], INITCOND = %L)', st);
END $$;
SELECT forged_eval('{1,100}', (SELECT blob FROM ml.versions v JOIN ml.models m ON m.id = v.model_id
                               WHERE m.name = 'nb_all_agg'), '{a,b}', 0.5, 0.2, NULL, cls,
                   ARRAY[x, y, flag::int::float8], ARRAY[color, size]) IS NOT NULL FROM nbt;
DROP AGGREGATE forged_eval(float8[], bytea, text[], float8, float8, float8, text, float8[], text[]);
-- the 0.2.0 functions ("any" arguments, in the extension's schema) are gone
SELECT ml_row_draw('{1,1,1,1,42,0,0,0,256,1,1,0}', cls, x) FROM nbt LIMIT 1;
SELECT ml.eval_stats_combinefn('{1}', '{1}');

DROP TABLE nbt, nbt_more, nbdup, r_agg, r_rows;
DROP FUNCTION same_models(text, text);
DROP FUNCTION metrics_match(jsonb, jsonb);
SELECT count(ml_drop_model(m)) FROM unnest(ARRAY['nb_agg', 'nb_rows', 'nb_int_agg', 'nb_int_rows', 'nb_all_agg', 'nb_all_rows',
                                                 'nb_median', 'nb_dup', 'nb_parallel']) m;
