-- pg_ml 0.1.0: train, retrain, version and serve models inside PostgreSQL.
--
-- Written as if the extension were trusted: no CREATE OR REPLACE, no IF NOT EXISTS,
-- every object schema-qualified, and functions that need the catalog do it from C
-- under the catalog owner's identity with explicit ownership checks.

\echo Use "CREATE EXTENSION pg_ml" to load this file. \quit

-- ---------------------------------------------------------------- catalog (schema ml)

CREATE SCHEMA ml;
COMMENT ON SCHEMA ml IS 'pg_ml catalog: models, versions, training logs, deployments';
REVOKE ALL ON SCHEMA ml FROM PUBLIC;

CREATE SEQUENCE ml.models_id_seq AS bigint;

CREATE TABLE ml.models (
    id              bigint NOT NULL DEFAULT nextval('ml.models_id_seq'),
    name            text NOT NULL,
    owner           regrole NOT NULL,
    task            text NOT NULL,
    algorithm       text NOT NULL,
    target          text,
    relation        text NOT NULL,
    features        jsonb NOT NULL,
    classes         jsonb,
    deployed_version integer,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT models_pkey PRIMARY KEY (id),
    CONSTRAINT models_name_key UNIQUE (name),
    CONSTRAINT models_name_check CHECK (pg_catalog.length(name) BETWEEN 1 AND 200),
    CONSTRAINT models_task_check CHECK (task IN ('regression', 'classification', 'clustering'))
);
ALTER SEQUENCE ml.models_id_seq OWNED BY ml.models.id;

CREATE TABLE ml.versions (
    model_id        bigint NOT NULL,
    version         integer NOT NULL,
    parent_version  integer,
    algorithm       text NOT NULL,
    mode            text NOT NULL,
    relation        text NOT NULL,
    hyperparams     jsonb NOT NULL,
    preprocess      jsonb NOT NULL,
    preprocessing_state jsonb NOT NULL,
    metrics         jsonb NOT NULL,
    report          jsonb NOT NULL,
    coefficients    jsonb,
    rows_train      bigint NOT NULL,
    rows_test       bigint NOT NULL,
    test_size       float8 NOT NULL,
    seed            bigint NOT NULL,
    data_fingerprint text NOT NULL,
    blob            bytea NOT NULL,
    format_version  smallint NOT NULL,
    model_kind      text NOT NULL,
    blob_length     integer NOT NULL,
    checksum        bigint NOT NULL,
    trained_by      regrole NOT NULL,
    trained_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    read_ms         float8 NOT NULL,
    fit_ms          float8 NOT NULL,
    duration_ms     float8 NOT NULL,
    CONSTRAINT versions_pkey PRIMARY KEY (model_id, version),
    CONSTRAINT versions_model_fkey FOREIGN KEY (model_id) REFERENCES ml.models (id) ON DELETE CASCADE,
    CONSTRAINT versions_version_check CHECK (version >= 1),
    CONSTRAINT versions_parent_check CHECK (parent_version IS NULL OR parent_version < version),
    CONSTRAINT versions_mode_check CHECK (mode IN ('train', 'refit', 'incremental', 'import')),
    CONSTRAINT versions_blob_length_check CHECK (blob_length = pg_catalog.octet_length(blob))
);

CREATE TABLE ml.training_log (
    model_id        bigint NOT NULL,
    version         integer NOT NULL,
    iteration       integer NOT NULL,
    loss            float8,
    grad_norm       float8,
    valid_metric    float8,
    CONSTRAINT training_log_pkey PRIMARY KEY (model_id, version, iteration),
    CONSTRAINT training_log_version_fkey FOREIGN KEY (model_id, version)
        REFERENCES ml.versions (model_id, version) ON DELETE CASCADE
);

CREATE SEQUENCE ml.deployments_id_seq AS bigint;
CREATE TABLE ml.deployments (
    id              bigint NOT NULL DEFAULT nextval('ml.deployments_id_seq'),
    model_id        bigint NOT NULL,
    version         integer NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    reason          text NOT NULL,
    deployed_by     regrole NOT NULL,
    deployed_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT deployments_pkey PRIMARY KEY (id),
    CONSTRAINT deployments_version_fkey FOREIGN KEY (model_id, version)
        REFERENCES ml.versions (model_id, version) ON DELETE CASCADE
);
ALTER SEQUENCE ml.deployments_id_seq OWNED BY ml.deployments.id;

