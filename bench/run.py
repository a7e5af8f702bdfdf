#!/usr/bin/python3
"""pg_ml benchmark suite (issue 4): times pg_ml against the scan floor, scikit-learn and XGBoost on
the same generated rows and prints, in one run, the medians over --runs runs side by side.

  (a) ml_train linear_regression / SELECT sum(...) over the same columns (the scan floor)
  (b) ml_train vs scikit-learn, end to end (COPY out + parse + preprocess + fit) and fit only
      (preprocess + fit), for linear_regression, logistic_regression, decision_tree, random_forest,
      mlp, kmeans
  (c) ml_train gradient_boosting / xgboost.train (tree_method hist) on the same rows and parameters
  (d) SELECT sum(ml_predict(m, t)) / the same linear function as a SQL expression, over
      min(--rows, 1M) rows, serial and with the default parallel settings
  (e) peak RSS (VmHWM) of a linear training at --rows/10 and --rows rows

Data: bench_v1_<N> (id, x0..x19 float8, c1, c2 text, y float8, label boolean), generated inside
PostgreSQL from hashint8extended(id, seed) so row i is the same whatever N is: bench_v1_<M> for M < N
is the first M rows of bench_v1_<N>. Tables are reused when they exist (delete them to regenerate).
Fairness: pg_ml trains with test_size => 0 and scikit-learn / XGBoost fit every row; both sides
get the same preprocessing as pg_ml's default (one-hot categoricals; numeric columns standardized
for the linear models, the MLP and k-means) inside the timed fit; pg_ml.max_threads, scikit-learn's
n_jobs, BLAS/OpenMP threads and XGBoost's nthread are all --threads (default: nproc); PostgreSQL's
parallel settings are the server's defaults (shown in the output). See bench/README.md.

Connection: the libpq environment (PGHOST, PGDATABASE, ...) or --dbname. Must run on the database
server's machine for (e) (it reads /proc/<backend pid>/status).
"""
import argparse
import datetime
import io
import json
import os
import platform
import statistics
import sys
import threading
import time
import traceback


def _early_threads():
    """--threads must limit BLAS / OpenMP before numpy is imported."""
    n = str(os.cpu_count() or 1)
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            n = sys.argv[i + 1]
        elif a.startswith("--threads="):
            n = a.split("=", 1)[1]
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = n


_early_threads()

import numpy as np  # noqa: E402
import psycopg2  # noqa: E402

P = 20
GEN_VERSION = 1
SEED = 20260401
C1_LEVELS = ["north", "south", "east", "west"]
C2_LEVELS = ["small", "medium", "large"]
C1_EFFECT = [1.5, -0.5, 0.0, -1.0]
C2_EFFECT = [-0.8, 0.0, 1.2]
ALL_ALGORITHMS = ["linear_regression", "logistic_regression", "decision_tree", "random_forest", "mlp", "kmeans",
                  "gradient_boosting"]
SLOW = {"decision_tree", "random_forest", "mlp", "kmeans"}
XCOLS = [f"x{i}" for i in range(P)]
FEATURES = XCOLS + ["c1", "c2"]


def weight(k):
    return ((k % 7) - 3) * 0.5


def offset(k):
    return float(k - 10)


def scale(k):
    return float(1 + k % 5)


# ------------------------------------------------------------------------------ data


def _u(k):
    """Uniform [0, 1) from the row number: the low 53 bits of a seeded hash."""
    return f"((hashint8extended(i, {SEED + k}) & 9007199254740991)::float8 / 9007199254740992.0)"


def generate_sql(table, n):
    xs = ",\n  ".join(f"{offset(k)!r} + {scale(k)!r} * (2.0 * {_u(k)} - 1.0) AS x{k}" for k in range(P))
    c1 = "(ARRAY[" + ", ".join(f"'{lv}'" for lv in C1_LEVELS) + f"])[1 + floor({_u(100)} * {len(C1_LEVELS)})::int]"
    c2 = "(ARRAY[" + ", ".join(f"'{lv}'" for lv in C2_LEVELS) + f"])[1 + floor({_u(101)} * {len(C2_LEVELS)})::int]"
    # y: a linear function of the raw features, the categorical effects and noise (sd about 0.5)
    lin = " + ".join(f"{weight(k)!r} * x{k}" for k in range(P) if weight(k) != 0)
    # label: a noisy linear function of the standardized features (logistic noise), with the
    # categoricals contributing, about balanced
    score = " + ".join(f"{weight(k) / scale(k)!r} * (x{k} - {offset(k)!r})" for k in range(P) if weight(k) != 0)
    eff1 = "CASE c1 " + " ".join(f"WHEN '{lv}' THEN {e!r}" for lv, e in zip(C1_LEVELS, C1_EFFECT)) + " END"
    eff2 = "CASE c2 " + " ".join(f"WHEN '{lv}' THEN {e!r}" for lv, e in zip(C2_LEVELS, C2_EFFECT)) + " END"
    return f"""
CREATE TABLE {table} AS
SELECT id, {", ".join(XCOLS)}, c1, c2,
       {lin} + {eff1} + {eff2} + (u1 + u2 + u3 - 1.5) AS y,
       ({score} + 0.7 * ({eff1} + {eff2}) + ln(v / (1.0 - v))) > 0 AS label
FROM (SELECT i AS id,
  {xs},
  {c1} AS c1,
  {c2} AS c2,
  {_u(200)} AS u1, {_u(201)} AS u2, {_u(202)} AS u3,
  1e-9 + (1.0 - 2e-9) * {_u(203)} AS v
  FROM generate_series(1::bigint, {int(n)}::bigint) i) s"""


