#!/usr/bin/python3
"""Per-group training against one model (issue 13: "50 groups make 50 models in one call in
less than 3x the time of one model on the whole table"). Makes a table of --rows rows with
--groups groups (each its own true function of 10 numeric features), then times, per
algorithm, ml_train on the whole table without group_by and with group_by => ARRAY['g'];
prints the median of --runs runs of each and their ratio.

  bench/group_by.py [--dbname postgres] [--rows 200000] [--groups 50] [--runs 3] [--max-threads N]

With --max-threads above 1 (pg_ml.max_threads), one model uses that many threads, and per-group
training fits that many groups at once, each on one thread.

Connection from the libpq environment (PGHOST, PGPORT, ...). Models are dropped again.
"""
import argparse
import statistics
import time

import psycopg2

FEATURES = ["x%d" % i for i in range(10)]
ALGORITHMS = {
    "linear_regression": "{}",
    "decision_tree": '{"max_depth": 8}',
    "random_forest": '{"n_estimators": 20, "max_depth": 8}',
    "gradient_boosting": '{"n_estimators": 50}',
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dbname", default="postgres")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--groups", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--algorithms", default=",".join(ALGORITHMS))
    ap.add_argument("--max-threads", type=int, default=1, help="pg_ml.max_threads")
    ap.add_argument("--hyperparams", default=None, help="jsonb for every algorithm (default: per algorithm)")
    args = ap.parse_args()
    conn = psycopg2.connect(dbname=args.dbname)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS pg_ml")
    cur.execute("SET pg_ml.max_threads = %d" % args.max_threads)
    table = "bench_groups_%d_%d" % (args.rows, args.groups)
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    if not cur.fetchone()[0]:
        cols = ", ".join("random() AS %s" % f for f in FEATURES)
        # y: a per-group linear function of the features, plus noise
        y = " + ".join("(((g * 7 + %d) %% 11) - 5) * %s" % (i, f) for i, f in enumerate(FEATURES))
        cur.execute("CREATE TABLE %s AS SELECT g, %s, %s + random() AS y FROM (SELECT i %% %d AS g, %s "
                    "FROM generate_series(1, %d) i) s" % (table, ", ".join(FEATURES), y, args.groups, cols, args.rows))
        cur.execute("ANALYZE " + table)
    feats = "ARRAY[%s]" % ", ".join("'%s'" % f for f in FEATURES)
    for algo in args.algorithms.split(","):
        hp = args.hyperparams or ALGORITHMS[algo]
        times = {"one model": [], "%d groups" % args.groups: []}
        for run in range(args.runs):
            for label, group in (("one model", ""), ("%d groups" % args.groups, ", group_by => ARRAY['g']")):
                name = "bench_group_%s" % ("g" if group else "one")
                cur.execute("SELECT ml_drop_model(name) FROM ml_models WHERE name = %s", (name,))
                t0 = time.monotonic()
                cur.execute("SELECT model FROM ml_train(%%s, 'y', algorithm => %%s, name => %%s, features => %s, "
                            "hyperparams => %%s::jsonb%s)" % (feats, group), (table, algo, name, hp))
                times[label].append(time.monotonic() - t0)
                cur.execute("SELECT ml_drop_model(%s)", (name,))
        one = statistics.median(times["one model"])
        grouped = statistics.median(times["%d groups" % args.groups])
        print("%-18s %s rows %d, max_threads %d: one model %.3f s, %d groups %.3f s (median of %d), ratio %.2f"
              % (algo, hp, args.rows, args.max_threads, one, args.groups, grouped, args.runs, grouped / one))


if __name__ == "__main__":
    main()
