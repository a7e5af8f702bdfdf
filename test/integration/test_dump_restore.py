"""pg_dump / pg_restore keep every model: catalog rows, deployed versions, sequences and
the models' predictions."""
import os
import shutil
import subprocess
import tempfile
import unittest

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
    "SELECT model_id, grantee::text FROM ml.grants ORDER BY 1, 2",
]


class DumpRestoreTest(unittest.TestCase):
    def setUp(self):
        self.src, self.dst = unique("pgml_dump_src"), unique("pgml_dump_dst")
        self.role = unique("pgml_dump_reader")
        self.tmp = tempfile.mkdtemp(prefix="pgml_dump_")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        create_database(self.src)
        self.addCleanup(drop_database, self.src)
        admin = connect()
        with admin.cursor() as cur:
            cur.execute(f'CREATE ROLE "{self.role}" NOLOGIN')
        admin.close()
        self.addCleanup(self._drop_role)

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
            cur.execute("SELECT version, parent_version FROM ml_retrain('diabetes_progression', 'diabetes_new')")
            self.assertEqual(cur.fetchone(), (3, 2))
            cur.execute("SELECT ml_deploy('diabetes_ridge', 2)")
            self.assertEqual(cur.fetchone()[0], 1)


if __name__ == "__main__":
    unittest.main()
