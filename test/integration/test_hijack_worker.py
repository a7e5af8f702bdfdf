"""Overload capture through the background worker (issue 10, finding 1).

test/sql/hijack.sql covers what a superuser runs by hand (ml_train, ml_retrain, ml_run_jobs ...);
this covers the job the background worker runs for a superuser-owned model with no human
action. In a throw-away cluster (test_auto_retrain.Cluster: pg_ml preloaded, worker naptime 1 s),
a database whose search_path puts an attacker's schema first and pg_catalog last, and whose
public schema anyone can write: the attacker plants exact-typed overloads of the 0.2.0 internal
aggregate, lookalikes of the 0.3.0 ones and of pg_catalog's count(*), = and float8, each counting
in a sequence (a stand-in for COPY ... TO PROGRAM that a failing statement does not roll back).
New rows queue an auto-retrain job; the worker runs it to a new version through the aggregate,
and nothing planted ran.
"""
import time
import unittest

from test_auto_retrain import Cluster

DB = "hijack_worker"

PLANT = r"""
CREATE FUNCTION public.hj_pwn() RETURNS integer LANGUAGE sql VOLATILE
    AS $$ SELECT pg_catalog.nextval('public.hj_captures')::integer $$;
CREATE FUNCTION public.ml_train_stats(float8[], float8, VARIADIC float8[]) RETURNS float8[] LANGUAGE sql
    AS $$ SELECT CASE WHEN public.hj_pwn() IS NOT NULL THEN $1 END $$;
CREATE FUNCTION public.train_stats(float8[], float8, text, float8[], text[]) RETURNS float8[] LANGUAGE sql
    AS $$ SELECT CASE WHEN public.hj_pwn() IS NOT NULL THEN $1 END $$;
CREATE FUNCTION hj_evil.train_stats(float8[], float8, text, float8[], text[]) RETURNS float8[] LANGUAGE sql
    AS $$ SELECT CASE WHEN public.hj_pwn() IS NOT NULL THEN $1 END $$;
CREATE FUNCTION hj_evil.hj_count_sf(bigint) RETURNS bigint LANGUAGE sql
    AS $$ SELECT $1 OPERATOR(pg_catalog.+) 1 WHERE public.hj_pwn() IS NOT NULL $$;
CREATE AGGREGATE hj_evil.count(*) (SFUNC = hj_evil.hj_count_sf, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION hj_evil.hj_eq(float8, float8) RETURNS boolean LANGUAGE sql
    AS $$ SELECT $1 OPERATOR(pg_catalog.=) $2 AND public.hj_pwn() IS NOT NULL $$;
CREATE OPERATOR hj_evil.= (LEFTARG = float8, RIGHTARG = float8, FUNCTION = hj_evil.hj_eq);
CREATE FUNCTION hj_evil.hj_eq(bigint, bigint) RETURNS boolean LANGUAGE sql
    AS $$ SELECT $1 OPERATOR(pg_catalog.=) $2 AND public.hj_pwn() IS NOT NULL $$;
CREATE OPERATOR hj_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = hj_evil.hj_eq);
CREATE DOMAIN hj_evil.float8 AS pg_catalog.float8 CHECK (public.hj_pwn() IS NOT NULL);
"""


class WorkerHijackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster()
        c = cls.cluster.connect()
        with c.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DB}")
            # before anything connects to it: every new session, the worker's included
            cur.execute(f"ALTER DATABASE {DB} SET search_path = hj_evil, public, pg_catalog")
        c.close()
        cls.conn = cls.cluster.connect(DB)
        cls.q('SET search_path = "$user", public')
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
    def q(cls, query, params=None):
        with cls.conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else None

    def test_worker_job_runs_nothing_planted(self):
        # a superuser's model with auto-retrain, before anything is planted
        self.q("CREATE TABLE hj_t (id int, x1 float8, x2 float8, y float8)")
        self.q("INSERT INTO hj_t SELECT i, i % 7, (i * 3) % 11, 2 * (i % 7) - (i * 3) % 11 FROM generate_series(1, 300) i")
        self.q("SELECT model FROM ml_train('hj_t', 'y', 'linear_regression', name => 'hj_m', exclude => ARRAY['id'])")
        self.q("SELECT ml_auto_retrain('hj_m', 'hj_t', 100, 'refit')")
        self.q("GRANT CREATE ON SCHEMA public TO PUBLIC")
        self.q("CREATE ROLE hj_mallory")
        self.q("CREATE SCHEMA hj_evil AUTHORIZATION hj_mallory")
        self.q("CREATE SEQUENCE public.hj_captures")
        self.q("GRANT USAGE ON SEQUENCE public.hj_captures TO PUBLIC")
        self.q("SET ROLE hj_mallory")
        self.q(PLANT)
        self.q("RESET ROLE")
        # the traps are live for a session that takes the database's search_path
        other = self.cluster.connect(DB)
        with other.cursor() as cur:
            cur.execute("SHOW search_path")
            self.assertEqual(cur.fetchone()[0], "hj_evil, public, pg_catalog")
            cur.execute("SELECT count(*) FROM (VALUES (1), (2)) v(x)")
            self.assertEqual(cur.fetchone()[0], 2)
        other.close()
        self.assertEqual(self.q("SELECT pg_sequence_last_value('public.hj_captures')")[0][0], 2)
        self.q("SELECT pg_catalog.setval('public.hj_captures', 1, false)")

        # new rows queue a job, which the worker runs with no one else doing anything
        self.q(f"ALTER DATABASE {DB} SET pg_ml.worker_enabled = on")
        self.q("INSERT INTO hj_t SELECT i, i % 7, (i * 3) % 11, 2 * (i % 7) - (i * 3) % 11 FROM generate_series(301, 450) i")

        deadline = time.time() + 120
        while True:
            jobs = self.q("SELECT status, runner, version, error FROM ml_jobs WHERE model = 'hj_m'")
            if jobs and all(j[0] in ("succeeded", "failed") for j in jobs):
                break
            if self.q("SELECT pg_sequence_last_value('public.hj_captures')")[0][0] is not None:
                break  # captured (a failed job is retried later: no need to wait for that)
            if time.time() > deadline:
                self.fail(f"timed out waiting for the worker: {jobs}")
            time.sleep(0.2)
        self.assertIsNone(self.q("SELECT pg_sequence_last_value('public.hj_captures')")[0][0],
                          f"the worker's job ran a function the attacker planted: {jobs}")
        self.assertEqual(jobs, [("succeeded", "worker", 2, None)])
        self.assertEqual(self.q("SELECT report->>'reader', rows_train + rows_test FROM ml_versions "
                                "WHERE model = 'hj_m' AND version = 2"), [("aggregate", 450)])


if __name__ == "__main__":
    unittest.main()
