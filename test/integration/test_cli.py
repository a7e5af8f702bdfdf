"""The pg_ml command-line client against the live server: retrain from a CSV file (the
confirmation; a bad line named and nothing written), predict a CSV file (one COPY, one
ml_predict_batch, --proba), models / versions / deploy / rollback / jobs, psql's connection options
and libpq's environment, connection failures with libpq's message, train's ml_train options,
--null / --delimiter, -q, usage and exit codes.

The binary is $PGML_CLI, else build/pg_ml (scripts/test.sh builds it with CMake)."""
import csv
import io
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import psycopg2
from psycopg2 import sql

from pgml_test import ROOT, TEST_DB, PgmlTestCase, connect, ensure_test_database, unique

CLI = os.environ.get("PGML_CLI") or os.path.join(ROOT, "build", "pg_ml")


def run_cli(*args, env=None, dbname=TEST_DB):
    """Runs the client; returns (exit code, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    cmd = [CLI] + (["-d", dbname] if dbname else []) + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=300)
    return p.returncode, p.stdout, p.stderr


def run_tty(*args, env=None, answer=None, dbname=TEST_DB):
    """Runs the client on a pseudo-terminal (its controlling terminal); types `answer` (bytes) when
    it asks for a password. Returns (exit code, everything it wrote)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    argv = [CLI] + (["-d", dbname] if dbname else []) + list(args)
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(CLI, argv, full_env)
        finally:
            os._exit(127)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 120)
            if not ready:
                os.kill(pid, 9)
                break
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
            if answer is not None and b"Password for user" in out:
                os.write(fd, answer)
                answer = None
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


class CliTestCase(PgmlTestCase):
    @classmethod
    def setUpClass(cls):
        if not (os.path.isfile(CLI) and os.access(CLI, os.X_OK)):
            raise AssertionError(f"the pg_ml client is not built: {CLI} (cmake -S . -B build && cmake --build build, "
                                 "or set PGML_CLI)")
        ensure_test_database()

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="pgml_cli_")
        self.addCleanup(shutil.rmtree, self.dir)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w", newline="") as f:
            f.write(text)
        return path

    def regression_model(self):
        """A linear model on (x integer, z float8, kind text) -> y float8; returns (model, table)."""
        tab = self.table([("x", "integer"), ("z", "double precision"), ("kind", "text"), ("y", "double precision")],
                         [[i, (i % 7) / 7, "abc"[i % 3], 2 * i + 3 * ((i % 7) / 7) + (5 if i % 3 == 1 else 0)]
                          for i in range(1, 301)], prefix="cli")
        name = self.model_name("cli_m")
        self.scalar("SELECT version FROM ml_train(%s, 'y', algorithm => 'linear_regression', name => %s)", (tab, name))
        return name, tab

    def versions(self, model):
        return [r["version"] for r in self.all("SELECT version FROM ml_versions WHERE model = %s ORDER BY version",
                                               (model,))]

    def deployed(self, model):
        return self.scalar("SELECT deployed_version FROM ml_models WHERE name = %s", (model,))


