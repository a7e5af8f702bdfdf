"""Progress of ml_train / ml_retrain / ml_evaluate: the NOTICE format (message, and with
pg_ml.progress = on the JSON detail the pg_ml command line parses), its bounded rate, the quiet
default (pg_ml.progress = auto: nothing before pg_ml.progress_delay, no detail), pg_ml.progress =
off, and, with pg_ml in shared_preload_libraries, the ml_training_progress view read from another
session."""
import json
import re
import threading
import time
import unittest

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from pgml_test import PgmlTestCase, connect, unique

LINE = (r"^NOTICE:  pg_ml progress: (?P<model>\S+): (?P<phase>reading|fitting|evaluating|saving), "
        r"(?P<rows>\d+)(?: of ~(?P<estimate>\d+))? rows"
        r"(?:, iteration (?P<iteration>\d+)(?: of (?P<iterations>\d+))?)?(?:, (?P<metric>\w+) (?P<value>\S+))?, "
        r"(?P<elapsed>\d+) s\n")
MESSAGE = re.compile(LINE + r"DETAIL:  (?P<detail>\{.*\})\n$")  # pg_ml.progress = on
PLAIN = re.compile(LINE + r"$")                                    # auto: no detail
KEYS = {"model", "phase", "rows", "rows_estimate", "iteration", "metric", "value", "elapsed"}


def progress_notices(conn):
    """The progress notices of conn (pg_ml.progress = on), parsed: [(regex match, detail dict)]."""
    out = []
    for text in conn.notices:
        if "pg_ml progress:" not in text:
            continue
        m = MESSAGE.match(text)
        assert m is not None, f"progress notice in an unexpected format: {text!r}"
        out.append((m, json.loads(m.group("detail"))))
    return out


def plain_notices(conn):
    """The progress notices of conn (pg_ml.progress = auto), parsed: [regex match]."""
    out = []
    for text in conn.notices:
        if "pg_ml progress:" not in text:
            continue
        m = PLAIN.match(text)
        assert m is not None, f"progress notice in an unexpected format: {text!r}"
        out.append(m)
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
            self.assertAlmostEqual(d["elapsed"], float(m.group("elapsed")), delta=0.501)  # whole seconds
            # the estimate while reading (pg_class.reltuples after ANALYZE), not after
            self.assertEqual(m.group("estimate"), "3000" if d["phase"] == "reading" else None)
            # logistic_regression stops when it converges: no planned count of iterations
            self.assertIsNone(m.group("iterations"))
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

    def test_default_is_quiet(self):
        # pg_ml.progress = auto (the default): a training that ends within pg_ml.progress_delay
        # (3 s) sends no progress notice, and no NOTICE of the algorithm's choice either
        with self.conn.cursor() as cur:
            cur.execute("SELECT boot_val FROM pg_settings WHERE name = 'pg_ml.progress'")
            self.assertEqual(cur.fetchone()[0], "auto")
            cur.execute("SELECT boot_val FROM pg_settings WHERE name = 'pg_ml.progress_delay'")
            self.assertEqual(cur.fetchone()[0], "3000")
            cur.execute("SET pg_ml.progress = auto")
            cur.execute("SET pg_ml.progress_delay = '3s'")
            cur.execute("SELECT pg_catalog.clock_timestamp()")
            t0 = cur.fetchone()[0]
            cur.execute("SELECT algorithm FROM ml_train(%s, 'label', name => %s, features => ARRAY['z', 'kind'])",
                        (self.tab, self.model_name("prog_q")))
            self.assertEqual(cur.fetchone()[0], "gradient_boosting")  # 3000 rows: the size rule
            cur.execute("SELECT extract(epoch FROM pg_catalog.clock_timestamp() - %s)", (t0,))
            seconds = float(cur.fetchone()[0])
        if seconds < 2.5:  # else the machine was too slow to tell
            self.assertEqual(self.conn.notices, [])

    def test_auto_lines_without_delay(self):
        # auto with no delay: the human line alone (no DETAIL), the rows read of ~the estimate,
        # boosting rounds of n_estimators
        name = self.model_name("prog_a")
        with self.conn.cursor() as cur:
            cur.execute("SET pg_ml.progress = auto")
            cur.execute("SET pg_ml.progress_delay = 0")
            cur.execute("SET pg_ml.progress_interval = 0")
            cur.execute("SET pg_ml.batch_rows = 500")
            cur.execute("SELECT 1 FROM ml_train(%s, 'label', algorithm => 'gradient_boosting', name => %s, "
                        "features => ARRAY['z', 'kind'], hyperparams => '{\"n_estimators\": 12}')", (self.tab, name))
        lines = plain_notices(self.conn)
        self.assertTrue(all("DETAIL" not in n for n in self.conn.notices))
        reading = [m for m in lines if m.group("phase") == "reading"]
        self.assertEqual([(int(m.group("rows")), m.group("estimate")) for m in reading],
                         [(r, "3000") for r in range(0, 3001, 500)])
        rounds = [m for m in lines if m.group("phase") == "fitting" and m.group("iteration")]
        self.assertGreater(len(rounds), 0)
        self.assertTrue(all(m.group("iterations") == "12" for m in rounds))
        self.assertEqual(rounds[-1].group("iteration"), "12")
        self.assertEqual([m.group("phase") for m in lines][-1], "saving")

    def test_auto_waits_for_the_delay(self):
        # a view that reads slowly (2 ms a row, 1500 rows: 3 s): nothing in the first second
        # (pg_ml.progress_delay = 1s), then the lines without detail; a view has no estimate
        fn, view = unique("prog_sleep"), unique("prog_slow")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE FUNCTION {}(integer) RETURNS integer LANGUAGE plpgsql VOLATILE AS "
                                "$$ BEGIN PERFORM pg_sleep(0.002); RETURN $1; END $$").format(sql.Identifier(fn)))
            cur.execute(sql.SQL("CREATE VIEW {} AS SELECT {}(x) AS x, z, label FROM {} WHERE x <= 1500")
                        .format(sql.Identifier(view), sql.Identifier(fn), sql.Identifier(self.tab)))
        self.addCleanup(self._drop_view, view, fn)
        with self.conn.cursor() as cur:
            cur.execute("SET pg_ml.progress = auto")
            cur.execute("SET pg_ml.progress_delay = '1s'")
            cur.execute("SET pg_ml.batch_rows = 100")
            cur.execute("SELECT 1 FROM ml_train(%s, 'label', algorithm => 'logistic_regression', name => %s, "
                        "features => ARRAY['z'])", (view, self.model_name("prog_d")))
        lines = plain_notices(self.conn)
        self.assertGreater(len(lines), 0)
        self.assertTrue(all("DETAIL" not in n for n in self.conn.notices))
        self.assertTrue(all(int(m.group("elapsed")) >= 1 for m in lines), [m.group(0) for m in lines])
        self.assertTrue(all(m.group("estimate") is None for m in lines))
        self.assertEqual(lines[-1].group("phase"), "saving")

    def _drop_view(self, view, fn):
        c = connect()
        try:
            with c.cursor() as cur:
                cur.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(view)))
                cur.execute(sql.SQL("DROP FUNCTION IF EXISTS {}(integer)").format(sql.Identifier(fn)))
        finally:
            c.close()

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