def table_name(n):
    return f"bench_v{GEN_VERSION}_{int(n)}"


def ensure_table(cur, n, log):
    t = table_name(n)
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (t,))
    if cur.fetchone()[0]:
        return t
    log(f"generating {t} ({n} rows)")
    t0 = time.perf_counter()
    cur.execute(generate_sql(t, n))
    cur.execute(f"VACUUM ANALYZE {t}")
    log(f"  {t}: {time.perf_counter() - t0:.1f} s")
    return t


# ------------------------------------------------------------------------------ helpers


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def median_runs(runs, fn):
    """(median seconds, last result, all seconds)."""
    ts, out = [], None
    for _ in range(runs):
        t, out = timed(fn)
        ts.append(t)
    return statistics.median(ts), out, ts


def machine_info(cur):
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cur.execute("SELECT current_setting('server_version'), current_setting('max_parallel_workers_per_gather'), "
                "current_setting('max_parallel_workers'), current_setting('shared_buffers'), "
                "current_setting('work_mem'), (SELECT extversion FROM pg_extension WHERE extname = 'pg_ml')")
    v, mpwg, mpw, sb, wm, ext = cur.fetchone()
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gb": round(mem_kb / 1024 / 1024, 1),
            "postgresql": v, "pg_ml": ext, "max_parallel_workers_per_gather": mpwg,
            "max_parallel_workers": mpw, "shared_buffers": sb, "work_mem": wm,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(), "numpy": np.__version__,
            "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg())}


class Bench:
    def __init__(self, args, log):
        self.a = args
        self.log = log
        self.results = []  # dicts: section, measure, rows, pg_ml, other, ratio, target, note
        self.errors = []
        self.conn = self.connect()
        self.cur = self.conn.cursor()
        self.models = set()
        self.exports = {}  # table -> (median seconds, data dict)

    def connect(self):
        conn = psycopg2.connect(dbname=self.a.dbname) if self.a.dbname else psycopg2.connect("")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET client_min_messages = warning")
            if self.has_pgml(cur):
                cur.execute("LOAD 'pg_ml'")  # its settings exist once the library is loaded
                cur.execute(f"SET pg_ml.max_threads = {int(self.a.threads)}")
                if self.a.pg_max_memory:
                    cur.execute("SELECT set_config('pg_ml.max_memory', %s, false)", (self.a.pg_max_memory,))
        return conn

    @staticmethod
    def has_pgml(cur):
        cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_ml'")
        return cur.fetchone()[0] == 1

    def add(self, section, measure, rows, pg, other, target=None, note="", extra=None):
        r = {"section": section, "measure": measure, "rows": rows, "pg_ml": pg, "other": other,
             "ratio": (pg / other) if pg is not None and other else None, "target": target, "note": note}
        if extra:
            r.update(extra)
        self.results.append(r)
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        unit = "MB" if section == "e" else "s"
        self.log(f"  ({section}) {measure} [{rows} rows]: {pg if pg is None else round(pg, 3)} {unit} vs "
                 f"{other if other is None else round(other, 3)} {unit}, ratio {ratio} {note}")

    def guard(self, section, what, fn):
        """Runs one measure; a failure is recorded and the run goes on."""
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - one failing measure must not kill the run
            msg = (getattr(getattr(e, "diag", None), "message_primary", None) or str(e)).strip().splitlines()
            msg = msg[0] if msg else type(e).__name__
            self.errors.append({"section": section, "measure": what, "error": msg})
            self.log(f"  ({section}) {what}: FAILED: {msg}")
            if self.a.verbose:
                traceback.print_exc()
            try:
                if self.conn.closed:
                    raise psycopg2.InterfaceError("closed")
                self.cur.execute("SELECT 1")
            except psycopg2.Error:
                self.conn = self.connect()
                self.cur = self.conn.cursor()

    # ------------------------------------------------------------------ pg_ml side

    def drop_model(self, name):
        self.cur.execute("SELECT ml_drop_model(name) FROM ml_models WHERE name = %s", (name,))

    def train(self, table, name, algorithm, target, task, hyperparams=None, features=FEATURES):
        self.drop_model(name)
        self.cur.execute(
            "SELECT model FROM ml_train(%s, %s, algorithm => %s, task => %s, name => %s, features => %s, "
            "hyperparams => %s::jsonb, test_size => 0, seed => 0)",
            (table, target, algorithm, task, name, list(features), json.dumps(hyperparams or {})))
        self.cur.fetchall()
        self.models.add(name)
        self.cur.execute("SELECT train_metrics FROM ml_versions WHERE model = %s AND deployed", (name,))
        r = self.cur.fetchone()
        self.last_metrics = r[0] if r else {}

    def version_ms(self, name):
        """pg_ml's own split of the training time (ml.versions: read_ms, fit_ms, duration_ms; the
        catalog table needs a superuser or the ml owner, else only the view's duration_ms)."""
        try:
            self.cur.execute("SELECT v.read_ms, v.fit_ms, v.duration_ms FROM ml.versions v JOIN ml.models m "
                             "ON m.id = v.model_id WHERE m.name = %s ORDER BY v.version DESC LIMIT 1", (name,))
            r = self.cur.fetchone()
            return {"read_ms": r[0], "fit_ms": r[1], "duration_ms": r[2]} if r else {}
        except psycopg2.Error:
            self.cur.execute("SELECT duration_ms FROM ml_versions WHERE model = %s AND deployed", (name,))
            r = self.cur.fetchone()
            return {"duration_ms": r[0]} if r else {}

    def pg_train_median(self, table, name, algorithm, target, task, hyperparams=None, features=FEATURES):
        t, _, ts = median_runs(self.a.runs, lambda: self.train(table, name, algorithm, target, task, hyperparams,
                                                               features))
        return t, self.version_ms(name)

    # ------------------------------------------------------------------ export side

    def export(self, table):
        """COPY (FORMAT binary) into memory, parsed with numpy: {x: (n, 20) float64, y: float64,
        label: bool, c1, c2: str arrays}. The fixed-width columns come first; a Python loop finds
        the row starts (the two text columns make rows variable-length), numpy gathers the values.
        (Faster here than COPY csv + np.loadtxt, which needs about twice as long; no pandas.)"""
        cols = XCOLS + ["y", "label", "c1", "c2"]
        f = io.BytesIO()
        self.cur.copy_expert(f"COPY (SELECT {', '.join(cols)} FROM {table}) TO STDOUT (FORMAT binary)", f)
        return parse_binary_copy(f.getbuffer())

    def exported(self, table):
        if table not in self.exports:
            t, d, _ = median_runs(self.a.runs, lambda: self.export(table))
            self.exports = {table: (t, d)}  # keep one table's arrays in memory at a time
            self.log(f"  export {table}: {t:.3f} s ({len(d['y'])} rows)")
        return self.exports[table]