class RetrainCsvTest(CliTestCase):
    def good_csv(self, rows=200, start=1000):
        # columns in another order than the model's, plus one the model does not use
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["kind", "comment", "y", "z", "x"])
        for i in range(start, start + rows):
            z = (i % 7) / 7
            w.writerow(["abc"[i % 3], f"row {i}", 2 * i + 3 * z + (5 if i % 3 == 1 else 0), z, i])
        return out.getvalue()

    def test_keep_table_for_refitting_algorithms(self):
        """A model that refits on every row it learned from (decision_tree) and CSV uploads: the
        staged rows are gone after one upload, so the next retrain refuses, naming them; with
        --keep TABLE the uploads accumulate in TABLE and every retrain refits on all of them."""
        _, tab = self.regression_model()
        model = self.model_name("cli_tree")
        self.scalar("SELECT version FROM ml_train(%s, 'y', algorithm => 'decision_tree', name => %s)", (tab, model))
        first = self.write("first.csv", self.good_csv(rows=50, start=1000))
        rc, out, err = run_cli("retrain", "--model", model, "--csv", first)
        self.assertEqual(rc, 0, err)
        self.assertIn("mode refit_all", out)
        self.assertRegex(out, r"Learned: refit_all: 350 rows of public\.\w+ and pg_temp_\d+\.pg_ml_staging_\d+")
        second = self.write("second.csv", self.good_csv(rows=40, start=2000))
        rc, out, err = run_cli("retrain", "--model", model, "--csv", second)
        self.assertEqual(rc, 4, out)
        self.assertRegex(err, r"pg_temp_\d+\.pg_ml_staging_\d+, which version 2 learned from, no longer exists")
        self.assertIn("mode => 'refit'", err)
        self.assertEqual(self.versions(model), [1, 2])
        # --keep: the uploads are appended to a table the retrains read again
        keep = self.model_name("cli_uploads")
        self.addCleanup(self._drop_table, keep)
        rc, out, err = run_cli("retrain", "--model", model, "--csv", second, "--keep", keep, "--mode", "refit",
                               "--deploy", "always")
        self.assertEqual(rc, 0, err)
        self.assertIn(f"40 rows appended to {keep}", err)
        third = self.write("third.csv", self.good_csv(rows=30, start=3000))
        rc, out, err = run_cli("retrain", "--model", model, "--csv", third, "--keep", keep)
        self.assertEqual(rc, 0, err)
        self.assertIn(f"Learned: refit_all: 70 rows of public.{keep}", out)
        self.assertEqual(self.scalar(f'SELECT count(*) FROM "{keep}"'), 70)

    def test_same_csv_twice_is_refused(self):
        """An exact incremental model (linear_regression) and the same file uploaded twice: the
        second upload's rows are the rows the model learned (same data fingerprint): refused."""
        model, _ = self.regression_model()
        path = self.write("new.csv", self.good_csv(rows=60))
        rc, out, err = run_cli("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 0, err)
        self.assertIn("mode incremental", out)
        rc, out, err = run_cli("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 4, out)
        self.assertIn(f'model "{model}" has already learned the rows of', err)
        self.assertIn("Version 2 read the same 60 rows", err)
        self.assertEqual(self.versions(model), [1, 2])

    def test_good_csv_creates_a_version(self):
        model, _ = self.regression_model()
        path = self.write("new.csv", self.good_csv())
        rc, out, err = run_cli("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 0, err)
        model_id = self.scalar("SELECT id FROM ml_models WHERE name = %s", (model,))
        self.assertIn(f'Model "{model}" (id {model_id}): new version 2 (parent version 1)', out)
        self.assertRegex(out, r"Rows: \d+ for training, \d+ held out for testing")
        # metrics side by side: the new version and the previous one on the same rows
        self.assertRegex(out, r"metric\s+version 2\s+version 1")
        self.assertRegex(out, r"\n  r2\s+[-0-9.e]+\s+[-0-9.e]+\n")
        # no blank cell: every metric has a value for both versions
        table = re.split(r"metric\s+version 2\s+version 1\n", out, maxsplit=1)[1].split("Deployed:", 1)[0]
        for line in table.strip("\n").split("\n"):
            self.assertEqual(len(line.split()), 3, f"blank cell in {line!r}:\n{out}")
        self.assertRegex(out, r"Deployed: (yes|no) \(.+\)")
        self.assertIn("200 rows staged", err)
        self.assertIn('ignoring columns the model does not use: comment', err)
        self.assertEqual(self.versions(model), [1, 2])
        v = self.one("SELECT parent_version, mode, relation FROM ml_versions WHERE model = %s AND version = 2", (model,))
        self.assertEqual(v["parent_version"], 1)
        self.assertEqual(v["mode"], "incremental")  # linear: the new rows added to the stored statistics
        self.assertRegex(v["relation"], r"^pg_temp_\d+\.pg_ml_staging_\d+$")
        # progress lines (not a terminal: plain lines)
        self.assertRegex(err, r"pg_ml progress: " + re.escape(model) + r": reading, 0 rows")
        self.assertRegex(err, r"pg_ml progress: " + re.escape(model) + r": saving, 200 rows")
        # --mode refit --deploy never, and -q: no progress
        rc, out, err = run_cli("-q", "retrain", "--model", model, "--csv", path, "--mode", "refit", "--deploy", "never")
        self.assertEqual(rc, 0, err)
        self.assertIn("new version 3 (parent version 2)", out)
        self.assertRegex(out, r"Deployed: no \(deploy => 'never': not deployed; test r2 \S+ vs \S+ of version 2 ")
        self.assertNotIn("progress", err)
        self.assertEqual(self.deployed(model), 2)

    def test_progress_bar_on_a_terminal(self):
        model, _ = self.regression_model()
        path = self.write("new.csv", self.good_csv())
        rc, out = run_tty("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 0, out)
        # the bar is redrawn in place (carriage return, erase line); the total comes from COPY
        self.assertIn("\r\x1b[K", out)
        self.assertRegex(out, re.escape(model) + r"  \[\.{24}\]   0%  reading 0/200 rows  \d+\.\d s")
        self.assertRegex(out, re.escape(model) + r"  saving  200 rows  \d+\.\d s")
        self.assertNotIn("pg_ml progress:", out)
        self.assertIn("new version 2 (parent version 1)", out)
        self.assertEqual(self.versions(model), [1, 2])

    def test_bad_line_is_named_and_nothing_is_written(self):
        model, _ = self.regression_model()
        lines = self.good_csv(rows=10).splitlines()
        # line 8 of the file: x is not an integer
        fields = lines[7].split(",")
        fields[4] = "12x"
        lines[7] = ",".join(fields)
        path = self.write("bad.csv", "\n".join(lines) + "\n")
        rc, out, err = run_cli("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 3, err)
        self.assertIn(f'{path}:8: column x: invalid input syntax for type integer: "12x"', err)
        self.assertEqual(out, "")
        self.assertEqual(self.versions(model), [1])

    def test_line_numbers_count_quoted_newlines(self):
        model, _ = self.regression_model()
        text = ('x,z,kind,y\n'
                '1,0.5,"two\nlines",3\n'        # record 2 spans lines 2-3
                '2,0.25,b,4\n'
                '3,not a number,c,5\n')          # line 5 (record 4)
        path = self.write("quoted.csv", text)
        rc, _, err = run_cli("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 3, err)
        self.assertIn(f'{path}:5: column z: invalid input syntax for type double precision: "not a number"', err)
        self.assertEqual(self.versions(model), [1])

    def test_missing_columns_and_bad_files(self):
        model, _ = self.regression_model()
        path = self.write("missing.csv", "x,kind\n1,a\n")
        rc, _, err = run_cli("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 3)
        self.assertIn(f'{path}:1: the header lacks columns "z" (double precision), "y" (double precision) of model', err)
        path = self.write("short.csv", "x,z,kind,y\n1,0.5,a,3\n2,0.5\n")
        rc, _, err = run_cli("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 3)
        self.assertIn(f"{path}:3: ", err)
        self.assertIn('missing data for column "kind"', err)
        rc, _, err = run_cli("retrain", "--model", model, "--csv", os.path.join(self.dir, "nope.csv"))
        self.assertEqual(rc, 3)
        self.assertIn("No such file or directory", err)
        path = self.write("empty.csv", "")
        rc, _, err = run_cli("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 3)
        self.assertIn("the file is empty", err)
        path = self.write("header_only.csv", "x,z,kind,y\n")
        rc, _, err = run_cli("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 3)
        self.assertIn("no rows after the header", err)
        self.assertEqual(self.versions(model), [1])

    def test_server_errors(self):
        model, tab = self.regression_model()
        path = self.write("new.csv", self.good_csv(rows=20))
        rc, _, err = run_cli("retrain", "--model", unique("nope"), "--csv", path)
        self.assertEqual(rc, 4)
        self.assertRegex(err, r'pg_ml: error: model "nope_\w+" does not exist')
        rc, _, err = run_cli("retrain", "--model", model, "--csv", path, "--mode", "sideways")
        self.assertEqual(rc, 4)
        self.assertIn('pg_ml: error: unknown retrain mode "sideways"', err)
        self.assertIn("HINT:  Use 'auto', 'refit' or 'incremental'.", err)
        self.assertEqual(self.versions(model), [1])
        # --relation instead of a file
        rc, out, err = run_cli("retrain", "--model", model, "--relation", tab, "--mode", "refit")
        self.assertEqual(rc, 0, err)
        self.assertIn("new version 2 (parent version 1)", out)


class CommandsTest(CliTestCase):
    def test_train_models_versions_deploy_rollback(self):
        _, tab = self.regression_model()
        name = self.model_name("cli_t")
        rc, out, err = run_cli("train", "--relation", tab, "--target", "y", "--name", name, "--algorithm", "ridge",
                               "--hyperparams", '{"alpha": 0.5}')
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, rf'Trained model "{name}" \(id \d+\), version 1: regression by ridge')
        self.assertRegex(out, r"\n  r2\s+(0\.9|1\b)")
        self.assertEqual(self.scalar("SELECT hyperparams->>'alpha' FROM ml_versions WHERE model = %s", (name,)), "0.5")
        self.assertEqual(run_cli("retrain", "--model", name, "--relation", tab, "--mode", "refit", "--deploy", "always")[0], 0)
        rc, out, err = run_cli("models")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, rf"\n{name}\s+\d+\s+\S+\s+regression\s+ridge\s+2\s+r2 [01]\.\d{{4}}\s")
        rc, out, err = run_cli("versions", name)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"\n1\s+\s+ridge\s+train\s")
        self.assertRegex(out, r"\n2\s+1\s+\*\s+ridge\s+\w+\s")
        self.assertIn("(2 rows)", out)
        rc, out, err = run_cli("rollback", name)
        self.assertEqual(rc, 0, err)
        self.assertIn("version 1 is deployed", out)
        self.assertEqual(self.deployed(name), 1)
        rc, out, err = run_cli("deploy", name, "2")
        self.assertEqual(rc, 0, err)
        self.assertIn(f'Deployed version 2 of model "{name}" (version 1 was deployed before)', out)
        self.assertEqual(self.deployed(name), 2)
        # by id
        model_id = self.scalar("SELECT id FROM ml_models WHERE name = %s", (name,))
        self.assertEqual(run_cli("deploy", str(model_id), "1")[0], 0)
        self.assertEqual(self.deployed(name), 1)
        rc, _, err = run_cli("deploy", name, "9")
        self.assertEqual(rc, 4)
        self.assertIn(f'version 9 of model "{name}" does not exist', err)
        rc, _, err = run_cli("versions", unique("nope"))
        self.assertEqual(rc, 4)
        self.assertIn("does not exist", err)

    def test_training_metrics_are_labelled(self):
        """--test-size 0: the metrics printed, listed by models and versions, are said to be the training rows'."""
        _, tab = self.regression_model()
        name = self.model_name("cli_t0")
        rc, out, err = run_cli("train", "--relation", tab, "--target", "y", "--name", name, "--algorithm", "ridge",
                               "--test-size", "0")
        self.assertEqual(rc, 0, err)
        self.assertIn("0 held out for testing", out)
        self.assertIn("Metrics (training rows: test_size 0 held none out, so these are not test metrics):", out)
        rc, out, err = run_cli("models")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, rf"\n{name}\s+\d+\s+\S+\s+regression\s+ridge\s+1\s+r2 [01]\.\d{{4}} \(training rows\)")
        rc, out, err = run_cli("versions", name)
        self.assertEqual(rc, 0, err)
        self.assertIn("(training rows)", out)
        # with test rows: no such label
        other = self.model_name("cli_t1")
        rc, out, err = run_cli("train", "--relation", tab, "--target", "y", "--name", other, "--algorithm", "ridge")
        self.assertEqual(rc, 0, err)
        self.assertIn("Metrics (test rows):", out)
        self.assertNotIn("(training rows)", run_cli("versions", other)[1])

    def test_predict(self):
        model, _ = self.regression_model()
        text = "id,kind,x,z\n7,a,10,0.5\n8,b,20,0.25\n9,\"c\",30,\n"
        path = self.write("in.csv", text)
        out_path = os.path.join(self.dir, "out.csv")
        rc, out, err = run_cli("predict", "--model", model, "--csv", path, "--out", out_path)
        self.assertEqual(rc, 0, err)
        with open(out_path, newline="") as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0], ["id", "kind", "x", "z", "prediction"])
        self.assertEqual([r[:4] for r in rows[1:]], [["7", "a", "10", "0.5"], ["8", "b", "20", "0.25"], ["9", "c", "30", ""]])
        for r in rows[1:]:
            expect = self.scalar("SELECT ml_predict(%s, s) FROM (SELECT %s::int AS x, %s::float8 AS z, %s::text AS kind) s",
                                 (model, r[2], r[3] or None, r[1]))
            self.assertAlmostEqual(float(r[4]), expect, places=9)
        # to standard output; classification predicts the label
        tab = self.table([("a", "double precision"), ("label", "text")],
                         [[i, "big" if i > 50 else "small"] for i in range(100)], prefix="cli_c")
        cls = self.model_name("cli_c")
        self.scalar("SELECT version FROM ml_train(%s, 'label', name => %s)", (tab, cls))
        path = self.write("c.csv", "a\n3\n97\n")
        rc, out, err = run_cli("predict", "--model", cls, "--csv", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), ["a,prediction", "3,small", "97,big"])
        # a bad value: named, exit 3
        path = self.write("bad.csv", "a\n3\nx\n")
        rc, out, err = run_cli("predict", "--model", cls, "--csv", path)
        self.assertEqual(rc, 3)
        self.assertIn(f'{path}:3: column a: invalid input syntax for type double precision: "x"', err)

    def test_model_type_missing_here(self):
        # the staging table is typed only with types that exist (the names come from the model)
        typ, tab = unique("cli_mood"), unique("cli_e")
        name = self.model_name("cli_e")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE TYPE {} AS ENUM ('low', 'high')").format(sql.Identifier(typ)))
            cur.execute(sql.SQL("CREATE TABLE {} (m {}, y float8)").format(sql.Identifier(tab), sql.Identifier(typ)))
            cur.execute(sql.SQL("INSERT INTO {} SELECT (ARRAY['low','high'])[1 + i % 2]::{}, i % 2 * 10 + i % 3 "
                                "FROM generate_series(1, 60) i").format(sql.Identifier(tab), sql.Identifier(typ)))
            cur.execute("SELECT version FROM ml_train(%s, 'y', algorithm => 'linear_regression', name => %s)", (tab, name))
        path = self.write("e.csv", "m\nlow\nhigh\n")
        rc, out, err = run_cli("predict", "--model", name, "--csv", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(out.splitlines()), 3)
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(tab)))
            cur.execute(sql.SQL("DROP TYPE {}").format(sql.Identifier(typ)))
        rc, out, err = run_cli("predict", "--model", name, "--csv", path)
        self.assertEqual(rc, 4)
        self.assertIn(f'column "m" of model "{name}" has type "{typ}", which does not exist in this database', err)

    def test_jobs(self):
        rc, out, err = run_cli("jobs")
        if self.scalar("SELECT to_regclass('ml_jobs') IS NOT NULL"):
            self.assertEqual(rc, 0, err)
            self.assertRegex(out, r"\(\d+ rows?\)")
        else:
            self.assertEqual(rc, 4)
            self.assertIn("pg_ml: error: the server's pg_ml has no ml_jobs view", err)


class ConnectionAndUsageTest(CliTestCase):
    def test_wrong_password(self):
        role = unique("cli_pw")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'right-password'").format(sql.Identifier(role)))
        self.addCleanup(self._drop_role, role)
        conninfo = f"host=localhost dbname={TEST_DB} user={role}"
        env = {"PGPASSWORD": "wrong-password"}
        rc, out, err = run_cli("models", env=env, dbname=conninfo)
        self.assertEqual(rc, 2, err)
        self.assertIn(f'password authentication failed for user "{role}"', err)
        self.assertTrue(err.startswith("pg_ml: error: connection to server"), err)
        self.assertEqual(out, "")
        # the right password (from the environment, as libpq reads it) works
        rc, out, err = run_cli("models", env={"PGPASSWORD": "right-password"}, dbname=conninfo)
        self.assertEqual(rc, 0, err)
        # a URI, and no server at all
        rc, _, err = run_cli("models", env=env, dbname=f"postgresql://{role}:wrong-password@localhost/{TEST_DB}")
        self.assertEqual(rc, 2)
        self.assertIn("password authentication failed", err)
        rc, _, err = run_cli("models", dbname="host=/nonexistent/dir port=1")
        self.assertEqual(rc, 2)
        self.assertIn("/nonexistent/dir", err)

    def test_password_prompt_on_a_terminal(self):
        role = unique("cli_pw")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'right-password'").format(sql.Identifier(role)))
        self.addCleanup(self._drop_role, role)
        conninfo = f"host=localhost dbname={TEST_DB} user={role}"
        env = {"PGPASSWORD": "", "PGPASSFILE": os.path.join(self.dir, "no-pgpass")}
        rc, out = run_tty("models", env=env, dbname=conninfo, answer=b"right-password\n")
        self.assertEqual(rc, 0, out)
        self.assertIn(f"Password for user {role}: ", out)
        self.assertNotIn("right-password", out)  # not echoed
        self.assertRegex(out, r"\(\d+ rows?\)")
        rc, out = run_tty("models", env=env, dbname=conninfo, answer=b"wrong-password\n")
        self.assertEqual(rc, 2, out)
        self.assertIn(f'password authentication failed for user "{role}"', out)
        # no terminal: no prompt, libpq's message
        rc, _, err = run_cli("models", env=env, dbname=conninfo)
        self.assertEqual(rc, 2)
        self.assertIn("no password supplied", err)

    def _drop_role(self, role):
        c = connect()
        try:
            with c.cursor() as cur:
                cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        finally:
            c.close()

    def test_help_and_usage(self):
        for cmd in ["train", "retrain", "predict", "models", "versions", "deploy", "rollback", "jobs"]:
            rc, out, _ = run_cli("help", cmd, dbname=None)
            self.assertEqual(rc, 0)
            self.assertIn(f"pg_ml {cmd}", out)
            self.assertIn("Exit status:", out)
            rc2, out2, _ = run_cli(cmd, "--help", dbname=None)
            self.assertEqual((rc2, out2), (rc, out))
        rc, out, _ = run_cli("--help", dbname=None)
        self.assertEqual(rc, 0)
        self.assertIn("3  bad input file", out)
        rc, out, _ = run_cli("--version", dbname=None)
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^pg_ml \d+\.\d+\.\d+\n$")
        for args, message in [(["frobnicate"], 'unknown command "frobnicate"'),
                              (["retrain", "--csv", "x.csv"], "option --model is required"),
                              (["retrain", "--model", "m"], "give either --csv FILE or --relation REL"),
                              (["retrain", "--model"], "option --model needs a value"),
                              (["predict", "--bogus", "1"], "command predict has no option --bogus"),
                              (["deploy", "m"], "missing version"),
                              (["deploy", "m", "two"], 'version must be a number, not "two"'),
                              ([], "no command given")]:
            rc, out, err = run_cli(*args)
            self.assertEqual(rc, 1, args)
            self.assertIn(message, err)
            self.assertIn("Try \"pg_ml help", err)

    def test_database_without_extension(self):
        rc, _, err = run_cli("models", dbname="template1")
        self.assertEqual(rc, 4)
        self.assertIn('extension pg_ml is not installed in database "template1"', err)


def run_conn(*args, env=None, unset=()):
    """Runs the client with exactly these arguments (no -d added); env entries override, `unset`
    removes variables from the environment. Returns (exit code, stdout, stderr)."""
    full_env = {k: v for k, v in os.environ.items() if k not in unset}
    full_env.update(env or {})
    p = subprocess.run([CLI] + list(args), capture_output=True, text=True, env=full_env, timeout=300)
    return p.returncode, p.stdout, p.stderr


class PsqlConnectionFlagsTest(CliTestCase):
    """psql's connection options: -h/--host, -p/--port, -U/--username, -d/--dbname, -W, -w; libpq's
    environment for what is not given; -? and --help for help (-h is the host)."""

    def server(self):
        """The host the tests reach the server by (libpq's PGHOST when set: the CI cluster is on
        localhost with a password, its socket takes peer authentication only; else the socket
        directory), its port and the user."""
        host = os.environ.get("PGHOST") or \
            self.scalar("SELECT current_setting('unix_socket_directories')").split(",")[0].strip()
        return host, self.scalar("SELECT current_setting('port')"), self.scalar("SELECT current_user")

    def test_short_and_long_flags_instead_of_the_environment(self):
        sock, port, user = self.server()
        # the environment points nowhere: only the flags can reach the server
        bad = {"PGHOST": "/nonexistent/dir", "PGPORT": "1", "PGUSER": "no_such_role_here", "PGDATABASE": "nope"}
        for args in (["-h", sock, "-p", port, "-U", user, "-d", TEST_DB, "models"],
                     [f"-h{sock}", f"-p{port}", f"-U{user}", f"-d{TEST_DB}", "models"],
                     [f"--host={sock}", "--port", port, f"--username={user}", "--dbname", TEST_DB, "models"],
                     ["models", "-h", sock, "--port", port, "-U", user, "-d", TEST_DB]):  # after the command too
            rc, out, err = run_conn(*args, env=bad)
            self.assertEqual(rc, 0, f"{args}: {err}")
            self.assertRegex(out, r"\(\d+ rows?\)")
        # each flag is used: a wrong one alone fails, naming what it got
        good = ["-h", sock, "-p", port, "-U", user, "-d", TEST_DB]
        wrong_port = ".s.PGSQL.1" if sock.startswith("/") else "port 1 failed"  # a socket's name, or TCP's
        for i, wrong, message in [(1, "/nonexistent/dir2", "/nonexistent/dir2"), (3, "1", wrong_port),
                                  # 'role ... does not exist', or with password authentication (which
                                  # does not say whether a role exists) 'authentication failed for user'
                                  (5, "no_such_role_x", '"no_such_role_x"'),
                                  (7, "no_such_db_x", 'database "no_such_db_x" does not exist')]:
            args = list(good)
            args[i] = wrong
            rc, out, err = run_conn(*args, "models", env=bad)
            self.assertEqual(rc, 2, f"{args}: {err}")
            self.assertIn(message, err)
            self.assertEqual(out, "")

    def test_environment_still_honoured(self):
        sock, port, user = self.server()
        env = {"PGHOST": sock, "PGPORT": port, "PGUSER": user, "PGDATABASE": TEST_DB}
        rc, out, err = run_conn("models", env=env)
        self.assertEqual(rc, 0, err)
        rc, _, err = run_conn("models", env=dict(env, PGDATABASE="no_such_db_y"))
        self.assertEqual(rc, 2)
        self.assertIn('database "no_such_db_y" does not exist', err)
        # a flag wins over the environment; a conninfo string in -d wins over -h and -p, as in psql
        rc, _, err = run_conn("-d", TEST_DB, "models", env=dict(env, PGDATABASE="no_such_db_y"))
        self.assertEqual(rc, 0, err)
        rc, _, err = run_conn("-h", "/nonexistent/dir", "-p", "1", "-d", f"host={sock} port={port} dbname={TEST_DB}",
                              "models", env=env)
        self.assertEqual(rc, 0, err)
        rc, _, err = run_conn("-h", "/nonexistent/dir", "-d", f"postgresql:///{TEST_DB}?host={sock}&port={port}",
                              "models", env=env)
        self.assertEqual(rc, 0, err)

    def test_help_flags(self):
        rc, out, err = run_conn("--help")
        self.assertEqual(rc, 0, err)
        for section in ("Usage:\n  pg_ml [OPTION]... COMMAND", "Commands:", "Connection options",
                        "-h, --host=HOST", "-p, --port=PORT", "-U, --username=USER", "-d, --dbname=DB",
                        "-W, --password", "-q, --quiet", "-?, --help", "Environment:", "PGHOST", "PGPASSWORD",
                        "Exit status:", "Examples:\n  pg_ml -h "):
            self.assertIn(section, out)
        self.assertEqual(run_conn("-?"), (0, out, ""))
        # -h is the host: alone it needs a value, as in psql
        rc, out2, err = run_conn("-h")
        self.assertEqual(rc, 1)
        self.assertIn("option -h needs a value", err)
        for cmd in ("train", "predict", "retrain"):
            rc, text, err = run_conn(cmd, "--help")
            self.assertEqual(rc, 0, err)
            self.assertEqual(run_conn(cmd, "-?"), (0, text, ""))
            self.assertEqual(run_conn("-?", cmd), (0, text, ""))
            for section in (f"Usage:\n  pg_ml [CONNECTION] {cmd} ", "Options:", "-h, --host=HOST", "Environment:",
                            "Exit status:", f"Examples:\n  pg_ml "):
                self.assertIn(section, text)
        train = run_conn("train", "--help")[1]
        for flag in ("--features COLS", "--exclude COLS", "--preprocess JSON", "--hyperparams JSON", "--seed N",
                     "--test-size F"):
            self.assertIn(flag, train)
        predict = run_conn("predict", "--help")[1]
        for flag in ("--proba", "--null STRING", "--delimiter C"):
            self.assertIn(flag, predict)

    def _role_with_password(self):
        role = unique("cli_w")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'right-password'").format(sql.Identifier(role)))
        self.addCleanup(ConnectionAndUsageTest._drop_role, self, role)
        return role

    def test_W_prompts_before_connecting(self):
        role = self._role_with_password()
        # the environment's password is wrong: -W asks, and the typed one is used
        env = {"PGPASSWORD": "wrong-password", "PGPASSFILE": os.path.join(self.dir, "no-pgpass")}
        rc, out = run_tty("-h", "localhost", "-U", role, "-W", "models", env=env, dbname=TEST_DB,
                          answer=b"right-password\n")
        self.assertEqual(rc, 0, out)
        self.assertIn(f"Password for user {role}: ", out)
        self.assertNotIn("right-password", out)
        self.assertRegex(out, r"\(\d+ rows?\)")
        # without -W the environment's password is used, without asking
        rc, out = run_tty("-h", "localhost", "-U", role, "models", env=env, dbname=TEST_DB, answer=b"right-password\n")
        self.assertEqual(rc, 2, out)
        self.assertNotIn("Password for user", out)
        self.assertIn("password authentication failed", out)
        # --password, and -w: never ask, even on a terminal
        env = {"PGPASSWORD": "", "PGPASSFILE": os.path.join(self.dir, "no-pgpass")}
        rc, out = run_tty("--host=localhost", f"--username={role}", "--password", "models", env=env, dbname=TEST_DB,
                          answer=b"right-password\n")
        self.assertEqual(rc, 0, out)
        rc, out = run_tty("-h", "localhost", "-U", role, "-w", "models", env=env, dbname=TEST_DB,
                          answer=b"right-password\n")
        self.assertEqual(rc, 2, out)
        self.assertNotIn("Password for user", out)
        self.assertIn("no password supplied", out)
        # -W without a terminal: the prompt on standard error, the password from standard input (as psql)
        p = subprocess.run([CLI, "-h", "localhost", "-U", role, "-d", TEST_DB, "-W", "models"], input="right-password\n",
                           capture_output=True, text=True, start_new_session=True, timeout=60,
                           env=dict(os.environ, PGPASSWORD="wrong-password"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, f"Password for user {role}: ")


class TrainOptionsTest(CliTestCase):
    """train passes every ml_train argument, as bound parameters."""

    def base_table(self):
        return self.table([("id", "integer"), ("x", "integer"), ("z", "double precision"), ('we"ird', "double precision"),
                           ("kind", "text"), ("y", "double precision")],
                          [[i, i, (i % 7) / 7, (i % 5) if i % 11 else None, "abc"[i % 3],
                            2 * i + 3 * ((i % 7) / 7) + (5 if i % 3 == 1 else 0)] for i in range(1, 301)],
                          prefix="cli_tr")

    def features(self, model):
        return [r["name"] for r in self.all("SELECT name FROM ml_model_columns(%s) WHERE role = 'feature' "
                                            "ORDER BY ordinal", (model,))]

    def train(self, *args):
        rc, out, err = run_cli("train", *args)
        self.assertEqual(rc, 0, err)
        return out

    def test_features_exclude(self):
        tab = self.base_table()
        m1, m2, m3 = self.model_name("cli_f"), self.model_name("cli_e"), self.model_name("cli_q")
        self.train("--relation", tab, "--target", "y", "--name", m1, "--algorithm", "ridge", "--features", "x, z")
        self.assertEqual(self.features(m1), ["x", "z"])
        # repeated, and a name with a double quote (passed in a text[] parameter, not in SQL)
        self.train("--relation", tab, "--target", "y", "--name", m3, "--algorithm", "ridge", "--features", "x",
                   "--features", 'we"ird', "--preprocess", '{"nulls": "impute"}')
        self.assertEqual(self.features(m3), ["x", 'we"ird'])
        self.train("--relation", tab, "--target", "y", "--name", m2, "--algorithm", "ridge", "--exclude", "id,we\"ird")
        self.assertEqual(sorted(self.features(m2)), ["kind", "x", "z"])
        # the default uses the id as a feature (what --exclude is for)
        rc, out, err = run_cli("train", "--relation", tab, "--target", "y", "--name", m2, "--features", "nope")
        self.assertEqual(rc, 4)
        self.assertIn("nope", err)
        rc, _, err = run_cli("train", "--relation", tab, "--target", "y", "--features", "x,,z")
        self.assertEqual(rc, 1)
        self.assertIn("option --features has an empty item", err)

    def test_group_by_deploy_metric_search(self):
        tab = self.base_table()
        name = self.model_name("cli_g")
        out = self.train("--relation", tab, "--target", "y", "--name", name, "--algorithm", "ridge", "--exclude", "id",
                         "--preprocess", '{"nulls": "impute"}', "--group-by", "kind", "--group-fallback", "all",
                         "--deploy-metric", "mae")
        report = self.scalar("SELECT report FROM ml_versions WHERE model = %s", (name,))
        self.assertEqual(report["group_by"], ["kind"])
        self.assertEqual(self.scalar("SELECT deploy_metric FROM ml_models WHERE name = %s", (name,)), "mae")
        other = self.model_name("cli_gs")
        self.train("--relation", tab, "--target", "y", "--name", other, "--algorithm", "ridge", "--exclude", "id",
                   "--preprocess", '{"nulls": "impute"}', "--search", "grid",
                   "--search-params", '{"alpha": [0.01, 100]}', "--search-args", '{"folds": 3}')
        alpha = self.scalar("SELECT hyperparams->>'alpha' FROM ml_versions WHERE model = %s", (other,))
        self.assertIn(alpha, ("0.01", "100"))

    def test_preprocess_seed_test_size(self):
        tab = self.base_table()
        name = self.model_name("cli_p")
        out = self.train("--relation", tab, "--target", "y", "--name", name, "--algorithm", "linear_regression",
                         "--exclude", "id", "--preprocess", '{"nulls": "drop"}', "--seed", "7", "--test-size", "0.25")
        # rows with a NULL we"ird (every 11th) dropped; a quarter of the others held out
        kept = sum(1 for i in range(1, 301) if i % 11)
        v = self.one("SELECT preprocess, rows_train, rows_test FROM ml_versions WHERE model = %s", (name,))
        self.assertEqual(v["preprocess"].get("nulls"), "drop")
        self.assertEqual(v["rows_train"] + v["rows_test"], kept)
        self.assertAlmostEqual(v["rows_test"] / kept, 0.25, delta=0.03)
        self.assertIn(f"{v['rows_test']} held out for testing", out)
        # the seed picks the held-out rows: the same seed, the same metrics; another seed, others
        metrics = {}
        for seed in ("7", "7", "8"):
            n = self.model_name("cli_s")
            self.train("--relation", tab, "--target", "y", "--name", n, "--algorithm", "ridge", "--exclude", "id",
                       "--seed", seed, "--preprocess", '{"nulls": "impute"}')
            metrics.setdefault(seed, []).append(
                self.scalar("SELECT test_metrics->>'rmse' FROM ml_versions WHERE model = %s", (n,)))
        self.assertEqual(metrics["7"][0], metrics["7"][1])
        self.assertNotEqual(metrics["7"][0], metrics["8"][0])
        for args, message in [(["--seed", "x7"], '--seed must be an integer, not "x7"'),
                              (["--test-size", "a lot"], '--test-size must be a number, not "a lot"')]:
            rc, _, err = run_cli("train", "--relation", tab, "--target", "y", *args)
            self.assertEqual(rc, 1, err)
            self.assertIn(message, err)
        # values are parameters: a quote in a name is data, not SQL
        odd = self.model_name("cli_o") + "'; drop table x; --"
        self.addCleanup(self._drop_model, odd)
        out = self.train("--relation", tab, "--target", "y", "--name", odd, "--algorithm", "ridge", "--exclude", "id",
                         "--hyperparams", '{"alpha": 2}', "--preprocess", '{"nulls": "impute"}')
        self.assertEqual(self.scalar("SELECT hyperparams->>'alpha' FROM ml_versions WHERE model = %s", (odd,)), "2")

class CsvOptionsTest(CliTestCase):
    """--null STRING (COPY's NULL) and --delimiter C for retrain --csv and predict --csv."""

    def test_null_na_like_r(self):
        model, _ = self.regression_model()
        text = "x,z,kind,y\n" + "".join(f"{i},{'NA' if i % 4 == 0 else (i % 7) / 7},{'abc'[i % 3]},{2 * i}\n"
                                        for i in range(1000, 1060))
        path = self.write("r.csv", text)
        rc, out, err = run_cli("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 3, err)
        self.assertIn(f'{path}:2: column z: invalid input syntax for type double precision: "NA"', err)
        self.assertEqual(self.versions(model), [1])
        rc, out, err = run_cli("retrain", "--model", model, "--csv", path, "--null", "NA", "--mode", "refit")
        self.assertEqual(rc, 0, err)
        self.assertIn("60 rows staged", err)
        self.assertEqual(self.versions(model), [1, 2])
        # a quoted "NA" is a string, as for COPY
        path = self.write("q.csv", 'x,z,kind\n1,NA,"NA"\n2,0.5,NA\n')
        rc, out, err = run_cli("predict", "--model", model, "--csv", path, "--null", "NA")
        self.assertEqual(rc, 0, err)
        rows = out.splitlines()
        self.assertEqual(rows[0], "x,z,kind,prediction")
        # written back with the same NULL; the string "NA" stays quoted
        self.assertTrue(rows[1].startswith('1,NA,"NA",'), rows)
        self.assertTrue(rows[2].startswith("2,0.5,NA,"), rows)
        expect = self.scalar("SELECT ml_predict(%s, s) FROM (SELECT 1 AS x, NULL::float8 AS z, 'NA'::text AS kind) s",
                             (model,))
        self.assertAlmostEqual(float(rows[1].split(",")[3]), expect, places=9)

    def test_delimiter(self):
        model, _ = self.regression_model()
        path = self.write("semi.csv", "x;z;kind\n10;0,5;a\n20;;\"b;c\"\n")  # a decimal comma is just text here
        rc, out, err = run_cli("predict", "--model", model, "--csv", path, "--delimiter", ";")
        self.assertEqual(rc, 3, err)
        self.assertIn(f'{path}:2: column z: invalid input syntax for type double precision: "0,5"', err)
        path = self.write("semi.csv", "x;z;kind\n10;0.5;a\n20;;\"b;c\"\n")
        rc, out, err = run_cli("predict", "--model", model, "--csv", path, "--delimiter", ";")
        self.assertEqual(rc, 0, err)
        rows = out.splitlines()
        self.assertEqual(rows[0], "x;z;kind;prediction")
        self.assertTrue(rows[2].startswith('20;;"b;c";'), rows)
        path = self.write("tab.tsv", "x\tz\tkind\n10\t0.5\ta\n")
        rc, out, err = run_cli("predict", "--model", model, "--csv", path, "--delimiter", "\\t", "--null", "")
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("x\tz\tkind\tprediction\n10\t0.5\ta\t"), out)
        # without --delimiter the header is one column: the model's columns are missing
        rc, _, err = run_cli("predict", "--model", model, "--csv", path)
        self.assertEqual(rc, 3)
        self.assertIn(":1: the header lacks columns", err)
        rc, _, err = run_cli("predict", "--model", model, "--csv", path, "--delimiter", ";;")
        self.assertEqual(rc, 1)
        self.assertIn('--delimiter must be one character', err)


class QuietTest(CliTestCase):
    def test_q_prints_no_notice(self):
        """-q: no NOTICE of the server (from pg_ml or anything else), no progress, no row counts;
        errors are still printed."""
        _, tab = self.regression_model()
        fn, view = unique("cli_noisy"), unique("cli_v")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE FUNCTION {}(i integer) RETURNS integer LANGUAGE plpgsql AS "
                                "$$BEGIN IF i = 1 THEN RAISE NOTICE 'hello from the view'; END IF; RETURN i; END$$")
                        .format(sql.Identifier(fn)))
            cur.execute(sql.SQL("CREATE VIEW {} AS SELECT {}(x) AS x, z, kind, y FROM {}")
                        .format(sql.Identifier(view), sql.Identifier(fn), sql.Identifier(tab)))
        self.addCleanup(self._drop_view_and_function, view, fn)
        name = self.model_name("cli_quiet")
        rc, out, err = run_cli("train", "--relation", view, "--target", "y", "--name", name, "--algorithm", "ridge")
        self.assertEqual(rc, 0, err)
        self.assertIn("NOTICE:  hello from the view", err)
        rc, out, err = run_cli("-q", "retrain", "--model", name, "--relation", view, "--mode", "refit")
        self.assertEqual(rc, 0, err)
        self.assertIn("new version 2", out)
        self.assertEqual(err, "")
        # and a CSV with a column the model does not use (a NOTICE of ml_retrain) and row counts
        path = self.write("extra.csv", "x,z,kind,y,comment\n" +
                          "".join(f"{i},0.5,a,{2 * i},c{i}\n" for i in range(500, 540)))
        rc, out, err = run_cli("retrain", "--model", name, "--csv", path, "--mode", "refit")
        self.assertEqual(rc, 0, err)
        self.assertIn("NOTICE:  ignoring columns the model does not use: comment", err)
        rc, out, err = run_cli("--quiet", "retrain", "--model", name, "--csv", path, "--mode", "refit")
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        out_path = os.path.join(self.dir, "p.csv")
        rc, out, err = run_cli("-q", "predict", "--model", name, "--csv", path, "--out", out_path)
        self.assertEqual((rc, out, err), (0, "", ""))
        # errors are still shown
        rc, out, err = run_cli("-q", "retrain", "--model", unique("nope"), "--relation", view)
        self.assertEqual(rc, 4)
        self.assertRegex(err, r'pg_ml: error: model "nope_\w+" does not exist')

    def _drop_view_and_function(self, view, fn):
        c = connect()
        try:
            c.autocommit = True
            with c.cursor() as cur:
                cur.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(view)))
                cur.execute(sql.SQL("DROP FUNCTION IF EXISTS {}(integer)").format(sql.Identifier(fn)))
        finally:
            c.close()


