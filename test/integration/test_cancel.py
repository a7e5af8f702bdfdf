"""Long training runs honour pg_cancel_backend and statement_timeout promptly, and a
cancelled run leaves no model behind."""
import threading
import time
import unittest

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from pgml_test import connect, unique

ROWS = 10_000_000
CANCEL_AFTER = 3.0   # seconds into the training run
PROMPT = 1.0         # the run must stop within this many seconds of the cancel
TIMEOUT = 2.0        # statement_timeout


class CancelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.table = unique("cancel_big")
        try:
            cls._build()
        except BaseException:
            cls.tearDownClass()
            raise
        # Cancel 3 s into the run as long as that is well inside it; on a fast machine the whole
        # run takes about 2.5 s, so the cancel comes earlier there. The same for statement_timeout.
        cls.cancel_after = min(CANCEL_AFTER, cls.full_run / 2)
        cls.timeout = min(TIMEOUT, cls.full_run / 2)

    @classmethod
    def _build(cls):
        conn = connect()
        try:
            with conn.cursor() as cur:
                started = time.monotonic()
                cur.execute("SELECT setseed(0.25)")
                cur.execute(sql.SQL(
                    "CREATE UNLOGGED TABLE {} AS "
                    "SELECT x1, x2, x3, x4, x5, "
                    "       1.5 * x1 - 2 * x2 + 0.5 * x3 + 3 * x4 - x5 + 0.1 * random() AS y "
                    "FROM (SELECT random() AS x1, random() AS x2, random() AS x3, random() AS x4, random() AS x5 "
                    "      FROM generate_series(1, %s)) s").format(sql.Identifier(cls.table)), (ROWS,))
                cur.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(cls.table)))
                print(f"\n  [cancel] {ROWS:,} rows created in {time.monotonic() - started:.1f} s", flush=True)

                # one complete run: how long training takes here (and that it works at this size)
                name = unique("cancel_full")
                started = time.monotonic()
                cur.execute("SELECT rows_train, rows_test FROM ml_train(%s, 'y', algorithm => 'linear_regression', "
                            "name => %s)", (cls.table, name))
                cls.full_run = time.monotonic() - started
                cls.full_rows = sum(cur.fetchone())
                cur.execute("SELECT ml_drop_model(%s)", (name,))
                print(f"  [cancel] a complete ml_train on them takes {cls.full_run:.1f} s", flush=True)
        finally:
            conn.close()

    @classmethod
    def tearDownClass(cls):
        conn = connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(cls.table)))
        finally:
            conn.close()

    def setUp(self):
        self.conn = connect()
        self.addCleanup(self.conn.close)

    def catalog_counts(self):
        with self.conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM ml.models), (SELECT count(*) FROM ml.versions), "
                        "(SELECT count(*) FROM ml.training_log)")
            return cur.fetchone()

    def assertNoModel(self, name, before):
        with self.conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM ml_models WHERE name = %s", (name,))
            self.assertEqual(cur.fetchone()[0], 0, f"model {name} exists after its training was stopped")
        self.assertEqual(self.catalog_counts(), before, "the catalog changed")

    def test_full_run(self):
        self.assertEqual(self.full_rows, ROWS)

    def test_pg_cancel_backend(self):
        # 3 s into the run, or earlier where the whole run is short: at 30 % and 60 % of it
        # (reading the rows, then later in the run)
        points = [self.cancel_after] if self.full_run >= 2 * CANCEL_AFTER else \
            [self.full_run * 0.3, self.full_run * 0.6]
        for after in points:
            with self.subTest(cancel_after=round(after, 2)):
                self.cancel_at(after)

    def cancel_at(self, after):
        before = self.catalog_counts()
        name = unique("cancelled")
        train = connect()
        self.addCleanup(train.close)
        pid = train.get_backend_pid()
        out = {}

        def run():
            try:
                with train.cursor() as cur:
                    cur.execute("SELECT * FROM ml_train(%s, 'y', algorithm => 'linear_regression', name => %s)",
                                (self.table, name))
                    out["result"] = cur.fetchall()
            except Exception as e:
                out["error"] = e
            out["ended"] = time.monotonic()

        t = threading.Thread(target=run, daemon=True)
        started = time.monotonic()
        t.start()
        time.sleep(after)
        if not t.is_alive():
            self._drop_model(name)
            self.fail(f"ml_train ended before the cancel, {after:.2f} s into the run: {out}")
        with self.conn.cursor() as cur:
            cur.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,))
            state = cur.fetchone()
            cancelled_at = time.monotonic()
            cur.execute("SELECT pg_cancel_backend(%s)", (pid,))
            self.assertTrue(cur.fetchone()[0])
        self.assertEqual(state[0], "active", f"the training session is not running: {state}")
        t.join(30)
        self.assertFalse(t.is_alive(), "ml_train is still running 30 s after pg_cancel_backend")
        took = out["ended"] - cancelled_at
        print(f"\n  [cancel] pg_cancel_backend {cancelled_at - started:.2f} s into the run; stopped {took:.3f} s later",
              flush=True)
        self.assertIn("error", out, f"ml_train was not cancelled: {out}")
        self.assertIsInstance(out["error"], psycopg2.errors.QueryCanceled, repr(out["error"]))
        self.assertIn("user request", str(out["error"]))
        self.assertLessEqual(took, PROMPT, f"ml_train took {took:.3f} s to honour pg_cancel_backend")
        with train.cursor() as cur:  # the session is fine afterwards
            cur.execute("SELECT 1")
            self.assertEqual(cur.fetchone()[0], 1)
        self.assertNoModel(name, before)

    def test_statement_timeout(self):
        before = self.catalog_counts()
        name = unique("timedout")
        train = connect()
        self.addCleanup(train.close)
        timeout_ms = int(self.timeout * 1000)
        with train.cursor() as cur:
            cur.execute(f"SET statement_timeout = {timeout_ms}")
            started = time.monotonic()
            with self.assertRaises(psycopg2.errors.QueryCanceled) as cm:
                cur.execute("SELECT * FROM ml_train(%s, 'y', algorithm => 'linear_regression', name => %s)",
                            (self.table, name))
            took = time.monotonic() - started
        print(f"\n  [cancel] statement_timeout = {timeout_ms} ms stopped ml_train after {took:.3f} s", flush=True)
        self.assertIn("statement timeout", str(cm.exception))
        self.assertLessEqual(took, self.timeout + PROMPT, f"ml_train ran {took:.3f} s with statement_timeout {timeout_ms} ms")
        self.assertNoModel(name, before)

    def test_cancel_retrain(self):
        """A cancelled retrain leaves the model as it was."""
        name = unique("cancel_retrain")
        small = unique("cancel_small")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE TABLE {} AS SELECT * FROM {} LIMIT 10000").format(
                sql.Identifier(small), sql.Identifier(self.table)))
            self.addCleanup(self._drop, small)
            cur.execute("SELECT * FROM ml_train(%s, 'y', algorithm => 'linear_regression', name => %s)", (small, name))
            self.addCleanup(self._drop_model, name)
        before = self.catalog_counts()
        train = connect()
        self.addCleanup(train.close)
        with train.cursor() as cur:
            cur.execute(f"SET statement_timeout = {int(self.timeout * 1000)}")
            with self.assertRaises(psycopg2.errors.QueryCanceled):
                cur.execute("SELECT * FROM ml_retrain(%s, %s, mode => 'refit')", (name, self.table))
        self.assertEqual(self.catalog_counts(), before)
        with self.conn.cursor() as cur:
            cur.execute("SELECT deployed_version FROM ml_models WHERE name = %s", (name,))
            self.assertEqual(cur.fetchone()[0], 1)

    def _drop(self, table):
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))

    def _drop_model(self, name):
        with self.conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM ml_models WHERE name = %s", (name,))
            if cur.fetchone()[0]:
                cur.execute("SELECT ml_drop_model(%s)", (name,))


if __name__ == "__main__":
    unittest.main()
