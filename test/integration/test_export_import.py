"""ml_export in one database, ml_import in another: the model row, the version's metadata and
every prediction are the same; the bytes survive a round trip through a file (COPY binary
and base64 text), and the imported model is an ordinary model of the importing user."""
import base64
import unittest

import psycopg2
import psycopg2.extras

from pgml_test import connect, create_database, create_table, dataset, drop_database, unique


class ExportImportTest(unittest.TestCase):
    def setUp(self):
        self.src, self.dst = unique("pgml_export_src"), unique("pgml_export_dst")
        create_database(self.src)
        self.addCleanup(drop_database, self.src)
        create_database(self.dst)
        self.addCleanup(drop_database, self.dst)

    def rows(self, conn, q, params=None):
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(q, params)
            return cur.fetchall()

    def predictions(self, conn, reg, cls):
        return (
            self.rows(conn, f"SELECT id, ml_predict('{reg}', d) AS p FROM diabetes d ORDER BY id"),
            self.rows(conn, f"SELECT id, ml_predict_label('{cls}', i) AS label, ml_predict_proba('{cls}', i) AS proba "
                            "FROM iris i ORDER BY id"),
            self.rows(conn, f"SELECT key, prediction, label, probabilities FROM ml_predict_batch('{cls}', 'iris', 'id') "
                            "ORDER BY key::int"),
        )

    def load(self, conn):
        with conn.cursor() as cur:
            dcols, drows = dataset("diabetes")
            create_table(cur, "diabetes", dcols, drows)
            icols, irows = dataset("iris")
            create_table(cur, "iris", icols, irows)

    def test_round_trip_between_databases(self):
        src = connect(self.src)
        self.addCleanup(src.close)
        self.load(src)
        with src.cursor() as cur:
            cur.execute("SELECT * FROM ml_train('diabetes', 'progression', algorithm => 'ridge', "
                        "name => 'prog', exclude => ARRAY['id'])")
            cur.execute("SELECT * FROM ml_train('iris', 'species', algorithm => 'gradient_boosting', "
                        "name => 'species', exclude => ARRAY['id'], hyperparams => '{\"n_estimators\": 20}')")
            cur.execute("SELECT ml_export('prog'), ml_export('species')")
            prog_bytes, species_bytes = (bytes(b) for b in cur.fetchone())
        self.assertEqual(prog_bytes[:8], b"PGMLEXPT")
        expected = self.predictions(src, "prog", "species")
        src_versions = self.rows(src, "SELECT model, algorithm, test_metrics, train_metrics, hyperparams, preprocess, "
                                      "preprocessing_state, coefficients, rows_train, rows_test, data_fingerprint, "
                                      "format_version, model_kind, blob_length, checksum "
                                      "FROM ml_versions ORDER BY model")
        src_models = self.rows(src, "SELECT name, task, algorithm, target, classes FROM ml_models ORDER BY name")

        dst = connect(self.dst)
        self.addCleanup(dst.close)
        self.load(dst)
        with dst.cursor() as cur:
            # one through a binary parameter, one through base64 text (as a file would carry it)
            cur.execute("SELECT * FROM ml_import('prog', %s)", (psycopg2.Binary(prog_bytes),))
            self.assertEqual(cur.fetchone()[1:], ("prog", 1))
            cur.execute("SELECT * FROM ml_import('species', decode(%s, 'base64'))",
                        (base64.b64encode(species_bytes).decode(),))
            self.assertEqual(cur.fetchone()[1:], ("species", 1))
            # the same bytes come out of the copy, apart from the provenance
            cur.execute("SELECT mode, report -> 'imported' ->> 'database', deployed FROM ml_versions ORDER BY model")
            self.assertEqual(cur.fetchall(), [("import", self.src, True), ("import", self.src, True)])

        self.assertEqual(self.predictions(dst, "prog", "species"), expected)
        self.assertEqual(self.rows(dst, "SELECT name, task, algorithm, target, classes FROM ml_models ORDER BY name"),
                         src_models)
        self.assertEqual(self.rows(dst, "SELECT model, algorithm, test_metrics, train_metrics, hyperparams, preprocess, "
                                        "preprocessing_state, coefficients, rows_train, rows_test, data_fingerprint, "
                                        "format_version, model_kind, blob_length, checksum "
                                        "FROM ml_versions ORDER BY model"), src_versions)

        # the imported model is an ordinary model: it retrains, and a second import of the same name fails
        with dst.cursor() as cur:
            cur.execute("SELECT version, parent_version FROM ml_retrain('prog', 'diabetes', mode => 'refit', "
                        "deploy => 'never')")
            self.assertEqual(cur.fetchone(), (2, 1))
            with self.assertRaises(psycopg2.errors.DuplicateObject):
                cur.execute("SELECT * FROM ml_import('prog', %s)", (psycopg2.Binary(prog_bytes),))

        # every single-byte change is refused, and nothing is written
        with dst.cursor() as cur:
            for at in range(0, len(prog_bytes), max(1, len(prog_bytes) // 97)):
                bad = bytearray(prog_bytes)
                bad[at] ^= 0x5A
                with self.assertRaises((psycopg2.errors.InvalidBinaryRepresentation,)):
                    cur.execute("SELECT * FROM ml_import('prog_bad', %s)", (psycopg2.Binary(bytes(bad)),))
            cur.execute("SELECT count(*) FROM ml_models WHERE name = 'prog_bad'")
            self.assertEqual(cur.fetchone()[0], 0)


if __name__ == "__main__":
    unittest.main()
