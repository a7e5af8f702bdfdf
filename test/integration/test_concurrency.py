"""Concurrent retrains of one model serialise; predict never sees a half-written version;
a failed retrain changes nothing."""
import threading
import time
import unittest

import psycopg2

from pgml_test import PgmlTestCase, connect, dataset


class ConcurrencyTest(PgmlTestCase):
    def setUp(self):
        super().setUp()
        cols, rows = dataset("diabetes")
        self.cols, self.rows = cols, rows
        self.base = self.table(cols, rows[:200], "cc_base")
        self.more = self.table(cols, rows[200:320], "cc_more")
        self.more2 = self.table(cols, rows[320:], "cc_more2")
        self.probe = self.table(cols, rows[:20], "cc_probe")
        self.model = self.model_name("cc")
        self.one("SELECT * FROM ml_train(%s, 'progression', algorithm => 'linear_regression', name => %s, "
                 "exclude => ARRAY['id'], test_size => 0)", (self.base, self.model))

    def connection(self, autocommit=True):
        c = connect(autocommit=autocommit)
        self.addCleanup(c.close)
        return c

    def predictions(self, conn):
        return [r[0] for r in self._rows(conn, f'SELECT ml_predict(%s, p) FROM "{self.probe}" p ORDER BY id',
                                         (self.model,))]

    @staticmethod
    def _rows(conn, query, params=None):
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def versions(self, conn=None):
        return self._rows(conn or self.conn,
                          "SELECT version, parent_version, deployed FROM ml_versions WHERE model = %s ORDER BY version",
                          (self.model,))

    def wait_for_lock(self, pid, thread, seconds=15):
        """Polls pg_stat_activity until session pid waits on a lock (or thread ends); its wait_event_type."""
        c = self.connection()
        deadline = time.monotonic() + seconds
        event = None
        while time.monotonic() < deadline and thread.is_alive():
            event = self._rows(c, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))[0][0]
            if event == "Lock":
                break
            time.sleep(0.05)
        return event

    def test_concurrent_retrains_serialise(self):
        a = self.connection(autocommit=False)
        b = self.connection()
        c = self.connection()
        v1_pred = self.predictions(c)

        # session A retrains inside an open transaction: it holds the model's row lock
        r = self._rows(a, "SELECT version, parent_version FROM ml_retrain(%s, %s, deploy => 'always', test_size => 0)",
                       (self.model, self.more))
        self.assertEqual(r, [(2, 1)])

        # session C: still version 1, and version 2 is not visible
        self.assertEqual(self.predictions(c), v1_pred)
        self.assertEqual(self.versions(c), [(1, None, True)])

        # session B retrains the same model: it must wait for A
        b_pid = b.get_backend_pid()
        result = {}

        def retrain_b():
            try:
                result["rows"] = self._rows(
                    b, "SELECT version, parent_version, deployed FROM ml_retrain(%s, %s, deploy => 'always', test_size => 0)",
                    (self.model, self.more2))
            except Exception as e:  # reported by the main thread
                result["error"] = e
            result["done_at"] = time.monotonic()

        t = threading.Thread(target=retrain_b, daemon=True)
        t.start()
        waiting = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "done_at" not in result:
            waiting = self._rows(c, "SELECT wait_event_type, wait_event, %s = ANY(pg_blocking_pids(%s)) "
                                    "FROM pg_stat_activity WHERE pid = %s", (a.get_backend_pid(), b_pid, b_pid))
            if waiting and waiting[0][0] == "Lock":
                break
            time.sleep(0.05)
        self.assertNotIn("done_at", result, f"session B's retrain did not wait for session A: {result}")
        self.assertTrue(waiting and waiting[0][0] == "Lock", f"session B is not waiting on a lock: {waiting}")
        self.assertTrue(waiting[0][2], f"session B is not blocked by session A: {waiting}")
        ungranted = self._rows(c, "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (b_pid,))[0][0]
        self.assertGreater(ungranted, 0)

        # while A and B are in flight, predict keeps serving version 1, again and again
        for _ in range(5):
            self.assertEqual(self.predictions(c), v1_pred)
            time.sleep(0.05)
        self.assertNotIn("done_at", result, "session B finished while session A still held the model")

        committed_at = time.monotonic()
        a.commit()
        t.join(30)
        self.assertFalse(t.is_alive(), "session B's retrain did not finish after session A committed")
        self.assertNotIn("error", result, f"session B's retrain failed: {result.get('error')}")
        self.assertEqual(result["rows"], [(3, 2, True)], "session B must build on session A's version")
        self.assertLess(result["done_at"] - committed_at, 10)

        self.assertEqual(self.versions(c), [(1, None, False), (2, 1, False), (3, 2, True)])
        # session C's cached model follows the deployment; a fresh session agrees
        v3_pred = self.predictions(c)
        self.assertNotEqual(v3_pred, v1_pred)
        self.assertEqual(v3_pred, self.predictions(self.connection()))
        self.assertEqual(self._rows(c, "SELECT rows_train FROM ml_versions WHERE model = %s AND version = 3",
                                    (self.model,))[0][0], len(self.rows))

    def test_uncommitted_retrain_rolled_back(self):
        """A retrain whose transaction rolls back leaves nothing behind."""
        a = self.connection(autocommit=False)
        c = self.connection()
        before = self.predictions(c)
        self._rows(a, "SELECT * FROM ml_retrain(%s, %s, deploy => 'always', test_size => 0)", (self.model, self.more))
        self.assertNotEqual(self.predictions(a), before, "session A predicts with the version it just deployed")
        a.rollback()
        self.assertEqual(self.versions(c), [(1, None, True)])
        self.assertEqual(self.predictions(c), before)
        # the next retrain is version 2 again
        r = self._rows(c, "SELECT version, parent_version FROM ml_retrain(%s, %s, test_size => 0)", (self.model, self.more))
        self.assertEqual(r, [(2, 1)])

    def test_other_sessions_follow_deployments(self):
        """A session that has the model cached sees ml_deploy, ml_rollback and a re-created model."""
        c = self.connection()
        d = self.connection()
        v1 = self.predictions(c)
        self._rows(d, "SELECT * FROM ml_retrain(%s, %s, deploy => 'always', test_size => 0)", (self.model, self.more))
        v2 = self.predictions(c)
        self.assertNotEqual(v2, v1)
        self.assertEqual(v2, self.predictions(self.connection()))
        self.assertEqual(self._rows(d, "SELECT ml_rollback(%s)", (self.model,)), [(1,)])
        self.assertEqual(self.predictions(c), v1)
        self.assertEqual(self._rows(d, "SELECT ml_deploy(%s, 2)", (self.model,)), [(1,)])
        self.assertEqual(self.predictions(c), v2)
        # dropped and trained again under the same name, on other rows: a new model
        self._rows(d, "SELECT ml_drop_model(%s)", (self.model,))
        self._rows(d, "SELECT model FROM ml_train(%s, 'progression', algorithm => 'ridge', name => %s, "
                      "exclude => ARRAY['id'], test_size => 0)", (self.more2, self.model))
        fresh = self.predictions(self.connection())
        self.assertNotEqual(fresh, v2)
        self.assertEqual(self.predictions(c), fresh)

    def test_drop_waits_for_retrain(self):
        """ml_drop_model of a model being retrained waits for the retrain's transaction."""
        a = self.connection(autocommit=False)
        b = self.connection()
        self._rows(a, "SELECT * FROM ml_retrain(%s, %s, test_size => 0)", (self.model, self.more))
        out = {}

        def drop():
            try:
                out["rows"] = self._rows(b, "SELECT ml_drop_model(%s)", (self.model,))
            except Exception as e:
                out["error"] = e

        t = threading.Thread(target=drop, daemon=True)
        t.start()
        self.assertEqual(self.wait_for_lock(b.get_backend_pid(), t), "Lock",
                         f"ml_drop_model did not wait for the retrain: {out}")
        self.assertTrue(t.is_alive())
        a.commit()
        t.join(30)
        self.assertFalse(t.is_alive())
        self.assertNotIn("error", out, f"ml_drop_model failed after the retrain committed: {out.get('error')}")
        self.assertEqual(self.versions(), [])

    def test_failed_retrain_changes_nothing(self):
        self.one("SELECT * FROM ml_retrain(%s, %s, deploy => 'always', test_size => 0)", (self.model, self.more))
        before_versions = self.versions()
        before_models = self.all("SELECT name, deployed_version, test_metrics, train_metrics, updated_at FROM ml_models "
                                 "WHERE name = %s", (self.model,))
        before_pred = self.predictions(self.conn)
        self.assertEqual(before_versions, [(1, None, False), (2, 1, True)])

        # a relation without the column bmi
        cols = [c for c in self.cols if c[0] != "bmi"]
        idx = [i for i, c in enumerate(self.cols) if c[0] != "bmi"]
        no_bmi = self.table(cols, [[r[i] for i in idx] for r in self.rows[320:]], "cc_nobmi")
        err = self.assertSqlError("42703", "SELECT * FROM ml_retrain(%s, %s)", (self.model, no_bmi))
        self.assertIn("bmi", str(err))

        # a column of the wrong type
        cols = [(n, "text" if n == "bp" else t) for n, t in self.cols]
        wrong = self.table(cols, self.rows[320:], "cc_wrongtype")
        err = self.assertSqlError("42804", "SELECT * FROM ml_retrain(%s, %s)", (self.model, wrong))
        self.assertIn("bp", str(err))

        # a NaN in the data fails half-way through reading
        bad_rows = [list(r) for r in self.rows[320:]]
        bad_rows[-1][3] = "NaN"
        nan = self.table(self.cols, bad_rows, "cc_nan")
        err = self.assertSqlError("22000", "SELECT * FROM ml_retrain(%s, %s, deploy => 'always')", (self.model, nan))

        # a retrain that fails after its version row is written: the statement rolls back whole
        with self.assertRaises(psycopg2.Error):
            with self.conn.cursor() as cur:
                cur.execute("SELECT (SELECT version FROM ml_retrain(%s, %s, deploy => 'always')) / 0",
                            (self.model, self.more2))

        self.assertEqual(self.versions(), before_versions)
        self.assertEqual(self.all("SELECT name, deployed_version, test_metrics, train_metrics, updated_at FROM ml_models "
                                  "WHERE name = %s", (self.model,)), before_models)
        self.assertEqual(self.predictions(self.conn), before_pred)
        self.assertEqual(self.predictions(self.connection()), before_pred)
        # and the model is still usable: the next version is 3, built on 2
        r = self.one("SELECT version, parent_version FROM ml_retrain(%s, %s, test_size => 0)", (self.model, self.more2))
        self.assertEqual((r["version"], r["parent_version"]), (3, 2))


if __name__ == "__main__":
    unittest.main()