CREATE TABLE ml.grants (
    model_id        bigint NOT NULL,
    grantee         regrole NOT NULL,
    CONSTRAINT grants_pkey PRIMARY KEY (model_id, grantee),
    CONSTRAINT grants_model_fkey FOREIGN KEY (model_id) REFERENCES ml.models (id) ON DELETE CASCADE
);

-- pg_dump keeps every model: table rows and sequence positions
SELECT pg_catalog.pg_extension_config_dump('ml.models', '');
SELECT pg_catalog.pg_extension_config_dump('ml.models_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ml.versions', '');
SELECT pg_catalog.pg_extension_config_dump('ml.training_log', '');
SELECT pg_catalog.pg_extension_config_dump('ml.deployments', '');
SELECT pg_catalog.pg_extension_config_dump('ml.deployments_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ml.grants', '');

REVOKE ALL ON ml.models, ml.versions, ml.training_log, ml.deployments, ml.grants FROM PUBLIC;
REVOKE ALL ON SEQUENCE ml.models_id_seq, ml.deployments_id_seq FROM PUBLIC;

-- ---------------------------------------------------------------- views
-- Views run with their owner's rights on ml.*; each row is filtered to the models the
-- caller owns (directly or through role membership) or was granted (ml_grant). The
-- filter is written inline: a function would run with the caller's rights.

CREATE VIEW @extschema@.ml_models AS
SELECT m.name, m.id, m.owner, m.task, m.algorithm, m.target, m.relation,
       m.deployed_version, v.metrics -> 'test' AS test_metrics, v.metrics -> 'train' AS train_metrics,
       m.classes, m.created_at, m.updated_at
FROM ml.models m
LEFT JOIN ml.versions v ON v.model_id = m.id AND v.version = m.deployed_version
WHERE pg_catalog.pg_has_role(m.owner, 'USAGE')
   OR EXISTS (SELECT 1 FROM ml.grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.id AND pg_catalog.pg_has_role(g.grantee, 'USAGE'));
COMMENT ON VIEW @extschema@.ml_models IS 'pg_ml: one row per model visible to the current role';

CREATE VIEW @extschema@.ml_versions AS
SELECT m.name AS model, v.model_id, v.version, v.parent_version,
       (v.version = m.deployed_version) AS deployed,
       v.algorithm, v.mode, v.relation, v.metrics -> 'test' AS test_metrics, v.metrics -> 'train' AS train_metrics,
       v.hyperparams, v.preprocess, v.preprocessing_state, v.coefficients, v.rows_train, v.rows_test, v.report,
       v.duration_ms, v.trained_by, v.trained_at, v.data_fingerprint,
       v.format_version, v.model_kind, v.blob_length, v.checksum
FROM ml.versions v
JOIN ml.models m ON m.id = v.model_id
WHERE pg_catalog.pg_has_role(m.owner, 'USAGE')
   OR EXISTS (SELECT 1 FROM ml.grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.id AND pg_catalog.pg_has_role(g.grantee, 'USAGE'));
COMMENT ON VIEW @extschema@.ml_versions IS 'pg_ml: every version of every model visible to the current role';

-- the training log of the versions visible to the caller (read through ml_training_log())
CREATE VIEW ml.training_log_visible AS
SELECT m.name AS model, l.model_id, l.version, l.iteration, l.loss, l.grad_norm, l.valid_metric
FROM ml.training_log l
JOIN ml.models m ON m.id = l.model_id
WHERE pg_catalog.pg_has_role(m.owner, 'USAGE')
   OR EXISTS (SELECT 1 FROM ml.grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.id AND pg_catalog.pg_has_role(g.grantee, 'USAGE'));

GRANT USAGE ON SCHEMA ml TO PUBLIC;
GRANT SELECT ON @extschema@.ml_models, @extschema@.ml_versions, ml.training_log_visible TO PUBLIC;

-- ---------------------------------------------------------------- training
-- Volatile and parallel unsafe: they read the relation and write the catalog.