def _gather(a, offsets, width):
    """(n, width) uint8 bytes of `a` at each offset."""
    return a[offsets[:, None] + np.arange(width, dtype=np.int64)]


def _be_int32(a, offsets):
    return _gather(a, offsets, 4).copy().view(">i4").ravel().astype(np.int64)


def _row_starts(a, pos, fixed, nfields):
    """Start of every row of a binary COPY stream whose rows hold `fixed` bytes of fixed-width
    fields and then two text fields, all vectorized: candidate starts are where the field count
    and the first field's length 8 appear (searched in chunks), then the chain of row lengths is
    verified end to end. None when it does not verify (the caller then walks the rows)."""
    import struct
    pattern = np.frombuffer(struct.pack(">hi", nfields, 8), dtype=np.uint8)
    k = len(pattern)
    found = []
    chunk = 1 << 25
    for lo in range(pos, len(a) - k + 1, chunk):
        w = a[lo:min(len(a), lo + chunk + k - 1)]
        m = np.ones(len(w) - k + 1, dtype=bool)
        for j in range(k):
            m &= w[j:len(w) - k + 1 + j] == pattern[j]
        found.append(np.flatnonzero(m) + lo)
    st = np.concatenate(found) if found else np.empty(0, dtype=np.int64)
    # a float8 may hold the pattern by chance: keep candidates whose every fixed field length is right
    st = st[st + fixed + 8 <= len(a)]
    keep = np.ones(len(st), dtype=bool)
    for j in range(1, P + 1):
        keep &= _be_int32(a, st + (2 + 12 * j)) == 8
    keep &= _be_int32(a, st + fixed - 5) == 1
    st = st[keep]
    if len(st) == 0 or st[0] != pos:
        return None
    l1 = _be_int32(a, st + fixed)
    if (l1 < 0).any():
        return None
    l2 = _be_int32(a, st + fixed + 4 + l1)
    if (l2 < 0).any():
        return None
    ends = st + fixed + 8 + l1 + l2
    if not np.array_equal(ends[:-1], st[1:]) or bytes(a[ends[-1]:ends[-1] + 2]) != b"\xff\xff":
        return None
    return st, l1, l2


def _text_column(a, offsets, lengths):
    width = max(1, int(lengths.max()) if len(lengths) else 1)
    g = _gather(a, offsets, width)
    g[np.arange(width)[None, :] >= lengths[:, None]] = 0
    return g.copy().view(f"S{width}").ravel().astype(str)


