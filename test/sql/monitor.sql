-- ml_monitor(model, relation [, version]): per feature the drift (PSI on the training deciles /
-- levels, with a severity) of a relation's rows against the version's training profile, the
-- shares of NULLs and unseen levels; with labels, the metrics against the version's test
-- metrics. ml_retrain's drift; ml_feature_importance by input column.
SET client_min_messages = warning;
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
\set VERBOSITY default
-- x, z spread evenly, c three levels, w 10% NULL
CREATE FUNCTION mon_rows(lo int, hi int) RETURNS TABLE (x float8, z float8, c text, w float8, y float8)
LANGUAGE sql AS $$
  SELECT (i % 100)::float8, ((i * 37) % 101)::float8, (ARRAY['a','b','c'])[1 + i % 3],
         CASE WHEN i % 10 = 0 THEN NULL ELSE (i % 7)::float8 END,
         2 * (i % 100) + ((i * 37) % 101) + CASE WHEN i % 3 = 0 THEN 50 ELSE 0 END + (i * 13) % 17
  FROM generate_series(lo, hi) i $$;
CREATE TABLE mon_train AS SELECT * FROM mon_rows(1, 2000);
SELECT model, version FROM ml_train('mon_train', 'y', algorithm => 'linear_regression', name => 'mon_lin');
-- the stored profile: ten bins for x, the levels for c, the NULL share of w
SELECT p->>'from' AS "from", (p->>'rows')::int AS rows,
       (SELECT jsonb_agg(jsonb_build_object(f->>'name', jsonb_array_length(f->'shares'))) FROM jsonb_array_elements(p->'features') f) AS bins,
       (SELECT round((f->>'null_share')::numeric, 3) FROM jsonb_array_elements(p->'features') f WHERE f->>'name' = 'w') AS w_nulls
FROM (SELECT profile AS p FROM ml_versions WHERE model = 'mon_lin') s;
-- rows like the training rows: no drift; the labels give r2 against the test r2
CREATE TABLE mon_same AS SELECT * FROM mon_rows(2001, 4000);
SELECT name, kind, round(psi::numeric, 3) AS psi, severity, rows, round(null_share::numeric, 3) AS nulls,
       round(train_null_share::numeric, 3) AS train_nulls, round(unseen_share::numeric, 3) AS unseen
FROM ml_monitor('mon_lin', 'mon_same') WHERE kind <> 'metric' ORDER BY name;
SELECT name, rows, round(value::numeric, 2) AS value, round(test_value::numeric, 2) AS test_value,
       abs(change) < 0.02 AS close, detail ? 'relation' AND detail ? 'test' AS detail
FROM ml_monitor('mon_lin', 'mon_same') WHERE kind = 'metric';
-- x shifted by 60: a major drift on x alone, and a worse r2
CREATE TABLE mon_shift AS SELECT x + 60 AS x, z, c, w, y FROM mon_rows(2001, 4000);
SELECT name, round(psi::numeric, 2) > 0.25 AS over_025, severity FROM ml_monitor('mon_lin', 'mon_shift')
WHERE kind <> 'metric' ORDER BY name;
SELECT name, change < -0.5 AS worse FROM ml_monitor('mon_lin', 'mon_shift') WHERE kind = 'metric';
-- the bins of x: the training shares (a tenth each) against the relation's
SELECT b->>'bin' AS bin, round((b->>'train')::numeric, 3) AS train, round((b->>'relation')::numeric, 3) AS relation
FROM ml_monitor('mon_lin', 'mon_shift') m, jsonb_array_elements(m.detail) b WHERE m.name = 'x';
-- levels: 'a' in 60% of the rows, an unseen level 'd' in 10%; w NULL in half the rows
CREATE TABLE mon_levels AS
SELECT x, z, CASE WHEN i % 10 = 0 THEN 'd' WHEN i % 10 < 6 THEN 'a' ELSE c END AS c,
       CASE WHEN i % 2 = 0 THEN NULL ELSE w END AS w, y
FROM (SELECT row_number() OVER () AS i, * FROM mon_rows(2001, 4000)) s;
SELECT name, severity, round(null_share::numeric, 3) AS nulls, round(train_null_share::numeric, 3) AS train_nulls,
       round(unseen_share::numeric, 3) AS unseen
