-- ml_explain(model, row): the prediction as a base value plus one contribution per feature and
-- per input column (one-hot levels summed). Exact for the linear family; exact path-dependent
-- tree SHAP for decision_tree and random_forest (a classifier's predicted class probability);
-- libxgboost's tree SHAP values for gradient_boosting; the rest say they cannot.
SET client_min_messages = warning;
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE TABLE ex (x float8, z float8, k text, y float8, c text, g text);
INSERT INTO ex SELECT i, (i * 7) % 11, CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END,
       2 * i - 3 * ((i * 7) % 11) + CASE WHEN i % 3 = 0 THEN 5 ELSE 0 END,
       CASE WHEN (i * 7) % 11 > 5 THEN 'hi' ELSE 'lo' END,
       CASE WHEN i < 100 THEN 'low' WHEN i < 200 THEN 'mid' ELSE 'top' END
FROM generate_series(1, 300) i;
-- the sum of the parts, and of the columns, against the explanation's value
CREATE FUNCTION ex_check(e jsonb) RETURNS TABLE (output text, class text, features_sum_error float8, columns_sum_error float8)
LANGUAGE sql AS $$
  SELECT e->>'output', e->>'class',
         abs((e->>'base')::float8 + (SELECT sum(v::float8) FROM jsonb_each_text(e->'features') f(k, v)) - (e->>'value')::float8),
         abs((e->>'base')::float8 + (SELECT sum(v::float8) FROM jsonb_each_text(e->'columns') f(k, v)) - (e->>'value')::float8)
$$;

-- linear regression: contributions are coefficient x (value - training mean), exact
SELECT model FROM ml_train('ex', 'y', algorithm => 'linear_regression', name => 'ex_lin', exclude => ARRAY['c', 'g']);
SELECT e->>'output' AS output, round((e->>'base')::numeric, 6) AS base, round((e->>'value')::numeric, 6) AS value,
       (SELECT string_agg(k || ' ' || round(v::numeric, 6), ', ' ORDER BY k) FROM jsonb_each_text(e->'features') f(k, v)) AS features,
       (SELECT string_agg(k || ' ' || round(v::numeric, 6), ', ' ORDER BY k) FROM jsonb_each_text(e->'columns') f(k, v)) AS columns
FROM (SELECT ml_explain('ex_lin', t) AS e FROM ex t WHERE x = 7) s;
SELECT output, features_sum_error < 1e-9 AS adds_up, columns_sum_error < 1e-9 AS columns_add_up,
       abs((ml_explain('ex_lin', e)->>'value')::float8 - ml_predict('ex_lin', e)) < 1e-9 AS is_the_prediction
FROM ex e, ex_check(ml_explain('ex_lin', e)) WHERE x IN (7, 150, 299);
-- the same row as float8[] and jsonb
SELECT ml_explain('ex_lin', '{"x": 7, "z": 5, "k": "b"}'::jsonb) = ml_explain('ex_lin', e) AS same FROM ex e WHERE x = 7;
-- logistic regression: the predicted class's log-odds
SELECT model FROM ml_train('ex', 'c', algorithm => 'logistic_regression', name => 'ex_log', exclude => ARRAY['y', 'g']);
SELECT output, class = ml_predict_label('ex_log', e) AS predicted_class, features_sum_error < 1e-9 AS adds_up,
       abs(1 / (1 + exp(-(ml_explain('ex_log', e)->>'value')::float8)) - (ml_class_probabilities('ex_log', e)->>class)::float8) < 1e-9 AS is_its_probability
FROM ex e, ex_check(ml_explain('ex_log', e)) WHERE x IN (7, 150, 299);
-- gradient boosting: tree SHAP values that add up to the prediction
SELECT model FROM ml_train('ex', 'y', algorithm => 'gradient_boosting', name => 'ex_gb', exclude => ARRAY['c', 'g'],
                           hyperparams => '{"n_estimators": 20}');
SELECT output, features_sum_error < 1e-9 AS adds_up,
       abs((ml_explain('ex_gb', e)->>'value')::float8 - ml_predict('ex_gb', e)) <= 1e-6 * abs(ml_predict('ex_gb', e)) AS is_the_prediction
FROM ex e, ex_check(ml_explain('ex_gb', e)) WHERE x IN (7, 150, 299);
SELECT model FROM ml_train('ex', 'g', algorithm => 'gradient_boosting', name => 'ex_gb3', exclude => ARRAY['y', 'c'],
                           hyperparams => '{"n_estimators": 10}');
SELECT output, class = ml_predict_label('ex_gb3', e) AS predicted_class, features_sum_error < 1e-9 AS adds_up
FROM ex e, ex_check(ml_explain('ex_gb3', e)) WHERE x IN (7, 150, 299);
-- decision tree: tree SHAP over the training weight of each node; the parts add up to the
-- prediction, a missing number follows the path prediction takes
SELECT model FROM ml_train('ex', 'y', algorithm => 'decision_tree', name => 'ex_dt', exclude => ARRAY['c', 'g'],
                           hyperparams => '{"max_depth": 4}');
SELECT e->>'output' AS output, round((e->>'base')::numeric, 6) AS base, round((e->>'value')::numeric, 6) AS value,
       (SELECT string_agg(k || ' ' || round(v::numeric, 6), ', ' ORDER BY k) FROM jsonb_each_text(e->'columns') f(k, v)) AS columns
FROM (SELECT ml_explain('ex_dt', t) AS e FROM ex t WHERE x = 7) s;
SELECT output, features_sum_error < 1e-9 AS adds_up, columns_sum_error < 1e-9 AS columns_add_up,
       abs((ml_explain('ex_dt', e)->>'value')::float8 - ml_predict('ex_dt', e)) < 1e-9 * greatest(1, abs(ml_predict('ex_dt', e))) AS is_the_prediction
FROM ex e, ex_check(ml_explain('ex_dt', e)) WHERE x IN (7, 150, 299);
SELECT features_sum_error < 1e-9 AS adds_up,
       abs((ml_explain('ex_dt', r)->>'value')::float8 - ml_predict('ex_dt', r)) < 1e-9 * greatest(1, abs(ml_predict('ex_dt', r))) AS is_the_prediction
FROM (VALUES ('{"x": null, "z": 5, "k": "b"}'::jsonb), ('{"x": 120, "z": null, "k": null}'::jsonb)) v(r),
     ex_check(ml_explain('ex_dt', r));
-- a classifying tree explains the predicted class's probability (its leaves hold class frequencies)
SELECT model FROM ml_train('ex', 'g', algorithm => 'decision_tree', name => 'ex_dt3', exclude => ARRAY['y', 'c'],
                           hyperparams => '{"max_depth": 3}');
SELECT output, class = ml_predict_label('ex_dt3', e) AS predicted_class, features_sum_error < 1e-9 AS adds_up,
       abs((ml_explain('ex_dt3', e)->>'value')::float8 - (ml_class_probabilities('ex_dt3', e)->>class)::float8) < 1e-9 AS is_its_probability
FROM ex e, ex_check(ml_explain('ex_dt3', e)) WHERE x IN (7, 150, 299);
-- random forest: the mean of its trees' SHAP values
SELECT model FROM ml_train('ex', 'y', algorithm => 'random_forest', name => 'ex_rf', exclude => ARRAY['c', 'g'],
                           hyperparams => '{"n_estimators": 10}');
SELECT output, features_sum_error < 1e-9 AS adds_up,
       abs((ml_explain('ex_rf', e)->>'value')::float8 - ml_predict('ex_rf', e)) < 1e-9 * greatest(1, abs(ml_predict('ex_rf', e))) AS is_the_prediction
FROM ex e, ex_check(ml_explain('ex_rf', e)) WHERE x IN (7, 150, 299);
SELECT model FROM ml_train('ex', 'c', algorithm => 'random_forest', name => 'ex_rf2', exclude => ARRAY['y', 'g'],
                           hyperparams => '{"n_estimators": 10}');
SELECT output, class = ml_predict_label('ex_rf2', e) AS predicted_class, features_sum_error < 1e-9 AS adds_up,
       abs((ml_explain('ex_rf2', e)->>'value')::float8 - (ml_class_probabilities('ex_rf2', e)->>class)::float8) < 1e-9 AS is_its_probability
FROM ex e, ex_check(ml_explain('ex_rf2', e)) WHERE x IN (7, 150, 299);
-- NULL in, NULL out
SELECT ml_explain('ex_lin', NULL::jsonb) IS NULL AS null_row;

-- what it cannot explain
SELECT model FROM ml_train('ex', 'c', algorithm => 'mlp', name => 'ex_mlp', exclude => ARRAY['y', 'g'],
                           hyperparams => '{"max_iter": 5}');
SELECT ml_explain('ex_mlp', e) FROM ex e WHERE x = 7;
SELECT model FROM ml_train('ex', NULL, algorithm => 'kmeans', name => 'ex_km', features => ARRAY['x', 'z'],
                           hyperparams => '{"k": 2}');
SELECT ml_explain('ex_km', e) FROM ex e WHERE x = 7;
SELECT ml_explain('ex_nope', e) FROM ex e WHERE x = 7;

SELECT ml_drop_model(name) FROM ml_models WHERE name LIKE 'ex\_%' ORDER BY name;
DROP FUNCTION ex_check(jsonb);
DROP TABLE ex;
