"""pg_ml against scikit-learn, used as the oracle only, on identical rows.

Each dataset is split deterministically (sklearn's train_test_split on the row ids,
random_state=0, stratified for classification). pg_ml trains on a table of exactly the
training rows with test_size => 0 and is measured with ml_evaluate on a table of exactly
the test rows; sklearn fits and scores the same rows.
"""
import json
import unittest

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pgml_test import PgmlTestCase, dataset, rel_close

RESULTS = []  # (case, metric, pg_ml, sklearn, difference, tolerance)


def split(name, target_is_class, test_size=0.25):
    cols, rows = dataset(name)
    ids = [int(r[0]) for r in rows]
    y = [r[-1] for r in rows]
    train_ids, test_ids = train_test_split(
        ids, test_size=test_size, random_state=0, stratify=y if target_is_class else None)
    train_ids, test_ids = set(train_ids), set(test_ids)
    train = [r for r in rows if int(r[0]) in train_ids]
    test = [r for r in rows if int(r[0]) in test_ids]
    return cols, train, test


def xy(rows, classify):
    X = np.array([[float(v) for v in r[1:-1]] for r in rows])
    y = np.array([r[-1] for r in rows]) if classify else np.array([float(r[-1]) for r in rows])
    return X, y


class AccuracyTest(PgmlTestCase):
    @classmethod
    def tearDownClass(cls):
        if not RESULTS:
            return
        print("\n\npg_ml vs scikit-learn (same train/test rows)")
        print(f"{'case':<40} {'metric':<12} {'pg_ml':>14} {'sklearn':>14} {'difference':>11} {'tolerance':>10}")
        for case, metric, pg, sk, diff, tol in sorted(RESULTS):
            print(f"{case:<40} {metric:<12} {pg:>14.8f} {sk:>14.8f} {diff:>11.2e} {tol:>10.0e}")
        print(flush=True)

    def train(self, table, target, algorithm, hyperparams=None):
        model = self.model_name(algorithm)
        r = self.one(
            "SELECT * FROM ml_train(%s, %s, algorithm => %s, name => %s, exclude => ARRAY['id'], "
            "hyperparams => %s::jsonb, test_size => 0)",
            (table, target, algorithm, model, json.dumps(hyperparams or {})))
        self.assertEqual(r["model"], model)
        self.assertEqual(r["rows_test"], 0)
        return model, r

    def evaluate(self, model, table):
        return self.scalar("SELECT ml_evaluate(%s, %s)", (model, table))

    def test_linear_regression_diabetes(self):
        cols, train, test = split("diabetes", False)
        t_train, t_test = self.table(cols, train, "diab_train"), self.table(cols, test, "diab_test")
        model, r = self.train(t_train, "progression", "linear_regression")
        self.assertEqual(r["rows_train"], len(train))
        m = self.evaluate(model, t_test)
        self.assertEqual(m["rows"], len(test))

        Xtr, ytr = xy(train, False)
        Xte, yte = xy(test, False)
        sk = LinearRegression().fit(Xtr, ytr)
        r2_sk = r2_score(yte, sk.predict(Xte))
        RESULTS.append(("linear_regression, diabetes", "r2", m["r2"], r2_sk, abs(m["r2"] - r2_sk), 1e-6))
        self.assertLessEqual(abs(m["r2"] - r2_sk), 1e-6, f"pg_ml r2 {m['r2']} vs sklearn {r2_sk}")

        # the raw coefficients of the version against sklearn's coef_
        coef = self.scalar("SELECT coefficients FROM ml_versions WHERE model = %s AND version = 1", (model,))
        names = [c for c, _ in cols[1:-1]]
        self.assertEqual(sorted(coef["coefficients"]), sorted(names))
        for name, want in zip(names, sk.coef_):
            got = coef["coefficients"][name]
            self.assertTrue(rel_close(got, want, 1e-6), f"coefficient {name}: pg_ml {got} vs sklearn {want}")
        self.assertTrue(rel_close(coef["intercept"], sk.intercept_, 1e-6),
                        f"intercept: pg_ml {coef['intercept']} vs sklearn {sk.intercept_}")
        worst = max(abs(coef["coefficients"][n] - w) / max(abs(w), 1e-12) for n, w in zip(names, sk.coef_))
        RESULTS.append(("linear_regression, diabetes", "coef s5", coef["coefficients"]["s5"], sk.coef_[names.index("s5")],
                        worst, 1e-6))  # difference: the largest relative one over all coefficients

        # and the predictions, row by row
        preds = self.all(
            f'SELECT id, ml_predict(%s, t) AS p FROM "{t_test}" t ORDER BY id', (model,))
        sk_pred = dict(zip((int(r[0]) for r in test), sk.predict(Xte)))
        for row in preds:
            self.assertTrue(rel_close(row["p"], sk_pred[row["id"]], 1e-6),
                            f"row {row['id']}: pg_ml {row['p']} vs sklearn {sk_pred[row['id']]}")

    def test_ridge_diabetes(self):
        cols, train, test = split("diabetes", False)
        t_train, t_test = self.table(cols, train, "diab_train"), self.table(cols, test, "diab_test")
        model, _ = self.train(t_train, "progression", "ridge", {"alpha": 1.0})
        m = self.evaluate(model, t_test)

        Xtr, ytr = xy(train, False)
        Xte, yte = xy(test, False)
        sk = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(Xtr, ytr)
        r2_sk = r2_score(yte, sk.predict(Xte))
        RESULTS.append(("ridge (alpha 1), diabetes", "r2", m["r2"], r2_sk, abs(m["r2"] - r2_sk), 1e-6))
        self.assertLessEqual(abs(m["r2"] - r2_sk), 1e-6, f"pg_ml r2 {m['r2']} vs sklearn {r2_sk}")

        coef = self.scalar("SELECT coefficients FROM ml_versions WHERE model = %s AND version = 1", (model,))
        names = [c for c, _ in cols[1:-1]]
        for name, want in zip(names, sk[-1].coef_):
            got = coef["standardized"][name]
            self.assertTrue(rel_close(got, want, 1e-6), f"standardized coefficient {name}: pg_ml {got} vs sklearn {want}")

    def check_logistic(self, name, target, label):
        cols, train, test = split(name, True)
        t_train, t_test = self.table(cols, train, name + "_train"), self.table(cols, test, name + "_test")
        model, r = self.train(t_train, target, "logistic_regression", {"C": 1.0})
        self.assertEqual(r["task"], "classification")
        m = self.evaluate(model, t_test)
        self.assertEqual(m["rows"], len(test))

        Xtr, ytr = xy(train, True)
        Xte, yte = xy(test, True)
        sk = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(Xtr, ytr)
        acc_sk = accuracy_score(yte, sk.predict(Xte))
        RESULTS.append((f"logistic_regression, {label}", "accuracy", m["accuracy"], acc_sk,
                        abs(m["accuracy"] - acc_sk), 0.01))
        self.assertLessEqual(abs(m["accuracy"] - acc_sk), 0.01 + 1e-12,
                             f"pg_ml accuracy {m['accuracy']} vs sklearn {acc_sk}")

        # the same optimum, not just the same labels: log loss on the test rows
        ll_sk = log_loss(yte, sk.predict_proba(Xte), labels=sk.classes_)
        RESULTS.append((f"logistic_regression, {label}", "log_loss", m["log_loss"], ll_sk, abs(m["log_loss"] - ll_sk), 1e-3))
        self.assertLessEqual(abs(m["log_loss"] - ll_sk), 1e-3, f"pg_ml log loss {m['log_loss']} vs sklearn {ll_sk}")

        # ml_evaluate's accuracy is what ml_predict_label gives row by row
        hits = self.scalar(
            f'SELECT count(*) FILTER (WHERE ml_predict_label(%s, t) = t.{target}::text) FROM "{t_test}" t', (model,))
        self.assertAlmostEqual(hits / len(test), m["accuracy"], places=12)

    def test_logistic_breast_cancer(self):
        self.check_logistic("breast_cancer", "benign", "breast_cancer")

    def test_logistic_iris(self):
        self.check_logistic("iris", "species", "iris (3 classes)")

    def test_logistic_wine(self):
        self.check_logistic("wine", "cultivar", "wine (3 classes)")


if __name__ == "__main__":
    unittest.main()