def parse_binary_copy(buf):
    """Parses COPY ... (FORMAT binary) of (x0..x19 float8, y float8, label bool, c1 text, c2 text)
    into {x: (n, 20) float64, y: float64, label: bool, c1, c2: str arrays}."""
    import struct
    raw = buf  # a memoryview of the COPY buffer: no copy of the data
    if bytes(raw[:11]) != b"PGCOPY\n\xff\r\n\x00":
        raise ValueError("not a binary COPY stream")
    (ext,) = struct.unpack_from(">I", raw, 15)
    pos = 19 + ext
    nfields = P + 4
    fixed = 2 + (P + 1) * 12 + 5  # field count, 21 float8 (length + value), bool (length + byte)
    a = np.frombuffer(raw, dtype=np.uint8)
    got = _row_starts(a, pos, fixed, nfields) if bytes(raw[pos:pos + 2]) != b"\xff\xff" else None
    if got is None:  # walk the rows (slow, but exact whatever the bytes hold)
        starts, l1s, l2s = [], [], []
        while True:
            (nf,) = struct.unpack_from(">h", raw, pos)
            if nf == -1:
                break
            if nf != nfields:
                raise ValueError(f"row with {nf} fields")
            (l1,) = struct.unpack_from(">i", raw, pos + fixed)
            (l2,) = struct.unpack_from(">i", raw, pos + fixed + 4 + max(l1, 0))
            if l1 < 0 or l2 < 0:
                raise ValueError("NULL category")
            starts.append(pos)
            l1s.append(l1)
            l2s.append(l2)
            pos += fixed + 8 + l1 + l2
        got = (np.asarray(starts, dtype=np.int64), np.asarray(l1s, dtype=np.int64), np.asarray(l2s, dtype=np.int64))
    st, l1, l2 = got
    # the fixed-width part of the rows, gathered a chunk of rows at a time and read through a packed
    # big-endian record dtype
    rec = np.dtype([("nf", ">i2")] + [(n, t) for j in range(P + 1) for n, t in ((f"l{j}", ">i4"), (f"v{j}", ">f8"))]
                   + [("lb", ">i4"), ("b", "u1")])
    assert rec.itemsize == fixed
    vals = np.empty((len(st), P + 1))
    label = np.empty(len(st), dtype=bool)
    span = np.arange(fixed, dtype=np.int64)
    for lo in range(0, len(st), 65536):
        r = a[st[lo:lo + 65536, None] + span].view(rec).ravel()
        if (r["lb"] != 1).any() or any((r[f"l{j}"] != 8).any() for j in range(P + 1)):
            raise ValueError("unexpected field length (NULL value?)")
        for j in range(P + 1):
            vals[lo:lo + len(r), j] = r[f"v{j}"]
        label[lo:lo + len(r)] = r["b"] != 0
    return {"x": vals[:, :P].copy(), "y": vals[:, P].copy(), "label": label,
            "c1": _text_column(a, st + fixed + 4, l1), "c2": _text_column(a, st + fixed + 8 + l1, l2)}


# ------------------------------------------------------------------------------ sklearn side


def design(d, standardize):
    """pg_ml's default preprocessing with scikit-learn: numeric columns (standardized when asked),
    then one-hot categoricals (levels sorted, not scaled), as pg_ml orders them."""
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    x = StandardScaler().fit_transform(d["x"]) if standardize else d["x"]
    oh = OneHotEncoder(sparse_output=False, dtype=np.float64).fit_transform(np.column_stack([d["c1"], d["c2"]]))
    return np.hstack([x, oh])


