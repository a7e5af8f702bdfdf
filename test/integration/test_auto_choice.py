"""algorithm => 'auto' earns its name (issue 13): on the real datasets of the accuracy tests, the
algorithm auto picks by cross-validation scores within noise of the best single candidate's on
the same held-out rows.

Each dataset is split as scripts/compare_sklearn.py splits it (train_test_split on the row ids,
test_size=0.25, random_state=0, stratified for classification). pg_ml trains on the training
table with test_size => 0 (auto's cross-validation sees only those rows) and is measured with
ml_evaluate on the test table; every candidate of auto is trained the same way with its defaults.
Scores are the metric auto chooses by (the deploy metric's default: R^2, roc_auc for two classes,
macro F1 for more). "Within noise": the best candidate's test score minus the chosen one's is at
most two standard errors of that difference, paired on the same test rows (a bootstrap of the
test rows), and at least 0.01.

BostonHousing (R's mlbench) is the issue's example: auto used to take linear_regression (test R^2
0.726) by size alone where gradient_boosting reaches 0.886.
"""
import importlib.util
import math
import os
import random
import sys
import unittest

from pgml_test import ROOT, PgmlTestCase

_spec = importlib.util.spec_from_file_location("compare_sklearn", os.path.join(ROOT, "scripts", "compare_sklearn.py"))
compare = importlib.util.module_from_spec(_spec)
sys.modules["compare_sklearn"] = compare
_spec.loader.exec_module(compare)

CANDIDATES = {
    "regression": ["linear_regression", "decision_tree", "gradient_boosting", "random_forest"],
    "classification": ["logistic_regression", "naive_bayes", "decision_tree", "gradient_boosting", "random_forest"],
}
ROWS = []


