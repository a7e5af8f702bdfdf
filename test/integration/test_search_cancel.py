"""A hyperparameter search shows a progress phase per trial (ml_training_progress) and honours
pg_cancel_backend within a second, inside a trial's training, leaving no model and no trial
rows behind."""
import threading
import time
import unittest

from pgml_test import check_cancelled, connect, unique

PROMPT = 1.0


class SearchCancelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.conn = connect()
        cls.conn.autocommit = True
        cls.table = unique("search_cancel")
        with cls.conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {cls.table} AS SELECT random() AS a, random() AS b, random() AS c, "
                        f"(random() * 3)::int::text AS k, random() AS y FROM generate_series(1, 60000)")

    @classmethod
    def tearDownClass(cls):
        with cls.conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {cls.table}")
        cls.conn.close()

    def stop(self, pid):
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def test_cancel_inside_a_trial(self):
        name = unique("search_cancelled")
        train = connect()
        self.addCleanup(train.close)
        pid = train.get_backend_pid()
        self.addCleanup(self.stop, pid)
        out = {}

        def run():
            try:
                with train.cursor() as cur:
                    cur.execute(f"SELECT * FROM ml_train(%s, 'y', algorithm => 'random_forest', name => %s, "
                                f"search => 'random', search_params => '{{\"max_depth\": {{\"min\": 4, \"max\": 12}}, "
                                f"\"min_samples_leaf\": {{\"min\": 1, \"max\": 50}}}}', "
                                f"search_args => '{{\"trials\": 50}}')", (self.table, name))
                    out["result"] = cur.fetchall()
            except Exception as e:
                out["error"] = e
            out["ended"] = time.monotonic()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        phases = set()
        deadline = time.monotonic() + 120
        with self.conn.cursor() as cur:
            while t.is_alive() and time.monotonic() < deadline:
                cur.execute("SELECT phase FROM ml_training_progress WHERE pid = %s", (pid,))
                row = cur.fetchone()
                if row and row[0] and row[0].startswith("trial "):
                    phases.add(row[0])
                    break
                time.sleep(0.02)
            time.sleep(1.0)  # inside trial 1's folds (each fold a whole forest)
            cancelled_at = time.monotonic()
            cur.execute("SELECT pg_cancel_backend(%s)", (pid,))
        self.assertEqual(phases, {"trial 1 of 51"}, f"no trial phase was seen: {out}")
        check_cancelled(self, t, out, cancelled_at, name, "in a search's trial", PROMPT)
        with self.conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM ml.trials t WHERE NOT EXISTS "
                        "(SELECT 1 FROM ml.models m WHERE m.id = t.model_id)")
            self.assertEqual(cur.fetchone()[0], 0)


if __name__ == "__main__":
    unittest.main()
