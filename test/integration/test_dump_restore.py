"""pg_dump / pg_restore keep every model: catalog rows, deployed versions, sequences and
the models' predictions."""
import os
import shutil
import subprocess
import tempfile
import unittest

import psycopg2.errors
import psycopg2.extras

from pgml_test import connect, create_database, create_table, dataset, drop_database, unique


def pg_bin(program):
    """The PostgreSQL client program matching the server (pg_virtualenv exports PG_CONFIG)."""
    pg_config = os.environ.get("PG_CONFIG", "pg_config")
    try:
        bindir = subprocess.run([pg_config, "--bindir"], check=True, capture_output=True, text=True).stdout.strip()
        path = os.path.join(bindir, program)
        if os.access(path, os.X_OK):
            return path
    except (OSError, subprocess.CalledProcessError):
        pass
    return shutil.which(program) or program


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


MODELS_Q = ("SELECT name, id, owner::text, task, algorithm, target, relation, deployed_version, test_metrics, "
            "train_metrics, classes, created_at, updated_at FROM ml_models ORDER BY name")
VERSIONS_Q = ("SELECT model, model_id, version, parent_version, deployed, algorithm, mode, relation, test_metrics, "
              "train_metrics, hyperparams, preprocess, preprocessing_state, coefficients, rows_train, rows_test, report, "
              "duration_ms, trained_by::text, trained_at, data_fingerprint, format_version, model_kind, blob_length, "
              "checksum FROM ml_versions ORDER BY model, version")
CATALOG_QS = [
    "SELECT model_id, version, md5(blob) FROM ml.versions ORDER BY 1, 2",
    "SELECT model_id, version, iteration, loss, grad_norm FROM ml.training_log ORDER BY 1, 2, 3",
    "SELECT id, model_id, version, active, reason, deployed_by::text, deployed_at FROM ml.deployments ORDER BY id",
    # ownership and grants: the owner and the ACL of each model's sequence
    "SELECT m.id, c.relname, c.relowner::regrole::text, c.relacl::text FROM ml.models m "
    "JOIN pg_class c ON c.oid = m.seq ORDER BY 1",
]


class DumpRestoreTest(unittest.TestCase):
    def setUp(self):
        self.src, self.dst = unique("pgml_dump_src"), unique("pgml_dump_dst")
        self.role = unique("pgml_dump_reader")
        self.tmp = tempfile.mkdtemp(prefix="pgml_dump_")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        admin = connect()
        with admin.cursor() as cur:
            cur.execute(f'CREATE ROLE "{self.role}" NOLOGIN')
        admin.close()
        # dropped last: the role holds a grant (on a model's sequence) in the databases until they are gone
        self.addCleanup(self._drop_role)
        create_database(self.src)
        self.addCleanup(drop_database, self.src)

    def _drop_role(self):
        admin = connect()
        try:
            with admin.cursor() as cur:
                cur.execute(f'DROP ROLE IF EXISTS "{self.role}"')
        finally:
            admin.close()

    def query(self, conn, q, params=None):
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(q, params)
            return cur.fetchall()

    def predictions(self, conn):
        reg = self.query(conn, "SELECT id, ml_predict('diabetes_progression', d) AS p FROM diabetes d ORDER BY id")
        cls = self.query(conn, "SELECT id, ml_predict_label('iris_species', i) AS label, "
                               "ml_predict_proba('iris_species', i) AS proba FROM iris i ORDER BY id")
        ridge_v1 = self.query(conn, "SELECT id, ml_predict('diabetes_ridge', d) AS p FROM diabetes d ORDER BY id")
        return reg, cls, ridge_v1

    def test_dump_and_restore(self):
        src = connect(self.src)
        self.addCleanup(src.close)
        with src.cursor() as cur:
            dcols, drows = dataset("diabetes")
            create_table(cur, "diabetes", dcols, drows)
            create_table(cur, "diabetes_new", dcols, drows[342:])
            icols, irows = dataset("iris")
            create_table(cur, "iris", icols, irows)
            # a regression model retrained once (version 2 of parent 1)
            cur.execute("SELECT * FROM ml_train('diabetes', 'progression', algorithm => 'linear_regression', "
                        "exclude => ARRAY['id'])")
            cur.execute("SELECT version, parent_version FROM ml_retrain('diabetes_progression', 'diabetes_new', "
                        "deploy => 'always')")
            self.assertEqual(cur.fetchone(), (2, 1))
            # a classifier, granted to a role
            cur.execute("SELECT * FROM ml_train('iris', 'species', exclude => ARRAY['id'])")
            cur.execute("SELECT ml_grant('iris_species', %s)", (self.role,))
            # a model whose deployed version is not its latest
            cur.execute("SELECT * FROM ml_train('diabetes', 'progression', algorithm => 'ridge', name => 'diabetes_ridge', "
                        "exclude => ARRAY['id'])")
            cur.execute("SELECT * FROM ml_retrain('diabetes_ridge', 'diabetes_new', mode => 'refit', deploy => 'always')")
            cur.execute("SELECT ml_rollback('diabetes_ridge')")
            self.assertEqual(cur.fetchone()[0], 1)

        models = self.query(src, MODELS_Q)
        versions = self.query(src, VERSIONS_Q)
        catalog = [self.query(src, q) for q in CATALOG_QS]
        preds = self.predictions(src)
        self.assertEqual([m["name"] for m in models], ["diabetes_progression", "diabetes_ridge", "iris_species"])
        self.assertEqual([m["deployed_version"] for m in models], [2, 1, 1])
        self.assertEqual(len(versions), 5)
        src.close()

        dump = os.path.join(self.tmp, "src.dump")
        run([pg_bin("pg_dump"), "--format=custom", f"--file={dump}", f"--dbname={self.src}"])
        toc = run([pg_bin("pg_restore"), "--list", dump]).stdout
        self.assertRegex(toc, r"EXTENSION - pg_ml", "the dump does not create the extension")

        create_database(self.dst, extension=False)  # an empty database: CREATE EXTENSION comes from the dump
        self.addCleanup(drop_database, self.dst)
        run([pg_bin("pg_restore"), "--exit-on-error", f"--dbname={self.dst}", dump])

        dst = connect(self.dst)
        self.addCleanup(dst.close)
        self.assertEqual(self.query(dst, MODELS_Q), models)
        self.assertEqual(self.query(dst, VERSIONS_Q), versions)
        for q, want in zip(CATALOG_QS, catalog):
            self.assertEqual(self.query(dst, q), want, q)
        got = self.predictions(dst)
        for name, a, b in zip(("diabetes_progression", "iris_species", "diabetes_ridge"), got, preds):
            self.assertEqual(a, b, f"predictions of {name} differ after restore")

        # the restored catalog keeps working: sequences continue, retrain numbers on
        with dst.cursor() as cur:
            cur.execute("SELECT model_id, model FROM ml_train('iris', 'species', name => 'iris_again', "
                        "exclude => ARRAY['id'])")
            new_id = cur.fetchone()[0]
            self.assertGreater(new_id, max(m["id"] for m in models))
            # (the restored versions learned diabetes_new in another database: the same rows again are
            # refused, a refit is fine)
            with self.assertRaises(psycopg2.errors.ObjectNotInPrerequisiteState):
                cur.execute("SELECT version FROM ml_retrain('diabetes_progression', 'diabetes_new')")
            dst.rollback() if not dst.autocommit else None
            cur.execute("SELECT version, parent_version FROM ml_retrain('diabetes_progression', 'diabetes_new', "
                        "mode => 'refit')")
            self.assertEqual(cur.fetchone(), (3, 2))
            cur.execute("SELECT ml_deploy('diabetes_ridge', 2)")
            self.assertEqual(cur.fetchone()[0], 1)


