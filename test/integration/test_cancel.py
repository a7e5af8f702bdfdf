"""Long training runs honour pg_cancel_backend and statement_timeout promptly, and a
cancelled run leaves no model behind. LimitsTest: a high-cardinality text column and
memory-hungry hyperparameters are refused before the backend grows (its peak resident size,
VmHWM in /proc/<pid>/status, stays bounded: the server must run on this machine), and a
training whose statistics grow with many levels is cancelled within seconds."""
import os
import threading
import time
import unittest

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from pgml_test import check_cancelled, connect, unique

ROWS = 10_000_000
CANCEL_AFTER = 3.0   # seconds into the training run
PROMPT = 1.0         # the run must stop within this many seconds of the cancel
TIMEOUT = 2.0        # statement_timeout


def train_in_background(table, name, target="y", algorithm="linear_regression"):
    """Starts ml_train(table, target, algorithm) on a new connection in a thread. Returns
    (thread, connection, pid, out): out gets "result" or "error", and "ended" (monotonic)."""
    train = connect()
    pid = train.get_backend_pid()
    out = {}

    def run():
        try:
            with train.cursor() as cur:
                cur.execute("SELECT * FROM ml_train(%s, %s, algorithm => %s, name => %s)",
                            (table, target, algorithm, name))
                out["result"] = cur.fetchall()
        except Exception as e:
            out["error"] = e
        out["ended"] = time.monotonic()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, train, pid, out


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
        started = time.monotonic()
        t, train, pid, out = train_in_background(self.table, name)
        self.addCleanup(train.close)
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


class LogitCancelTest(unittest.TestCase):
    """Binary logistic_regression trains through aggregates, one Newton step per scan
    (ml.logit_step): pg_cancel_backend during those scans (ml_training_progress phase 'fitting')
    stops the run promptly, nothing is written."""
    ROWS = 2_000_000

    def setUp(self):
        self.conn = connect()
        self.addCleanup(self.conn.close)
        self.table = unique("logit_big")
        with self.conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_settings WHERE name = 'shared_preload_libraries' "
                        "AND setting ~ 'pg_ml'")
            if cur.fetchone()[0] == 0:
                self.skipTest("pg_ml is not in shared_preload_libraries: no ml_training_progress")
            cur.execute(sql.SQL(
                "CREATE UNLOGGED TABLE {} AS SELECT x1, x2, x3, (ARRAY['a', 'b', 'c'])[1 + i %% 3] AS g, "
                "x1 - 2 * x2 + sin(i) > 0.3 * x3 AS k "
                "FROM (SELECT i, sin(i * 0.37) AS x1, cos(i * 0.11) AS x2, (i %% 101) / 50.0 AS x3 "
                "      FROM generate_series(1, %s) i) s").format(sql.Identifier(self.table)), (self.ROWS,))
            cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(self.table)))
        self.conn.commit()
        self.addCleanup(self._drop)

    def _drop(self):
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self.table)))
        self.conn.commit()

    def test_cancel_in_a_newton_step(self):
        name = unique("logit_cancelled")
        t, train, pid, out = train_in_background(self.table, name, "k", "logistic_regression")
        self.addCleanup(train.close)
        phase = None
        deadline = time.monotonic() + 120
        with self.conn.cursor() as cur:
            while t.is_alive() and time.monotonic() < deadline:
                cur.execute("SELECT phase FROM ml_training_progress WHERE pid = %s", (pid,))
                row = cur.fetchone()
                self.conn.commit()
                if row and row[0] == "fitting":
                    phase = row[0]
                    break
                time.sleep(0.02)
            self.assertEqual(phase, "fitting", f"the Newton steps were not seen: {out}")
            time.sleep(0.2)  # inside a scan
            cancelled_at = time.monotonic()
            cur.execute("SELECT pg_cancel_backend(%s)", (pid,))
            self.conn.commit()
        check_cancelled(self, t, out, cancelled_at, name, "in a Newton step", PROMPT)


