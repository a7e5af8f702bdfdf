"""Values and identities across sessions and databases (issue 10, findings 7 and 10).

- Two sessions training a new model of the same name at once: the second gets 42710
  (duplicate_object, "model ... already exists"), never the catalog's raw 23505.
- Export from a UTF-8 database and import into a LATIN1 one: non-ASCII feature names, class
  labels and levels arrive in the database encoding, and the model predicts from a table
  with those columns; a name LATIN1 cannot hold is refused with 22P05 naming it; a model
  exported from the LATIN1 database goes back to UTF-8 unchanged.
"""
import threading
import unittest

import psycopg2
from psycopg2 import sql

from pgml_test import PgmlTestCase, connect, create_table, drop_database, maintenance_connect, unique


class ConcurrentTrainTest(PgmlTestCase):
    def test_second_train_of_one_new_name_is_duplicate_object(self):
        rows = [[i, i % 7, 2 * i + 1] for i in range(1, 201)]
        table = self.table([("id", "integer"), ("x", "float8"), ("y", "float8")], rows, "race")
        name = self.model_name("race")
        first = connect(autocommit=False)
        self.addCleanup(first.close)
        second = connect()
        self.addCleanup(second.close)
        query = "SELECT model FROM ml_train(%s, 'y', algorithm => 'linear_regression', name => %s)"
        with first.cursor() as cur:
            cur.execute(query, (table, name))  # inserted, not committed
        outcome = {}

        def train_second():
            try:
                with second.cursor() as cur:
                    cur.execute(query, (table, name))
                    outcome["row"] = cur.fetchone()
            except psycopg2.Error as e:
                outcome["error"] = e

        t = threading.Thread(target=train_second)
        t.start()
        # the second session trains, then waits on the first one's row
        deadline = 30
        waited = False
        for _ in range(deadline * 10):
            with self.conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND query LIKE '%%ml_train%%'")
                if cur.fetchone()[0] > 0:
                    waited = True
                    break
            t.join(0.1)
            if not t.is_alive():
                break
        first.commit()
        t.join(60)
        self.assertFalse(t.is_alive())
        self.assertTrue(waited or "error" in outcome, outcome)
        self.assertIn("error", outcome, outcome)
        err = outcome["error"]
        self.assertEqual(err.pgcode, "42710", err.pgerror)
        self.assertIn(f'model "{name}" already exists', err.pgerror)
        # the first session's model is there, once
        self.assertEqual(self.scalar("SELECT count(*) FROM ml_models WHERE name = %s", (name,)), 1)


class Latin1ImportTest(unittest.TestCase):
    def setUp(self):
        self.src = unique("v_utf8")
        self.dst = unique("v_latin1")
        c = maintenance_connect()
        try:
            with c.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
                            .format(sql.Identifier(self.src)))
                cur.execute(sql.SQL("CREATE DATABASE {} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
                                    "TEMPLATE template0").format(sql.Identifier(self.dst)))
        finally:
            c.close()
        self.addCleanup(drop_database, self.src)
        self.addCleanup(drop_database, self.dst)
        for db in (self.src, self.dst):
            conn = self.db(db)
            with conn.cursor() as cur:
                cur.execute("CREATE EXTENSION pg_ml")

    def db(self, name):
        conn = connect(dbname=name, options="-c client_encoding=UTF8")
        self.addCleanup(conn.close)
        return conn

    @staticmethod
    def rows(conn, query, params=None):
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def exported(self, conn, model):
        return bytes(self.rows(conn, "SELECT ml_export(%s)", (model,))[0][0])

    def test_non_ascii_names_arrive_in_the_database_encoding(self):
        src = self.db(self.src)
        cols = [("température", "float8"), ("météo", "text"), ("étiquette", "text")]
        data = [[i, ["soleil", "pluie", "neigé"][i % 3], "chaud" if i > 40 else "froid"] for i in range(1, 81)]
        with src.cursor() as cur:
            create_table(cur, "mesures", cols, data)
        for algorithm in ("logistic_regression", "random_forest"):
            with self.subTest(algorithm=algorithm):
                model = f"modèle_{algorithm}"
                self.rows(src, "SELECT model FROM ml_train('mesures', 'étiquette', algorithm => %s, name => %s)",
                          (algorithm, model))
                blob = self.exported(src, model)
                want = self.rows(src, "SELECT ml_predict_label(%s, m) FROM mesures m ORDER BY 1", (model,))

                dst = self.db(self.dst)
                with dst.cursor() as cur:
                    if algorithm == "logistic_regression":
                        create_table(cur, "mesures", cols, data)
                self.rows(dst, "SELECT model FROM ml_import(%s, %s)", (model, psycopg2.Binary(blob)))
                # names, classes and levels as the database holds them (read back through UTF-8)
                feats = self.rows(dst, "SELECT name FROM ml_model_columns(%s) ORDER BY 1", (model,))
                self.assertEqual([f[0] for f in feats], ["météo", "température", "étiquette"])
                classes = self.rows(dst, "SELECT classes FROM ml_models WHERE name = %s", (model,))[0][0]
                self.assertEqual(sorted(classes), ["chaud", "froid"])
                imp = {r[0] for r in self.rows(dst, "SELECT feature FROM ml_feature_importance(%s)", (model,))}
                self.assertIn("météo=neigé", imp)
                self.assertIn("température", imp)
                # and it predicts from a table with those columns, as in the source database
                got = self.rows(dst, "SELECT ml_predict_label(%s, m) FROM mesures m ORDER BY 1", (model,))
                self.assertEqual(got, want)
                self.assertEqual(self.rows(dst, "SELECT ml_predict_label(%s, %s::jsonb)",
                                           (model, '{"température": 70, "météo": "neigé"}'))[0][0],
                                 self.rows(src, "SELECT ml_predict_label(%s, %s::jsonb)",
                                           (model, '{"température": 70, "météo": "neigé"}'))[0][0])
                # exported again from the LATIN1 database, it is UTF-8 again: it imports back
                back = self.exported(dst, model)
                self.rows(src, "SELECT model FROM ml_import(%s, %s)", (model + "_retour", psycopg2.Binary(back)))
                self.assertEqual(
                    self.rows(src, "SELECT name FROM ml_model_columns(%s) ORDER BY 1", (model + "_retour",)),
                    feats)

    def test_a_name_latin1_cannot_hold_is_refused_naming_it(self):
        src = self.db(self.src)
        with src.cursor() as cur:
            create_table(cur, "prix", [("prix€", "float8"), ("y", "float8")], [[i, 2 * i] for i in range(1, 41)])
        self.rows(src, "SELECT model FROM ml_train('prix', 'y', algorithm => 'linear_regression', name => 'p')")
        blob = self.exported(src, "p")
        dst = self.db(self.dst)
        with self.assertRaises(psycopg2.Error) as cm:
            self.rows(dst, "SELECT model FROM ml_import('p', %s)", (psycopg2.Binary(blob),))
        self.assertEqual(cm.exception.pgcode, "22P05", cm.exception.pgerror)
        self.assertIn("prix\\u20AC", cm.exception.pgerror)
        self.assertIn("LATIN1", cm.exception.pgerror)
        self.assertEqual(self.rows(dst, "SELECT count(*) FROM ml_models")[0][0], 0)


if __name__ == "__main__":
    unittest.main()
