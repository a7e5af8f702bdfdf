-- pg_ml demo: train, predict, retrain and inspect models with nothing but SQL.
--
-- Run by scripts/demo.sh in a throw-away cluster. To run it yourself, in a database where
-- pg_ml is installed (make install) but not yet created:
--   python3 scripts/load_datasets.py diabetes iris | psql
--   psql -X -f scripts/demo.sql
-- The two tables `diabetes` (442 patients) and `iris` (150 flowers) come from the data
-- files of Debian's python3-sklearn; load_datasets.py gives each row an `id` (file order).

\set ON_ERROR_STOP on
\set QUIET on
\pset null '(null)'
\pset footer off
SET client_min_messages = notice;

\echo
\echo '================================================================================'
\echo ' 1. CREATE EXTENSION pg_ml -- no preloading, no Python, no service beside PostgreSQL'
\echo '================================================================================'
CREATE EXTENSION pg_ml;

\echo
\echo '================================================================================'
\echo ' 2. The data: diabetes progression one year after 10 baseline measurements'
\echo '    (age, sex, body mass index, blood pressure, six blood serum values s1..s6).'
\echo '    `patients` = the first 342 patients, `new_patients` = the other 100, which'
\echo '    "arrive later". The row id is left out: it is not a feature.'
\echo '================================================================================'
CREATE TABLE patients AS
    SELECT age, sex, bmi, bp, s1, s2, s3, s4, s5, s6, progression
    FROM diabetes WHERE id < 342 ORDER BY id;
CREATE TABLE new_patients AS
    SELECT age, sex, bmi, bp, s1, s2, s3, s4, s5, s6, progression
    FROM diabetes WHERE id >= 342 ORDER BY id;
SELECT (SELECT count(*) FROM patients) AS patients, (SELECT count(*) FROM new_patients) AS new_patients;
SELECT * FROM patients LIMIT 3;

\echo
\echo '================================================================================'
\echo ' 3. Train: SELECT * FROM ml_train(''patients'', ''progression'')'
\echo '    The target is a float column, so pg_ml picks regression (see the NOTICE).'
\echo '    It holds out 20% of the rows (test_size => 0.2) and reports metrics on them:'
\echo '    r2 = share of the variance explained (1 is perfect), rmse/mae in target units.'
\echo '================================================================================'
SELECT model, version, task, algorithm, rows_train, rows_test, deployed,
       round((metrics->>'r2')::numeric, 3)   AS test_r2,
       round((metrics->>'rmse')::numeric, 1) AS test_rmse,
       round((metrics->>'mae')::numeric, 1)  AS test_mae
FROM ml_train('patients', 'progression');

\echo
\echo '================================================================================'
\echo ' 4. Predict from any query: ml_predict(''patients_progression'', p) takes the whole'
\echo '    row and matches columns by name (the target column is ignored).'
\echo '================================================================================'
SELECT p.age, p.bmi, p.bp,
       p.progression                                               AS actual,
       round(ml_predict('patients_progression', p)::numeric, 1)    AS predicted
FROM patients p
LIMIT 8;

\echo
\echo 'The same model on the 100 new patients it has never seen:'
SELECT round((m->>'r2')::numeric, 3) AS r2_on_new_patients, round((m->>'rmse')::numeric, 1) AS rmse, m->>'rows' AS rows
FROM ml_evaluate('patients_progression', 'new_patients') AS m;

\echo
\echo '================================================================================'
\echo ' 5. New rows arrived: ml_retrain(''patients_progression'', ''new_patients'')'
\echo '    Linear models keep sufficient statistics, so retraining adds the new rows to'
\echo '    what the model already knows (mode incremental) and saves version 2 with'
\echo '    parent 1. It is deployed if it is not worse on held-out rows (deploy => if_better).'
\echo '================================================================================'
SELECT version, parent_version, mode, rows_train, rows_test, deployed,
       round((metrics->>'r2')::numeric, 3) AS test_r2, reason
FROM ml_retrain('patients_progression', 'new_patients');

\echo
\echo '================================================================================'
\echo ' 6. Every version is kept: the ml_versions view (ml_deploy / ml_rollback switch'
\echo '    between them; predictions always use the deployed one).'
\echo '================================================================================'
SELECT model, version, parent_version AS parent, deployed, mode, relation, rows_train, rows_test,
       round((test_metrics->>'r2')::numeric, 3)    AS test_r2,
       round((test_metrics->>'rmse')::numeric, 1)  AS test_rmse,
       round((train_metrics->>'r2')::numeric, 3)   AS train_r2
FROM ml_versions
WHERE model = 'patients_progression'
ORDER BY version;

\echo
\echo 'Test metrics always come from rows a version was not trained on: for version 2 that is'
\echo 'only the new rows it held out, so compare versions on the same rows, as the reason'
\echo 'column of ml_retrain did. Either way the owner decides: ml_deploy(model, version)'
\echo 'deploys a version (returning the one deployed before) and ml_rollback(model) goes back.'
SELECT ml_deploy('patients_progression', 2) AS previously_deployed;
SELECT name, deployed_version FROM ml_models WHERE name = 'patients_progression';

\echo
\echo 'What the model learned (raw coefficients of the deployed version, per unit of each column):'
SELECT c.key AS feature, round(c.value::numeric, 3) AS coefficient
FROM ml_versions v, jsonb_each_text(v.coefficients->'coefficients') AS c
WHERE v.model = 'patients_progression' AND v.deployed
ORDER BY abs(c.value::numeric) DESC;

\echo
\echo '================================================================================'
\echo ' 7. Classification: iris species from petal and sepal sizes.'
\echo '    The target is text, so pg_ml picks logistic regression (multinomial) and'
\echo '    reports accuracy, f1 and a confusion matrix on a stratified 20% hold-out.'
\echo '================================================================================'
SELECT model, task, algorithm, rows_train, rows_test,
       round((metrics->>'accuracy')::numeric, 3) AS test_accuracy,
       round((metrics->>'f1')::numeric, 3)       AS test_f1_macro,
       metrics->'confusion_matrix'               AS confusion_matrix
FROM ml_train('iris', 'species', exclude => ARRAY['id']);

SELECT classes FROM ml_models WHERE name = 'iris_species';

\echo
\echo 'ml_predict_label gives the class, ml_predict_proba the probability of each class'
\echo '(in the order of ml_models.classes), for a few flowers of each species:'
SELECT i.id, i.petal_length, i.petal_width, i.species AS actual,
       ml_predict_label('iris_species', i) AS predicted,
       (SELECT array_agg(round(p::numeric, 3)) FROM unnest(ml_predict_proba('iris_species', i)) AS p) AS probabilities
FROM iris i
WHERE i.id IN (0, 1, 50, 51, 77, 100, 101, 133)
ORDER BY i.id;

\echo
\echo 'A flower that is not in any table, as jsonb:'
SELECT ml_predict_label('iris_species', '{"sepal_length": 6.0, "sepal_width": 2.9, "petal_length": 4.5, "petal_width": 1.5}'::jsonb) AS predicted;

\echo
\echo '================================================================================'
\echo ' 8. All models visible to you: the ml_models view'
\echo '================================================================================'
SELECT name, owner, task, algorithm, target, deployed_version,
       coalesce(round((test_metrics->>'r2')::numeric, 3), round((test_metrics->>'accuracy')::numeric, 3)) AS headline_metric
FROM ml_models
ORDER BY name;

\echo
\echo 'Demo finished.'
