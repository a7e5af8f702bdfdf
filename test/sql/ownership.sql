-- Models are owned objects (issue 10, findings 2-4): each model's sequence ml.model_<id> is
-- owned by the model's owner and carries its grants, so DROP ROLE, REASSIGN OWNED and DROP
-- OWNED treat models like any other object; auto-retrain triggers are known by function and
-- argument, never by name. Model ids depend on earlier tests: outputs replace them with N.
SET extra_float_digits = 0;
SET client_min_messages = warning;
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET pg_ml.worker_enabled = off;
CREATE ROLE pgml_own_alice;
CREATE ROLE pgml_own_bob;
CREATE ROLE pgml_own_carol;
CREATE TABLE own_pts (x float8, y float8);
INSERT INTO own_pts SELECT i, 2 * i + 1 FROM generate_series(1, 40) i;
GRANT SELECT ON own_pts TO pgml_own_alice, pgml_own_bob, pgml_own_carol;
-- the error of a statement, with the model ids of its detail replaced by N
CREATE FUNCTION own_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN regexp_replace(SQLSTATE || ': ' || SQLERRM || coalesce(E'\n' || d, ''), 'model_\d+', 'model_N', 'g');
END
$$;

SET ROLE pgml_own_alice;
SELECT model FROM ml_train('own_pts', 'y', algorithm => 'linear_regression', name => 'own_a1', test_size => 0);
SELECT model FROM ml_train('own_pts', 'y', algorithm => 'linear_regression', name => 'own_a2', test_size => 0);
SELECT ml_grant('own_a1', 'pgml_own_bob');
RESET ROLE;
-- the model's sequence: owned by alice, SELECT granted to bob
SELECT m.name, c.relnamespace::regnamespace AS schema, c.relname ~ '^model_\d+$' AS named_by_id,
       c.relowner::regrole AS owner, has_sequence_privilege('pgml_own_bob', c.oid, 'SELECT') AS bob_granted
FROM ml.models m JOIN pg_class c ON c.oid = m.seq WHERE m.name LIKE 'own\_%' ORDER BY 1;
SELECT name, owner FROM ml_models WHERE name LIKE 'own\_%' ORDER BY 1;

-- DROP ROLE of a model's owner fails like for any owned object; so does dropping a grantee
SELECT own_try('DROP ROLE pgml_own_alice');
SELECT own_try('DROP ROLE pgml_own_bob');
SELECT count(*) AS still_there FROM ml_models WHERE name LIKE 'own\_%';

-- REASSIGN OWNED moves the models: carol may deploy and drop them, alice may not
REASSIGN OWNED BY pgml_own_alice TO pgml_own_carol;
SELECT name, owner FROM ml_models WHERE name LIKE 'own\_%' ORDER BY 1;
SET ROLE pgml_own_alice;
SELECT count(*) AS alice_sees FROM ml_models WHERE name LIKE 'own\_%';
SELECT own_try($$SELECT ml_deploy('own_a1', 1)$$);
SELECT own_try($$SELECT ml_drop_model('own_a2')$$);
RESET ROLE;
SET ROLE pgml_own_carol;
SELECT ml_deploy('own_a1', 1);
SELECT ml_drop_model('own_a2');
RESET ROLE;
-- the grant moved with the model: bob still predicts, cannot change it
SET ROLE pgml_own_bob;
SELECT round(ml_predict('own_a1', ARRAY[1.0])::numeric, 6) AS bob_predicts;
SELECT own_try($$SELECT ml_deploy('own_a1', 1)$$);
RESET ROLE;
-- alice owns nothing any more
REVOKE ALL ON own_pts FROM pgml_own_alice;
DROP ROLE pgml_own_alice;

-- DROP OWNED of a grantee revokes the grant
DROP OWNED BY pgml_own_bob;
SET ROLE pgml_own_bob;
SELECT own_try($$SELECT ml_predict('own_a1', ARRAY[1.0])$$);
RESET ROLE;
GRANT SELECT ON own_pts TO pgml_own_bob;

