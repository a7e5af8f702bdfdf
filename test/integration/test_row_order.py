"""Same rows, same seed, same model: every algorithm trained on a table and on copies of it in
another physical order (shuffled, reversed; read in other batch sizes) gives the same model.

Datasets: diabetes (regression) and wine (classification, and clustering without its target)
from Debian's python3-sklearn (scripts/load_datasets.py), each with a categorical column derived
from one feature and some NULLs, so that category levels and missing values appear in another
order in each copy.

- Algorithms that keep the rows in memory (every one but the linear family, and naive Bayes /
  k-means when they read the rows) give the same bytes: the version's checksum, metrics,
  coefficients or importances, report and every prediction are identical.
- The linear family, naive Bayes and k-means through the aggregates (pg_ml.stats_aggregate on)
  sum their statistics in the order the rows come in (and parallel workers combine them in any
  order): equal up to floating-point rounding (relative 1e-9 here), with the same rows held out,
  the same sample rows and the same predicted classes and clusters. With pg_ml.stats_aggregate
  off the same algorithms read the rows, and are compared the same way.
"""
import json
import math
import unittest

from psycopg2 import sql

from pgml_test import PgmlTestCase, dataset, unique

REL = 1e-9  # the aggregate paths: relative tolerance of coefficients, metrics, predictions

IN_MEMORY = {"logistic_regression", "decision_tree", "random_forest", "gradient_boosting", "svm", "mlp"}
LINEAR = {"linear_regression", "ridge", "lasso", "elastic_net"}
SMALL = {
    "random_forest": {"n_estimators": 20},
    "gradient_boosting": {"n_estimators": 30, "subsample": 0.8, "colsample_bytree": 0.8},
    "mlp": {"max_iter": 60, "batch_size": 16},
    "kmeans": {"k": 3, "n_init": 3},
}


