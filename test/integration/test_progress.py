"""Progress of ml_train / ml_retrain / ml_evaluate: the NOTICE format the pg_ml command line
parses (message and JSON detail), its bounded rate, pg_ml.progress = off, and, with pg_ml in
shared_preload_libraries, the ml_training_progress view read from another session."""
import json
import re
import threading
import time
import unittest

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from pgml_test import PgmlTestCase, connect, unique

MESSAGE = re.compile(
    r"^NOTICE:  pg_ml progress: (?P<model>\S+): (?P<phase>reading|fitting|evaluating|saving), (?P<rows>\d+) rows"
    r"(?:, iteration (?P<iteration>\d+))?(?:, (?P<metric>\w+) (?P<value>\S+))?, (?P<elapsed>\d+\.\d) s\n"
    r"DETAIL:  (?P<detail>\{.*\})\n$")
KEYS = {"model", "phase", "rows", "rows_estimate", "iteration", "metric", "value", "elapsed"}


def progress_notices(conn):
    """The progress notices of conn, parsed: [(regex match, detail dict)]."""
    out = []
    for text in conn.notices:
        if "pg_ml progress:" not in text:
            continue
        m = MESSAGE.match(text)
        assert m is not None, f"progress notice in an unexpected format: {text!r}"
        out.append((m, json.loads(m.group("detail"))))
    return out


class ProgressNoticeTest(PgmlTestCase):
    def setUp(self):
        super().setUp()
        self.conn.notices = []  # keep every notice (psycopg2 keeps the last 50 by default)
        self.tab = unique("prog")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL(
                "CREATE TABLE {} AS SELECT i AS x, (i * 7919) % 101 / 101.0 AS z, (ARRAY['a','b','c'])[1 + i % 3] AS kind, "
                "(i % 2 = 0) <> ((i * 7919) % 101 < 20) AS label FROM generate_series(1, 3000) i")
                .format(sql.Identifier(self.tab)))
            cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(self.tab)))
        self.addCleanup(self._drop_table, self.tab)

    def train(self, interval, algorithm="logistic_regression", progress="on"):
        name = self.model_name("prog_m")
        with self.conn.cursor() as cur:
            cur.execute("SET pg_ml.progress = %s", (progress,))
            cur.execute("SET pg_ml.progress_interval = %s", (interval,))
            cur.execute("SET pg_ml.batch_rows = 500")
            cur.execute("SELECT rows_train + rows_test FROM ml_train(%s, 'label', algorithm => %s, name => %s)",
                        (self.tab, algorithm, name))
            total = cur.fetchone()[0]
        return name, total

    def test_format_and_phases(self):
        name, total = self.train(0)
        notices = progress_notices(self.conn)
        self.assertGreater(len(notices), 6)
        phases = []
        for m, d in notices:
            self.assertEqual(set(d), KEYS)
            self.assertEqual(m.group("model"), name)
            self.assertEqual(d["model"], name)
            self.assertEqual(d["phase"], m.group("phase"))
            self.assertEqual(d["rows"], int(m.group("rows")))
            self.assertEqual(d["rows_estimate"], 3000)  # pg_class.reltuples after ANALYZE
            self.assertAlmostEqual(d["elapsed"], float(m.group("elapsed")), delta=0.051)
            if m.group("iteration"):
                self.assertEqual(d["iteration"], int(m.group("iteration")))
            else:
                self.assertIsNone(d["iteration"])
            if m.group("metric"):
                self.assertEqual(d["metric"], m.group("metric"))
                self.assertAlmostEqual(d["value"], float(m.group("value")), delta=abs(d["value"]) * 1e-5)
            if not phases or phases[-1] != d["phase"]:
                phases.append(d["phase"])
        self.assertEqual(phases, ["reading", "fitting", "evaluating", "saving"])
        reading = [d for _, d in notices if d["phase"] == "reading"]
        # interval 0: one notice per batch of 500 rows, rows counted up to the total
        self.assertEqual([d["rows"] for d in reading], list(range(0, 3001, 500)))
        fitting = [d for _, d in notices if d["phase"] == "fitting" and d["iteration"] is not None]
        # every L-BFGS iteration, as in the training log
        with self.conn.cursor() as cur:
            cur.execute("SELECT iteration, loss FROM ml_training_log(%s) ORDER BY iteration", (name,))
            log = cur.fetchall()
        self.assertEqual([d["iteration"] for d in fitting], [i for i, _ in log])
        for d, (_, loss) in zip(fitting, log):
            self.assertEqual(d["metric"], "loss")
            self.assertAlmostEqual(d["value"], loss, delta=abs(loss) * 1e-12)
        self.assertTrue(all(d["rows"] == 3000 for _, d in notices if d["phase"] != "reading"))
        elapsed = [d["elapsed"] for _, d in notices]
        self.assertEqual(elapsed, sorted(elapsed))

    def test_rate_is_bounded(self):
        # default interval (1 s): phase changes, plus at most one a second
        self.train(1000)
        notices = progress_notices(self.conn)
        last = {}
        changes = 0
        for _, d in notices:
            if d["phase"] != last.get("phase"):
                changes += 1
            else:
                self.assertGreaterEqual(d["elapsed"] - last["at"], 0.999, "two notices within the interval")
            last = {"phase": d["phase"], "at": d["elapsed"]}
        self.assertEqual(changes, 4)
        self.assertLessEqual(len(notices), 4 + int(notices[-1][1]["elapsed"]) + 1)

    def test_off_silences(self):
        self.train(0, progress="off")
        self.assertEqual(progress_notices(self.conn), [])
        self.assertEqual([n for n in self.conn.notices if "progress" in n], [])

    def test_retrain_and_evaluate(self):
        name, _ = self.train(1000, algorithm="gradient_boosting")
        self.conn.notices = []
        with self.conn.cursor() as cur:
            cur.execute("SET pg_ml.progress_interval = 0")
            # new rows for the continued boosting (it learns only rows the version has not)
            cur.execute(f'INSERT INTO "{self.tab}" SELECT * FROM "{self.tab}" LIMIT 200')
            cur.execute("SELECT version FROM ml_retrain(%s, %s, mode => 'incremental')", (name, self.tab))
            self.assertEqual(cur.fetchone()[0], 2)
            retrain = progress_notices(self.conn)
            self.conn.notices = []
            cur.execute("SELECT ml_evaluate(%s, %s)", (name, self.tab))
            evaluate = progress_notices(self.conn)
        rounds = [d for _, d in retrain if d["iteration"] is not None]
        self.assertGreater(len(rounds), 0)
        self.assertTrue(all(d["metric"] == "loss" for d in rounds))
        # continued boosting numbers its rounds after the base model's
        self.assertGreater(rounds[0]["iteration"], 1)
        self.assertEqual({d["phase"] for _, d in evaluate}, {"evaluating"})
        self.assertEqual(evaluate[-1][1]["rows"], 3200)  # the table with the 200 new rows

    def test_error_ends_the_run(self):
        # a failed training leaves no progress behind: the next statement reports nothing stale
        with self.conn.cursor() as cur:
            cur.execute("SET pg_ml.progress_interval = 0")
            with self.assertRaises(psycopg2.errors.InvalidParameterValue):
                cur.execute("SELECT * FROM ml_train(%s, 'label', hyperparams => '{\"C\": -1}', "
                            "algorithm => 'logistic_regression')", (self.tab,))
            if preloaded(self.conn):
                cur.execute("SELECT count(*) FROM ml_training_progress WHERE pid = pg_backend_pid()")
                self.assertEqual(cur.fetchone()[0], 0)


