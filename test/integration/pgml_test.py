"""Shared helpers of pg_ml's integration tests (Python unittest + psycopg2).

The tests connect through the standard libpq environment (PGHOST, PGPORT, PGUSER,
PGPASSWORD, PGDATABASE), which Debian's pg_virtualenv sets for its throw-away cluster
(scripts/test.sh). They work in their own database, PGML_TEST_DB (default
pgml_integration), created with CREATE EXTENSION pg_ml on first use; every test uses
unique names for what it creates and removes it afterwards.

Datasets come from scripts/load_datasets.py (the data files of Debian's python3-sklearn),
so the tables and the scikit-learn oracle see the very same numbers.
"""
import importlib.util
import io
import os
import unittest
import uuid

import psycopg2
import psycopg2.errors
import psycopg2.extras
from psycopg2 import sql

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEST_DB = os.environ.get("PGML_TEST_DB", "pgml_integration")

_spec = importlib.util.spec_from_file_location("load_datasets", os.path.join(ROOT, "scripts", "load_datasets.py"))
load_datasets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load_datasets)

_ready = set()


def unique(prefix="t"):
    """A fresh lower-case identifier, unique per call."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def maintenance_connect():
    """Autocommit connection to the environment's own database (for CREATE / DROP DATABASE)."""
    conn = psycopg2.connect(dbname=os.environ.get("PGDATABASE", "postgres"))
    conn.autocommit = True
    return conn


def create_database(dbname, extension=True):
    conn = maintenance_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    finally:
        conn.close()
    if extension:
        c = psycopg2.connect(dbname=dbname)
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("CREATE EXTENSION pg_ml")
        c.close()


def drop_database(dbname):
    conn = maintenance_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
    finally:
        conn.close()


def ensure_test_database():
    if TEST_DB in _ready:
        return
    conn = maintenance_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEST_DB,))
            exists = cur.fetchone() is not None
            if not exists:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEST_DB)))
    finally:
        conn.close()
    c = psycopg2.connect(dbname=TEST_DB)
    c.autocommit = True
    with c.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_ml'")
        if cur.fetchone() is None:
            cur.execute("CREATE EXTENSION pg_ml")
    c.close()
    _ready.add(TEST_DB)


def connect(dbname=None, autocommit=True, **kwargs):
    """A psycopg2 connection to the test database (or dbname), autocommit by default.

    Other keyword arguments (user, password, options, ...) go to psycopg2.connect; the rest
    of the connection comes from the libpq environment.
    """
    if dbname is None:
        ensure_test_database()
        dbname = TEST_DB
    conn = psycopg2.connect(dbname=dbname, **kwargs)
    conn.autocommit = autocommit
    return conn


def dataset(name):
    """(columns, rows) of a dataset as load_datasets.py makes it.

    columns: [("id", "integer"), (feature, sqltype), ..., (target, sqltype)]
    rows: lists of strings, the first item the row id (file order).
    """
    _, cols, rows = getattr(load_datasets, name)()
    columns = [("id", "integer")] + [tuple(c.split(" ", 1)) for c in cols]
    return columns, [[str(i)] + list(r) for i, r in enumerate(rows)]


def create_table(cur, table, columns, rows, unlogged=False):
    """Creates `table` with `columns` [(name, sqltype)] and COPYs `rows` (values as text, None = NULL)."""
    cur.execute(
        sql.SQL("CREATE {}TABLE {} ({})").format(
            sql.SQL("UNLOGGED " if unlogged else ""),
            sql.Identifier(table),
            sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in columns),
        )
    )
    buf = io.StringIO()
    for r in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in r))
        buf.write("\n")
    buf.seek(0)
    cur.copy_expert(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table)).as_string(cur), buf)


def drop_model_quietly(conn, model):
    """Drops a model if it exists (as the connection's role); used in cleanups."""
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM ml_models WHERE name = %s", (model,))
            if cur.fetchone():
                cur.execute("SELECT ml_drop_model(%s)", (model,))
    except psycopg2.Error:
        pass


class PgmlTestCase(unittest.TestCase):
    """Opens self.conn (autocommit) to the test database; helpers register their own cleanup."""

    def setUp(self):
        self.conn = connect()
        self.addCleanup(self.conn.close)

    def cursor(self, conn=None):
        return (conn or self.conn).cursor(cursor_factory=psycopg2.extras.RealDictCursor)

    def table(self, columns, rows, prefix="t", name=None, unlogged=False):
        """A new table (dropped after the test) holding rows; returns its name."""
        name = name or unique(prefix)
        with self.conn.cursor() as cur:
            create_table(cur, name, columns, rows, unlogged=unlogged)
        self.addCleanup(self._drop_table, name)
        return name

    def _drop_table(self, name):
        c = connect()
        try:
            with c.cursor() as cur:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        finally:
            c.close()

    def model_name(self, prefix="m"):
        """A fresh model name, dropped after the test if it was created."""
        name = unique(prefix)
        self.addCleanup(self._drop_model, name)
        return name

    def _drop_model(self, name):
        c = connect()
        try:
            drop_model_quietly(c, name)
        finally:
            c.close()

    def one(self, query, params=None, conn=None):
        """The single row of a query, as a dict."""
        with self.cursor(conn) as cur:
            cur.execute(query, params)
            rows = cur.fetchall()
        self.assertEqual(len(rows), 1, f"expected one row from {query!r}, got {len(rows)}")
        return rows[0]

    def all(self, query, params=None, conn=None):
        with self.cursor(conn) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def scalar(self, query, params=None, conn=None):
        with (conn or self.conn).cursor() as cur:
            cur.execute(query, params)
            return cur.fetchone()[0]

    def assertSqlError(self, sqlstate, query, params=None, conn=None, message=None):
        """Runs query and asserts it fails with sqlstate; returns the error."""
        conn = conn or self.conn
        with self.assertRaises(psycopg2.Error, msg=message or query) as cm:
            with conn.cursor() as cur:
                cur.execute(query, params)
        self.assertEqual(cm.exception.pgcode, sqlstate,
                         f"{query!r}: expected SQLSTATE {sqlstate}, got {cm.exception.pgcode}: {cm.exception}")
        if not conn.autocommit:
            conn.rollback()
        return cm.exception


def rel_close(a, b, rel, abs_floor=1e-12):
    """|a - b| <= rel * max(|a|, |b|, abs_floor)."""
    return abs(a - b) <= rel * max(abs(a), abs(b), abs_floor)


def check_cancelled(test, thread, out, cancelled_at, name, where, prompt=1.0):
    """After pg_cancel_backend at cancelled_at: the training thread ends (out["error"] a
    QueryCanceled, out["ended"] its time) within `prompt` seconds, and model `name` does not exist."""
    thread.join(30)
    test.assertFalse(thread.is_alive(), "ml_train is still running 30 s after pg_cancel_backend")
    took = out["ended"] - cancelled_at
    print(f"\n  [cancel] {where}: stopped {took:.3f} s after pg_cancel_backend", flush=True)
    test.assertIsInstance(out.get("error"), psycopg2.errors.QueryCanceled, repr(out))
    test.assertLessEqual(took, prompt)
    with test.conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM ml_models WHERE name = %s", (name,))
        test.assertEqual(cur.fetchone()[0], 0)
    test.conn.commit()