-- DROP OWNED of the owner drops the models, their versions, deployments, jobs and auto-retrain trigger
CREATE TABLE own_stream (x float8, y float8);
INSERT INTO own_stream SELECT i, 2 * i + 1 FROM generate_series(1, 40) i;
GRANT SELECT, TRIGGER, INSERT ON own_stream TO pgml_own_carol;
SET ROLE pgml_own_carol;
SELECT ml_auto_retrain('own_a1', 'own_stream', 5, 'refit');
INSERT INTO own_stream SELECT i, 2 * i + 1 FROM generate_series(41, 50) i;
SELECT model, status FROM ml_jobs WHERE model = 'own_a1';
RESET ROLE;
SELECT id AS a1_id FROM ml.models WHERE name = 'own_a1' \gset
SELECT count(*) AS triggers_before FROM pg_trigger WHERE tgrelid = 'own_stream'::regclass;
DROP OWNED BY pgml_own_carol;
SELECT count(*) AS models FROM ml.models WHERE id = :a1_id;
SELECT (SELECT count(*) FROM ml.versions WHERE model_id = :a1_id) AS versions,
       (SELECT count(*) FROM ml.deployments WHERE model_id = :a1_id) AS deployments,
       (SELECT count(*) FROM ml.jobs WHERE model_id = :a1_id) AS jobs,
       (SELECT count(*) FROM ml.auto_retrain WHERE model_id = :a1_id) AS auto_retrain;
SELECT count(*) AS triggers_after FROM pg_trigger WHERE tgrelid = 'own_stream'::regclass;
INSERT INTO own_stream VALUES (51, 103);
DROP ROLE pgml_own_carol;

-- the owner may also drop the model's sequence itself: the model goes with it
CREATE ROLE pgml_own_alice;
GRANT SELECT ON own_pts TO pgml_own_alice;
SET ROLE pgml_own_bob;
SELECT model FROM ml_train('own_pts', 'y', algorithm => 'linear_regression', name => 'own_b0', test_size => 0);
RESET ROLE;
SELECT seq AS b0_seq FROM ml.models WHERE name = 'own_b0' \gset
SET ROLE pgml_own_alice;
SELECT own_try('DROP SEQUENCE ' || :'b0_seq');
RESET ROLE;
SET ROLE pgml_own_bob;
SELECT own_try('DROP SEQUENCE ' || :'b0_seq');
SELECT count(*) AS b0_visible FROM ml_models WHERE name = 'own_b0';
RESET ROLE;
SELECT count(*) AS b0_left FROM ml.models WHERE name = 'own_b0';

-- default privileges for sequences (often set for serial columns) do not give models away
ALTER DEFAULT PRIVILEGES GRANT SELECT, USAGE ON SEQUENCES TO pgml_own_bob;
ALTER DEFAULT PRIVILEGES IN SCHEMA ml GRANT SELECT ON SEQUENCES TO PUBLIC;
SET ROLE pgml_own_alice;
SELECT model FROM ml_train('own_pts', 'y', algorithm => 'linear_regression', name => 'own_a4', test_size => 0);
RESET ROLE;
ALTER DEFAULT PRIVILEGES REVOKE SELECT, USAGE ON SEQUENCES FROM pgml_own_bob;
ALTER DEFAULT PRIVILEGES IN SCHEMA ml REVOKE SELECT ON SEQUENCES FROM PUBLIC;
SELECT c.relacl IS NULL OR c.relacl::text !~ 'pgml_own_bob|^\{=|,=' AS only_the_owner
FROM ml.models m JOIN pg_class c ON c.oid = m.seq WHERE m.name = 'own_a4';
SET ROLE pgml_own_bob;
SELECT own_try($$SELECT ml_predict('own_a4', ARRAY[1.0])$$);
RESET ROLE;
SET ROLE pgml_own_alice;
SELECT ml_drop_model('own_a4');
RESET ROLE;

-- the owner may not rename the sequence (that needs CREATE on schema ml); if a sequence has the
-- name the next model's would get, that model gets another name: nothing depends on the names
SET ROLE pgml_own_bob;
SELECT model FROM ml_train('own_pts', 'y', algorithm => 'linear_regression', name => 'own_b1', test_size => 0);
RESET ROLE;
SELECT m.seq AS b1_seq, 'model_' || (s.last_value + 1) AS next_name FROM ml.models m, ml.models_id_seq s
WHERE m.name = 'own_b1' \gset
SET ROLE pgml_own_bob;
SELECT own_try(format('ALTER SEQUENCE %s RENAME TO %I', :'b1_seq', :'next_name'));
RESET ROLE;
SELECT own_try(format('ALTER SEQUENCE %s RENAME TO %I', :'b1_seq', :'next_name'));
SET ROLE pgml_own_alice;
SELECT model FROM ml_train('own_pts', 'y', algorithm => 'linear_regression', name => 'own_a3', test_size => 0);
SELECT ml_grant('own_a3', 'pgml_own_bob');
RESET ROLE;
SELECT v.name, regexp_replace(m.seq::text, '\d+', 'N', 'g') AS seq, v.owner
FROM ml_models v JOIN ml.models m USING (id) WHERE v.name IN ('own_b1', 'own_a3') ORDER BY 1;
SET ROLE pgml_own_bob;
SELECT round(ml_predict('own_a3', ARRAY[1.0])::numeric, 6) AS bob_predicts;
SELECT ml_drop_model('own_b1');
RESET ROLE;
SET ROLE pgml_own_alice;
SELECT ml_drop_model('own_a3');
RESET ROLE;