def preloaded(conn):
    with conn.cursor() as cur:
        cur.execute("SHOW shared_preload_libraries")
        return "pg_ml" in [s.strip() for s in cur.fetchone()[0].split(",")]


class ProgressViewTest(PgmlTestCase):
    """A second session sees a running training (pg_ml in shared_preload_libraries)."""

    def setUp(self):
        super().setUp()
        if not preloaded(self.conn):
            self.skipTest("pg_ml is not in shared_preload_libraries")

    def test_second_session_sees_running_training(self):
        tab, view, fn = unique("pv"), unique("pv_slow"), unique("pv_sleep")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE TABLE {} AS SELECT i AS x, 3 * i + 1 AS y FROM generate_series(1, 2000) i")
                        .format(sql.Identifier(tab)))
            # reading the view takes a few seconds: every row sleeps 2 ms
            cur.execute(sql.SQL("CREATE FUNCTION {}(integer) RETURNS integer LANGUAGE plpgsql VOLATILE AS "
                                "$$ BEGIN PERFORM pg_sleep(0.002); RETURN $1; END $$").format(sql.Identifier(fn)))
            cur.execute(sql.SQL("CREATE VIEW {} AS SELECT {}(x) AS x, y FROM {}")
                        .format(sql.Identifier(view), sql.Identifier(fn), sql.Identifier(tab)))
            cur.execute("CREATE ROLE " + (outsider := unique("pv_outsider")))
            cur.execute("CREATE ROLE " + (stats := unique("pv_stats")) + " IN ROLE pg_read_all_stats")
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(stats)))
        self.addCleanup(self._drop_table, tab)
        self.addCleanup(self._cleanup, view, fn, [outsider, stats])
        name = self.model_name("pv_m")

        trainer = connect()
        self.addCleanup(trainer.close)
        with trainer.cursor() as cur:
            cur.execute("SET pg_ml.progress = off")
            cur.execute("SET pg_ml.batch_rows = 100")
            cur.execute("SELECT pg_backend_pid()")
            trainer_pid = cur.fetchone()[0]
        outcome = {}

        def run():
            try:
                with trainer.cursor() as cur:
                    cur.execute("SELECT version FROM ml_train(%s, 'y', algorithm => 'linear_regression', name => %s)",
                                (view, name))
                    outcome["version"] = cur.fetchone()[0]
            except psycopg2.Error as e:
                outcome["error"] = e

        thread = threading.Thread(target=run)
        thread.start()
        try:
            seen = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(seen) < 2:
                rows = self.all("SELECT * FROM ml_training_progress WHERE model = %s", (name,))
                if rows and rows[0]["rows"] > 0 and (not seen or rows[0]["rows"] > seen[-1]["rows"]):
                    seen.append(rows[0])
                time.sleep(0.2)
            self.assertEqual(len(seen), 2, f"the running training was not seen growing: {seen}")
            row = seen[-1]
            self.assertEqual(row["pid"], trainer_pid)
            self.assertEqual(row["command"], "ml_train")
            self.assertEqual(row["phase"], "reading")
            self.assertEqual(row["rows"] % 100, 0)
            self.assertGreater(row["rows"], seen[0]["rows"])
            self.assertIsNone(row["rows_estimate"])  # a view: unknown
            self.assertEqual(row["datname"], self.scalar("SELECT current_database()"))
            self.assertEqual(row["usename"], self.scalar("SELECT current_user"))
            self.assertGreater(row["elapsed"], 0)
            self.assertIsNotNone(row["started_at"])
            # like pg_stat_activity: another role sees it only with pg_read_all_stats
            with self.conn.cursor() as cur:
                cur.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(outsider)))
                cur.execute("SELECT count(*) FROM ml_training_progress WHERE pid = %s", (trainer_pid,))
                hidden = cur.fetchone()[0]
                cur.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(stats)))
                cur.execute("SELECT count(*) FROM ml_training_progress WHERE pid = %s", (trainer_pid,))
                shown = cur.fetchone()[0]
                cur.execute("RESET ROLE")
            self.assertEqual(hidden, 0)
            self.assertEqual(shown, 1)
        finally:
            thread.join(120)
        self.assertNotIn("error", outcome)
        self.assertEqual(outcome.get("version"), 1)
        # finished: gone from the view
        self.assertEqual(self.scalar("SELECT count(*) FROM ml_training_progress WHERE pid = %s", (trainer_pid,)), 0)

    def test_cancelled_training_leaves_the_view(self):
        tab, fn = unique("pv"), unique("pv_sleep")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE FUNCTION {}(integer) RETURNS integer LANGUAGE plpgsql VOLATILE AS "
                                "$$ BEGIN PERFORM pg_sleep(0.01); RETURN $1; END $$").format(sql.Identifier(fn)))
            cur.execute(sql.SQL("CREATE TABLE {} AS SELECT i AS x, 2 * i AS y FROM generate_series(1, 5000) i")
                        .format(sql.Identifier(tab)))
        self.addCleanup(self._drop_table, tab)
        self.addCleanup(self._cleanup, None, fn, [])
        trainer = connect()
        self.addCleanup(trainer.close)
        with trainer.cursor() as cur:
            cur.execute("SET pg_ml.batch_rows = 100")
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        errors = []

        # reading takes 50 s: every row sleeps 10 ms
        view = unique("pv_v")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE VIEW {} AS SELECT {}(x) AS x, y FROM {}")
                        .format(sql.Identifier(view), sql.Identifier(fn), sql.Identifier(tab)))
        self.addCleanup(self._cleanup, view, None, [])

        def run_view():
            try:
                with trainer.cursor() as cur:
                    cur.execute("SELECT * FROM ml_train(%s, 'y', algorithm => 'linear_regression', name => %s)",
                                (view, unique("pv_c")))
            except psycopg2.Error as e:
                errors.append(e)

        thread = threading.Thread(target=run_view)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if self.scalar("SELECT count(*) FROM ml_training_progress WHERE pid = %s AND rows > 0", (pid,)):
                    break
                time.sleep(0.1)
            else:
                self.fail("the training never showed up")
            self.scalar("SELECT pg_cancel_backend(%s)", (pid,))
        finally:
            thread.join(60)
        self.assertEqual(len(errors), 1)
        self.assertIsInstance(errors[0], psycopg2.errors.QueryCanceled)
        self.assertEqual(self.scalar("SELECT count(*) FROM ml_training_progress WHERE pid = %s", (pid,)), 0)

    def _cleanup(self, view, fn, roles):
        c = connect()
        try:
            with c.cursor() as cur:
                if view:
                    cur.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(view)))
                if fn:
                    cur.execute(sql.SQL("DROP FUNCTION IF EXISTS {}(integer) CASCADE").format(sql.Identifier(fn)))
                for r in roles:
                    cur.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(sql.Identifier(r)))
                    cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(r)))
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main()
