-- Ownership, grants, the caller's privileges on training data, and catalog protection
SET client_min_messages = warning;
CREATE ROLE pgml_alice;
CREATE ROLE pgml_bob;
CREATE ROLE pgml_team;
GRANT pgml_team TO pgml_bob;
CREATE TABLE shared_data (x float8, y float8, owner_name text);
INSERT INTO shared_data SELECT i, 2 * i + 1, CASE WHEN i <= 30 THEN 'pgml_alice' ELSE 'pgml_bob' END FROM generate_series(1, 40) i;
CREATE TABLE secret_data (x float8, y float8);
INSERT INTO secret_data SELECT i, i FROM generate_series(1, 10) i;
GRANT SELECT ON shared_data TO pgml_alice, pgml_bob;
GRANT CREATE ON SCHEMA public TO pgml_alice, pgml_bob;

SET ROLE pgml_alice;
SELECT model, rows_train FROM ml_train('shared_data', 'y', algorithm => 'linear_regression', name => 'alice_m',
                                       features => ARRAY['x'], test_size => 0);
-- training data is read with the caller's privileges
SELECT * FROM ml_train('secret_data', 'y', algorithm => 'linear_regression');
-- the catalog is not readable or writable directly
SELECT count(*) FROM ml.models;
SELECT count(*) FROM ml.versions;
UPDATE ml.models SET name = 'taken';
SELECT name, owner FROM ml_models;
RESET ROLE;

-- bob cannot see, use, retrain, deploy or drop alice's model
SET ROLE pgml_bob;
SELECT count(*) AS visible FROM ml_models;
SELECT ml_predict('alice_m', ARRAY[1.0]);
SELECT * FROM ml_retrain('alice_m', 'shared_data');
SELECT ml_deploy('alice_m', 1);
SELECT ml_rollback('alice_m');
SELECT ml_drop_model('alice_m');
SELECT ml_grant('alice_m', 'pgml_bob');
SELECT ml_evaluate('alice_m', 'shared_data');
RESET ROLE;

-- after ml_grant, bob (through a role he is a member of) can predict and evaluate, not change
SET ROLE pgml_alice;
SELECT ml_grant('alice_m', 'pgml_team');
RESET ROLE;
SET ROLE pgml_bob;
SELECT name, owner FROM ml_models;
SELECT round(ml_predict('alice_m', ARRAY[1.0])::numeric, 6) AS predicted;
SELECT (ml_evaluate('alice_m', 'shared_data')->>'r2')::numeric = 1 AS evaluates;
SELECT * FROM ml_retrain('alice_m', 'shared_data');
SELECT ml_drop_model('alice_m');
RESET ROLE;
SET ROLE pgml_alice;
SELECT ml_revoke('alice_m', 'pgml_team');
RESET ROLE;
SET ROLE pgml_bob;
SELECT ml_predict('alice_m', ARRAY[1.0]);
RESET ROLE;

-- row-level security on the source applies to training
ALTER TABLE shared_data ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON shared_data FOR SELECT USING (owner_name = current_user);
SET ROLE pgml_bob;
SELECT model, rows_train FROM ml_train('shared_data', 'y', algorithm => 'linear_regression', name => 'bob_m',
                                       features => ARRAY['x'], test_size => 0);
RESET ROLE;
SET ROLE pgml_alice;
SELECT rows_train FROM ml_retrain('alice_m', 'shared_data', mode => 'refit', test_size => 0);
SELECT ml_drop_model('alice_m');
RESET ROLE;

-- a superuser is not stopped, and sees every model
SELECT name, owner FROM ml_models ORDER BY name;
SELECT ml_drop_model('bob_m');
DROP TABLE shared_data, secret_data;
REVOKE CREATE ON SCHEMA public FROM pgml_alice, pgml_bob;
DROP ROLE pgml_alice, pgml_bob, pgml_team;
