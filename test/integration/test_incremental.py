"""Incremental retraining of linear models is exact.

A model trained on rows A (test_size => 0) and retrained incrementally on rows B
(test_size => 0) must equal a model trained on A and B together: same raw coefficients
and intercept (relative 1e-8), same predictions.
"""
import unittest

import numpy as np

from pgml_test import PgmlTestCase, dataset, rel_close

REL = 1e-8


class IncrementalTest(PgmlTestCase):
    def coefficients(self, model, version):
        c = self.scalar("SELECT coefficients FROM ml_versions WHERE model = %s AND version = %s", (model, version))
        self.assertIsNotNone(c, f"no coefficients for {model} v{version}")
        return c

    def assertSameModel(self, inc, inc_version, full, label):
        a = self.coefficients(inc, inc_version)
        b = self.coefficients(full, 1)
        self.assertEqual(sorted(a["coefficients"]), sorted(b["coefficients"]), f"{label}: feature sets differ")
        scale = max(abs(v) for v in b["coefficients"].values())
        for k, want in b["coefficients"].items():
            got = a["coefficients"][k]
            self.assertTrue(rel_close(got, want, REL, abs_floor=scale * 1e-6),
                            f"{label}: coefficient {k}: incremental {got!r} vs full {want!r}")
        self.assertTrue(rel_close(a["intercept"], b["intercept"], REL, abs_floor=scale * 1e-6),
                        f"{label}: intercept: incremental {a['intercept']!r} vs full {b['intercept']!r}")

    def assertSamePredictions(self, inc, full, table):
        rows = self.all(f'SELECT ml_predict(%s, t) AS a, ml_predict(%s, t) AS b FROM "{table}" t', (inc, full))
        self.assertTrue(rows)
        for r in rows:
            self.assertTrue(rel_close(r["a"], r["b"], REL, abs_floor=1.0), f"prediction {r['a']!r} vs {r['b']!r}")

    def run_case(self, cols, rows, split_at, target, algorithm="linear_regression", hyperparams="{}"):
        first = self.table(cols, rows[:split_at], "inc_first")
        rest = self.table(cols, rows[split_at:], "inc_rest")
        everything = self.table(cols, rows, "inc_all")
        inc, full = self.model_name("inc"), self.model_name("full")

        r = self.one("SELECT * FROM ml_train(%s, %s, algorithm => %s, name => %s, exclude => ARRAY['id'], "
                     "hyperparams => %s::jsonb, test_size => 0)", (first, target, algorithm, inc, hyperparams))
        self.assertEqual(r["rows_train"], split_at)
        r = self.one("SELECT * FROM ml_retrain(%s, %s, mode => 'incremental', test_size => 0)", (inc, rest))
        self.assertEqual((r["version"], r["parent_version"], r["mode"]), (2, 1, "incremental"))
        self.assertTrue(r["deployed"], r["reason"])
        r = self.one("SELECT * FROM ml_train(%s, %s, algorithm => %s, name => %s, exclude => ARRAY['id'], "
                     "hyperparams => %s::jsonb, test_size => 0)", (everything, target, algorithm, full, hyperparams))
        self.assertEqual(r["rows_train"], len(rows))

        v = self.one("SELECT rows_train, rows_test, mode, parent_version FROM ml_versions WHERE model = %s AND version = 2",
                     (inc,))
        self.assertEqual((v["rows_train"], v["rows_test"], v["mode"], v["parent_version"]),
                         (len(rows), 0, "incremental", 1))
        self.assertSameModel(inc, 2, full, f"{algorithm} on {target}")
        self.assertSamePredictions(inc, full, everything)
        return inc, full, everything

    def test_diabetes_linear_regression(self):
        cols, rows = dataset("diabetes")
        self.run_case(cols, rows, 300, "progression")

    def test_diabetes_ridge(self):
        cols, rows = dataset("diabetes")
        self.run_case(cols, rows, 300, "progression", "ridge", '{"alpha": 1.0}')

    def test_diabetes_three_increments(self):
        """Two successive incremental retrains equal one training on every row."""
        cols, rows = dataset("diabetes")
        a, b, c = (self.table(cols, part, "inc_part") for part in (rows[:150], rows[150:300], rows[300:]))
        everything = self.table(cols, rows, "inc_all")
        inc, full = self.model_name("inc"), self.model_name("full")
        self.one("SELECT * FROM ml_train(%s, 'progression', algorithm => 'linear_regression', name => %s, "
                 "exclude => ARRAY['id'], test_size => 0)", (a, inc))
        self.one("SELECT * FROM ml_retrain(%s, %s, mode => 'incremental', test_size => 0)", (inc, b))
        r = self.one("SELECT * FROM ml_retrain(%s, %s, mode => 'incremental', test_size => 0)", (inc, c))
        self.assertEqual((r["version"], r["parent_version"]), (3, 2))
        self.one("SELECT * FROM ml_train(%s, 'progression', algorithm => 'linear_regression', name => %s, "
                 "exclude => ARRAY['id'], test_size => 0)", (everything, full))
        self.assertSameModel(inc, 3, full, "three increments")

    @staticmethod
    def synthetic(n=442, seed=7, null_from=0, new_level_from=None):
        """id, x1, x2 (some NULLs), plan (categorical, some NULLs), active (boolean), y.

        NULLs in x2 only appear from row null_from on; level 'platinum' of plan only from
        row new_level_from on (never when None).
        """
        rng = np.random.default_rng(seed)
        cols = [("id", "integer"), ("x1", "float8"), ("x2", "float8"), ("plan", "text"), ("active", "boolean"),
                ("y", "float8")]
        effect = {"basic": 0.0, "gold": 4.0, "silver": 1.5, "platinum": 9.0, None: -2.0}
        rows = []
        for i in range(n):
            x1 = rng.normal(10, 3)
            x2 = rng.normal(-5, 2)
            x2_null = i >= null_from and rng.random() < 0.15
            levels = ["basic", "silver", "gold"] + (["platinum"] if new_level_from is not None and i >= new_level_from else [])
            plan = levels[rng.integers(len(levels))] if rng.random() > 0.08 else None
            active = bool(rng.random() < 0.4)
            y = 2.5 * x1 - 1.25 * (x2 if not x2_null else -5) + effect[plan] + (3.0 if active else 0.0) + rng.normal(0, 1)
            rows.append([i, repr(float(x1)), None if x2_null else repr(float(x2)), plan, "t" if active else "f",
                         repr(float(y))])
        return cols, rows

    def test_categorical_and_nulls(self):
        cols, rows = self.synthetic()
        inc, full, _ = self.run_case(cols, rows, 300, "y")
        coef = self.coefficients(full, 1)["coefficients"]
        self.assertTrue(any(k.startswith("plan") for k in coef), f"no one-hot features for plan: {sorted(coef)}")
        nulls = self.scalar("SELECT report FROM ml_versions WHERE model = %s AND version = 1", (full,))
        self.assertIn("imputed", nulls)

    def test_nulls_first_seen_in_new_rows(self):
        """x2 has no NULL among the first rows: the retrain meets its first NULLs."""
        cols, rows = self.synthetic(seed=11, null_from=300)
        self.run_case(cols, rows, 300, "y")

    def test_new_category_level_in_new_rows(self):
        """plan = 'platinum' only appears in the retrain rows: it becomes a feature, as in a full training."""
        cols, rows = self.synthetic(seed=5, new_level_from=300)
        inc, _, _ = self.run_case(cols, rows, 300, "y")
        self.assertIn("plan=platinum", self.coefficients(inc, 2)["coefficients"])


if __name__ == "__main__":
    unittest.main()