CREATE FUNCTION @extschema@.ml_train(
    relation     text,
    target       text,
    algorithm    text DEFAULT 'auto',
    task         text DEFAULT 'auto',
    name         text DEFAULT NULL,
    features     text[] DEFAULT NULL,
    exclude      text[] DEFAULT NULL,
    hyperparams  jsonb DEFAULT '{}',
    preprocess   jsonb DEFAULT '{}',
    test_size    float8 DEFAULT 0.2,
    seed         integer DEFAULT 42,
    OUT model_id bigint, OUT model text, OUT version integer, OUT task text, OUT algorithm text,
    OUT metrics jsonb, OUT rows_train bigint, OUT rows_test bigint, OUT deployed boolean)
    RETURNS record
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pgml_train';
COMMENT ON FUNCTION @extschema@.ml_train(text, text, text, text, text, text[], text[], jsonb, jsonb, float8, integer)
    IS 'pg_ml: train a new model on a relation and deploy its version 1';

CREATE FUNCTION @extschema@.ml_retrain(
    model        text,
    relation     text,
    mode         text DEFAULT 'auto',
    deploy       text DEFAULT 'if_better',
    test_size    float8 DEFAULT NULL,
    seed         integer DEFAULT NULL,
    OUT model_id bigint, OUT version integer, OUT parent_version integer, OUT mode text,
    OUT rows_train bigint, OUT rows_test bigint, OUT metrics jsonb, OUT previous_metrics jsonb,
    OUT deployed boolean, OUT reason text)
    RETURNS record
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pgml_retrain';
CREATE FUNCTION @extschema@.ml_retrain(
    model        bigint,
    relation     text,
    mode         text DEFAULT 'auto',
    deploy       text DEFAULT 'if_better',
    test_size    float8 DEFAULT NULL,
    seed         integer DEFAULT NULL,
    OUT model_id bigint, OUT version integer, OUT parent_version integer, OUT mode text,
    OUT rows_train bigint, OUT rows_test bigint, OUT metrics jsonb, OUT previous_metrics jsonb,
    OUT deployed boolean, OUT reason text)
    RETURNS record
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'pgml_retrain';
COMMENT ON FUNCTION @extschema@.ml_retrain(text, text, text, text, float8, integer)
    IS 'pg_ml: train a new version of a model on a relation (incremental or refit)';
COMMENT ON FUNCTION @extschema@.ml_retrain(bigint, text, text, text, float8, integer)
    IS 'pg_ml: train a new version of a model on a relation (incremental or refit)';

-- ---------------------------------------------------------------- prediction
-- STABLE, not IMMUTABLE: the deployed version can change between statements, and one
-- statement sees one version. PARALLEL SAFE: the model is read once per query per
-- process; nothing is written. Not STRICT for rows: a row of NULLs is imputed.

CREATE FUNCTION @extschema@.ml_predict(model text, features record) RETURNS float8
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict';
CREATE FUNCTION @extschema@.ml_predict(model bigint, features record) RETURNS float8
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict';
CREATE FUNCTION @extschema@.ml_predict(model text, features float8[]) RETURNS float8
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict';
CREATE FUNCTION @extschema@.ml_predict(model bigint, features float8[]) RETURNS float8
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict';
CREATE FUNCTION @extschema@.ml_predict(model text, features jsonb) RETURNS float8
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict';
CREATE FUNCTION @extschema@.ml_predict(model bigint, features jsonb) RETURNS float8
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict';

CREATE FUNCTION @extschema@.ml_predict_label(model text, features record) RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict_label';
CREATE FUNCTION @extschema@.ml_predict_label(model bigint, features record) RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict_label';
CREATE FUNCTION @extschema@.ml_predict_label(model text, features float8[]) RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict_label';
CREATE FUNCTION @extschema@.ml_predict_label(model bigint, features float8[]) RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict_label';
CREATE FUNCTION @extschema@.ml_predict_label(model text, features jsonb) RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict_label';
CREATE FUNCTION @extschema@.ml_predict_label(model bigint, features jsonb) RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict_label';