# (name, owner, table, target, algorithm) of the models of test_restore_without_an_owner
OWNED_MODELS = [
    ("a_linear", "alice", "diabetes", "progression", "linear_regression"),
    ("a_ridge", "alice", "diabetes", "progression", "ridge"),
    ("a_tree", "alice", "diabetes", "progression", "decision_tree"),
    ("a_logistic", "alice", "iris", "species", "logistic_regression"),
    ("a_bayes", "alice", "iris", "species", "naive_bayes"),
    ("d_linear", "dave", "diabetes", "progression", "linear_regression"),
    ("d_lasso", "dave", "diabetes", "progression", "lasso"),
    ("d_elastic", "dave", "diabetes", "progression", "elastic_net"),
    ("d_logistic", "dave", "iris", "species", "logistic_regression"),
    ("d_tree", "dave", "iris", "species", "decision_tree"),
]


class RestoreWithoutAnOwnerTest(unittest.TestCase):
    """Issue 10, finding 2: models of alice and dave, restored into a cluster without dave. Roles
    are cluster-wide, so "a cluster without dave" is a second database of this cluster after
    dave was dropped (with the source database, the only place he owned anything)."""

    def setUp(self):
        self.src, self.dst = unique("pgml_owner_src"), unique("pgml_owner_dst")
        self.roles = {"alice": unique("pgml_dump_alice"), "dave": unique("pgml_dump_dave")}
        self.tmp = tempfile.mkdtemp(prefix="pgml_dump_")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        admin = connect()
        with admin.cursor() as cur:
            for role in self.roles.values():
                cur.execute(f'CREATE ROLE "{role}" NOLOGIN')
        admin.close()
        self.addCleanup(self._drop_roles)
        create_database(self.src)
        self.addCleanup(drop_database, self.src)

    def _drop_roles(self):
        admin = connect()
        try:
            with admin.cursor() as cur:
                for role in self.roles.values():
                    cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            admin.close()

    def query(self, conn, q, params=None):
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(q, params)
            return cur.fetchall()

    def predictions(self, conn):
        out = {}
        with conn.cursor() as cur:
            for name, _, table, _, _ in OWNED_MODELS:
                fn = "ml_predict_label" if table == "iris" else "ml_predict"
                cur.execute(f"SELECT array_agg({fn}(%s, t) ORDER BY t.id) FROM {table} t", (name,))
                out[name] = cur.fetchone()[0]
        return out

    def test_restore_without_an_owner(self):
        alice, dave = self.roles["alice"], self.roles["dave"]
        src = connect(self.src)
        self.addCleanup(src.close)
        with src.cursor() as cur:
            dcols, drows = dataset("diabetes")
            create_table(cur, "diabetes", dcols, drows)
            icols, irows = dataset("iris")
            create_table(cur, "iris", icols, irows)
            cur.execute(f'GRANT SELECT ON diabetes, iris TO "{alice}", "{dave}"')
            cur.execute(f'GRANT TRIGGER ON diabetes TO "{dave}"')
            for name, owner, table, target, algorithm in OWNED_MODELS:
                cur.execute(f'SET ROLE "{self.roles[owner]}"')
                cur.execute("SELECT model FROM ml_train(%s, %s, algorithm => %s, name => %s, exclude => ARRAY['id'])",
                            (table, target, algorithm, name))
                cur.execute("RESET ROLE")
            # grants both ways, and an auto-retrain of dave's
            cur.execute(f'SET ROLE "{alice}"')
            cur.execute("SELECT ml_grant('a_linear', %s)", (dave,))
            cur.execute("RESET ROLE")
            cur.execute(f'SET ROLE "{dave}"')
            cur.execute("SELECT ml_grant('d_linear', %s)", (alice,))
            cur.execute("SELECT ml_auto_retrain('d_lasso', 'diabetes', 100, 'refit')")
            cur.execute("RESET ROLE")
        models = self.query(src, "SELECT name, owner::text FROM ml_models ORDER BY name")
        self.assertEqual(len(models), 10)
        self.assertEqual({m["owner"] for m in models}, {alice, dave})
        preds = self.predictions(src)
        src.close()

        dump = os.path.join(self.tmp, "src.dump")
        run([pg_bin("pg_dump"), "--format=custom", f"--file={dump}", f"--dbname={self.src}"])
        drop_database(self.src)
        admin = connect()
        with admin.cursor() as cur:
            cur.execute(f'DROP ROLE "{dave}"')  # he owns nothing any more: his models went with the database
            cur.execute("SELECT current_user")
            restorer = cur.fetchone()[0]
        admin.close()

        create_database(self.dst, extension=False)
        self.addCleanup(drop_database, self.dst)
        r = subprocess.run([pg_bin("pg_restore"), f"--dbname={self.dst}", dump], capture_output=True, text=True)
        # what fails is exactly what names dave: his sequences' owner and his grant
        errors = [line for line in r.stderr.splitlines() if "ERROR:" in line]
        self.assertTrue(errors, r.stderr)
        for line in errors:
            self.assertIn(f'role "{dave}" does not exist', line, r.stderr)

        dst = connect(self.dst)
        self.addCleanup(dst.close)
        # every model is back, alice's still hers, dave's now the restoring role's
        want = [{"name": m["name"], "owner": alice if m["owner"] == alice else restorer} for m in models]
        self.assertEqual(self.query(dst, "SELECT name, owner::text FROM ml_models ORDER BY name"), want)
        self.assertEqual(self.query(dst, "SELECT count(*) AS n FROM ml.versions")[0]["n"], 10)
        self.assertEqual(self.predictions(dst), preds)
        # history keeps the name of the role that is gone
        self.assertEqual(self.query(dst, "SELECT DISTINCT trained_by FROM ml_versions WHERE model LIKE 'd\\_%'"),
                         [{"trained_by": dave}])
        self.assertEqual(self.query(dst, "SELECT model, created_by FROM ml_auto_retrains"),
                         [{"model": "d_lasso", "created_by": dave}])
        with dst.cursor() as cur:
            # dave's grant to alice survived (granted again by the new owner); alice's to dave is gone
            cur.execute(f'SET ROLE "{alice}"')
            cur.execute("SELECT count(*) FROM ml_models")
            self.assertEqual(cur.fetchone()[0], 6)
            cur.execute("SELECT ml_deploy('a_ridge', 1)")
            cur.execute("RESET ROLE")
            # the restored models keep working: retrain, and dave's auto-retrain trigger still counts
            cur.execute("SELECT version FROM ml_retrain('d_linear', 'diabetes', mode => 'refit')")
            self.assertEqual(cur.fetchone()[0], 2)
            cur.execute("INSERT INTO diabetes SELECT * FROM diabetes LIMIT 150")
            cur.execute("SELECT model, status FROM ml_jobs")
            self.assertEqual(cur.fetchall(), [("d_lasso", "queued")])
            # and the restoring role may drop a role-less model's data like any of its objects
            cur.execute("SELECT ml_drop_model('d_tree')")
            cur.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'model\\_%' AND relkind = 'S'")
            self.assertEqual(cur.fetchone()[0], 9)


if __name__ == "__main__":
    unittest.main()
