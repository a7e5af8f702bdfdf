-- Overload capture (issue 10, finding 1). Where the schema pg_ml is installed in is writable by
-- others (public before PostgreSQL 15, or after GRANT CREATE ON SCHEMA public TO PUBLIC), an
-- unprivileged role plants functions, aggregates, operators and domains that pg_ml's own
-- queries would bind to if they named anything unqualified or in a writable schema: exact-typed
-- overloads of the 0.2.0 internal aggregates in public, lookalikes of the 0.3.0 ones in public
-- and in its own schema, and pg_catalog lookalikes (count(*), max, unnest, casts' target
-- types, =, <, +) in its own schema. Each records into hj_captured and counts in a sequence,
-- which a failing statement does not roll back (stand-ins for COPY ... TO PROGRAM). A
-- superuser with that schema first on its search_path, pg_catalog last, then trains,
-- retrains, evaluates, predicts, exports, imports and runs jobs: nothing is captured, and the
-- models are right. (0.2.0: about 5,000 captures, ml_row_band per row among them.)
SET extra_float_digits = 0;
SET client_min_messages = warning;
SET pg_ml.progress = off;
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET pg_ml.worker_enabled = off;
GRANT CREATE ON SCHEMA public TO PUBLIC;
CREATE ROLE hj_mallory;
CREATE SCHEMA hj_evil AUTHORIZATION hj_mallory;
CREATE TABLE public.hj_captured (what text, by_role text);
GRANT INSERT ON public.hj_captured TO PUBLIC;
CREATE SEQUENCE public.hj_captures;
GRANT USAGE ON SEQUENCE public.hj_captures TO PUBLIC;

CREATE TABLE hj_data AS
SELECT i AS id, (i % 10)::float8 AS x1, ((i * 7) % 13)::float8 AS x2, (i % 37)::float8 AS x3,
       (2 * (i % 10) + 3 * ((i * 7) % 13) - 0.5 * (i % 37))::float8 AS y,
       CASE WHEN (i % 10) + ((i * 7) % 13) > 10 THEN 'hi' ELSE 'lo' END AS label
FROM generate_series(1, 600) i;
ANALYZE hj_data;
-- categorical features (text, char(3), varchar, enum), boolean, timestamp, timestamptz, date,
-- numeric and bigint features, and an integer target
CREATE TYPE hj_level AS ENUM ('low', 'mid', 'high');
CREATE TABLE hj_mixed AS
SELECT i AS id, (ARRAY['red', 'green', 'blue'])[1 + i % 3] AS color, (ARRAY['s', 'l'])[1 + (i * 7) % 2]::char(3) AS size,
       (ARRAY['u', 'v'])[1 + (i * 5) % 2]::varchar(4) AS code, (ARRAY['low', 'mid', 'high'])[1 + (i * 11) % 3]::hj_level AS lvl,
       i % 4 = 0 AS flag, timestamp '2024-01-01' + i * interval '1 hour 7.25 seconds' AS ts,
       timestamptz '2024-01-01 00:00:00.5+00' + i * interval '3 hours 0.125 seconds' AS tstz, date '2020-02-29' + i * 3 AS d,
       (i % 7)::numeric / 3 AS amount, (i * 1000003)::bigint AS big,
       (i % 5)::float8 AS x, (i % 3 + (i % 5 > 2)::int) % 3 AS cls
FROM generate_series(1, 600) i;
ANALYZE hj_mixed;

SET ROLE hj_mallory;
CREATE FUNCTION public.hj_pwn(what text) RETURNS integer LANGUAGE sql VOLATILE
    AS $$ SELECT pg_catalog.nextval('public.hj_captures');
          INSERT INTO public.hj_captured VALUES (what, current_user) RETURNING 1 $$;