def mixed(name, band_col):
    """The dataset with a text column `band` (quartile of band_col, NULL for some rows) and NULLs in
    the first feature of every 13th row."""
    cols, rows = dataset(name)
    k = [c for c, _ in cols].index(band_col)
    values = sorted(float(r[k]) for r in rows)
    q = [values[len(values) * i // 4] for i in (1, 2, 3)]
    out = []
    for r in rows:
        i, v = int(r[0]), float(r[k])
        band = None if i % 17 == 3 else ["low", "mid", "high", "top"][sum(v >= x for x in q)]
        r = list(r)
        if i % 13 == 5:
            r[1] = None
        out.append(r[:-1] + [band] + r[-1:])
    return cols[:-1] + [("band", "text")] + cols[-1:], out


WORST = {}  # algorithm (path) -> largest relative difference seen on the aggregate paths


def rel_diffs(a, b):
    """The relative differences of the numbers of two JSON-like values of the same shape."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in a if k in b for d in rel_diffs(a[k], b[k])]
    if isinstance(a, list) and isinstance(b, list):
        return [d for x, y in zip(a, b) for d in rel_diffs(x, y)]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and a == a and b == b:
        return [abs(a - b) / max(1e-300, abs(a), abs(b))] if a != b else [0.0]
    return []


def close(a, b, rel):
    """Whether two JSON-like values are equal, numbers within rel (exact when rel is 0)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rel) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if rel == 0 or (isinstance(a, float) and math.isnan(a)):
            return a == b or (a != a and b != b)
        return abs(a - b) <= rel * max(1.0, abs(a), abs(b))
    return a == b


class RowOrderTest(PgmlTestCase):
    @classmethod
    def setUpClass(cls):
        cls.reg = mixed("diabetes", "bmi")
        cls.cls = mixed("wine", "f0")

    @classmethod
    def tearDownClass(cls):
        if WORST:
            print("\n\nlargest relative difference, shuffled / reversed copy against the table (aggregate sums):")
            for label, d in sorted(WORST.items()):
                print(f"  {label:<45} {d:.1e}")
            print(flush=True)

    def copies(self, columns, rows):
        """The table, a shuffled copy and a reversed copy (CREATE TABLE AS ... ORDER BY)."""
        a = self.table(columns, rows, "ro")
        names = [a]
        for order in ("md5(id::text)", "id DESC"):
            b = unique("ro")
            with self.conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE TABLE {} AS SELECT * FROM {} ORDER BY " + order).format(
                    sql.Identifier(b), sql.Identifier(a)))
            self.addCleanup(self._drop_table, b)
            names.append(b)
        # the copies really are in another order
        first = [self.scalar(sql.SQL("SELECT id FROM {} LIMIT 1").format(sql.Identifier(t)).as_string(self.conn))
                 for t in names]
        self.assertEqual(len(set(first)), 3, first)
        return names

    def train(self, table, target, algorithm, batch_rows=None, settings=()):
        model = self.model_name("ro")
        with self.conn.cursor() as cur:
            cur.execute("RESET ALL")
            if batch_rows:
                cur.execute("SET pg_ml.batch_rows = %s", (batch_rows,))
            for s in settings:
                cur.execute(s)
            cur.execute(
                "SELECT * FROM ml_train(%s, %s, algorithm => %s, name => %s, exclude => ARRAY['id'], "
                "hyperparams => %s::jsonb, test_size => 0.25, seed => 7)",
                (table, target, algorithm, model, json.dumps(SMALL.get(algorithm, {}))))
            cur.execute("RESET ALL")
        return model

    def describe(self, model, table, task):
        """Everything a user sees of the version, and its predictions on every row of table."""
        v = self.one("SELECT test_metrics, train_metrics, coefficients, rows_train, rows_test, report, "
                     "data_fingerprint, checksum, blob_length, hyperparams FROM ml_versions WHERE model = %s",
                     (model,))
        v["report"].pop("duration_ms", None)
        # the blob past its header (20 bytes), the payload tag (22) and its binding to the catalog
        # row (model id and version, 12 bytes): what was fitted, byte for byte
        v["fitted_md5"] = self.scalar(
            "SELECT md5(substring(b.blob from 55)) FROM ml.versions b JOIN ml_versions v USING (model_id, version) "
            "WHERE v.model = %s", (model,))
        imp = self.all("SELECT * FROM ml_feature_importance(%s) ORDER BY 1", (model,))
        q = sql.SQL("SELECT id, ml_predict(%s, t) AS p{} FROM {} t ORDER BY id").format(
            sql.SQL(", ml_predict_proba(%s, t) AS proba" if task == "classification" else ""), sql.Identifier(table))
        preds = self.all(q.as_string(self.conn), (model, model) if task == "classification" else (model,))
        v["importance"] = [dict(r) for r in imp]
        v["predictions"] = [dict(r) for r in preds]
        if task == "clustering":
            v["evaluate"] = self.scalar("SELECT ml_evaluate(%s, %s)", (model, table))
        return v

    def check(self, data, target, algorithm, task, exact, settings=()):
        columns, rows = data
        tables = self.copies(columns, rows)
        ref_model = self.train(tables[0], target, algorithm, settings=settings)
        ref = self.describe(ref_model, tables[0], task)
        for t, batch in zip(tables[1:], (100, 1000)):
            with self.subTest(algorithm=algorithm, table=t, batch_rows=batch, settings=settings):
                m = self.train(t, target, algorithm, batch_rows=batch, settings=settings)
                got = self.describe(m, tables[0], task)  # predictions on the same table
                for key in ("rows_train", "rows_test", "data_fingerprint", "hyperparams", "importance"):
                    if key != "importance" or exact:
                        self.assertEqual(got[key], ref[key], key)
                if exact:
                    for key in ("fitted_md5", "blob_length", "test_metrics", "train_metrics", "coefficients",
                                "report", "predictions"):
                        self.assertEqual(got[key], ref[key], key)
                else:
                    label = algorithm + (", row reader" if any("stats_aggregate = off" in x for x in settings)
                                         else ", aggregate, parallel plan" if settings else ", aggregate")
                    WORST[label] = max([WORST.get(label, 0.0)] + rel_diffs(
                        [got.get(k) for k in ("coefficients", "test_metrics", "predictions", "evaluate")],
                        [ref.get(k) for k in ("coefficients", "test_metrics", "predictions", "evaluate")]))
                    for key in ("test_metrics", "train_metrics", "coefficients", "importance", "report", "evaluate"):
                        if key in ref:
                            self.assertTrue(close(got[key], ref[key], REL), f"{key}: {got[key]} vs {ref[key]}")
                    for a, b in zip(got["predictions"], ref["predictions"]):
                        if task == "regression":
                            self.assertTrue(close(a, b, REL), f"{a} vs {b}")
                        else:  # the same class / cluster for every row
                            self.assertEqual(a["p"], b["p"], f"row {a['id']}")
                            self.assertTrue(close(a, b, REL), f"{a} vs {b}")
        return ref

    # ---------------------------------------------------------------- rows in memory: the same bytes

    def test_regression_in_memory(self):
        for algorithm in ("decision_tree", "random_forest", "gradient_boosting", "svm", "mlp"):
            self.check(self.reg, "progression", algorithm, "regression", exact=True)

    def test_classification_in_memory(self):
        for algorithm in ("logistic_regression", "decision_tree", "random_forest", "gradient_boosting", "svm",
                          "mlp"):
            self.check(self.cls, "cultivar", algorithm, "classification", exact=True)

    def test_kmeans_row_reader(self):
        ref = self.check(self.cls, None, "kmeans", "clustering", exact=True,
                         settings=("SET pg_ml.stats_aggregate = off",))
        self.assertEqual(ref["report"]["reader"], "cursor")

    def test_naive_bayes_row_reader(self):
        ref = self.check(self.cls, "cultivar", "naive_bayes", "classification", exact=True,
                         settings=("SET pg_ml.stats_aggregate = off",))
        self.assertEqual(ref["report"]["reader"], "cursor")

    # ---------------------------------------------------------------- aggregates: equal up to rounding

    PARALLEL = ("SET max_parallel_workers_per_gather = 2", "SET parallel_setup_cost = 0",
                "SET parallel_tuple_cost = 0", "SET min_parallel_table_scan_size = 0")

    def test_linear_family(self):
        for algorithm in sorted(LINEAR):
            for settings in ((), self.PARALLEL, ("SET pg_ml.stats_aggregate = off",)):
                ref = self.check(self.reg, "progression", algorithm, "regression", exact=False, settings=settings)
                self.assertEqual(ref["report"]["reader"], "cursor" if settings and "off" in settings[0] else "aggregate")

    def test_kmeans_aggregate(self):
        for settings in ((), self.PARALLEL):
            ref = self.check(self.cls, None, "kmeans", "clustering", exact=False, settings=settings)
            self.assertEqual(ref["report"]["reader"], "aggregate")

    def test_naive_bayes_aggregate(self):
        for settings in ((), self.PARALLEL):
            ref = self.check(self.cls, "cultivar", "naive_bayes", "classification", exact=False, settings=settings)
            self.assertEqual(ref["report"]["reader"], "aggregate")


