"""Auto-retrain tells the truth about what runs its jobs (issue 11).

Two throw-away clusters (initdb as in test_auto_retrain, unix socket only, naptime 1 s): one
WITHOUT pg_ml in shared_preload_libraries, one with it.

- Without preload: ml_auto_retrain queues jobs that no worker will run, so it says so (a NOTICE
  naming the model, with the reason and a hint: preload, or schedule ml_run_jobs()), and the
  views show job_runner 'none' (ml_auto_retrains, and ml_jobs for a queued job). Once
  ml_run_jobs() ran it counts as the runner ('ml_run_jobs') for a day.
- With preload: 'worker' and no NOTICE; pg_ml.worker_enabled off for the database, or the
  launcher gone (terminated, until the postmaster restarts it), is 'none' again.
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import psycopg2

from test_auto_retrain import bindir, free_port


class Cluster:
    """A throw-away PostgreSQL cluster, pg_ml preloaded or not."""

    def __init__(self, preload):
        self.dir = tempfile.mkdtemp(prefix="pgml_runner_")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.run(["initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = ''\nunix_socket_directories = '{self.dir}'\n"
                    "fsync = off\nmax_worker_processes = 16\n")
            if preload:
                f.write("shared_preload_libraries = 'pg_ml'\npg_ml.worker_naptime = 1\n")
        self.run(["pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start"])

    def run(self, argv):
        cmd = [os.path.join(bindir(), argv[0])] + argv[1:]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.dir)

    def connect(self, dbname="postgres"):
        conn = psycopg2.connect(host=self.dir, port=self.port, user="postgres", dbname=dbname)
        conn.autocommit = True
        return conn

    def stop(self):
        try:
            self.run(["pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class RunnerCase(unittest.TestCase):
    PRELOAD = None

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(cls.PRELOAD)
        c = cls.cluster.connect()
        with c.cursor() as cur:
            cur.execute("CREATE DATABASE runner")
        c.close()
        cls.conn = cls.cluster.connect("runner")
        cls.q("CREATE EXTENSION pg_ml")
        cls.q("CREATE TABLE pts (x float8, y float8)")
        cls.q("INSERT INTO pts SELECT i, 2 * i + 1 + (i % 3) FROM generate_series(1, 100) i")
        cls.q("SELECT * FROM ml_train('pts', 'y', algorithm => 'linear_regression', name => 'line')")

    @classmethod
    def tearDownClass(cls):
        cls.conn.close()
        cls.cluster.stop()

    @classmethod
    def q(cls, query, params=None):
        with cls.conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else None

    def auto_retrain(self, min_rows=10):
        """ml_auto_retrain on pts; returns the NOTICEs it raised."""
        del self.conn.notices[:]
        self.q("SELECT ml_auto_retrain('line', 'pts', %s, 'refit')", (min_rows,))
        notices = [n for n in self.conn.notices if "background worker" in n]
        del self.conn.notices[:]
        return notices

    def runner(self):
        return self.q("SELECT job_runner FROM ml_auto_retrains WHERE model = 'line'")[0][0]

    def tearDown(self):
        self.q("SELECT ml_auto_retrain('line', NULL)")


class WithoutPreloadTest(RunnerCase):
    PRELOAD = False

    def test_notice_and_views_say_nothing_runs_the_jobs(self):
        self.q("UPDATE ml.job_runners SET last_run = NULL")
        notices = self.auto_retrain()
        self.assertEqual(len(notices), 1, notices)
        n = notices[0]
        self.assertIn('no background worker runs the auto-retrain jobs of model "line"', n)
        self.assertIn("not in shared_preload_libraries", n)
        self.assertIn("wait in ml_jobs until ml_run_jobs() runs them", n)
        self.assertIn("Add pg_ml to shared_preload_libraries", n)
        self.assertIn("SELECT ml_run_jobs() on a schedule", n)
        self.assertEqual(self.runner(), "none")
        self.assertEqual(self.q("SELECT ml.job_runner()")[0][0], "none")

        # a queued job: nothing runs it (the launcher does not exist), and ml_jobs says so
        self.q("INSERT INTO pts SELECT i, 2 * i + 1 FROM generate_series(101, 120) i")
        self.assertEqual(self.q("SELECT status, job_runner FROM ml_jobs WHERE model = 'line'"), [("queued", "none")])

        # ml_run_jobs() ran: it is the runner now (for a day), the job succeeded
        self.assertEqual([r[0] for r in self.q("SELECT status FROM ml_run_jobs()")], ["succeeded"])
        self.assertEqual(self.runner(), "ml_run_jobs")
        self.assertEqual(self.q("SELECT status, job_runner FROM ml_jobs WHERE model = 'line'"), [("succeeded", None)])
        notices = self.auto_retrain()
        self.assertEqual(len(notices), 1, notices)
        self.assertIn("Its jobs run when ml_run_jobs() runs (it last ran at", notices[0])
        # two days ago is not "recently"
        self.q("UPDATE ml.job_runners SET last_run = now() - interval '2 days'")
        self.assertEqual(self.runner(), "none")
        self.q("DELETE FROM ml.jobs")

    def test_any_role_reads_the_views(self):
        self.q("SELECT ml_auto_retrain('line', 'pts', 10, 'refit')")
        self.q("DROP ROLE IF EXISTS reader")
        self.q("CREATE ROLE reader")
        self.q("SELECT ml_grant('line', 'reader')")
        try:
            self.q("SET ROLE reader")
            self.assertIn(self.q("SELECT job_runner FROM ml_auto_retrains")[0][0], ("none", "ml_run_jobs"))
        finally:
            self.q("RESET ROLE")
            self.q("SELECT ml_revoke('line', 'reader')")
            self.q("DROP ROLE reader")


class WithPreloadTest(RunnerCase):
    PRELOAD = True

    def launcher_pids(self):
        return [r[0] for r in self.q("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ml launcher'")]

    def wait_for(self, cond, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if cond():
                return True
            time.sleep(0.2)
        return False

    def test_worker_runs_the_jobs(self):
        self.assertTrue(self.wait_for(lambda: self.launcher_pids()), "the launcher did not start")
        self.assertEqual(self.auto_retrain(), [])
        self.assertEqual(self.runner(), "worker")

    def test_worker_disabled_for_the_database(self):
        self.q("ALTER DATABASE runner SET pg_ml.worker_enabled = off")
        try:
            notices = self.auto_retrain()
            self.assertEqual(len(notices), 1, notices)
            self.assertIn("pg_ml.worker_enabled is off for this database", notices[0])
            self.assertIn("RESET pg_ml.worker_enabled", notices[0])
            self.assertIn(self.runner(), ("none", "ml_run_jobs"))
        finally:
            self.q("ALTER DATABASE runner RESET pg_ml.worker_enabled")
        self.assertEqual(self.runner(), "worker")

    def test_launcher_gone(self):
        self.assertTrue(self.wait_for(lambda: self.launcher_pids()), "the launcher did not start")
        self.q("UPDATE ml.job_runners SET last_run = NULL")
        self.auto_retrain(1000)
        pid = self.launcher_pids()[0]
        self.q("SELECT pg_terminate_backend(%s)", (pid,))
        self.assertTrue(self.wait_for(lambda: pid not in self.launcher_pids(), 10))
        # (the postmaster restarts it bgw_restart_time = 5 s later: look before that)
        if not self.launcher_pids():
            self.assertEqual(self.runner(), "none")
            self.assertIn("its background worker (pg_ml launcher) is not running", "".join(self.auto_retrain(1000)))
        self.assertTrue(self.wait_for(lambda: self.launcher_pids(), 30), "the launcher was not restarted")
        self.assertEqual(self.runner(), "worker")


if __name__ == "__main__":
    unittest.main()