-- the 0.2.0 names, exact-typed for these tables (what 0.2.0's queries bound to)
DO $$
DECLARE
    f text[];
BEGIN
    FOREACH f SLICE 1 IN ARRAY ARRAY[
        ['ml_train_stats(float8[], float8, VARIADIC float8[])', 'float8[]', '$1'],
        ['ml_train_stats(float8[], text, VARIADIC float8[])', 'float8[]', '$1'],
        ['ml_train_stats(float8[], integer, VARIADIC float8[])', 'float8[]', '$1'],
        ['ml_row_draw(float8[], text, VARIADIC float8[])', 'float8', '0.5'],
        ['ml_row_band(float8[], float8, float8, text, VARIADIC float8[])', 'float8', '0.5'],
        ['ml_eval_stats(float8[], bytea, text[], float8, float8, text, VARIADIC float8[])', 'float8[]', '$1'],
        ['ml_kmeans_step(float8[], text[], VARIADIC float8[])', 'float8[]', '$1']] LOOP
        EXECUTE format('CREATE FUNCTION public.%s RETURNS %s LANGUAGE sql AS %L', f[1], f[2],
                       format('SELECT CASE WHEN public.hj_pwn(%L) IS NOT NULL THEN %s END', 'public.' || f[1], f[3]));
    END LOOP;
END
$$;
-- the 0.3.0 internal functions' names, unqualified, in public and in hj_evil
DO $$
DECLARE
    s text;
    f text[];
BEGIN
    FOREACH s IN ARRAY ARRAY['public', 'hj_evil'] LOOP
        FOREACH f SLICE 1 IN ARRAY ARRAY[
            ['train_stats(float8[], float8, text, float8[], text[])', 'float8[]', '$1'],
            ['row_draw(float8[], float8, text, float8[], text[])', 'float8', '0.5'],
            ['row_band(float8[], float8, float8, float8, text, float8[], text[])', 'float8', '0.5'],
            ['eval_stats(float8[], bytea, text[], float8, float8, float8, text, float8[], text[])', 'float8[]', '$1'],
            ['kmeans_step(float8[], text[], float8[], text[])', 'float8[]', '$1'],
            ['logit_step(float8[], bytea, text[], float8, float8, float8, text, float8[], text[])', 'float8[]', '$1'],
            ['ml_train_stats(float8[], float8, text, float8[], text[])', 'float8[]', '$1']] LOOP
            EXECUTE format('CREATE FUNCTION %I.%s RETURNS %s LANGUAGE sql AS %L', s, f[1], f[2],
                           format('SELECT CASE WHEN public.hj_pwn(%L) IS NOT NULL THEN %s END', s || '.' || f[1], f[3]));
        END LOOP;
    END LOOP;
END
$$;
-- pg_catalog lookalikes in hj_evil: aggregates, functions, domains (casts' target types), operators
CREATE FUNCTION hj_evil.hj_count_sf(bigint) RETURNS bigint LANGUAGE sql
    AS $$ SELECT $1 OPERATOR(pg_catalog.+) public.hj_pwn('hj_evil.count(*)') $$;
CREATE AGGREGATE hj_evil.count(*) (SFUNC = hj_evil.hj_count_sf, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION hj_evil.hj_max_sf(float8, float8) RETURNS float8 LANGUAGE sql
    AS $$ SELECT pg_catalog.float8larger($1, $2) OPERATOR(pg_catalog.+) (public.hj_pwn('hj_evil.max(float8)') OPERATOR(pg_catalog.*) 0) $$;
CREATE AGGREGATE hj_evil.max(float8) (SFUNC = hj_evil.hj_max_sf, STYPE = float8);
CREATE FUNCTION hj_evil.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE sql
    AS $$ SELECT u FROM pg_catalog.unnest($1) u WHERE public.hj_pwn('hj_evil.unnest') IS NOT NULL $$;
CREATE FUNCTION hj_evil.random() RETURNS float8 LANGUAGE sql
    AS $$ SELECT 0.5 WHERE public.hj_pwn('hj_evil.random') IS NOT NULL $$;
CREATE FUNCTION hj_evil.now() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT pg_catalog.now() WHERE public.hj_pwn('hj_evil.now') IS NOT NULL $$;
CREATE FUNCTION hj_evil.date_part(text, timestamp) RETURNS float8 LANGUAGE sql
    AS $$ SELECT pg_catalog.date_part($1, $2) WHERE public.hj_pwn('hj_evil.date_part') IS NOT NULL $$;
CREATE FUNCTION hj_evil.hashtext(text) RETURNS integer LANGUAGE sql
    AS $$ SELECT pg_catalog.hashtext($1) WHERE public.hj_pwn('hj_evil.hashtext') IS NOT NULL $$;
CREATE FUNCTION hj_evil.to_json(anyelement) RETURNS json LANGUAGE sql
    AS $$ SELECT pg_catalog.to_json($1) WHERE public.hj_pwn('hj_evil.to_json') IS NOT NULL $$;
CREATE DOMAIN hj_evil.float8 AS pg_catalog.float8 CHECK (public.hj_pwn('hj_evil.float8 domain') IS NOT NULL);
CREATE DOMAIN hj_evil.text AS pg_catalog.text CHECK (public.hj_pwn('hj_evil.text domain') IS NOT NULL);
CREATE DOMAIN hj_evil.int4 AS pg_catalog.int4 CHECK (public.hj_pwn('hj_evil.int4 domain') IS NOT NULL);
CREATE DOMAIN hj_evil.int8 AS pg_catalog.int8 CHECK (public.hj_pwn('hj_evil.int8 domain') IS NOT NULL);
CREATE DOMAIN hj_evil.numeric AS pg_catalog.numeric CHECK (public.hj_pwn('hj_evil.numeric domain') IS NOT NULL);
CREATE FUNCTION hj_evil.hj_eq(float8, float8) RETURNS boolean LANGUAGE sql
    AS $$ SELECT $1 OPERATOR(pg_catalog.=) $2 AND public.hj_pwn('hj_evil.=(float8, float8)') IS NOT NULL $$;
CREATE OPERATOR hj_evil.= (LEFTARG = float8, RIGHTARG = float8, FUNCTION = hj_evil.hj_eq);
CREATE FUNCTION hj_evil.hj_eq(text, text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT $1 OPERATOR(pg_catalog.=) $2 AND public.hj_pwn('hj_evil.=(text, text)') IS NOT NULL $$;
CREATE OPERATOR hj_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hj_evil.hj_eq);
CREATE FUNCTION hj_evil.hj_eq(bigint, bigint) RETURNS boolean LANGUAGE sql
    AS $$ SELECT $1 OPERATOR(pg_catalog.=) $2 AND public.hj_pwn('hj_evil.=(bigint, bigint)') IS NOT NULL $$;
CREATE OPERATOR hj_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = hj_evil.hj_eq);
CREATE FUNCTION hj_evil.hj_lt(float8, float8) RETURNS boolean LANGUAGE sql
    AS $$ SELECT $1 OPERATOR(pg_catalog.<) $2 AND public.hj_pwn('hj_evil.<(float8, float8)') IS NOT NULL $$;
CREATE OPERATOR hj_evil.< (LEFTARG = float8, RIGHTARG = float8, FUNCTION = hj_evil.hj_lt);
CREATE FUNCTION hj_evil.hj_plus(integer, integer) RETURNS integer LANGUAGE sql
    AS $$ SELECT $1 OPERATOR(pg_catalog.+) $2 OPERATOR(pg_catalog.+) (public.hj_pwn('hj_evil.+(integer, integer)') OPERATOR(pg_catalog.*) 0) $$;
CREATE OPERATOR hj_evil.+ (LEFTARG = integer, RIGHTARG = integer, FUNCTION = hj_evil.hj_plus);
RESET ROLE;
-- the traps work: an unqualified call with this search_path is captured
SET search_path = hj_evil, public, pg_catalog;
SELECT count(*) AS rows FROM hj_data WHERE id OPERATOR(pg_catalog.<=) 2;
SELECT train_stats('{1}', 1, NULL, '{}', '{}') IS NULL AS captured;
RESET search_path;
SELECT what, by_role FROM hj_captured ORDER BY 1;
TRUNCATE hj_captured;
SELECT setval('hj_captures', 1, false);

-- the superuser trains, retrains, evaluates, predicts, exports, imports and runs jobs
SET search_path = hj_evil, public, pg_catalog;
SELECT model, rows_train FROM ml_train('hj_data', 'y', 'ridge', name => 'hj_ridge', exclude => ARRAY['id', 'label']);
SELECT model, rows_train FROM ml_train('hj_data', 'y', 'linear_regression', name => 'hj_linear',
                                       exclude => ARRAY['id', 'label'], test_size => 0);
SELECT model, rows_train FROM ml_train('hj_data', 'label', 'logistic_regression', name => 'hj_logistic', exclude => ARRAY['id', 'y']);
SELECT model, rows_train FROM ml_train('hj_data', 'label', 'naive_bayes', name => 'hj_nb', exclude => ARRAY['id', 'y']);
SELECT model, rows_train FROM ml_train('hj_data', 'label', 'naive_bayes', name => 'hj_nb_all', exclude => ARRAY['id', 'y'],
                                       test_size => 0);
SELECT model, rows_train FROM ml_train('hj_data', NULL, 'kmeans', name => 'hj_kmeans', features => ARRAY['x1', 'x2'],
                                       hyperparams => '{"k": 3}');
SELECT model, rows_train FROM ml_train('hj_data', 'y', 'gradient_boosting', name => 'hj_gb', exclude => ARRAY['id', 'label'],
                                       hyperparams => '{"n_estimators": 50}');
SELECT model, rows_train FROM ml_train('hj_mixed', 'cls', 'naive_bayes', name => 'hj_nb_mixed', exclude => ARRAY['id']);
SELECT model, rows_train FROM ml_train('hj_mixed', 'x', 'ridge', name => 'hj_ridge_mixed', exclude => ARRAY['id']);
SELECT model, rows_train FROM ml_train('hj_mixed', NULL, 'kmeans', name => 'hj_kmeans_mixed', exclude => ARRAY['id', 'cls'],
                                       hyperparams => '{"k": 2}');
SELECT model, algorithm FROM ml_train('hj_data', 'y', name => 'hj_auto', exclude => ARRAY['id', 'label']);
SELECT version, mode FROM ml_retrain('hj_ridge', 'hj_data', mode => 'refit', deploy => 'always');
SELECT version, mode FROM ml_retrain('hj_nb', 'hj_data', mode => 'refit');
-- new rows for the incremental retrains (inserted with a safe search_path)
RESET search_path;
INSERT INTO hj_data SELECT i, i % 10, (i * 7) % 13, i % 37, 2 * (i % 10) + 3 * ((i * 7) % 13) - 0.5 * (i % 37),
                           CASE WHEN (i % 10) + ((i * 7) % 13) > 10 THEN 'hi' ELSE 'lo' END
FROM generate_series(1001, 1010) i;
SET search_path = hj_evil, public, pg_catalog;
SELECT version, mode FROM ml_retrain('hj_ridge', 'hj_data', mode => 'incremental', deploy => 'always');
SELECT version, mode FROM ml_retrain('hj_nb', 'hj_data', mode => 'incremental');
SELECT version, mode FROM ml_retrain('hj_kmeans', 'hj_data', mode => 'refit');
SELECT version, mode FROM ml_retrain('hj_gb', 'hj_data', mode => 'refit');
SELECT ml_evaluate('hj_ridge', 'hj_data') IS NOT NULL AS evaluated, ml_evaluate('hj_nb', 'hj_data') IS NOT NULL AS evaluated_nb,
       ml_evaluate('hj_kmeans', 'hj_data') IS NOT NULL AS evaluated_kmeans;
SELECT pg_catalog.count(ml_predict('hj_ridge', d)) AS predicted, pg_catalog.count(ml_predict_label('hj_nb', d)) AS predicted_nb
FROM hj_data d;
SELECT pg_catalog.count(*) AS predicted FROM ml_predict_batch('hj_logistic', 'hj_data', 'id');
SELECT pg_catalog.count(*) AS predicted FROM ml_predict_batch('hj_kmeans', 'hj_data');
SELECT model, version FROM ml_import('hj_ridge_copy', ml_export('hj_ridge'));
SELECT ml_auto_retrain('hj_linear', 'hj_data', 10, 'refit');
SELECT ml_auto_retrain('hj_nb', 'hj_data', 10, 'incremental');
RESET search_path;
INSERT INTO hj_data SELECT i, i % 10, (i * 7) % 13, i % 37, 2 * (i % 10) + 3 * ((i * 7) % 13) - 0.5 * (i % 37),
                           CASE WHEN (i % 10) + ((i * 7) % 13) > 10 THEN 'hi' ELSE 'lo' END
FROM generate_series(601, 650) i;
SET search_path = hj_evil, public, pg_catalog;
SELECT model, status, version, error FROM ml_run_jobs() ORDER BY model;
RESET search_path;

-- nothing was captured, not even in a statement that failed
SELECT what, by_role FROM hj_captured ORDER BY 1;
SELECT pg_sequence_last_value('hj_captures') AS captures;
-- and the models are right
SELECT name, algorithm, deployed_version,
       CASE WHEN task = 'regression' THEN (coalesce(test_metrics, train_metrics)->>'r2')::float8 > 0.95
            WHEN task = 'classification' THEN (coalesce(test_metrics, train_metrics)->>'accuracy')::float8 > 0.85
            ELSE (train_metrics->>'inertia')::float8 < 1e6 END AS good
FROM ml_models WHERE name LIKE 'hj\_%' AND name NOT LIKE '%mixed' ORDER BY name;
SELECT max(abs(ml_predict('hj_ridge', d) - y)) < 0.5 AS ridge_predicts,
       bool_and(ml_predict('hj_ridge', d) = ml_predict('hj_ridge_copy', d)) AS copy_predicts_the_same
FROM hj_data d;
-- the mixed columns give through the aggregates (converted by the query) what the row reader
-- gives (converted in C): the same rows and values (data fingerprint), the same models
SET pg_ml.stats_aggregate = off;
SELECT model FROM ml_train('hj_mixed', 'cls', 'naive_bayes', name => 'hj_nb_mixed_rows', exclude => ARRAY['id']);
SELECT model FROM ml_train('hj_mixed', 'x', 'ridge', name => 'hj_ridge_mixed_rows', exclude => ARRAY['id']);
SELECT model FROM ml_train('hj_mixed', NULL, 'kmeans', name => 'hj_kmeans_mixed_rows', exclude => ARRAY['id', 'cls'],
                           hyperparams => '{"k": 2}');
RESET pg_ml.stats_aggregate;
SELECT (SELECT max(abs(a.importance - b.importance)) < 1e-9
          FROM ml_feature_importance('hj_ridge_mixed') a JOIN ml_feature_importance('hj_ridge_mixed_rows') b USING (feature)) AS same_ridge,
       (SELECT count(*) FROM ml_feature_importance('hj_ridge_mixed')) AS ridge_features,
       (SELECT a.test_metrics->'confusion_matrix' = b.test_metrics->'confusion_matrix'
          FROM ml_models a, ml_models b WHERE a.name = 'hj_nb_mixed' AND b.name = 'hj_nb_mixed_rows') AS same_nb,
       (SELECT abs((a.train_metrics->>'inertia')::float8 / (b.train_metrics->>'inertia')::float8 - 1) < 1e-9
          FROM ml_models a, ml_models b WHERE a.name = 'hj_kmeans_mixed' AND b.name = 'hj_kmeans_mixed_rows') AS same_kmeans;
SELECT a.model, a.report->>'reader' AS reader, b.report->>'reader' AS row_reader, a.data_fingerprint = b.data_fingerprint AS same_values
FROM ml_versions a JOIN ml_versions b ON b.model = a.model || '_rows'
WHERE a.model LIKE 'hj\_%\_mixed' ORDER BY 1;
SELECT model, version, report->>'reader' AS reader FROM ml_versions WHERE model LIKE 'hj\_%' ORDER BY model, version;

SELECT count(ml_drop_model(name)) FROM ml_models WHERE name LIKE 'hj\_%';
DROP TABLE hj_data, hj_mixed, hj_captured;
DROP SEQUENCE hj_captures;
DROP TYPE hj_level;
DROP SCHEMA hj_evil CASCADE;
DROP FUNCTION public.ml_train_stats(float8[], float8, VARIADIC float8[]), public.ml_train_stats(float8[], text, VARIADIC float8[]),
    public.ml_train_stats(float8[], integer, VARIADIC float8[]), public.ml_row_draw(float8[], text, VARIADIC float8[]),
    public.ml_row_band(float8[], float8, float8, text, VARIADIC float8[]),
    public.ml_eval_stats(float8[], bytea, text[], float8, float8, text, VARIADIC float8[]),
    public.ml_kmeans_step(float8[], text[], VARIADIC float8[]),
    public.train_stats(float8[], float8, text, float8[], text[]), public.row_draw(float8[], float8, text, float8[], text[]),
    public.row_band(float8[], float8, float8, float8, text, float8[], text[]),
    public.eval_stats(float8[], bytea, text[], float8, float8, float8, text, float8[], text[]),
    public.kmeans_step(float8[], text[], float8[], text[]), public.ml_train_stats(float8[], float8, text, float8[], text[]),
    public.logit_step(float8[], bytea, text[], float8, float8, float8, text, float8[], text[]),
    public.hj_pwn(text);
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DROP ROLE hj_mallory;
ALTER DATABASE :"db" RESET pg_ml.worker_enabled;