FROM ml_monitor('mon_lin', 'mon_levels') WHERE kind <> 'metric' ORDER BY name;
SELECT b->>'bin' AS bin, round((b->>'train')::numeric, 3) AS train, round((b->>'relation')::numeric, 3) AS relation
FROM ml_monitor('mon_lin', 'mon_levels') m, jsonb_array_elements(m.detail) b WHERE m.name = 'c';
-- no labels (no target column): the drift alone; by model id; a version by number
CREATE VIEW mon_unlabelled AS SELECT x, z, c, w FROM mon_shift;
SELECT name, severity FROM ml_monitor('mon_lin', 'mon_unlabelled') ORDER BY name;
SELECT count(*) AS rows FROM ml_monitor((SELECT id FROM ml_models WHERE name = 'mon_lin'), 'mon_same', 1);
-- a classifier kept in memory (every training row profiled): accuracy against the test accuracy
CREATE TABLE mon_cls AS SELECT x, z, c, w, y > 150 AS big FROM mon_rows(1, 2000);
SELECT model FROM ml_train('mon_cls', 'big', algorithm => 'decision_tree', name => 'mon_tree');
SELECT profile->>'from' AS "from", (profile->>'rows')::int AS rows, rows_train FROM ml_versions WHERE model = 'mon_tree';
CREATE TABLE mon_cls_shift AS SELECT x + 60 AS x, z, c, w, y > 150 AS big FROM mon_rows(2001, 4000);
SELECT name, kind, severity, value IS NOT NULL AS has_value, test_value IS NOT NULL AS has_test_value
FROM ml_monitor('mon_tree', 'mon_cls_shift') ORDER BY kind, name;
-- naive Bayes through the class aggregate keeps counts by level and moments, not rows: its
-- numeric columns get the deciles of a normal distribution with their mean and deviation
CREATE TABLE mon_nb AS SELECT x + z / 1000 AS x, c, y > 150 AS big FROM mon_rows(1, 2000); -- no duplicate rows
SELECT model FROM ml_train('mon_nb', 'big', algorithm => 'naive_bayes', name => 'mon_nb');
SELECT profile->>'from' AS "from" FROM ml_versions WHERE model = 'mon_nb';
CREATE VIEW mon_nb_levels AS SELECT x + z / 1000 AS x, c, y > 150 AS big FROM mon_levels;
SELECT name, kind, psi IS NULL AS no_psi, severity, round(unseen_share::numeric, 3) AS unseen
FROM ml_monitor('mon_nb', 'mon_nb_levels') ORDER BY kind, name;
-- k-means (no target, so no metrics): its sample of the training rows
CREATE TABLE mon_pts AS SELECT x, z FROM mon_rows(1, 2000);
SELECT model FROM ml_train('mon_pts', NULL, 'kmeans', name => 'mon_km', hyperparams => '{"k": 3}');
SELECT profile->>'from' AS "from" FROM ml_versions WHERE model = 'mon_km';
SELECT name, kind, severity FROM ml_monitor('mon_km', 'mon_shift') ORDER BY name;
-- a retrain's confirmation: the drift of the rows it read against the parent version's profile
SELECT version, drift->'x'->>'severity' AS x, drift->'z'->>'severity' AS z, drift->'c'->>'severity' AS c,
       round((drift->'x'->>'psi')::numeric, 2) > 0.25 AS x_over_025
FROM ml_retrain('mon_lin', 'mon_shift', mode => 'refit', deploy => 'never');
-- the new version has its own profile: the shifted rows against it do not drift
SELECT name, severity FROM ml_monitor('mon_lin', 'mon_shift', 2) WHERE kind <> 'metric' ORDER BY name;
-- an incremental retrain learns the parent's rows and the new ones: its profile is the parent's
-- bins with the new training rows counted in, so the shifted rows drift less against it
SELECT version, mode, drift->'x'->>'severity' AS x FROM ml_retrain('mon_lin', 'mon_shift', mode => 'incremental', deploy => 'never');
SELECT profile->>'from' AS "from", (profile->>'rows')::int AS rows,
       (SELECT jsonb_array_length(f->'shares') FROM jsonb_array_elements(profile->'features') f WHERE f->>'name' = 'x') AS x_bins
FROM ml_versions WHERE model = 'mon_lin' AND version = 3;
SELECT (SELECT psi FROM ml_monitor('mon_lin', 'mon_shift', 3) WHERE name = 'x')
     < (SELECT psi FROM ml_monitor('mon_lin', 'mon_shift', 1) WHERE name = 'x') AS less_drift;
-- feature importance per input column: the one-hot levels of c summed
SELECT feature, "column", kind FROM ml_feature_importance('mon_lin') ORDER BY feature;
SELECT feature, "column", kind FROM ml_feature_importance('mon_lin', by_column => true) ORDER BY feature;
SELECT abs((SELECT importance FROM ml_feature_importance('mon_lin', NULL, true) WHERE feature = 'c')
       - (SELECT sum(abs(importance)) FROM ml_feature_importance('mon_lin') WHERE "column" = 'c')) < 1e-12 AS summed;