class PrecisePassCancelTest(unittest.TestCase):
    """An ill-conditioned least-squares fit reads the rows a second time (the precise pass, into
    double-double statistics): pg_cancel_backend during that pass stops it promptly, nothing is
    written. The pass is seen through ml_training_progress (phase 'precise pass')."""
    ROWS = 2_000_000

    def setUp(self):
        self.conn = connect()
        self.addCleanup(self.conn.close)
        self.table = unique("precise_big")
        with self.conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_settings WHERE name = 'shared_preload_libraries' "
                        "AND setting ~ 'pg_ml'")
            if cur.fetchone()[0] == 0:
                self.skipTest("pg_ml is not in shared_preload_libraries: no ml_training_progress")
            # a degree-8 polynomial in x: ill-conditioned enough for the precise pass
            cur.execute(sql.SQL(
                "CREATE UNLOGGED TABLE {} AS SELECT x, x^2 AS x2, x^3 AS x3, x^4 AS x4, x^5 AS x5, x^6 AS x6, "
                "x^7 AS x7, x^8 AS x8, 1 + x - x^3 + 0.5 * x^8 + (i %% 7) * 1e-3 AS y "
                "FROM (SELECT i, 1 + (i %% 1000) / 250.0 AS x FROM generate_series(1, %s) i) s").format(
                    sql.Identifier(self.table)), (self.ROWS,))
            cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(self.table)))
        self.conn.commit()
        self.addCleanup(self._drop)

    def _drop(self):
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self.table)))
        self.conn.commit()

    def test_cancel_in_the_precise_pass(self):
        name = unique("precise_cancelled")
        t, train, pid, out = train_in_background(self.table, name)
        self.addCleanup(train.close)
        phase = None
        deadline = time.monotonic() + 120
        with self.conn.cursor() as cur:
            while t.is_alive() and time.monotonic() < deadline:
                cur.execute("SELECT phase FROM ml_training_progress WHERE pid = %s", (pid,))
                row = cur.fetchone()
                self.conn.commit()
                if row and row[0] == "precise pass":
                    phase = row[0]
                    break
                time.sleep(0.02)
            self.assertEqual(phase, "precise pass", f"the precise pass was not seen: {out}")
            cancelled_at = time.monotonic()
            cur.execute("SELECT pg_cancel_backend(%s)", (pid,))
            self.conn.commit()
        check_cancelled(self, t, out, cancelled_at, name, "in the precise pass", PROMPT)

    def test_precise_pass_model(self):
        """The same table trained to the end: the report says double-double."""
        name = unique("precise_full")
        with self.conn.cursor() as cur:
            started = time.monotonic()
            cur.execute("SELECT * FROM ml_train(%s, 'y', algorithm => 'linear_regression', name => %s, "
                        "test_size => 0)", (self.table, name))
            cur.execute("SELECT report->>'precision', report->>'reader' FROM ml_versions WHERE model = %s", (name,))
            precision, reader = cur.fetchone()
            print(f"\n  [precise] {self.ROWS:,} rows, {reader} read then the precise pass: "
                  f"{time.monotonic() - started:.2f} s", flush=True)
            cur.execute("SELECT ml_drop_model(%s)", (name,))
        self.conn.commit()
        self.assertEqual(precision, "double-double")


MB = 1 << 20
GROWTH = 48 * MB  # bound on the backend's peak resident growth in LimitsTest (pg_ml.max_memory 16MB)