def sk_fit(algorithm, d, threads, hp):
    """Fits the scikit-learn counterpart of `algorithm` (hyperparameters as scripts/compare_sklearn.py
    maps them), preprocessing included; returns (estimator, X, y)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if algorithm == "linear_regression":
            from sklearn.linear_model import LinearRegression
            X = design(d, True)
            return LinearRegression().fit(X, d["y"]), X, d["y"]
        if algorithm == "logistic_regression":
            from sklearn.linear_model import LogisticRegression
            X = design(d, True)
            return LogisticRegression(C=hp["C"], max_iter=hp["max_iter"]).fit(X, d["label"]), X, d["label"]
        if algorithm == "decision_tree":
            from sklearn.tree import DecisionTreeClassifier
            X = design(d, False)
            return DecisionTreeClassifier(random_state=0).fit(X, d["label"]), X, d["label"]
        if algorithm == "random_forest":
            from sklearn.ensemble import RandomForestClassifier
            X = design(d, False)
            return RandomForestClassifier(n_estimators=hp["n_estimators"], n_jobs=threads,
                                          random_state=0).fit(X, d["label"]), X, d["label"]
        if algorithm == "mlp":
            from sklearn.neural_network import MLPClassifier
            X = design(d, True)
            return MLPClassifier(hidden_layer_sizes=(hp["hidden_units"],) * hp["hidden_layers"],
                                 max_iter=hp["max_iter"], random_state=0).fit(X, d["label"]), X, d["label"]
        if algorithm == "kmeans":
            from sklearn.cluster import KMeans
            X = design(d, True)
            return KMeans(n_clusters=hp["k"], n_init=hp["n_init"], max_iter=hp["max_iter"],
                          random_state=0).fit(X), X, None
    raise ValueError(algorithm)


def quality(m):
    """The fit's own measure from pg_ml's training metrics (test_size 0: on the training rows)."""
    for k in ("r2", "accuracy", "inertia"):
        if isinstance(m, dict) and m.get(k) is not None:
            return f"{k} {m[k]:.6g}" if k == "inertia" else f"{k} {m[k]:.4f}"
    return "metrics " + ",".join(sorted(m)[:6]) if isinstance(m, dict) and m else "-"


# (pg_ml target column, task, hyperparameters given to both sides)
SPECS = {
    "linear_regression": ("y", "regression", {}),
    "logistic_regression": ("label", "classification", {"C": 1.0, "max_iter": 1000}),
    "decision_tree": ("label", "classification", {}),
    "random_forest": ("label", "classification", {"n_estimators": 100}),
    "mlp": ("label", "classification", {"hidden_layers": 1, "hidden_units": 100, "max_iter": 10}),
    "kmeans": (None, "clustering", {"k": 8, "n_init": 10, "max_iter": 300}),
}
XGB = {"n_estimators": 100, "learning_rate": 0.3, "max_depth": 6, "max_bin": 256}


# ------------------------------------------------------------------------------ sections


def section_a(b, table, n):
    cur = b.cur
    floor_sql = f"SELECT {', '.join(f'sum({c})' for c in XCOLS)}, sum(y) FROM {table}"
    grouped_sql = f"SELECT c1, c2, {', '.join(f'sum({c})' for c in XCOLS)}, sum(y) FROM {table} GROUP BY c1, c2"
    res, floors = {}, {}

    def warm():  # untimed: the buffer cache, pg_ml's first call in this session
        cur.execute(floor_sql)
        cur.fetchall()
        b.train(table, "bench_lin", "linear_regression", "y", "regression")

    b.guard("a", "warm-up", warm)

    def lin():
        res["lin"] = b.pg_train_median(table, "bench_lin", "linear_regression", "y", "regression")

    b.guard("a", "ml_train linear_regression", lin)

    def lin_numeric():
        res["num"] = b.pg_train_median(table, "bench_lin_num", "linear_regression", "y", "regression",
                                       features=XCOLS)

    b.guard("a", "ml_train linear_regression (numeric features only)", lin_numeric)
    for key, what, label, q in (
            ("lin", "ml_train linear_regression (20 numeric + 2 categorical)",
             "SELECT c1, c2, sum(x0..x19), sum(y) GROUP BY c1, c2", grouped_sql),
            ("lin", "ml_train linear_regression (20 numeric + 2 categorical)", "SELECT sum(x0..x19), sum(y)",
             floor_sql),
            ("num", "ml_train linear_regression (20 numeric only)", "SELECT sum(x0..x19), sum(y)", floor_sql)):
        def floor(key=key, what=what, label=label, q=q):
            if q not in floors:
                floors[q] = median_runs(b.a.runs, lambda: (cur.execute(q), cur.fetchall()))[0]
            t = floors[q]
            if key not in res:
                b.add("a", f"{what} / {label}", n, None, t, "<= 1.3")
                return
            tl, ms = res[key]
            b.add("a", f"{what} / {label}", n, tl, t, "<= 1.3",
                  note=f"pg_ml read {ms.get('read_ms', 0) / 1000:.3f} s + fit {ms.get('fit_ms', 0) / 1000:.3f} s",
                  extra={"pg_ml_version_ms": ms})
        b.guard("a", label, floor)

    def explain():
        cur.execute(f"EXPLAIN (ANALYZE, TIMING OFF) {floor_sql}")
        plan = "\n".join(r[0] for r in cur.fetchall())
        b.plans["floor"] = plan
        workers = [ln.strip() for ln in plan.splitlines() if "Workers Launched" in ln]
        b.log(f"  floor plan: {workers[0] if workers else 'no Gather (serial)'}")

    b.guard("a", "EXPLAIN floor", explain)


def section_b(b, table, n, slow_table, slow_n, algorithms):
    for alg in [x for x in algorithms if x in SPECS]:
        t_tab, t_n = (slow_table, slow_n) if alg in SLOW else (table, n)
        target, task, hp = SPECS[alg]

        def one(alg=alg, t_tab=t_tab, t_n=t_n, target=target, task=task, hp=hp):
            label = f"{alg} ({task})" + (f" [sample: first {t_n} rows]" if t_n != n else "")
            pg = None
            try:
                pg, ms = b.pg_train_median(t_tab, f"bench_{alg}", alg, target, task, hp)
            except psycopg2.Error as e:
                b.errors.append({"section": "b", "measure": f"pg_ml {alg}", "error": (e.diag.message_primary or
                                                                                      str(e)).strip()})
                b.log(f"  (b) pg_ml {alg}: FAILED: {e.diag.message_primary or e}")
                b.guard("b", "reconnect", lambda: None)
                ms = {}
            pg_q = quality(getattr(b, "last_metrics", {}) if pg is not None else {})
            te, d = b.exported(t_tab)
            tf, (est, X, y), _ = median_runs(b.a.runs, lambda: sk_fit(alg, d, b.a.threads, hp))
            sk_q = (f"inertia {est.inertia_:.6g}" if y is None else
                    f"{'r2' if task == 'regression' else 'accuracy'} {est.score(X, y):.4f}")
            b.add("b", f"{label}: pg_ml / sklearn end to end", t_n, pg, te + tf,
                  "<= 0.2" if alg in ("linear_regression", "logistic_regression") else "< 1",
                  note=f"sklearn: export {te:.3f} s + fit {tf:.3f} s; on the training rows: pg_ml {pg_q}, "
                       f"sklearn {sk_q}", extra={"pg_ml_version_ms": ms})
            b.add("b", f"{label}: pg_ml / sklearn fit only", t_n, pg, tf)

        b.guard("b", alg, one)


def section_c(b, table, n):
    import xgboost

    def one():
        pg, ms = b.pg_train_median(table, "bench_gbm", "gradient_boosting", "y", "regression", XGB)
        te, d = b.exported(table)
        params = {"tree_method": "hist", "objective": "reg:squarederror", "max_depth": XGB["max_depth"],
                  "eta": XGB["learning_rate"], "max_bin": XGB["max_bin"], "nthread": b.a.threads,
                  "lambda": 1.0, "alpha": 0.0, "min_child_weight": 1.0, "verbosity": 0}

        pg_q = quality(getattr(b, "last_metrics", {}))

        def fit():
            dm = xgboost.DMatrix(design(d, False), label=d["y"], nthread=b.a.threads)
            return xgboost.train(params, dm, num_boost_round=XGB["n_estimators"]), dm

        tf, (booster, dm), _ = median_runs(b.a.runs, fit)
        resid = d["y"] - booster.predict(dm)
        r2 = 1.0 - float(resid @ resid) / float(((d["y"] - d["y"].mean()) ** 2).sum())
        b.add("c", "gradient_boosting (regression) / xgboost.train hist, fit only", n, pg, tf, "<= 1.3",
              note=f"xgboost {xgboost.__version__}, nthread {b.a.threads}; on the training rows: pg_ml {pg_q}, "
                   f"xgboost r2 {r2:.4f}", extra={"pg_ml_version_ms": ms})
        b.add("c", "gradient_boosting (regression) / xgboost end to end (export + fit)", n, pg, te + tf)

    b.guard("c", "gradient_boosting", one)


def linear_sql(coef):
    """The model's prediction as a SQL expression over the raw columns (one-hot terms as CASE)."""
    terms = [repr(float(coef["intercept"]))]
    cats = {}
    for f, w in coef["coefficients"].items():
        if "=" in f:
            col, lv = f.split("=", 1)
            cats.setdefault(col, []).append((lv, float(w)))
        else:
            terms.append(f"{float(w)!r} * {f}")
    for col, lvs in cats.items():
        whens = " ".join(f"WHEN '{lv}' THEN {w!r}" for lv, w in lvs if lv != "NULL")
        null = next((w for lv, w in lvs if lv == "NULL"), 0.0)
        terms.append(f"(CASE {col} {whens} ELSE CASE WHEN {col} IS NULL THEN {null!r} ELSE 0.0 END END)")
    return " + ".join(terms)