class BoostingGrowthTest(PgmlTestCase):
    """Incremental gradient_boosting retraining adds retrain_rounds rounds (default 10), recorded
    in the version's report (total_rounds, trees, and what the retrain added); the blob grows by
    about the same amount per retrain, and a refit starts again from n_estimators."""

    def test_growth_per_retrain(self):
        columns, rows = mixed("diabetes", "bmi")
        parts = [self.table(columns, [r for r in rows if int(r[0]) % 4 == k], "gb") for k in range(4)]
        model = self.model_name("gb")
        self.one("SELECT * FROM ml_train(%s, 'progression', algorithm => 'gradient_boosting', name => %s, "
                 "exclude => ARRAY['id'], hyperparams => '{\"n_estimators\": 100}')", (parts[0], model))
        for k in (1, 2, 3):
            r = self.one("SELECT * FROM ml_retrain(%s, %s, mode => 'incremental', deploy => 'always')",
                         (model, parts[k]))
            self.assertEqual(r["version"], k + 1)
        versions = self.all("SELECT version, blob_length, hyperparams, report FROM ml_versions WHERE model = %s "
                            "ORDER BY version", (model,))
        self.assertEqual([v["report"]["total_rounds"] for v in versions], [100, 110, 120, 130])
        self.assertEqual([v["report"]["trees"] for v in versions], [100, 110, 120, 130])
        self.assertEqual([v["report"].get("total_rounds_added") for v in versions], [None, 10, 10, 10])
        for v in versions:
            self.assertEqual(v["hyperparams"]["n_estimators"], 100)
            self.assertEqual(v["hyperparams"]["retrain_rounds"], 10)
        sizes = [v["blob_length"] for v in versions]
        growth = [b - a for a, b in zip(sizes, sizes[1:])]
        print(f"\ngradient_boosting blob bytes per version: {sizes} (growth {growth})", flush=True)
        for g in growth:
            # 10 rounds of at most 2^7 - 1 nodes each (max_depth 6), about a tenth of the 100 first
            self.assertGreater(g, 0)
            self.assertLess(g, sizes[0] * 0.25)
        # a refit is back to n_estimators rounds
        r = self.one("SELECT * FROM ml_retrain(%s, %s, mode => 'refit', deploy => 'never')", (model, parts[3]))
        report = self.scalar("SELECT report FROM ml_versions WHERE model = %s AND version = %s",
                             (model, r["version"]))
        self.assertEqual(report["total_rounds"], 100)

    def test_retrain_rounds_is_validated(self):
        columns, rows = mixed("diabetes", "bmi")
        t = self.table(columns, rows, "gb")
        import psycopg2.errors
        with self.assertRaises(psycopg2.errors.InvalidParameterValue) as e:
            self.one("SELECT * FROM ml_train(%s, 'progression', algorithm => 'gradient_boosting', "
                     "exclude => ARRAY['id'], hyperparams => '{\"retrain_rounds\": 0}')", (t,))
        self.assertIn("retrain_rounds", str(e.exception))


if __name__ == "__main__":
    unittest.main()