CREATE FUNCTION @extschema@.ml_predict_proba(model text, features record) RETURNS float8[]
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict_proba';
CREATE FUNCTION @extschema@.ml_predict_proba(model bigint, features record) RETURNS float8[]
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict_proba';
CREATE FUNCTION @extschema@.ml_predict_proba(model text, features float8[]) RETURNS float8[]
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict_proba';
CREATE FUNCTION @extschema@.ml_predict_proba(model bigint, features float8[]) RETURNS float8[]
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict_proba';
CREATE FUNCTION @extschema@.ml_predict_proba(model text, features jsonb) RETURNS float8[]
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict_proba';
CREATE FUNCTION @extschema@.ml_predict_proba(model bigint, features jsonb) RETURNS float8[]
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgml_predict_proba';

COMMENT ON FUNCTION @extschema@.ml_predict(text, record) IS
    'pg_ml: predict with the deployed version (row matched by column name, float8[] in feature order, or jsonb); regression value or numeric/boolean class';
COMMENT ON FUNCTION @extschema@.ml_predict_label(text, record) IS 'pg_ml: the predicted class of a classifier, as text';
COMMENT ON FUNCTION @extschema@.ml_predict_proba(text, record) IS 'pg_ml: class probabilities of a classifier, in the order of ml_models.classes';

-- ---------------------------------------------------------------- lifecycle

CREATE FUNCTION @extschema@.ml_evaluate(model text, relation text, version integer DEFAULT NULL) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pgml_evaluate';
CREATE FUNCTION @extschema@.ml_evaluate(model bigint, relation text, version integer DEFAULT NULL) RETURNS jsonb
    LANGUAGE c STABLE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pgml_evaluate';
COMMENT ON FUNCTION @extschema@.ml_evaluate(text, text, integer) IS 'pg_ml: metrics of a version (default: deployed) on labelled rows';

CREATE FUNCTION @extschema@.ml_deploy(model text, version integer) RETURNS integer
    LANGUAGE c VOLATILE PARALLEL UNSAFE STRICT AS 'MODULE_PATHNAME', 'pgml_deploy';
CREATE FUNCTION @extschema@.ml_deploy(model bigint, version integer) RETURNS integer
    LANGUAGE c VOLATILE PARALLEL UNSAFE STRICT AS 'MODULE_PATHNAME', 'pgml_deploy';
COMMENT ON FUNCTION @extschema@.ml_deploy(text, integer) IS 'pg_ml: deploy a version; returns the version deployed before';

CREATE FUNCTION @extschema@.ml_rollback(model text) RETURNS integer
    LANGUAGE c VOLATILE PARALLEL UNSAFE STRICT AS 'MODULE_PATHNAME', 'pgml_rollback';
CREATE FUNCTION @extschema@.ml_rollback(model bigint) RETURNS integer
    LANGUAGE c VOLATILE PARALLEL UNSAFE STRICT AS 'MODULE_PATHNAME', 'pgml_rollback';
COMMENT ON FUNCTION @extschema@.ml_rollback(text) IS 'pg_ml: deploy again the version deployed before the current one; returns it';

CREATE FUNCTION @extschema@.ml_drop_model(model text) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE STRICT AS 'MODULE_PATHNAME', 'pgml_drop_model';
CREATE FUNCTION @extschema@.ml_drop_model(model bigint) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE STRICT AS 'MODULE_PATHNAME', 'pgml_drop_model';
COMMENT ON FUNCTION @extschema@.ml_drop_model(text) IS 'pg_ml: drop a model and all its versions';

CREATE FUNCTION @extschema@.ml_grant(model text, role regrole) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE STRICT AS 'MODULE_PATHNAME', 'pgml_grant';
CREATE FUNCTION @extschema@.ml_revoke(model text, role regrole) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE STRICT AS 'MODULE_PATHNAME', 'pgml_revoke';
COMMENT ON FUNCTION @extschema@.ml_grant(text, regrole) IS 'pg_ml: let a role predict with and evaluate a model';
COMMENT ON FUNCTION @extschema@.ml_revoke(text, regrole) IS 'pg_ml: take back ml_grant';

-- ---------------------------------------------------------------- inspection
-- SQL functions over the filtered views: they see only models the caller may use.
-- STABLE (they read the catalog), PARALLEL SAFE, search_path pinned.