-- auto-retrain triggers are known by function and argument, not by name: bob renames his
-- trigger to the name of alice's; neither model's jobs nor turning alice's auto-retrain off
-- are confused by it
CREATE TABLE own_ta (x float8, y float8);
CREATE TABLE own_tb (x float8, y float8);
ALTER TABLE own_ta OWNER TO pgml_own_alice;
ALTER TABLE own_tb OWNER TO pgml_own_bob;
SET ROLE pgml_own_alice;
SELECT model FROM ml_train('own_pts', 'y', algorithm => 'linear_regression', name => 'own_ma', test_size => 0);
SELECT ml_auto_retrain('own_ma', 'own_ta', 5, 'refit');
RESET ROLE;
SELECT id AS ma_id FROM ml.models WHERE name = 'own_ma' \gset
SET ROLE pgml_own_bob;
SELECT model FROM ml_train('own_pts', 'y', algorithm => 'linear_regression', name => 'own_mb', test_size => 0);
SELECT ml_auto_retrain('own_mb', 'own_tb', 5, 'refit');
SELECT own_try(format('ALTER TRIGGER %I ON own_tb RENAME TO %I',
                      (SELECT tgname FROM pg_trigger WHERE tgrelid = 'own_tb'::regclass), 'pgml_auto_retrain_' || :ma_id));
RESET ROLE;
SELECT tgname = 'pgml_auto_retrain_' || :ma_id AS named_like_alices, tgrelid::regclass
FROM pg_trigger WHERE tgrelid IN ('own_ta'::regclass, 'own_tb'::regclass) ORDER BY 2, 1;
-- each model's jobs find their own table
SET ROLE pgml_own_alice;
INSERT INTO own_ta SELECT i, 2 * i + 1 FROM generate_series(1, 10) i;
SELECT model, status, error FROM ml_run_jobs();
RESET ROLE;
SET ROLE pgml_own_bob;
INSERT INTO own_tb SELECT i, 2 * i + 1 FROM generate_series(1, 10) i;
SELECT model, status, error FROM ml_run_jobs();
-- alice may watch bob's table too: her trigger takes a name of its own there
GRANT SELECT, TRIGGER, INSERT ON own_tb TO pgml_own_alice;
RESET ROLE;
SET ROLE pgml_own_alice;
SELECT ml_auto_retrain('own_ma', 'own_tb', 5, 'refit');
RESET ROLE;
SELECT regexp_replace(tgname, '\d+', 'N', 'g') AS tgname, tgrelid::regclass
FROM pg_trigger WHERE tgrelid IN ('own_ta'::regclass, 'own_tb'::regclass) ORDER BY 2, 1;
SET ROLE pgml_own_alice;
INSERT INTO own_tb SELECT i, 2 * i + 1 FROM generate_series(11, 20) i;
SELECT model, status, error FROM ml_run_jobs();
-- turning alice's auto-retrain off drops her trigger, not bob's of the same name
SELECT ml_auto_retrain('own_ma', NULL);
RESET ROLE;
SELECT tgname = 'pgml_auto_retrain_' || :ma_id AS named_like_alices, tgrelid::regclass
FROM pg_trigger WHERE tgrelid IN ('own_ta'::regclass, 'own_tb'::regclass) ORDER BY 2, 1;
SELECT model, status FROM ml_jobs WHERE model IN ('own_ma', 'own_mb') ORDER BY id;
SET ROLE pgml_own_bob;
SELECT model, status, error FROM ml_run_jobs();
RESET ROLE;
SELECT model, count(*) AS versions FROM ml_versions WHERE model IN ('own_ma', 'own_mb') GROUP BY 1 ORDER BY 1;

-- ml_drop_model drops the sequence too
SET ROLE pgml_own_alice;
SELECT ml_drop_model('own_ma');
RESET ROLE;
SET ROLE pgml_own_bob;
SELECT ml_drop_model('own_mb');
RESET ROLE;
SELECT count(*) AS sequences_left FROM pg_class c
WHERE c.relkind = 'S' AND c.relowner IN ('pgml_own_alice'::regrole, 'pgml_own_bob'::regrole);
DROP TABLE own_pts, own_stream, own_ta, own_tb;
DROP OWNED BY pgml_own_alice, pgml_own_bob;
DROP FUNCTION own_try(text);
DROP ROLE pgml_own_alice, pgml_own_bob;
ALTER DATABASE :"db" RESET pg_ml.worker_enabled;