def section_d(b, table, n):
    """The two queries run alternately after a warm-up each (so a change in the machine's load
    hits both); serially, the backend's CPU time is measured too (from /proc, when the server runs
    on this machine), which a busy shared machine disturbs much less than wall-clock time."""
    cur = b.cur

    def one():
        if "bench_lin_d" not in b.models:
            b.train(table, "bench_lin_d", "linear_regression", "y", "regression")
        cur.execute("SELECT coefficients FROM ml_versions WHERE model = 'bench_lin_d' AND deployed")
        expr = linear_sql(cur.fetchone()[0])
        cur.execute(f"SELECT sum(ml_predict('bench_lin_d', t)), sum({expr}) FROM {table} t")
        p, s = cur.fetchone()
        if abs(p - s) > 1e-6 * max(1.0, abs(s)):
            b.log(f"  (d) WARNING: sum(ml_predict) {p!r} != sum(SQL expression) {s!r}")
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

        qp = f"SELECT sum(ml_predict('bench_lin_d', t)) FROM {table} t"
        qs = f"SELECT sum({expr}) FROM {table} t"
        for mode, setting in (("serial", "0"), ("default parallel", "DEFAULT")):
            cur.execute(f"SET max_parallel_workers_per_gather = {setting}")
            try:
                run(qp)  # warm-up: the model in this backend's cache, the table in the buffers
                run(qs)
                a, c = [], []
                for _ in range(b.a.runs):
                    a.append(run(qp))
                    c.append(run(qs))
                cur.execute(f"EXPLAIN (ANALYZE, TIMING OFF) {qp}")
                plan = "\n".join(r[0] for r in cur.fetchall())
                b.plans[f"predict {mode}"] = plan
                wl = [ln.strip() for ln in plan.splitlines() if "Workers Launched" in ln]
                b.add("d", f"sum(ml_predict(m, t)) / same linear SQL expression, {mode}", n,
                      statistics.median(x[0] for x in a), statistics.median(x[0] for x in c), "<= 2.0",
                      note=wl[0] if wl else "no Gather")
                if setting == "0" and all(x[1] is not None for x in a + c):
                    b.add("d", "the same, serial, backend CPU time", n, statistics.median(x[1] for x in a),
                          statistics.median(x[1] for x in c), "<= 2.0", note=f"CPU seconds (/proc, {tick} Hz ticks)")
            finally:
                cur.execute("RESET max_parallel_workers_per_gather")

    b.guard("d", "predict", one)