class AutoChoiceTest(PgmlTestCase):
    @classmethod
    def setUpClass(cls):
        cls.datasets = compare.load(["iris", "wine", "breast_cancer", "diabetes", "BostonHousing",
                                     "PimaIndiansDiabetes2"])

    @classmethod
    def tearDownClass(cls):
        if ROWS:
            print("\n\nalgorithm => 'auto' against each candidate, test score on the same held-out rows")
            for r in ROWS:
                print("  " + r)

    def score(self, model, table, metric):
        with self.conn.cursor() as cur:
            cur.execute("SELECT (ml_evaluate(%s, %s) ->> %s)::float8", (model, table, metric))
            return cur.fetchone()[0]

    def rows(self, ds, table, model_a, model_b):
        """Per test row: the label, and each model's prediction (label or value) and probabilities."""
        with self.conn.cursor() as cur:
            if ds.task == "classification":
                cur.execute(f"SELECT {ds.target}::text, ml_predict_label(%s, t), ml_predict_label(%s, t), "
                            f"ml_predict_proba(%s, t), ml_predict_proba(%s, t) FROM {table} t "
                            f"WHERE {ds.target} IS NOT NULL", (model_a, model_b, model_a, model_b))
            else:
                cur.execute(f"SELECT {ds.target}, ml_predict(%s, t), ml_predict(%s, t), NULL, NULL FROM {table} t "
                            f"WHERE {ds.target} IS NOT NULL", (model_a, model_b))
            return cur.fetchall()

    @staticmethod
    def metric_of(metric, rows, side, classes):
        """metric (r2, f1 macro, roc_auc of classes[1]) of model a (side 1) or b (side 2) on rows."""
        ys = [r[0] for r in rows]
        if metric == "r2":
            mean = sum(ys) / len(ys)
            sst = sum((y - mean) ** 2 for y in ys)
            return 1 - sum((r[0] - r[side]) ** 2 for r in rows) / sst
        if metric == "f1":
            f1s = []
            for c in classes:
                tp = sum(1 for r in rows if r[side] == c and r[0] == c)
                fp = sum(1 for r in rows if r[side] == c and r[0] != c)
                fn = sum(1 for r in rows if r[side] != c and r[0] == c)
                f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
            return sum(f1s) / len(f1s)
        # roc_auc: the probability that a positive row scores above a negative one (ties: half)
        pos = [r[side + 2][1] for r in rows if r[0] == classes[1]]
        neg = [r[side + 2][1] for r in rows if r[0] != classes[1]]
        if not pos or not neg:
            return float("nan")
        wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
        return wins / (len(pos) * len(neg))

    def paired_se(self, metric, rows, classes, resamples=400):
        """The bootstrap standard error of metric(b) - metric(a), resampling the test rows (paired)."""
        rng = random.Random(7)
        diffs = []
        for _ in range(resamples):
            sample = [rows[rng.randrange(len(rows))] for _ in rows]
            d = self.metric_of(metric, sample, 2, classes) - self.metric_of(metric, sample, 1, classes)
            if math.isfinite(d):
                diffs.append(d)
        m = sum(diffs) / len(diffs)
        return math.sqrt(sum((d - m) ** 2 for d in diffs) / (len(diffs) - 1))

    def check(self, name):
        if name not in self.datasets:
            self.skipTest(f"{name}: Rscript with mlbench is not installed")
        ds = self.datasets[name]
        runner = compare.Runner(self.conn)
        try:
            t_train, t_test, _, test, *_ = runner.tables_for(ds)
            # the metric auto chooses by: the deploy metric's default (two classes: roc_auc, more: f1)
            classes = sorted({r[-1] for r in ds.rows if r[-1] is not None})
            metric = "r2" if ds.task == "regression" else "roc_auc" if len(classes) == 2 else "f1"
            scores = {}
            for algo in ["auto"] + CANDIDATES[ds.task]:
                model = f"pgml_auto_{name.lower()}_{algo}_{runner.tag}"
                runner.models.append(model)
                with self.conn.cursor() as cur:
                    cur.execute("SELECT algorithm FROM ml_train(%s, %s, algorithm => %s, task => %s, name => %s, "
                                "exclude => ARRAY['id'], test_size => 0)",
                                (t_train, ds.target, algo, ds.task, model))
                    chosen = cur.fetchone()[0]
                scores[algo] = (chosen, self.score(model, t_test, metric))
            chosen, auto = scores.pop("auto")
            with self.conn.cursor() as cur:
                cur.execute("SELECT count(*), count(*) FILTER (WHERE chosen) FROM ml_trials(%s)",
                            (f"pgml_auto_{name.lower()}_auto_{runner.tag}",))
                trials, chosen_trials = cur.fetchone()
            self.assertEqual((trials, chosen_trials), (len(CANDIDATES[ds.task]), 1),
                             f"{name}: auto did not compare its candidates by cross-validation")
            best_algo, (_, best) = max(scores.items(), key=lambda kv: kv[1][1])
            rows = self.rows(ds, t_test, f"pgml_auto_{name.lower()}_auto_{runner.tag}",
                             f"pgml_auto_{name.lower()}_{best_algo}_{runner.tag}")
            with self.conn.cursor() as cur:
                cur.execute("SELECT array(SELECT jsonb_array_elements_text(classes)) FROM ml_models WHERE name = %s",
                            (f"pgml_auto_{name.lower()}_auto_{runner.tag}",))
                model_classes = cur.fetchone()[0]
            noise = max(0.01, 2 * self.paired_se(metric, rows, model_classes))
            ROWS.append(f"{name}: auto chose {chosen} ({metric} {auto:.4f}); best {best_algo} {best:.4f}; "
                        + ", ".join(f"{a} {s:.4f}" for a, (_, s) in scores.items()))
            self.assertGreaterEqual(auto, best - noise,
                                    f"{name}: auto chose {chosen} ({metric} {auto:.4f}), {best_algo} reaches "
                                    f"{best:.4f} (noise {noise:.4f})")
            self.assertAlmostEqual(auto, scores[chosen][1], places=9,
                                   msg=f"{name}: auto's {chosen} differs from {chosen} trained alone")
        finally:
            runner.cleanup()

    def test_iris(self):
        self.check("iris")

    def test_wine(self):
        self.check("wine")

    def test_breast_cancer(self):
        self.check("breast_cancer")

    def test_diabetes(self):
        self.check("diabetes")

    def test_boston_housing(self):
        self.check("BostonHousing")

    def test_pima_nulls(self):
        self.check("PimaIndiansDiabetes2")


if __name__ == "__main__":
    unittest.main()
