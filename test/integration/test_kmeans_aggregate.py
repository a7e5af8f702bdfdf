"""k-means through the aggregates (ml.train_stats, then ml.kmeans_step per Lloyd step) against
the row reader (pg_ml.stats_aggregate = off) and scikit-learn's KMeans on the same rows.

The tables hold more rows than the statistics sample the starting centres are fitted on
(50,000), so the Lloyd steps over the whole relation do real work; the scans run on parallel
workers (forced plan).
"""
import unittest

import numpy as np

from pgml_test import PgmlTestCase

PARALLEL = ("SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; "
            "SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2")


def blobs(n, p, k, seed, spread=1.0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(k, p))
    labels = rng.integers(0, k, size=n)
    return centres[labels] + rng.normal(0, spread, size=(n, p))


class KMeansAggregateTest(PgmlTestCase):
    def train(self, table, name, hyperparams, aggregate=True, features=None):
        with self.conn.cursor() as cur:
            cur.execute("SET pg_ml.progress = off")
            cur.execute(PARALLEL)
            cur.execute("SET pg_ml.stats_aggregate = %s", ("on" if aggregate else "off",))
            cur.execute(
                "SELECT model FROM ml_train(%s, NULL, 'kmeans', name => %s, hyperparams => %s::jsonb, "
                "test_size => 0, seed => 3" + (", features => %s" if features else "") + ")",
                (table, name, hyperparams) + ((features,) if features else ()))
            cur.execute("RESET pg_ml.stats_aggregate")
        return self.one("SELECT train_metrics, report FROM ml_versions WHERE model = %s", (name,))

    def numeric_table(self, X):
        cols = [("id", "integer")] + [(f"x{j}", "float8") for j in range(X.shape[1])]
        rows = [[str(i)] + [repr(float(v)) for v in r] for i, r in enumerate(X)]
        t = self.table(cols, rows, prefix="kma")
        with self.conn.cursor() as cur:
            cur.execute(f"ANALYZE {t}")
        return t

    def test_inertia_matches_rows_and_sklearn(self):
        from sklearn.cluster import KMeans
        from sklearn.preprocessing import StandardScaler

        X = blobs(60000, 6, 5, seed=11, spread=2.0)
        t = self.numeric_table(X)
        feats = [f"x{j}" for j in range(6)]
        hp = '{"k": 5, "n_init": 4, "max_iter": 300}'
        agg = self.train(t, self.model_name("kma"), hp, True, feats)
        rows = self.train(t, self.model_name("kmr"), hp, False, feats)
        self.assertEqual(agg["report"]["reader"], "aggregate")
        self.assertEqual(rows["report"]["reader"], "cursor")
        self.assertEqual(agg["report"]["kmeans_init_rows"], 50000)
        self.assertLessEqual(agg["report"]["kmeans_scans"], 31)
        self.assertEqual(agg["train_metrics"]["rows"], 60000)
        ia, ir = agg["train_metrics"]["inertia"], rows["train_metrics"]["inertia"]
        self.assertAlmostEqual(ia / ir, 1.0, delta=1e-6)
        # scikit-learn on the same rows, standardized (pg_ml's scaled space)
        Z = StandardScaler().fit_transform(X)
        sk = KMeans(n_clusters=5, n_init=4, max_iter=300, random_state=0).fit(Z)
        self.assertLessEqual(ia, sk.inertia_ * (1 + 1e-3), f"pg_ml {ia} vs sklearn {sk.inertia_}")
        self.assertGreaterEqual(ia, sk.inertia_ * (1 - 1e-3), f"pg_ml {ia} vs sklearn {sk.inertia_}")
        # the silhouette is measured on a bounded sample
        self.assertEqual(agg["train_metrics"]["silhouette_sample_rows"], 2000)

    def test_categorical_nulls_and_holdout_match_rows(self):
        X = blobs(60000, 3, 4, seed=5)
        lab = np.argmin(((X[:, None, :] - X[:4][None, :, :]) ** 2).sum(-1), axis=1)
        rows = []
        for i, r in enumerate(X):
            g = None if i % 17 == 0 else ["gold", "it's", 'x"; DROP TABLE y; --', "z"][(lab[i] + (i % 7 == 0)) % 4]
            c = None if i % 9 == 0 else repr(float(r[2]))
            rows.append([str(i), repr(float(r[0])), repr(float(r[1])), c, g])
        t = self.table([("id", "integer"), ("a", "float8"), ("b", "float8"), ("c", "float8"), ("g", "text")],
                       rows, prefix="kmc")
        with self.conn.cursor() as cur:
            cur.execute(f"ANALYZE {t}")
            cur.execute("SET pg_ml.progress = off")
            cur.execute(PARALLEL)
            res = {}
            for aggregate in (True, False):
                name = self.model_name("kmc")
                cur.execute("SET pg_ml.stats_aggregate = %s", ("on" if aggregate else "off",))
                cur.execute("SELECT model FROM ml_train(%s, NULL, 'kmeans', name => %s, exclude => ARRAY['id'], "
                            "hyperparams => '{\"k\": 4, \"n_init\": 3}', test_size => 0.25)", (t, name))
                res[aggregate] = (name, self.one("SELECT train_metrics, test_metrics, report, data_fingerprint "
                                                 "FROM ml_versions WHERE model = %s", (name,)))
            cur.execute("RESET pg_ml.stats_aggregate")
        (na, a), (nr, r) = res[True], res[False]
        self.assertEqual(a["report"]["reader"], "aggregate")
        self.assertEqual(a["data_fingerprint"], r["data_fingerprint"])
        self.assertEqual(a["report"]["imputed"], r["report"]["imputed"])
        for split in ("train_metrics", "test_metrics"):
            self.assertEqual(a[split]["rows"], r[split]["rows"])
            self.assertAlmostEqual(a[split]["inertia"] / r[split]["inertia"], 1.0, delta=1e-6)
        # the same partition of the rows
        pairs = self.scalar(f"SELECT count(DISTINCT (ml_predict(%s, t), ml_predict(%s, t))) FROM {t} t", (na, nr))
        self.assertEqual(pairs, 4)


if __name__ == "__main__":
    unittest.main()