def proc_status_kb(pid, *keys):
    """{key: kB} from /proc/<pid>/status (None when the process is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k = line.split(":", 1)[0]
                if k in keys:
                    out[k] = int(line.split()[1])
    except OSError:
        return None
    return out


def section_e(b, sizes):
    """Peak memory of a linear training. VmHWM (the kernel's peak RSS) counts the shared buffer
    pages the backend touched as well as its private memory, so the private peak (RssAnon) is
    also sampled every 10 ms, for the backend and for any parallel worker of it."""

    def measure(table):
        conn = b.connect()
        try:
            cur = conn.cursor()
            cur.execute("LOAD 'pg_ml'")
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
            st = proc_status_kb(pid, "VmHWM", "RssAnon")
            if not st:
                raise RuntimeError("cannot read /proc/<backend pid>/status: is the server on another machine?")
            mon = b.connect()
            mcur = mon.cursor()
            stop = threading.Event()
            peak = {"anon": st["RssAnon"]}
            workers = {}  # pid -> (VmHWM, peak RssAnon)

            def sample():
                while not stop.is_set():
                    v = proc_status_kb(pid, "RssAnon")
                    if v:
                        peak["anon"] = max(peak["anon"], v["RssAnon"])
                    try:
                        mcur.execute("SELECT pid FROM pg_stat_activity WHERE leader_pid = %s AND pid <> %s",
                                     (pid, pid))
                        for (wp,) in mcur.fetchall():
                            workers.setdefault(wp, (0, 0))
                    except psycopg2.Error:
                        pass
                    for wp in list(workers):
                        v = proc_status_kb(wp, "VmHWM", "RssAnon")
                        if v:
                            h, a = workers[wp]
                            workers[wp] = (max(h, v.get("VmHWM", 0)), max(a, v.get("RssAnon", 0)))
                    time.sleep(0.01)

            th = threading.Thread(target=sample, daemon=True)
            th.start()
            try:
                name = "bench_lin_mem"
                cur.execute("SELECT ml_drop_model(name) FROM ml_models WHERE name = %s", (name,))
                cur.execute("SELECT model FROM ml_train(%s, 'y', algorithm => 'linear_regression', "
                            "task => 'regression', name => %s, features => %s, test_size => 0)",
                            (table, name, FEATURES))
                cur.fetchall()
                b.models.add(name)
            finally:
                stop.set()
                th.join()
                mon.close()
            end = proc_status_kb(pid, "VmHWM", "RssAnon")
            peak["anon"] = max(peak["anon"], end["RssAnon"])
            return {"hwm_before": st["VmHWM"], "hwm_after": end["VmHWM"], "anon_before": st["RssAnon"],
                    "anon_peak": peak["anon"], "workers": len(workers),
                    "worker_hwm": max((w[0] for w in workers.values()), default=None),
                    "worker_anon": max((w[1] for w in workers.values()), default=None)}
        finally:
            conn.close()

    got = {}
    for n in sizes:
        def one(n=n):
            table = ensure_table(b.cur, n, b.log)
            ms = [measure(table) for _ in range(b.a.runs)]
            m = {k: statistics.median(x[k] for x in ms) for k in ("hwm_before", "hwm_after", "anon_before",
                                                                   "anon_peak")}
            m["workers"] = max(x["workers"] for x in ms)
            m["worker_hwm"] = max((x["worker_hwm"] for x in ms if x["worker_hwm"]), default=None)
            m["worker_anon"] = max((x["worker_anon"] for x in ms if x["worker_anon"]), default=None)
            got[n] = m
            b.log(f"  (e) {n} rows: backend VmHWM {m['hwm_before'] / 1024:.1f} -> {m['hwm_after'] / 1024:.1f} MB, "
                  f"private (RssAnon) {m['anon_before'] / 1024:.1f} -> peak {m['anon_peak'] / 1024:.1f} MB; "
                  f"parallel workers seen: {m['workers']}"
                  + (f", their peak VmHWM {m['worker_hwm'] / 1024:.1f} MB, RssAnon {m['worker_anon'] / 1024:.1f} MB"
                     if m["worker_hwm"] else ""))
        b.guard("e", f"memory at {n} rows", one)
    if len(got) == 2:
        (n1, m1), (n2, m2) = sorted(got.items())
        w = (f"parallel workers (sampled every 10 ms): {m1['workers']} / {m2['workers']}, their peak RssAnon "
             f"{(m1['worker_anon'] or 0) / 1024:.1f} / {(m2['worker_anon'] or 0) / 1024:.1f} MB"
             if m1["workers"] or m2["workers"] else "no parallel worker seen")
        extra = {"memory_kb": {str(k): v for k, v in got.items()}}
        b.add("e", f"linear_regression backend peak private memory (RssAnon, sampled), {n2} / {n1} rows", n2,
              m2["anon_peak"] / 1024, m1["anon_peak"] / 1024, "<= 1.1",
              note=f"before training {m1['anon_before'] / 1024:.1f} / {m2['anon_before'] / 1024:.1f} MB; {w}",
              extra=extra)
        b.add("e", f"linear_regression backend peak RSS (VmHWM, incl. shared buffers touched), {n2} / {n1} rows", n2,
              m2["hwm_after"] / 1024, m1["hwm_after"] / 1024, "<= 1.1",
              note=f"before training {m1['hwm_before'] / 1024:.1f} / {m2['hwm_before'] / 1024:.1f} MB; workers' "
                   f"VmHWM {(m1['worker_hwm'] or 0) / 1024:.1f} / {(m2['worker_hwm'] or 0) / 1024:.1f} MB")
    b.memory = got


# ------------------------------------------------------------------------------ output


def markdown(b, info):
    lines = [f"pg_ml benchmark, {info['date']}: {b.a.rows} rows, medians of {b.a.runs} run(s); "
             f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram_gb']} GB RAM, load average "
             f"{info['load_average']} at the end; PostgreSQL {info['postgresql']}, pg_ml {info['pg_ml']}, "
             f"max_parallel_workers_per_gather = {info['max_parallel_workers_per_gather']}, "
             f"shared_buffers = {info['shared_buffers']}, work_mem = {info['work_mem']}, pg_ml.max_memory = {info['pg_ml.max_memory']}; threads (pg_ml.max_threads "
             f"= {info['pg_ml.max_threads']}, sklearn n_jobs, BLAS, xgboost nthread) = {b.a.threads}; numpy {info['numpy']}, "
             f"scikit-learn {info.get('sklearn', '?')}, xgboost {info.get('xgboost', '?')}.",
             "",
             "| | measure | rows | pg_ml | other | ratio | target | note |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for r in b.results:
        unit = "MB" if r["section"] == "e" else "s"
        f = (lambda x: "-" if x is None else f"{x:.1f} MB") if unit == "MB" else (
            lambda x: "-" if x is None else f"{x:.3f} s")
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"| ({r['section']}) | {r['measure']} | {r['rows']} | {f(r['pg_ml'])} | {f(r['other'])} | "
                     f"{ratio} | {r['target'] or ''} | {r['note']} |")
    for e in b.errors:
        lines.append(f"| ({e['section']}) | {e['measure']} | | | | FAILED | | {e['error']} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3, help="runs per measure; medians are reported (default 3)")
    ap.add_argument("--algorithms", default=",".join(ALL_ALGORITHMS),
                    help="comma-separated subset of " + ", ".join(ALL_ALGORITHMS) + " for (b) and (c)")
    ap.add_argument("--sections", default="a,b,c,d,e", help="comma-separated subset of a,b,c,d,e")
    ap.add_argument("--max-rows-slow", type=int, default=0,
                    help="train decision_tree, random_forest, mlp and kmeans on the first N rows only (0: all)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="pg_ml.max_threads = sklearn n_jobs = BLAS threads = xgboost nthread (default: nproc)")
    ap.add_argument("--pg-max-memory", help="pg_ml.max_memory for the trainings, e.g. 8GB (default: the server's; "
                    "logistic_regression and gradient_boosting at 10M rows need more than the 1GB default)")
    ap.add_argument("--dbname")
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--keep-models", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    algorithms = [x.strip() for x in a.algorithms.split(",") if x.strip()]
    bad = [x for x in algorithms if x not in ALL_ALGORITHMS]
    if bad:
        ap.error(f"unknown algorithm {', '.join(bad)}")
    sections = set(a.sections.split(","))
    if sections - set("abcde"):
        ap.error(f"unknown section {', '.join(sorted(sections - set('abcde')))}")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    b = Bench(a, log)
    b.plans = {}
    b.memory = {}
    cur = b.cur
    cur.execute("CREATE EXTENSION IF NOT EXISTS pg_ml")
    b.conn.close()
    b.conn = b.connect()  # pg_ml.max_threads now that the extension exists
    b.cur = cur = b.conn.cursor()
    t0 = time.perf_counter()
    table = ensure_table(cur, a.rows, log)
    slow_n = min(a.rows, a.max_rows_slow) if a.max_rows_slow > 0 else a.rows
    slow_table = ensure_table(cur, slow_n, log) if "b" in sections else None
    info = machine_info(cur)
    cur.execute("SELECT current_setting('pg_ml.max_threads', true), current_setting('pg_ml.max_memory', true)")
    info["pg_ml.max_threads"], info["pg_ml.max_memory"] = cur.fetchone()
    try:
        import sklearn
        info["sklearn"] = sklearn.__version__
        import xgboost
        info["xgboost"] = xgboost.__version__
    except ImportError:
        pass
    log(f"PostgreSQL {info['postgresql']}, max_parallel_workers_per_gather = {info['max_parallel_workers_per_gather']}"
        f", threads {a.threads}")
    try:
        if "a" in sections:
            log("(a) training vs the scan floor")
            section_a(b, table, a.rows)
        if "b" in sections:
            log("(b) pg_ml vs scikit-learn")
            section_b(b, table, a.rows, slow_table, slow_n, algorithms)
        if "c" in sections and "gradient_boosting" in algorithms:
            log("(c) gradient_boosting vs xgboost")
            b.guard("c", "import xgboost", lambda: section_c(b, table, a.rows))
        b.exports = {}
        if "d" in sections:
            log("(d) predict vs a SQL expression")
            dn = min(a.rows, 1_000_000)
            b.guard("d", "table", lambda: section_d(b, ensure_table(b.cur, dn, log), dn))
        if "e" in sections:
            log("(e) peak memory of a linear training")
            section_e(b, sorted({max(1000, a.rows // 10), a.rows}))
    finally:
        if not a.keep_models:
            for m in sorted(b.models):
                b.guard("cleanup", m, lambda m=m: b.drop_model(m))
    info["load_average"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    md = markdown(b, info)
    print(md)
    log(f"total {time.perf_counter() - t0:.1f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": info, "args": vars(a), "results": b.results, "errors": b.errors,
                       "plans": b.plans, "markdown": md}, f, indent=2, default=str)
    return 1 if b.errors else 0


if __name__ == "__main__":
    sys.exit(main())