def peak_rss(pid):
    """The peak resident set size (VmHWM) of a process on this machine, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


class LimitsTest(unittest.TestCase):
    """Issue 10, findings 5 and 6, measured on the backend itself."""

    @classmethod
    def setUpClass(cls):
        cls.levels = unique("limits_levels")
        cls.nums = unique("limits_nums")
        conn = connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL(
                    "CREATE TABLE {} AS SELECT i AS x, 'level' || i AS c, (i % 10)::float8 AS y, (i % 2 = 0)::text AS k "
                    "FROM generate_series(1, 10000) i").format(sql.Identifier(cls.levels)))
                cur.execute(sql.SQL(
                    "CREATE TABLE {} AS SELECT sin(i) AS a, cos(i * 7) AS b, (i % 13)::float8 AS c, "
                    "sin(i) + (i % 13) / 4.0 AS y, CASE WHEN sin(i) > 0 THEN 'p' ELSE 'n' END AS k "
                    "FROM generate_series(1, 30000) i").format(sql.Identifier(cls.nums)))
                cur.execute(sql.SQL("ANALYZE {}, {}").format(sql.Identifier(cls.levels), sql.Identifier(cls.nums)))
        finally:
            conn.close()
        if not os.path.exists("/proc/self/status"):
            raise unittest.SkipTest("no /proc on this machine")

    @classmethod
    def tearDownClass(cls):
        conn = connect()
        try:
            with conn.cursor() as cur:
                for t in (cls.levels, cls.nums):
                    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(t)))
        finally:
            conn.close()

    def run_bounded(self, query, args, sqlstate, settings=("SET pg_ml.max_memory = '16MB'",)):
        """Runs query in a fresh session (statement_timeout 30 s, so that a run that does not stop
        still ends); it must fail with sqlstate, and the backend's peak resident size grow by
        less than GROWTH. Returns (error, seconds, growth)."""
        conn = connect()
        self.addCleanup(conn.close)
        pid = conn.get_backend_pid()
        try:
            peak_rss(pid)
        except OSError:
            self.skipTest("the server does not run on this machine")
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = '30s'")
            for s in settings:
                cur.execute(s)
            cur.execute("SELECT 1")  # the session is set up: what it holds now is the baseline
        conn.commit()
        before = peak_rss(pid)
        started = time.monotonic()
        with conn.cursor() as cur:
            with self.assertRaises(psycopg2.Error) as cm:
                cur.execute(query, args)
        took = time.monotonic() - started
        conn.rollback()
        growth = peak_rss(pid) - before
        print(f"\n  [limits] {cm.exception.pgcode} after {took:.2f} s, peak resident +{growth / MB:.1f} MB: "
              f"{str(cm.exception).splitlines()[0]}", flush=True)
        self.assertEqual(cm.exception.pgcode, sqlstate, str(cm.exception))
        self.assertLess(growth, GROWTH, f"the backend grew by {growth / MB:.0f} MB")
        return cm.exception, took, growth

    def test_ten_thousand_levels(self):
        for algorithm, target in (("linear_regression", "y"), ("logistic_regression", "k"), ("gradient_boosting", "k"),
                                  ("naive_bayes", "k"), ("kmeans", None)):
            with self.subTest(algorithm=algorithm):
                err, took, _ = self.run_bounded(
                    "SELECT * FROM ml_train(%s, %s, algorithm => %s, features => ARRAY['x', 'c'])",
                    (self.levels, target, algorithm), "54000", settings=())
                self.assertIn("more than max_levels (100)", str(err))
                self.assertLess(took, 5.0)

    def test_gradient_boosting_memory(self):
        err, took, _ = self.run_bounded(
            "SELECT * FROM ml_train(%s, 'y', algorithm => 'gradient_boosting', features => ARRAY['a', 'b', 'c'], "
            "hyperparams => '{\"n_estimators\": 100000, \"max_depth\": 32}')", (self.nums,), "54000")
        self.assertIn("pg_ml.max_memory", str(err))
        self.assertLess(took, 5.0)

    def test_svm_kernel_memory(self):
        err, took, _ = self.run_bounded(
            "SELECT * FROM ml_train(%s, 'k', algorithm => 'svm', features => ARRAY['a', 'b', 'c'], "
            "hyperparams => '{\"kernel\": \"rbf\", \"max_kernel_rows\": 10000000}')", (self.nums,), "54000")
        self.assertIn("svm rbf kernel", str(err))
        self.assertLess(took, 5.0)

    def test_cancel_many_levels(self):
        """3000 levels with max_levels raised: statistics of 3000 x 3000 slots, O(levels^2) work a
        row (the row reader; the aggregate reader adds a group at a time, and what follows both,
        the dense solve on 3000 features, is one Eigen call that cannot poll);
        pg_cancel_backend 2 s into it ends it within a few seconds."""
        rel = unique("limits_3000")
        self._run(sql.SQL("CREATE TABLE {} AS SELECT i AS x, 'level' || (i % 3000) AS c, (i % 10)::float8 AS y "
                          "FROM generate_series(1, 60000) i").format(sql.Identifier(rel)))
        self.addCleanup(self._drop_table, rel)
        for aggregate in ("off",):
            with self.subTest(stats_aggregate=aggregate):
                train = connect()
                self.addCleanup(train.close)
                pid = train.get_backend_pid()
                with train.cursor() as cur:
                    cur.execute(f"SET pg_ml.stats_aggregate = {aggregate}")
                out = {}

                def run():
                    try:
                        with train.cursor() as cur:
                            cur.execute("SELECT * FROM ml_train(%s, 'y', algorithm => 'linear_regression', "
                                        "preprocess => '{\"max_levels\": 100000}')", (rel,))
                            out["result"] = cur.fetchall()
                    except Exception as e:
                        out["error"] = e
                    out["ended"] = time.monotonic()

                t = threading.Thread(target=run, daemon=True)
                t.start()
                time.sleep(2.0)
                self.assertTrue(t.is_alive(), f"training ended within 2 s: {out}")
                cancelled_at = time.monotonic()
                self._run("SELECT pg_cancel_backend(%s)", (pid,))
                t.join(60)
                self.assertFalse(t.is_alive(), "ml_train still runs 60 s after pg_cancel_backend")
                took = out["ended"] - cancelled_at
                print(f"\n  [limits] 3000 levels, stats_aggregate {aggregate}: cancelled {took:.2f} s after "
                      f"pg_cancel_backend", flush=True)
                self.assertIsInstance(out.get("error"), psycopg2.errors.QueryCanceled, repr(out))
                self.assertLess(took, 3.0)

    def _run(self, query, args=None):
        conn = connect()
        try:
            with conn.cursor() as cur:
                cur.execute(query, args)
            conn.commit()
        finally:
            conn.close()

    def _drop_table(self, table):
        self._run(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


if __name__ == "__main__":
    unittest.main()
