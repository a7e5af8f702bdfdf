"""Every algorithm stops within one second of pg_cancel_backend, in each phase of its training
that lasts long enough to be caught: while the rows are read, and while it fits (for
gradient_boosting also before its first round, while libxgboost bins the rows: that used to be
one uncancellable call). The phase is watched in ml_training_progress (the server must preload
pg_ml) and the cancel sent as soon as the training is in it; no model is left behind.

One 300,000-row table; each training gets hyperparameters that make its fit long (many trees,
epochs, restarts), so the fit is still running when the cancel arrives."""
import threading
import time
import unittest

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from pgml_test import connect, unique

ROWS = 300_000
PROMPT = 1.0  # seconds from pg_cancel_backend to the error

# algorithm, target, hyperparameters (JSON) that keep its fit busy for seconds
ALGORITHMS = [
    ("linear_regression", "y", "{}"),
    ("ridge", "y", "{}"),
    ("elastic_net", "y", '{"max_iter": 100000, "tol": 1e-300}'),
    ("logistic_regression", "label", '{"max_iter": 100000, "tol": 1e-300}'),
    ("decision_tree", "y", "{}"),
    ("random_forest", "label", '{"n_estimators": 2000}'),
    ("gradient_boosting", "y", '{"n_estimators": 5000}'),
    ("svm", "label", '{"max_iter": 100000, "tol": 1e-300}'),
    ("mlp", "label", '{"max_iter": 1000, "tol": 1e-300}'),
    ("naive_bayes", "label", "{}"),
    ("kmeans", None, '{"k": 50, "n_init": 100, "max_iter": 1000, "tol": 1e-300}'),
]


class CancelEveryAlgorithmTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.table = unique("cancel_alg")
        conn = connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL(
                    "CREATE UNLOGGED TABLE {} AS "
                    "SELECT x1, x2, x3, x4, c, 2 * x1 - x2 + 0.5 * x3 + (c = 'b')::int + 0.1 * x4 AS y, "
                    "       x1 + 0.3 * x4 > 0.6 AS label "
                    "FROM (SELECT (hashint8extended(i, 1) %% 1000000)::float8 / 1e6 AS x1, "
                    "             (hashint8extended(i, 2) %% 1000000)::float8 / 1e6 AS x2, "
                    "             (hashint8extended(i, 3) %% 1000000)::float8 / 1e6 AS x3, "
                    "             (hashint8extended(i, 4) %% 1000000)::float8 / 1e6 AS x4, "
                    "             (ARRAY['a', 'b', 'c'])[1 + abs(hashint8extended(i, 5) %% 3)] AS c "
                    "      FROM generate_series(1, %s) i) s").format(sql.Identifier(cls.table)), (ROWS,))
                cur.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(cls.table)))
        finally:
            conn.close()
        cls.took = {}

    @classmethod
    def tearDownClass(cls):
        conn = connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(cls.table)))
        finally:
            conn.close()
        if cls.took:
            print("\n  [cancel] seconds from pg_cancel_backend to the error:", flush=True)
            for (alg, phase), s in sorted(cls.took.items()):
                print(f"    {alg:20s} {phase:24s} {s:.3f}", flush=True)

    def cancel_in(self, algorithm, target, hyperparams, phase, first_round=False):
        """Starts ml_train, waits until ml_training_progress shows it in `phase` (first_round: and
        no iteration reported yet), cancels it and checks that it stops within PROMPT seconds."""
        name = unique("cancel_m")
        train = connect()
        self.addCleanup(train.close)
        pid = train.get_backend_pid()
        out = {}

        def run():
            try:
                with train.cursor() as cur:
                    cur.execute("SET pg_ml.progress = off")
                    cur.execute("SET pg_ml.max_memory = '2GB'")
                    cur.execute("SELECT * FROM ml_train(%s, %s, algorithm => %s, name => %s, hyperparams => %s)",
                                (self.table, target, algorithm, name, hyperparams))
                    out["result"] = cur.fetchall()
            except Exception as e:  # noqa: BLE001 (reported below)
                out["error"] = e
            out["ended"] = time.monotonic()

        watch = connect()
        self.addCleanup(watch.close)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        seen = None
        deadline = time.monotonic() + 120
        with watch.cursor() as cur:
            while t.is_alive() and time.monotonic() < deadline:
                cur.execute("SELECT phase, iteration FROM ml_training_progress WHERE pid = %s", (pid,))
                row = cur.fetchone()
                if row is not None and row[0] == phase and (not first_round or row[1] is None):
                    seen = row
                    break
                time.sleep(0.01)
            self.assertIsNotNone(seen, f"{algorithm}: never seen in phase {phase} ({out})")
            cancelled_at = time.monotonic()
            cur.execute("SELECT pg_cancel_backend(%s)", (pid,))
        t.join(60)
        self.assertFalse(t.is_alive(), f"{algorithm}: ml_train still runs 60 s after pg_cancel_backend")
        took = out["ended"] - cancelled_at
        where = phase + (" (first round)" if first_round else "")
        self.took[(algorithm, where)] = took
        self.assertIsInstance(out.get("error"), psycopg2.errors.QueryCanceled, f"{algorithm} {where}: {out}")
        self.assertLessEqual(took, PROMPT, f"{algorithm} {where}: stopped {took:.3f} s after the cancel")
        with watch.cursor() as cur:
            cur.execute("SELECT count(*) FROM ml_models WHERE name = %s", (name,))
            self.assertEqual(cur.fetchone()[0], 0, f"{algorithm}: a model was left behind")

    def test_reading(self):
        for algorithm, target, hp in ALGORITHMS:
            with self.subTest(algorithm=algorithm):
                self.cancel_in(algorithm, target, hp, "reading")

    def test_fitting(self):
        # the linear family and naive Bayes fit from statistics in microseconds: nothing to catch
        for algorithm, target, hp in ALGORITHMS:
            if algorithm in ("linear_regression", "ridge", "naive_bayes"):
                continue
            with self.subTest(algorithm=algorithm):
                self.cancel_in(algorithm, target, hp, "fitting")

    def test_gradient_boosting_first_round(self):
        self.cancel_in("gradient_boosting", "y", '{"n_estimators": 5000}', "fitting", first_round=True)


if __name__ == "__main__":
    unittest.main()
