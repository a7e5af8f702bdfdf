"""The deploy metric (issue 11) on real data.

An imbalanced binary table (~15% positive: every benign row of sklearn's breast cancer data and a
third of the malignant ones) is not judged by accuracy by default; both versions get every metric
on the same held-out rows; the numbers in ml_retrain's reason are the stored ones, also for
linear_regression through the statistics aggregate (a test split larger than its 10,000-row
sample) and for naive_bayes through its class aggregate.
"""
import csv
import io
import os
import re
import unittest

from pgml_test import PgmlTestCase, dataset

REASON = re.compile(
    r"^(?:deploy => '\w+': (?:not )?deployed; )?test (\w+) (\S+) vs (\S+) of version (\d+) \(([-+]\S+?)(, lower is better)?\) "
    r"on the same (\d+) held-out rows(: deployed|: not deployed, version \d+ stays)?$"
)
LOWER = {"rmse", "mse", "mae", "log_loss", "inertia"}


class DeployMetricTest(PgmlTestCase):
    def imbalanced(self):
        cols, rows = dataset("breast_cancer")
        # target benign: 0 = malignant; positive = malignant, a third of them kept
        cols = cols[:-1] + [("malignant", "boolean")]
        kept = [r[:-1] + ["true" if r[-1] == "0" else "false"] for r in rows if r[-1] == "1" or int(r[0]) % 3 == 0]
        t = self.table(cols, kept, prefix="bc15")
        share = self.scalar(f"SELECT avg(malignant::int)::float8 FROM {t}")
        self.assertTrue(0.12 < share < 0.2, share)
        return t

    def check_retrain(self, model, r, metric):
        """r: a row of ml_retrain; the reason against the stored metrics of both versions."""
        m = REASON.match(r["reason"])
        self.assertIsNotNone(m, r["reason"])
        name, now_s, prev_s, prev_version, margin, lower, rows, _ = m.groups()
        self.assertEqual(name, metric)
        self.assertEqual(bool(lower), metric in LOWER)
        self.assertEqual(int(rows), r["rows_test"])
        self.assertEqual(int(prev_version), r["parent_version"])
        # every metric of the new version, for the previous one too, numbers both
        for k, v in r["metrics"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.assertIn(k, r["previous_metrics"], f"{k} missing from previous_metrics")
                self.assertIsInstance(r["previous_metrics"][k], (int, float), k)
        self.assertEqual(r["metrics"]["rows"], r["previous_metrics"]["rows"])
        stored = self.one(
            "SELECT test_metrics FROM ml_versions WHERE model = %s AND version = %s", (model, r["version"])
        )["test_metrics"]
        self.assertEqual(stored, r["metrics"])
        now, prev = stored[metric], r["previous_metrics"][metric]
        # the values as printed, with the same number of significant digits
        digits = [p for p in range(4, 18) if "%.*g" % (p, now) == now_s and "%.*g" % (p, prev) == prev_s]
        self.assertTrue(digits, (now_s, prev_s, now, prev))
        self.assertAlmostEqual(float(margin), now - prev, delta=abs(now - prev) * 0.01 + 1e-12)
        # not worse, with the decision's tolerance (src/core/deploy_metric.cpp: 1e-12 relative)
        tol = 1e-12 * max(1.0, abs(prev))
        better = now <= prev + tol if metric in LOWER else now >= prev - tol
        if r["reason"].startswith("test "):
            self.assertEqual(r["deployed"], better, r["reason"])
        return now, prev

    def retrain(self, model, relation, **kw):
        args = ", ".join(f"{k} => %({k})s" for k in kw)
        return self.one(
            f"SELECT * FROM ml_retrain(%(model)s, %(relation)s{', ' + args if args else ''})",
            dict(model=model, relation=relation, **kw),
        )

    def test_imbalanced_binary_default_is_not_accuracy(self):
        t = self.imbalanced()
        model = self.model_name("bc")
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE VIEW {t}_half AS SELECT * FROM {t} WHERE id % 2 = 0")
        self.scalar(
            "SELECT model FROM ml_train(%s, 'malignant', algorithm => 'logistic_regression', name => %s, exclude => ARRAY['id'])",
            (f"{t}_half", model),
        )
        metric = self.scalar("SELECT deploy_metric FROM ml_models WHERE name = %s", (model,))
        self.assertEqual(metric, "roc_auc")
        r = self.retrain(model, t, mode="refit")
        self.check_retrain(model, r, "roc_auc")
        for k in ("roc_auc", "log_loss", "f1", "accuracy"):
            self.assertIsNotNone(r["previous_metrics"].get(k), k)
        # the user's choice, in both directions
        for metric in ("f1", "log_loss", "recall"):
            self.scalar("SELECT ml_set_deploy_metric(%s, %s)", (model, metric))
            self.check_retrain(model, self.retrain(model, t, mode="refit", seed=len(metric)), metric)

    def test_naive_bayes_class_aggregate(self):
        t = self.imbalanced()
        model = self.model_name("bcnb")
        self.scalar(
            "SELECT model FROM ml_train(%s, 'malignant', algorithm => 'naive_bayes', name => %s, exclude => ARRAY['id'])",
            (t, model),
        )
        self.assertEqual(self.scalar("SELECT deploy_metric FROM ml_models WHERE name = %s", (model,)), "roc_auc")
        r = self.retrain(model, t, mode="refit", seed=11)
        self.check_retrain(model, r, "roc_auc")
        self.assertIsNotNone(r["previous_metrics"].get("log_loss"))

    def test_linear_regression_aggregate_exact(self):
        cols, rows = dataset("diabetes")
        # 240 copies of the diabetes rows, each copy's target shifted a little: a test split of
        # about 10,600 rows in the retrain's half, more than the aggregate's 10,000-row sample
        big = []
        for c in range(240):
            for r in rows:
                big.append([str(c * 10000 + int(r[0]))] + r[1:-1] + [str(float(r[-1]) + (c % 7) * 0.25)])
        t = self.table(cols, big, prefix="diab", unlogged=True)
        model = self.model_name("diab")
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE VIEW {t}_old AS SELECT * FROM {t} WHERE id % 2 = 0")
            cur.execute(f"CREATE VIEW {t}_new AS SELECT * FROM {t} WHERE id % 2 = 1")
        self.scalar(
            "SELECT model FROM ml_train(%s, 'progression', algorithm => 'linear_regression', name => %s, exclude => ARRAY['id'])",
            (f"{t}_old", model),
        )
        self.assertEqual(self.scalar("SELECT deploy_metric FROM ml_models WHERE name = %s", (model,)), "r2")
        r = self.retrain(model, f"{t}_new", mode="incremental")
        self.assertGreater(r["rows_test"], 10000)
        self.check_retrain(model, r, "r2")
        self.assertNotIn("mae_sample_rows", r["metrics"])
        self.scalar("SELECT ml_set_deploy_metric(%s, 'mae')", (model,))
        self.check_retrain(model, self.retrain(model, t, mode="refit"), "mae")

    def test_cli_comparison_has_no_blank_cell(self):
        """pg_ml retrain --csv of a classifier: every metric of the new version has the previous one's beside it."""
        from test_cli import CLI, run_cli

        if not (os.path.isfile(CLI) and os.access(CLI, os.X_OK)):
            self.skipTest(f"the pg_ml client is not built: {CLI}")
        t = self.imbalanced()
        model = self.model_name("bccli")
        self.scalar(
            "SELECT model FROM ml_train(%s, 'malignant', algorithm => 'logistic_regression', name => %s, exclude => ARRAY['id'])",
            (t, model),
        )
        cols = [r["column_name"] for r in self.all(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND column_name <> 'id' "
            "ORDER BY ordinal_position", (t,))]
        rows = self.all(f"SELECT {', '.join(cols)} FROM {t} WHERE id % 3 <> 1")
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([("t" if r[c] else "f") if isinstance(r[c], bool) else r[c] for c in cols])
        path = os.path.join(self.tmpdir(), "new.csv")
        with open(path, "w", newline="") as f:
            f.write(out.getvalue())
        rc, text, err = run_cli("retrain", "--model", model, "--csv", path, "--mode", "refit")
        self.assertEqual(rc, 0, err)
        table = text.split("version 1\n", 1)[1].split("Deployed:", 1)[0]
        keys = set()
        for line in table.strip("\n").split("\n"):
            self.assertEqual(len(line.split()), 3, f"blank cell in {line!r}:\n{text}")
            keys.add(line.split()[0])
        self.assertTrue({"accuracy", "f1", "roc_auc", "log_loss"} <= keys, text)
        self.assertRegex(text, r"Deployed: (yes|no) \((?:deploy => '\w+': (?:not )?deployed; )?test roc_auc \S+ vs \S+ of version 1 ")

    def tmpdir(self):
        import shutil
        import tempfile

        d = tempfile.mkdtemp(prefix="pgml_dm_")
        self.addCleanup(shutil.rmtree, d)
        return d


if __name__ == "__main__":
    unittest.main()
