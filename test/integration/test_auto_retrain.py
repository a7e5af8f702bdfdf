"""Auto-retrain with the background worker (pg_ml in shared_preload_libraries).

The test starts its own throw-away cluster (initdb, as the postgres OS user when run as root, on
a free port, unix socket only) with shared_preload_libraries = pg_ml and pg_ml.worker_naptime = 1,
so it does not depend on how the suite's cluster was started.

- A burst of 100,000 rows in 1,000-row INSERT statements into a table with auto-retrain at
  20,000 rows queues exactly 5 jobs, which the worker runs into exactly 5 new versions.
- The burst's time with auto-retrain off, on (refit) and on (incremental: the same counting,
  plus the transaction id of each statement as the watermark of its rows) is measured (median
  of 5, the worker paused) and printed with the ratio.
- Killing the worker (pg_terminate_backend) in the middle of a job leaves no version behind; the
  job is reset and run again. Killing the launcher restarts it.
"""
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import unittest

import psycopg2

PG_CONFIG = os.environ.get("PG_CONFIG", "/usr/lib/postgresql/15/bin/pg_config")
BURST_ROWS = 100_000
STATEMENT_ROWS = 1_000
THRESHOLD = 20_000


def bindir():
    return subprocess.check_output([PG_CONFIG, "--bindir"], text=True).strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A throw-away PostgreSQL cluster with pg_ml preloaded."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pgml_worker_")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.user = "postgres" if self.as_root else None
        self.run(["initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = ''\nunix_socket_directories = '{self.dir}'\n"
                    "shared_preload_libraries = 'pg_ml'\npg_ml.worker_naptime = 1\nfsync = off\n"
                    "max_worker_processes = 16\nlog_min_messages = log\n")
        self.run(["pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start"])

    def run(self, argv):
        cmd = [os.path.join(bindir(), argv[0])] + argv[1:]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.dir)

    def connect(self, dbname="postgres", autocommit=True):
        conn = psycopg2.connect(host=self.dir, port=self.port, user="postgres", dbname=dbname)
        conn.autocommit = autocommit
        return conn

    def stop(self):
        try:
            self.run(["pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def server_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()


class AutoRetrainWorkerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster()
        c = cls.cluster.connect()
        with c.cursor() as cur:
            cur.execute("CREATE DATABASE burst")
        c.close()
        cls.conn = cls.cluster.connect("burst")
        cls.q("CREATE EXTENSION pg_ml")

    @classmethod
    def tearDownClass(cls):
        cls.conn.close()
        log = cls.cluster.server_log()
        cls.cluster.stop()
        crashed = [l for l in log.splitlines() if "terminated by signal" in l or "terminated abnormally" in l]
        if crashed:
            raise AssertionError("a backend crashed in the worker cluster:\n" + "\n".join(crashed))

    @classmethod
    def q(cls, query, params=None, conn=None):
        with (conn or cls.conn).cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else None

    def one(self, query, params=None):
        rows = self.q(query, params)
        self.assertEqual(len(rows), 1, query)
        return rows[0]

    def wait_for(self, what, predicate, timeout=300, interval=0.2):
        deadline = time.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.time() > deadline:
                self.fail(f"timed out after {timeout} s waiting for {what}")
            time.sleep(interval)

    def set_worker(self, enabled):
        self.q(f"ALTER DATABASE burst SET pg_ml.worker_enabled = {'on' if enabled else 'off'}")

    def model_table(self, name, initial=2000):
        """A table of 4 features and a linear target, and a linear_regression model trained on it."""
        self.q(f"DROP TABLE IF EXISTS {name}")
        self.q(f"CREATE TABLE {name} (id int, x1 float8, x2 float8, x3 float8, x4 float8, y float8)")
        self.insert(name, 0, initial)
        self.q("SELECT * FROM ml_train(%s, 'y', algorithm => 'linear_regression', name => %s, exclude => ARRAY['id'])",
               (name, name))

    @staticmethod
    def insert_sql(table, start, n):
        return (f"INSERT INTO {table} SELECT i, i % 97, (i * 7) % 89, (i * 13) % 83, (i * 3) % 79, "
                f"1 + 2 * (i % 97) - 3 * ((i * 7) % 89) + 0.5 * ((i * 13) % 83) + ((i * 3) % 79) "
                f"FROM generate_series({start + 1}, {start + n}) i")

    @classmethod
    def insert(cls, table, start, n, cur=None):
        sql = cls.insert_sql(table, start, n)
        if cur is None:
            cls.q(sql)
        else:
            cur.execute(sql)

    def burst(self, table):
        """100,000 rows in 1,000-row autocommit statements; returns the seconds it took."""
        with self.conn.cursor() as cur:
            t0 = time.perf_counter()
            for s in range(0, BURST_ROWS, STATEMENT_ROWS):
                self.insert(table, 1_000_000 + s, STATEMENT_ROWS, cur)
            return time.perf_counter() - t0

    def trigger_share(self, table):
        """(trigger ms, % of execution time) over 20 1000-row INSERTs run under EXPLAIN ANALYZE."""
        trig = total = 0.0
        with self.conn.cursor() as cur:
            for s in range(20):
                cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + self.insert_sql(table, 5_000_000 + s * 1000, 1000))
                plan = cur.fetchone()[0][0]
                total += plan["Execution Time"]
                trig += sum(t["Time"] for t in plan.get("Triggers", []) if t["Trigger Name"].startswith("pgml_"))
        self.assertGreater(trig, 0)
        return trig, 100 * trig / total

    def drop(self, name):
        self.q("SELECT ml_drop_model(%s)", (name,))
        self.q(f"DROP TABLE {name}")

    def test_1_burst_timing(self):
        """Insert burst with auto-retrain off vs on (median of 5; the worker paused meanwhile)."""
        self.set_worker(False)
        times = {"off": [], "refit": [], "incremental": []}
        share = {}
        for rnd in range(5):
            for kind in ("off", "refit", "incremental"):
                name = f"timing_{kind}_{rnd}"
                self.model_table(name)
                if kind != "off":
                    self.q("SELECT ml_auto_retrain(%s, %s, %s, %s)", (name, name, THRESHOLD, kind))
                self.q("CHECKPOINT")
                times[kind].append(self.burst(name))
                if kind != "off":
                    jobs = self.one("SELECT count(*) FROM ml_jobs WHERE model = %s", (name,))[0]
                    self.assertEqual(jobs, BURST_ROWS // THRESHOLD, f"{kind}: jobs queued by the burst")
                    share.setdefault(kind, []).append(self.trigger_share(name))
                self.drop(name)
        off = statistics.median(times["off"])
        refit = statistics.median(times["refit"])
        inc = statistics.median(times["incremental"])
        print(f"\n[auto-retrain burst] {BURST_ROWS} rows in {STATEMENT_ROWS}-row statements, median of 5: "
              f"off {off:.3f} s; on (refit, counting) {refit:.3f} s = {refit / off:.3f}x "
              f"({(refit / off - 1) * 100:+.1f}%, {(refit - off) * 10:+.2f} ms per statement); on (incremental, counting + xid watermark) {inc:.3f} s = "
              f"{inc / off:.3f}x ({(inc / off - 1) * 100:+.1f}%); all runs: "
              + ", ".join(f"{k} " + "/".join(f"{t:.3f}" for t in v) for k, v in times.items())
              + f"; minimum: off {min(times['off']):.3f} s, refit {min(times['refit']):.3f} s, "
              f"incremental {min(times['incremental']):.3f} s", flush=True)
        print("[auto-retrain burst] the trigger's own time (EXPLAIN ANALYZE, 20 statements of 1000 rows, median "
              "of 5): " + "; ".join(
                  f"{k}: {statistics.median(m for m, _ in v) / 20:.3f} ms per statement = "
                  f"{statistics.median(p for _, p in v):.1f}% of the statements' execution time"
                  for k, v in share.items()), flush=True)
        self.set_worker(True)

    def test_2_burst_jobs_run_by_worker(self):
        """The burst queues exactly 5 jobs; the worker runs them, learning every row exactly once.

        A job learns every row of the table the deployed version has not learned (ml_retrain on
        the table), so a job that runs after more windows filled takes their rows too, and the
        later jobs of those windows end without a version."""
        self.set_worker(True)
        name = "burst_auto"
        self.model_table(name)
        self.q("SELECT ml_auto_retrain(%s, %s, %s)", (name, name, THRESHOLD))
        self.assertEqual(self.one("SELECT mode FROM ml_auto_retrains WHERE model = %s", (name,))[0], "auto")
        seconds = self.burst(name)
        print(f"\n[auto-retrain burst] with the worker running jobs meanwhile: {seconds:.3f} s", flush=True)

        def done():
            rows = self.q("SELECT status FROM ml_jobs WHERE model = %s", (name,))
            return len(rows) == 5 and all(r[0] in ("succeeded", "failed") for r in rows)

        self.wait_for("the worker to finish the burst's jobs", done)
        jobs = self.q("SELECT status, rows, attempts, runner, version, error FROM ml_jobs WHERE model = %s ORDER BY id",
                      (name,))
        self.assertEqual(len(jobs), 5, jobs)
        for status, rows, attempts, runner, version, error in jobs:
            self.assertEqual((status, rows, attempts, runner, error), ("succeeded", THRESHOLD, 1, "worker", None), jobs)
        made = [j[4] for j in jobs if j[4] is not None]
        self.assertEqual(made, list(range(2, 2 + len(made))), jobs)
        self.assertEqual(jobs[0][4], 2, jobs)
        versions = self.q("SELECT version, parent_version, mode, rows_train, rows_test, trained_by::text "
                          "FROM ml_versions WHERE model = %s ORDER BY version", (name,))
        self.assertEqual([v[0] for v in versions], [1] + made, versions)
        self.assertEqual([v[1] for v in versions], [None] + [v - 1 for v in made], versions)
        self.assertTrue(all(v[2] == "incremental" and v[5] == "postgres" for v in versions[1:]), versions)
        # incremental: each version adds its new rows (training rows to the previous version's,
        # the rest held out to test it); together every row of the burst, once
        added = [cur[3] - prev[3] + cur[4] for prev, cur in zip(versions, versions[1:])]
        self.assertTrue(all(a > 0 for a in added), versions)
        self.assertEqual(sum(added), 5 * THRESHOLD, versions)
        self.assertEqual(self.one("SELECT count(*) FROM ml.auto_retrain_batches")[0], 0)
        self.assertEqual(self.one("SELECT pending_rows FROM ml_auto_retrains WHERE model = %s", (name,))[0], 0)
        self.drop(name)

    def test_3_kill_worker_mid_job(self):
        """pg_terminate_backend on the worker during a job: no version is left, the job runs again."""
        self.set_worker(False)
        name = "big_refit"
        self.q(f"DROP TABLE IF EXISTS {name}")
        self.q(f"CREATE TABLE {name} (id int, x1 float8, x2 float8, x3 float8, x4 float8, y float8)")
        self.insert(name, 0, 2000)
        self.q("SELECT * FROM ml_train(%s, 'y', algorithm => 'random_forest', name => %s, exclude => ARRAY['id'], "
               "hyperparams => '{\"n_estimators\": 60, \"max_depth\": 12}')", (name, name))
        # rows inserted before auto-retrain are not counted, but a refit reads them: the job takes seconds
        # (60 trees of depth 12 on 201k rows, about 4 s: histogram trees made 10 trees of depth 8 a
        # half-second job, over before the test could kill it)
        self.insert(name, 2000, 200_000)
        self.q("SELECT ml_auto_retrain(%s, %s, 1000, 'refit')", (name, name))
        self.insert(name, 500_000, 1000)
        self.assertEqual(self.one("SELECT count(*) FROM ml_jobs WHERE model = %s AND status = 'queued'", (name,))[0], 1)
        self.set_worker(True)
        pid = self.wait_for("the worker to start the job", lambda: self.q(
            "SELECT runner_pid FROM ml_jobs WHERE model = %s AND status = 'running'", (name,)), timeout=60, interval=0.05)
        pid = pid[0][0]
        time.sleep(1.0)
        self.assertEqual(self.one("SELECT status FROM ml_jobs WHERE model = %s", (name,))[0], "running")
        self.assertEqual(self.one("SELECT backend_type FROM pg_stat_activity WHERE pid = %s", (pid,))[0], "pg_ml worker")
        self.assertTrue(self.one("SELECT pg_terminate_backend(%s)", (pid,))[0])
        self.wait_for("the worker to exit", lambda: not self.q("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)),
                      timeout=30)
        # no half version: the killed job's transaction is gone
        self.assertEqual(self.one("SELECT count(*) FROM ml.versions v JOIN ml.models m ON m.id = v.model_id "
                                  "WHERE m.name = %s", (name,))[0], 1)
        self.assertEqual(self.one("SELECT count(*) FROM ml.training_log l JOIN ml.models m ON m.id = l.model_id "
                                  "WHERE m.name = %s AND l.version > 1", (name,))[0], 0)

        def finished():
            r = self.q("SELECT status, attempts, version, error FROM ml_jobs WHERE model = %s", (name,))
            return r if r and r[0][0] in ("succeeded", "failed") else None

        status, attempts, version, error = self.wait_for("the job to be run again", finished)[0]
        self.assertEqual((status, attempts, version, error), ("succeeded", 2, 2, None))
        self.assertEqual([r[0] for r in self.q("SELECT version FROM ml_versions WHERE model = %s ORDER BY 1", (name,))],
                         [1, 2])
        log = self.cluster.server_log()
        self.assertIn(f"terminating background worker \"pg_ml worker\" due to administrator command", log)
        self.drop(name)

    def test_5_concurrent_inserters(self):
        """Four sessions inserting at once: every row is counted once, no crossing queues two jobs."""
        self.set_worker(False)
        name = "concurrent"
        self.model_table(name)
        self.q("SELECT ml_auto_retrain(%s, %s, %s)", (name, name, THRESHOLD))
        errors = []

        def inserter(k):
            try:
                c = self.cluster.connect("burst")
                with c.cursor() as cur:
                    for s in range(25):
                        self.insert(name, 10_000_000 * (k + 1) + s * STATEMENT_ROWS, STATEMENT_ROWS, cur)
                c.close()
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=inserter, args=(k,)) for k in range(4)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"\n[auto-retrain] 4 concurrent sessions, 100 statements of 1000 rows: "
              f"{time.perf_counter() - t0:.3f} s", flush=True)
        self.assertEqual(errors, [])
        ran = self.q("SELECT status, version FROM ml_run_jobs()")  # also counts what was left over
        self.assertTrue(all(r[0] == "succeeded" for r in ran), ran)
        jobs = [r[0] for r in self.q("SELECT rows FROM ml_jobs WHERE model = %s ORDER BY id", (name,))]
        pending = self.one("SELECT pending_rows FROM ml_auto_retrains WHERE model = %s", (name,))[0]
        self.assertEqual(sum(jobs) + pending, BURST_ROWS, (jobs, pending))
        self.assertTrue(all(r >= THRESHOLD for r in jobs), jobs)
        self.assertLess(pending, THRESHOLD)
        # the versions learned every inserted row exactly once (a job takes every row the deployed
        # version has not learned, so later jobs may find nothing left and make no version)
        versions = self.q("SELECT rows_train, rows_test FROM ml_versions WHERE model = %s ORDER BY version", (name,))
        self.assertLessEqual(len(versions), 1 + len(jobs))
        added = sum(cur[0] - prev[0] + cur[1] for prev, cur in zip(versions, versions[1:]))
        self.assertEqual(added, BURST_ROWS)
        self.set_worker(True)
        self.drop(name)

    def test_6_inserts_never_wait(self):
        """An insert neither waits for a transaction holding the counter nor for a retrain (model row locked)."""
        self.set_worker(False)
        name = "nowait"
        self.model_table(name)
        self.q("SELECT ml_auto_retrain(%s, %s, 1500)", (name, name))
        holder = self.cluster.connect("burst", autocommit=False)
        trainer = self.cluster.connect("burst", autocommit=False)
        other = self.cluster.connect("burst")
        try:
            self.insert(name, 100_000, 1000, holder.cursor())        # holds the counter row until it commits
            trainer.cursor().execute("SELECT 1 FROM ml.models WHERE name = %s FOR UPDATE", (name,))  # as a retrain does
            with other.cursor() as cur:
                cur.execute("SET statement_timeout = '5s'")
                t0 = time.perf_counter()
                self.insert(name, 200_000, 1000, cur)               # counted aside, no wait
                self.insert(name, 300_000, 1000, cur)
                waited = time.perf_counter() - t0
            self.assertLess(waited, 4.0)
            holder.commit()
            self.insert(name, 400_000, 1000, other.cursor())       # takes the counter: 4000 rows, one job
            self.assertEqual(self.q("SELECT rows FROM ml_jobs WHERE model = %s", (name,)), [(4000,)])
            trainer.rollback()
        finally:
            holder.close()
            trainer.close()
            other.close()
        ran = self.q("SELECT status, version FROM ml_run_jobs()")
        self.assertEqual(ran, [("succeeded", 2)])
        v = self.one("SELECT rows_train + rows_test - (SELECT rows_train FROM ml_versions WHERE model = %s AND version = 1) "
                     "FROM ml_versions WHERE model = %s AND version = 2", (name, name))[0]
        self.assertEqual(v, 4000)
        self.set_worker(True)
        self.drop(name)

    def test_7_server_crash_mid_job(self):
        """An immediate shutdown during a job: after the restart no half version, the job runs again."""
        self.set_worker(False)
        name = "crash_refit"
        self.q(f"DROP TABLE IF EXISTS {name}")
        self.q(f"CREATE TABLE {name} (id int, x1 float8, x2 float8, x3 float8, x4 float8, y float8)")
        self.insert(name, 0, 2000)
        self.q("SELECT * FROM ml_train(%s, 'y', algorithm => 'random_forest', name => %s, exclude => ARRAY['id'], "
               "hyperparams => '{\"n_estimators\": 60, \"max_depth\": 12}')", (name, name))
        self.insert(name, 2000, 200_000)
        self.q("SELECT ml_auto_retrain(%s, %s, 1000, 'refit')", (name, name))
        self.insert(name, 500_000, 1000)
        self.set_worker(True)
        self.wait_for("the worker to start the job", lambda: self.q(
            "SELECT 1 FROM ml_jobs WHERE model = %s AND status = 'running'", (name,)), timeout=60, interval=0.05)
        time.sleep(1.0)
        type(self).conn.close()
        self.cluster.run(["pg_ctl", "-D", self.cluster.data, "-m", "immediate", "-w", "-t", "60", "restart"])
        type(self).conn = self.cluster.connect("burst")
        # the version the job was writing went with the crash
        self.assertEqual(self.one("SELECT count(*) FROM ml.versions v JOIN ml.models m ON m.id = v.model_id "
                                  "WHERE m.name = %s", (name,))[0], 1)

        def finished():
            r = self.q("SELECT status, attempts, version, error FROM ml_jobs WHERE model = %s", (name,))
            return r if r and r[0][0] in ("succeeded", "failed") else None

        status, attempts, version, error = self.wait_for("the job to be run again after the restart", finished)[0]
        self.assertEqual((status, attempts, version, error), ("succeeded", 2, 2, None))
        self.drop(name)

    def test_4_launcher_restarts(self):
        """The launcher comes back after it is terminated (bgw_restart_time)."""
        pid = self.one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ml launcher'")[0]
        self.assertTrue(self.one("SELECT pg_terminate_backend(%s)", (pid,))[0])
        new = self.wait_for("a new launcher", lambda: self.q(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ml launcher' AND pid <> %s", (pid,)), timeout=30)
        self.assertNotEqual(new[0][0], pid)


if __name__ == "__main__":
    unittest.main()