SELECT feature, "column" FROM ml_feature_importance('mon_tree', by_column => true) ORDER BY feature;
-- errors
SELECT * FROM ml_monitor('nope', 'mon_same');
SELECT * FROM ml_monitor('mon_lin', 'mon_same', 7);
SELECT * FROM ml_monitor('mon_lin', 'no_such_table');
SELECT * FROM ml_monitor(NULL::text, 'mon_same');
CREATE TABLE mon_missing AS SELECT x, c, w, y FROM mon_same;
SELECT * FROM ml_monitor('mon_lin', 'mon_missing');
CREATE TABLE mon_mistyped AS SELECT x, z::text AS z, c, w, y FROM mon_same;
SELECT * FROM ml_monitor('mon_lin', 'mon_mistyped');
CREATE TABLE mon_badlabel AS SELECT x, z, c, w, y::text AS y FROM mon_same;
SELECT * FROM ml_monitor('mon_lin', 'mon_badlabel');
CREATE TABLE mon_empty AS SELECT * FROM mon_same WHERE false;
SELECT * FROM ml_monitor('mon_lin', 'mon_empty');
-- a per-group model (group_by): one profile of every group's training rows, the group
-- column too (the statistics aggregate's samples for the linear family, the rows for the others)
CREATE TABLE mon_groups AS SELECT (i % 3)::text AS g, (i % 100)::float8 AS x, 2.0 * (i % 100) + (i % 3) AS y
FROM generate_series(1, 3000) i;
CREATE TABLE mon_groups_same AS SELECT (i % 3)::text AS g, (i % 100)::float8 AS x, 2.0 * (i % 100) + (i % 3) AS y
FROM generate_series(3001, 6000) i;
-- x shifted (in group 1 only), then the groups' mix changed (group 0 only)
CREATE TABLE mon_groups_x AS SELECT g, CASE WHEN g = '1' THEN x + 300 ELSE x END AS x, y FROM mon_groups_same;
CREATE TABLE mon_groups_mix AS SELECT * FROM mon_groups_same WHERE g = '0';
SELECT model FROM ml_train('mon_groups', 'y', algorithm => 'linear_regression', name => 'mon_grouped', group_by => ARRAY['g']);
SELECT model FROM ml_train('mon_groups', 'y', algorithm => 'decision_tree', name => 'mon_grouped_dt', group_by => ARRAY['g']);
SELECT m.name AS model, v.profile->>'from' AS "from",
       (SELECT jsonb_agg(f->>'name' ORDER BY f->>'name') FROM jsonb_array_elements(v.profile->'features') f) AS columns
FROM ml_models m JOIN ml_versions v ON v.model = m.name WHERE m.name LIKE 'mon_grouped%' ORDER BY 1;
SELECT r.model, r.rel, d.name, d.severity
FROM (VALUES ('mon_grouped'), ('mon_grouped_dt')) r0(model),
     LATERAL (VALUES ('mon_groups_same'), ('mon_groups_x'), ('mon_groups_mix')) r1(rel),
     LATERAL (SELECT r0.model, r1.rel) r,
     LATERAL ml_monitor(r.model, r.rel) d
WHERE d.kind <> 'metric' ORDER BY 1, 2, 3;
SELECT name, round(value::numeric, 3) AS r2 FROM ml_monitor('mon_grouped', 'mon_groups_same') WHERE kind = 'metric';
SELECT ml_drop_model('mon_grouped'), ml_drop_model('mon_grouped_dt');
-- a version without a profile (trained before pg_ml 0.3.0)
UPDATE ml.versions SET profile = NULL WHERE model_id = (SELECT id FROM ml_models WHERE name = 'mon_lin') AND version = 1;
SELECT * FROM ml_monitor('mon_lin', 'mon_same');
-- and a retrain from it: no drift to report
SELECT version, drift IS NULL AS no_drift FROM ml_retrain('mon_lin', 'mon_same', mode => 'refit', deploy => 'never');
SELECT ml_drop_model('mon_lin'), ml_drop_model('mon_tree'), ml_drop_model('mon_nb'), ml_drop_model('mon_km');
DROP VIEW mon_unlabelled, mon_nb_levels;
DROP TABLE mon_train, mon_same, mon_shift, mon_levels, mon_cls, mon_cls_shift, mon_missing, mon_mistyped,
           mon_badlabel, mon_empty, mon_nb, mon_pts, mon_groups;
DROP FUNCTION mon_rows(int, int);
