#!/usr/bin/python3
"""Two pg_ml builds side by side (issue 12's "(a) does not get slower"): the same trainings and
the scan floor of bench/run.py (a), alternating between two servers run after run (the order
flips each round), so a busy machine slows both alike. Prints the medians and their ratios.

  bench/compare_servers.py --a host=/sock/new port=5479 --b host=/sock/old port=5480 [--runs 9]

Each server needs the database (default bench) with bench_v1_<rows> (bench/run.py makes it) and
pg_ml installed. Trainings use test_size => 0; the models are dropped again.
"""
import argparse
import statistics
import time

import psycopg2

FEATURES = ["x%d" % i for i in range(20)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="libpq connection string of build A (e.g. the new one)")
    ap.add_argument("--b", required=True, help="libpq connection string of build B (e.g. the baseline)")
    ap.add_argument("--dbname", default="bench")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    table = "bench_v1_%d" % args.rows
    conns = {}
    for name, dsn in (("A", args.a), ("B", args.b)):
        c = psycopg2.connect(dsn + " dbname=" + args.dbname)
        c.autocommit = True
        conns[name] = c
    train = ("SELECT model FROM ml_train(%s, 'y', task => 'regression', algorithm => 'linear_regression', "
             "name => %s, features => %s, test_size => 0)")
    measures = {
        "train 20 numeric + 2 categorical": (train, FEATURES + ["c1", "c2"]),
        "train 20 numeric": (train, FEATURES),
        "scan SELECT sum(x0..x19), sum(y)": ("SELECT " + ", ".join("sum(%s)" % f for f in FEATURES + ["y"]) +
                                              " FROM " + table, None),
    }
    times = {(s, m): [] for s in conns for m in measures}
    for r in range(args.runs):
        order = ["A", "B"] if r % 2 == 0 else ["B", "A"]
        for m, (sql, feats) in measures.items():
            for s in order:
                cur = conns[s].cursor()
                name = "bench_cmp_%d" % r
                if feats is not None:
                    cur.execute("SELECT ml_drop_model(name) FROM ml_models WHERE name = %s", (name,))
                t0 = time.perf_counter()
                cur.execute(sql, (table, name, feats) if feats is not None else None)
                cur.fetchall()
                times[(s, m)].append(time.perf_counter() - t0)
                if feats is not None:
                    cur.execute("SELECT ml_drop_model(name) FROM ml_models WHERE name = %s", (name,))
    print("| measure | A median | B median | A / B |")
    print("|---|---|---|---|")
    med = {k: statistics.median(v) for k, v in times.items()}
    for m in measures:
        print("| %s | %.3f s | %.3f s | %.3f |" % (m, med[("A", m)], med[("B", m)], med[("A", m)] / med[("B", m)]))
    scan = "scan SELECT sum(x0..x19), sum(y)"
    for m in list(measures)[:2]:
        print("| %s / scan | %.2f | %.2f | %.3f |" % (m, med[("A", m)] / med[("A", scan)], med[("B", m)] / med[("B", scan)],
                                                      (med[("A", m)] / med[("A", scan)]) / (med[("B", m)] / med[("B", scan)])))
    print("%d runs each, alternating" % args.runs)


if __name__ == "__main__":
    main()
