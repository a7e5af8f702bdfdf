"""Library and SQL objects of different versions refuse each other cleanly.

A server keeps running the library it loaded (shared_preload_libraries) until it restarts, and
`make install` does not update the databases: for a while the SQL objects and the library can be
of different versions. This test runs its own server on a copy of the PostgreSQL installation
whose pg_ml.so is the previous release's library (PGML_OLD_LIBRARY, built from git by
scripts/test.sh) and whose extension directory has the current scripts:
  - CREATE EXTENSION pg_ml (the current version) and ALTER EXTENSION pg_ml UPDATE fail with
    55000 and a hint, and change nothing: the old version's models keep predicting;
  - after the new library is installed, a server that has not restarted still refuses;
  - after the restart, the new library refuses the old objects until ALTER EXTENSION UPDATE,
    which then works, and the model predicts as before.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import psycopg2

OLD_LIBRARY = os.environ.get("PGML_OLD_LIBRARY", "")
OLD_VERSION = os.environ.get("PGML_OLD_VERSION", "0.2.0")
PG_CONFIG = os.environ.get("PG_CONFIG", "/usr/lib/postgresql/15/bin/pg_config")


def pg_config(flag):
    return subprocess.run([PG_CONFIG, flag], check=True, capture_output=True, text=True).stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(OLD_LIBRARY, "PGML_OLD_LIBRARY is not set (scripts/test.sh builds the previous release)")
class OldLibraryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pgml_oldlib_")
        os.chmod(cls.tmp, 0o755)
        bindir, libdir, sharedir = pg_config("--bindir"), pg_config("--pkglibdir"), pg_config("--sharedir")
        # a relocated copy: PostgreSQL finds lib/ and share/ relative to its binaries
        cls.root = os.path.join(cls.tmp, "root")
        for d in (os.path.dirname(bindir), sharedir):
            shutil.copytree(d, cls.root + d, symlinks=True)
        if libdir != os.path.join(os.path.dirname(bindir), "lib"):
            shutil.copytree(libdir, cls.root + libdir, symlinks=True, dirs_exist_ok=True)
        cls.bin = cls.root + bindir
        cls.lib = cls.root + libdir
        cls.new_library = os.path.join(cls.tmp, "pg_ml.so.new")
        shutil.copy2(os.path.join(libdir, "pg_ml.so"), cls.new_library)
        cls.install_library(OLD_LIBRARY)
        cls.data = os.path.join(cls.tmp, "data")
        cls.sock = os.path.join(cls.tmp, "sock")
        os.mkdir(cls.sock)
        cls.port = free_port()
        cls.as_user = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if cls.as_user:
            subprocess.run(["chown", "-R", "postgres", cls.tmp], check=True)
        subprocess.run(cls.as_user + [os.path.join(cls.bin, "initdb"), "-D", cls.data, "-A", "trust",
                                      "-U", "postgres", "--no-sync"], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(cls.data, "postgresql.conf"), "a") as f:
            f.write(f"port = {cls.port}\nlisten_addresses = ''\nunix_socket_directories = '{cls.sock}'\n"
                    "shared_preload_libraries = 'pg_ml'\nfsync = off\n")
        cls.pg_ctl("start")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def pg_ctl(cls, *args):
        subprocess.run(cls.as_user + [os.path.join(cls.bin, "pg_ctl"), "-D", cls.data, "-w",
                                      "-l", os.path.join(cls.tmp, "log"), *args],
                       check=True, stdout=subprocess.DEVNULL)

    @classmethod
    def install_library(cls, path):
        # as `make install` does it: a new file replaces the old one (the running server keeps
        # the old one mapped)
        tmp = os.path.join(cls.lib, "pg_ml.so.tmp")
        shutil.copy2(path, tmp)
        os.chmod(tmp, 0o755)
        os.rename(tmp, os.path.join(cls.lib, "pg_ml.so"))

    def connect(self, dbname="postgres"):
        conn = psycopg2.connect(host=self.sock, port=self.port, user="postgres", dbname=dbname)
        conn.autocommit = True
        return conn

    def scalar(self, conn, query):
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchone()[0]

    def assert_refused(self, conn, statement, message):
        with self.assertRaises(psycopg2.Error) as err:
            with conn.cursor() as cur:
                cur.execute(statement)
        self.assertEqual(err.exception.pgcode, "55000", err.exception.pgerror)
        self.assertIn(message, err.exception.diag.message_primary)
        self.assertTrue(err.exception.diag.message_hint, "no hint")
        return err.exception

    def test_versions_refuse_each_other(self):
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE pgml_old")
        conn.close()
        conn = self.connect("pgml_old")
        # the current objects with the old library: refused, nothing created
        current = self.scalar(conn, "SELECT default_version FROM pg_available_extensions WHERE name = 'pg_ml'")
        self.assertNotEqual(current, OLD_VERSION)
        err = self.assert_refused(conn, "CREATE EXTENSION pg_ml", "needs the pg_ml " + current + " library")
        self.assertIn("restart", err.diag.message_hint)
        self.assertEqual(self.scalar(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_ml'"), 0)
        self.assertEqual(self.scalar(conn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'ml'"), 0)

        # the old version works with its library
        with conn.cursor() as cur:
            cur.execute(f"CREATE EXTENSION pg_ml VERSION '{OLD_VERSION}'")
            cur.execute("CREATE TABLE pts AS SELECT i::float8 AS x, (2 * i + 1)::float8 AS y "
                        "FROM generate_series(1, 100) i")
            cur.execute("SELECT version FROM ml_train('pts', 'y', 'linear_regression', name => 'line')")
        before = self.scalar(conn, "SELECT ml_predict('line', ARRAY[10.0])")
        self.assertAlmostEqual(before, 21.0, places=6)

        # updating the objects under the old library: refused, rolled back
        self.assert_refused(conn, "ALTER EXTENSION pg_ml UPDATE", "needs the pg_ml " + current + " library")
        self.assertEqual(self.scalar(conn, "SELECT extversion FROM pg_extension WHERE extname = 'pg_ml'"),
                         OLD_VERSION)
        self.assertAlmostEqual(self.scalar(conn, "SELECT ml_predict('line', ARRAY[10.0])"), before, places=12)
        conn.close()

        # `make install` of the new library without a restart: the preloaded old one still runs
        self.install_library(self.new_library)
        conn = self.connect("pgml_old")
        self.assert_refused(conn, "ALTER EXTENSION pg_ml UPDATE", "needs the pg_ml " + current + " library")
        self.assertAlmostEqual(self.scalar(conn, "SELECT ml_predict('line', ARRAY[10.0])"), before, places=12)
        conn.close()

        # after the restart the new library refuses the old objects until they are updated
        self.pg_ctl("restart")
        conn = self.connect("pgml_old")
        err = self.assert_refused(conn, "SELECT ml_predict('line', ARRAY[10.0])", "older than its library")
        self.assertIn("ALTER EXTENSION pg_ml UPDATE", err.diag.message_hint)
        self.assert_refused(conn, "SELECT * FROM ml_train('pts', 'y', 'linear_regression', name => 'line2')",
                            "older than its library")
        with conn.cursor() as cur:
            cur.execute("ALTER EXTENSION pg_ml UPDATE")
        conn.close()
        conn = self.connect("pgml_old")
        self.assertEqual(self.scalar(conn, "SELECT extversion FROM pg_extension WHERE extname = 'pg_ml'"), current)
        self.assertEqual(self.scalar(conn, "SELECT ml.library_version()"), current)
        self.assertAlmostEqual(self.scalar(conn, "SELECT ml_predict('line', ARRAY[10.0])"), before, places=12)
        with conn.cursor() as cur:
            cur.execute("SELECT version FROM ml_retrain('line', 'pts', mode => 'refit', deploy => 'always')")
            self.assertEqual(cur.fetchone()[0], 2)
        conn.close()


if __name__ == "__main__":
    unittest.main()
