#!/usr/bin/python3
"""What an incremental retrain on the model's own table costs (issue 11).

An incremental retrain of a linear model on its training table reads only the rows the deployed
version has not learned: it scans the table once, keeping the rows whose inserting transaction
the version's recorded snapshot did not see (ml.row_is_new), and adds them to the version's
statistics. This prints, side by side in one run (medians of --runs):

  train      ml_train(linear_regression, test_size => 0) on the N rows
  scan       SELECT sum() of the model's columns over the N rows (the floor of any read)
  inc_table  ml_retrain(mode => 'incremental') on the table after --new rows were inserted
  inc_new    ml_retrain(mode => 'incremental') on a table holding only the --new rows

and the ratios inc_table / scan (the price of finding the new rows in the table) and
inc_table / train. Each inc_table run inserts the rows and retrains inside a transaction that is
rolled back, so every run starts from the same version.

Usage: PGDATABASE=bench /usr/bin/python3 bench/retrain.py [--rows 1000000] [--new 10000] [--runs 5]
"""
import argparse
import statistics
import time

import psycopg2

COLS = ", ".join(f"x{i}" for i in range(10))


def timed(cur, sql, params=None):
    t0 = time.perf_counter()
    cur.execute(sql, params)
    if cur.description:
        cur.fetchall()
    return time.perf_counter() - t0


def rows_sql(table, start, n):
    xs = ", ".join(f"(hashint8extended(i, {k}) % 10000) / 100.0 AS x{k}" for k in range(10))
    y = " + ".join(f"{k + 1} * (hashint8extended(i, {k}) % 10000) / 100.0" for k in range(10))
    return (f"INSERT INTO {table} SELECT {xs}, (ARRAY['a','b','c'])[1 + i % 3] AS c, "
            f"{y} + (hashint8extended(i, 99) % 100) / 100.0 AS y FROM generate_series({start}, {start + n - 1}) i")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--new", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    base, new = f"bench_rt_{a.rows}", f"bench_rt_new_{a.new}"
    for t in (base, new):
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TABLE {t} ({', '.join(f'x{i} float8' for i in range(10))}, c text, y float8)")
    cur.execute(rows_sql(base, 1, a.rows))
    cur.execute(rows_sql(new, a.rows + 1, a.new))
    cur.execute(f"VACUUM ANALYZE {base}")
    cur.execute(f"VACUUM ANALYZE {new}")
    cur.execute("SELECT ml_drop_model(name) FROM ml_models WHERE name IN ('bench_rt', 'bench_rt_new')")
    train, scan, inc_table, inc_new = [], [], [], []
    timed(cur, f"SELECT sum(x0) FROM {base}")  # warm-up
    for r in range(a.runs):
        cur.execute("SELECT ml_drop_model(name) FROM ml_models WHERE name IN ('bench_rt', 'bench_rt_new')")
        train.append(timed(cur, f"SELECT * FROM ml_train('{base}', 'y', algorithm => 'linear_regression', "
                                "name => 'bench_rt', test_size => 0)"))
        timed(cur, f"SELECT * FROM ml_train('{base}', 'y', algorithm => 'linear_regression', "
                   "name => 'bench_rt_new', test_size => 0)")
        scan.append(timed(cur, f"SELECT {', '.join(f'sum(x{i})' for i in range(10))}, count(c), sum(y) FROM {base}"))
        cur.execute("BEGIN")
        cur.execute(rows_sql(base, a.rows + 1, a.new))
        inc_table.append(timed(cur, "SELECT * FROM ml_retrain('bench_rt', %s, mode => 'incremental', "
                                    "test_size => 0, deploy => 'always')", (base,)))
        cur.execute("ROLLBACK")
        inc_new.append(timed(cur, "SELECT * FROM ml_retrain('bench_rt_new', %s, mode => 'incremental', "
                                  "test_size => 0, deploy => 'always')", (new,)))
    med = {k: statistics.median(v) for k, v in
           (("train", train), ("scan", scan), ("inc_table", inc_table), ("inc_new", inc_new))}
    cur.execute("SELECT current_setting('max_parallel_workers_per_gather')")
    print(f"{a.rows} rows + {a.new} new, medians of {a.runs} runs "
          f"(max_parallel_workers_per_gather {cur.fetchone()[0]}):")
    for k, v in med.items():
        print(f"  {k:10s} {v:.3f} s")
    print(f"  inc_table / scan  = {med['inc_table'] / med['scan']:.2f}")
    print(f"  inc_table / train = {med['inc_table'] / med['train']:.2f}")
    print(f"  inc_new / train   = {med['inc_new'] / med['train']:.3f}")
    cur.execute("SELECT ml_drop_model(name) FROM ml_models WHERE name IN ('bench_rt', 'bench_rt_new')")
    for t in (base, new):
        cur.execute(f"DROP TABLE {t}")


if __name__ == "__main__":
    main()
