#!/usr/bin/python3
"""Side-by-side timings for the linear family (medians of --runs runs), printed as ratios.

  (a) ml_train linear_regression / SELECT sum(...) over the same columns (the scan floor)
  (b) ml_train vs scikit-learn on the same rows: end to end (COPY out + fit) and fit only,
      for linear_regression and logistic_regression
  (d) SELECT sum(ml_predict(m, t)) / the same linear function written as a SQL expression

Connects through the libpq environment (PGHOST, PGDATABASE, ...). Creates bench_rows_<N>.
Usage: bench/bench_linear.py [--rows 1000000] [--runs 3] [--only-predict]
"""
import argparse
import io
import os
import statistics
import time

import numpy as np
import psycopg2
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import StandardScaler

P = 20


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def median_of(runs, fn):
    return statistics.median(timed(fn)[0] for _ in range(runs))


def predict_ratios(cur, table, cols, runs):
    """(d): SELECT sum(ml_predict('bench_lin', t)) / the same linear function as a SQL expression,
    serial (no parallel workers) and with the server's parallel settings. The two queries run
    alternately (so a change in the machine's load hits both); serially, the backend's CPU time
    is measured too (from /proc, when the server runs on this machine), which a busy shared
    machine disturbs much less than wall-clock time."""
    cur.execute("SELECT coefficients FROM ml_versions WHERE model = 'bench_lin' AND deployed")
    coef = cur.fetchone()[0]
    expr = f"{coef['intercept']!r} + " + " + ".join(f"{coef['coefficients'][c]!r} * {c}" for c in cols)
    cur.execute("SELECT pg_backend_pid()")
    stat = f"/proc/{cur.fetchone()[0]}/stat"
    tick = os.sysconf("SC_CLK_TCK")

    def cpu():
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        except OSError:
            return None

    def run(q):
        c0, t0 = cpu(), time.perf_counter()
        cur.execute(q)
        cur.fetchall()
        t1, c1 = time.perf_counter(), cpu()
        return t1 - t0, (c1 - c0 if c0 is not None and c1 is not None else None)

    q_pred = f"SELECT sum(ml_predict('bench_lin', t)) FROM {table} t"
    q_sql = f"SELECT sum({expr}) FROM {table} t"
    out = []
    for label, setting in (("serial", "0"), ("parallel", "DEFAULT")):
        cur.execute(f"SET max_parallel_workers_per_gather = {setting}")
        run(q_pred)  # load the model into this backend's cache, warm the table
        run(q_sql)
        a, b = [], []
        for _ in range(runs):
            a.append(run(q_pred))
            b.append(run(q_sql))
        out.append((f"(d) sum(ml_predict) / same linear SQL expression, {label}",
                    statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)))
        if setting == "0" and all(x[1] is not None for x in a + b):
            out.append((f"(d) the same, serial, backend CPU time",
                        statistics.median(x[1] for x in a), statistics.median(x[1] for x in b)))
    cur.execute("RESET max_parallel_workers_per_gather")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only-predict", action="store_true",
                    help="only (d), serial and parallel (trains bench_lin if it does not exist)")
    a = ap.parse_args()
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET client_min_messages = warning")
    cur.execute("CREATE EXTENSION IF NOT EXISTS pg_ml")
    table = f"bench_rows_{a.rows}"
    cols = [f"x{i}" for i in range(P)]
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    if not cur.fetchone()[0]:
        feats = ", ".join(f"random() AS x{i}" for i in range(P))
        cur.execute(f"CREATE TABLE {table} AS SELECT {feats} FROM generate_series(1, {a.rows})")
        lin = " + ".join(f"{(i % 7) - 3} * x{i}" for i in range(P))
        cur.execute(f"ALTER TABLE {table} ADD COLUMN y float8, ADD COLUMN k bool")
        cur.execute(f"UPDATE {table} SET y = {lin} + random() * 0.1")
        cur.execute(f"UPDATE {table} SET k = y > (SELECT avg(y) FROM {table})")
        cur.execute(f"VACUUM ANALYZE {table}")
    collist = ", ".join(cols)

    def train(algo, target, name):
        def run():
            cur.execute("SELECT ml_drop_model(name) FROM ml_models WHERE name = %s", (name,))
            cur.execute(f"SELECT * FROM ml_train(%s, %s, algorithm => %s, name => %s, features => %s, test_size => 0)",
                        (table, target, algo, name, cols))
        return run

    def scan():
        cur.execute(f"SELECT {', '.join(f'sum({c})' for c in cols)}, sum(y) FROM {table}")
        cur.fetchall()

    def export(target):
        buf = io.StringIO()
        cur.copy_expert(f"COPY (SELECT {collist}, {target} FROM {table}) TO STDOUT (FORMAT csv)", buf)
        buf.seek(0)
        d = np.loadtxt(buf, delimiter=",", converters={P: (lambda s: 1.0 if s in (b"t", "t") else 0.0 if s in (b"f", "f") else float(s))})
        return d[:, :P], d[:, P]

    if a.only_predict:
        cur.execute("SELECT 1 FROM ml_models WHERE name = 'bench_lin'")
        if cur.fetchone() is None:
            train("linear_regression", "y", "bench_lin")()
        print(f"rows {a.rows}, {P} numeric features, medians of {a.runs} runs (seconds)")
        print(f"{'measure':58s} {'pg_ml':>8s} {'other':>8s} {'ratio':>7s}")
        for name, x, y in predict_ratios(cur, table, cols, a.runs):
            print(f"{name:58s} {x:8.3f} {y:8.3f} {x / y:7.2f}")
        return

    t_scan = median_of(a.runs, scan)
    t_lin = median_of(a.runs, train("linear_regression", "y", "bench_lin"))
    t_log = median_of(a.runs, train("logistic_regression", "k", "bench_log"))
    t_exp_y, (X, y) = timed(lambda: export("y"))
    t_fit_lin = median_of(a.runs, lambda: LinearRegression().fit(X, y))
    t_exp_k, (Xk, k) = timed(lambda: export("k"))
    t_fit_log = median_of(a.runs, lambda: LogisticRegression(C=1.0, max_iter=1000).fit(StandardScaler().fit_transform(Xk), k))

    print(f"rows {a.rows}, {P} numeric features, medians of {a.runs} runs (seconds)")
    print(f"{'measure':58s} {'pg_ml':>8s} {'other':>8s} {'ratio':>7s}")
    rows = [
        ("(a) ml_train linear_regression / SELECT sum(...) scan", t_lin, t_scan),
        ("(b) linear_regression: pg_ml / sklearn end to end", t_lin, t_exp_y + t_fit_lin),
        ("(b) linear_regression: pg_ml / sklearn fit only", t_lin, t_fit_lin),
        ("(b) logistic_regression: pg_ml / sklearn end to end", t_log, t_exp_k + t_fit_log),
        ("(b) logistic_regression: pg_ml / sklearn fit only", t_log, t_fit_log),
    ] + predict_ratios(cur, table, cols, a.runs)
    for name, x, y in rows:
        print(f"{name:58s} {x:8.3f} {y:8.3f} {x / y:7.2f}")


if __name__ == "__main__":
    main()