class PredictSetBasedTest(CliTestCase):
    def classifier(self):
        tab = self.table([("a", "double precision"), ("b", "double precision"), ("label", "text")],
                         [[i, (i * 7) % 13, "big" if i > 50 else "small"] for i in range(100)], prefix="cli_pc")
        name = self.model_name("cli_pc")
        self.scalar("SELECT version FROM ml_train(%s, 'label', algorithm => 'logistic_regression', name => %s)",
                    (tab, name))
        return name

    def test_proba(self):
        name = self.classifier()
        path = self.write("c.csv", "b,a,proba_big\n1,3,x\n2,97,y\n3,10,z\n")
        rc, out, err = run_cli("predict", "--model", name, "--csv", path, "--proba")
        self.assertEqual(rc, 0, err)
        rows = list(csv.reader(io.StringIO(out)))
        classes = self.scalar("SELECT classes FROM ml_models WHERE name = %s", (name,))
        self.assertEqual(sorted(classes), ["big", "small"])
        # a class column whose name the file already has gets a "_"
        names = ["proba_" + c + ("_" if c == "big" else "") for c in classes]
        self.assertEqual(rows[0], ["b", "a", "proba_big", "prediction"] + names)
        self.assertEqual([r[3] for r in rows[1:]], ["small", "big", "small"])
        for r in rows[1:]:
            expect = self.scalar("SELECT ml_predict_proba(%s, s) FROM (SELECT %s::float8 AS a, %s::float8 AS b) s",
                                 (name, r[1], r[0]))
            self.assertEqual(len(expect), 2)
            self.assertEqual(len(r), 6)
            for got, want in zip(r[4:], expect):
                self.assertAlmostEqual(float(got), want, places=12)
            self.assertAlmostEqual(sum(float(v) for v in r[4:]), 1.0, places=9)
        # a regression model has no probabilities
        model, _ = self.regression_model()
        path = self.write("r.csv", "x,z,kind\n1,0.5,a\n")
        rc, out, err = run_cli("predict", "--model", model, "--csv", path, "--proba")
        self.assertEqual(rc, 1)
        self.assertIn(f'--proba needs a classifier; model "{model}" is a regression model', err)

    def test_predict_200k_rows_one_copy(self):
        """200k rows: one COPY in, one set-based query (ml_predict_batch), the file's order kept.
        The time is printed (the issue asks for <= 2 s; not asserted: machines differ)."""
        model, _ = self.regression_model()
        path = os.path.join(self.dir, "big.csv")
        n = 200_000
        with open(path, "w") as f:
            f.write("id,x,z,kind\n")
            for i in range(n):
                f.write(f"{i},{(i * 37) % 1000},{(i % 7) / 7},{'abc'[i % 3]}\n")
        # as a superuser, the function calls are counted (track_functions) to show that the rows
        # are predicted by one ml_predict_batch, not by a call per row
        superuser = self.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        before = self._calls()
        start = time.monotonic()
        rc, out, err = run_cli("-q", "predict", "--model", model, "--csv", path,
                               env={"PGOPTIONS": "-c track_functions=all"} if superuser else None)
        elapsed = time.monotonic() - start
        self.assertEqual(rc, 0, err)
        sys.stderr.write(f"\n  pg_ml predict --csv: {n} rows in {elapsed:.2f} s\n")
        lines = out.splitlines()
        self.assertEqual(len(lines), n + 1)
        self.assertEqual([int(l.split(",", 1)[0]) for l in lines[1:]], list(range(n)))
        w = self.one("SELECT ml_predict(%s, s) AS p FROM (SELECT 37 AS x, 1/7.0::float8 AS z, 'b'::text AS kind) s",
                     (model,))["p"]
        self.assertAlmostEqual(float(lines[2].rsplit(",", 1)[1]), w, places=9)
        if superuser:
            after = self._calls()
            self.assertEqual(after["ml_predict_batch"] - before["ml_predict_batch"], 1, (before, after))
            self.assertEqual(after["ml_predict"] - before["ml_predict"], 0, (before, after))

    def _calls(self):
        """Calls of ml_predict and ml_predict_batch counted so far (pg_stat_user_functions)."""
        self.scalar("SELECT pg_stat_clear_snapshot() IS NULL")
        rows = self.all("SELECT funcname, sum(calls)::bigint AS n FROM pg_stat_user_functions "
                        "WHERE funcname IN ('ml_predict', 'ml_predict_batch') GROUP BY funcname")
        calls = {"ml_predict": 0, "ml_predict_batch": 0}
        calls.update({r["funcname"]: r["n"] for r in rows})
        return calls

if __name__ == "__main__":
    unittest.main()