CREATE FUNCTION @extschema@.ml_feature_importance(model text, version integer DEFAULT NULL)
    RETURNS TABLE (feature text, importance float8, kind text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    c jsonb;
BEGIN
    SELECT x.coefficients INTO c
    FROM @extschema@.ml_versions x
    WHERE x.model OPERATOR(pg_catalog.=) $1
      AND CASE WHEN $2 IS NULL THEN x.deployed ELSE x.version OPERATOR(pg_catalog.=) $2 END;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM @extschema@.ml_models m WHERE m.name OPERATOR(pg_catalog.=) $1) THEN
            RAISE EXCEPTION 'model "%" does not exist', $1 USING ERRCODE = 'undefined_object',
                HINT = 'ml_models lists the models you can use.';
        END IF;
        RAISE EXCEPTION 'version % of model "%" does not exist', $2, $1 USING ERRCODE = 'undefined_object',
            HINT = 'ml_versions lists the versions of a model.';
    END IF;
    RETURN QUERY
    SELECT f.feature, f.importance, f.kind FROM (
        -- linear models: standardized coefficients, signed (mean absolute value over classes
        -- for multinomial)
        SELECT e.key, CASE jsonb_typeof(e.value)
                          WHEN 'number' THEN (e.value #>> '{}')::float8
                          ELSE (SELECT avg(abs(a::text::float8)) FROM jsonb_array_elements(e.value) a) END,
               'coefficient'
        FROM jsonb_each(c -> 'standardized') e
        WHERE c ? 'standardized'
        UNION ALL
        -- other algorithms: their own importance (split gain, weights, ...)
        SELECT e.key, (e.value #>> '{}')::float8, c ->> 'kind'
        FROM jsonb_each(c -> 'importance') e
        WHERE c ? 'importance'
    ) f (feature, importance, kind)
    ORDER BY abs(f.importance) DESC NULLS LAST, f.feature;
END
$$;
CREATE FUNCTION @extschema@.ml_feature_importance(model bigint, version integer DEFAULT NULL)
    RETURNS TABLE (feature text, importance float8, kind text)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM @extschema@.ml_feature_importance(
              (SELECT m.name FROM @extschema@.ml_models m WHERE m.id OPERATOR(pg_catalog.=) $1), $2) $$;
COMMENT ON FUNCTION @extschema@.ml_feature_importance(text, integer)
    IS 'pg_ml: importance of each feature (standardized coefficients, split gain, ...) of a version (default: deployed)';

CREATE FUNCTION @extschema@.ml_training_log(model text, version integer DEFAULT NULL)
    RETURNS TABLE (iteration integer, loss float8, grad_norm float8, valid_metric float8)
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v integer := $2;
BEGIN
    IF v IS NULL THEN
        SELECT m.deployed_version INTO v FROM @extschema@.ml_models m WHERE m.name OPERATOR(pg_catalog.=) $1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'model "%" does not exist', $1 USING ERRCODE = 'undefined_object',
                HINT = 'ml_models lists the models you can use.';
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM @extschema@.ml_versions x
                      WHERE x.model OPERATOR(pg_catalog.=) $1 AND x.version OPERATOR(pg_catalog.=) v) THEN
        RAISE EXCEPTION 'version % of model "%" does not exist', v, $1 USING ERRCODE = 'undefined_object',
            HINT = 'ml_versions lists the versions of a model.';
    END IF;
    RETURN QUERY
    SELECT l.iteration, l.loss, l.grad_norm, l.valid_metric
    FROM ml.training_log_visible l
    WHERE l.model OPERATOR(pg_catalog.=) $1 AND l.version OPERATOR(pg_catalog.=) v
    ORDER BY l.iteration;
END
$$;
CREATE FUNCTION @extschema@.ml_training_log(model bigint, version integer DEFAULT NULL)
    RETURNS TABLE (iteration integer, loss float8, grad_norm float8, valid_metric float8)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM @extschema@.ml_training_log(
              (SELECT m.name FROM @extschema@.ml_models m WHERE m.id OPERATOR(pg_catalog.=) $1), $2) $$;
COMMENT ON FUNCTION @extschema@.ml_training_log(text, integer)
    IS 'pg_ml: per-iteration training loss and validation metric of a version (default: deployed)';
