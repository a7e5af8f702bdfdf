"""What a retrain learns, on real data (the README's retrain table).

- A logistic model trained on 400 rows of breast_cancer and retrained (mode auto) on the 169 new
  rows refits on all 569 rows: it never trains on the new rows alone unless mode => 'refit' says
  so, and then the confirmation says what was left out.
- A linear model retrained twice on the same rows learns them once: the second retrain is
  refused, as is a copy of the table; rows_train counts each row once, and the incremental chain
  equals one fit on every row.
- Rows added to the training table are the only rows an incremental retrain reads, also through
  an auto-retrain job (which runs ml_retrain on the table itself).
"""
import unittest

import psycopg2

from pgml_test import PgmlTestCase, dataset, rel_close


class RetrainSemanticsTest(PgmlTestCase):
    def test_logistic_refits_on_old_and_new_rows(self):
        cols, rows = dataset("breast_cancer")
        old = self.table(cols, rows[:400], "bc_old")
        new = self.table(cols, rows[400:], "bc_new")
        m = self.model_name("bc")
        r = self.one("SELECT * FROM ml_train(%s, 'benign', algorithm => 'logistic_regression', name => %s, "
                     "exclude => ARRAY['id'], task => 'classification')", (old, m))
        self.assertEqual(r["rows_train"] + r["rows_test"], 400)
        r = self.one("SELECT * FROM ml_retrain(%s, %s)", (m, new))
        self.assertEqual(r["mode"], "refit_all")
        # every row of both relations, not the 169 new ones alone
        self.assertEqual(r["rows_train"] + r["rows_test"], len(rows))
        self.assertIn(f"public.{old}", r["learned"])
        self.assertIn(f"public.{new}", r["learned"])
        self.assertIn("logistic_regression has no exact incremental form", r["learned"])
        src = self.all("SELECT e->>'relation' AS relation FROM ml_versions v, jsonb_array_elements(v.sources) e "
                       "WHERE v.model = %s AND v.version = 2 ORDER BY 1", (m,))
        self.assertEqual([s["relation"] for s in src], sorted([f"public.{old}", f"public.{new}"]))
        # it equals a fresh model trained on all the rows with the same seed (same rows, same model)
        both = self.table(cols, rows, "bc_all")
        full = self.model_name("bc_full")
        self.one("SELECT * FROM ml_train(%s, 'benign', algorithm => 'logistic_regression', name => %s, "
                 "exclude => ARRAY['id'], task => 'classification')", (both, full))
        a = self.scalar("SELECT coefficients FROM ml_versions WHERE model = %s AND version = 2", (m,))
        b = self.scalar("SELECT coefficients FROM ml_versions WHERE model = %s AND version = 1", (full,))
        for k, want in b["coefficients"].items():
            self.assertTrue(rel_close(a["coefficients"][k], want, 1e-4, abs_floor=1e-4), (k, a["coefficients"][k], want))
        # the new rows alone only when asked, and said so
        r = self.one("SELECT * FROM ml_retrain(%s, %s, mode => 'refit', deploy => 'never')", (m, new))
        self.assertEqual((r["mode"], r["rows_train"] + r["rows_test"]), ("refit", len(rows) - 400))
        self.assertIn("are not in this version", r["learned"])

    def test_linear_never_learns_rows_twice(self):
        cols, rows = dataset("diabetes")
        base = self.table(cols, rows[:300], "db_base")
        new = self.table(cols, rows[300:], "db_new")
        m = self.model_name("db")
        self.one("SELECT * FROM ml_train(%s, 'progression', algorithm => 'linear_regression', name => %s, "
                 "exclude => ARRAY['id'], test_size => 0)", (base, m))
        r = self.one("SELECT * FROM ml_retrain(%s, %s, test_size => 0)", (m, new))
        self.assertEqual((r["mode"], r["rows_train"]), ("incremental", len(rows)))
        fingerprint = self.scalar("SELECT data_fingerprint FROM ml_versions WHERE model = %s AND version = 2", (m,))
        # the same relation again, and a copy of it in another order: refused, nothing written
        self.assertSqlError("55000", "SELECT * FROM ml_retrain(%s, %s, test_size => 0)", (m, new),
                            message="has no rows that version 2")
        copy = self.table(cols, list(reversed(rows[300:])), "db_copy")
        self.assertSqlError("55000", "SELECT * FROM ml_retrain(%s, %s, test_size => 0)", (m, copy),
                            message="has already learned the rows")
        self.assertEqual(self.scalar("SELECT count(*) FROM ml_versions WHERE model = %s", (m,)), 2)
        self.assertEqual(self.scalar("SELECT data_fingerprint FROM ml_versions WHERE model = %s AND deployed", (m,)),
                         fingerprint)
        # rows added to the first table: only they are read; the chain equals one fit on all rows
        extra = [[str(1000 + i)] + r[1:] for i, r in enumerate(rows[:20])]
        with self.conn.cursor() as cur:
            for e in extra:
                cur.execute(f'INSERT INTO "{base}" VALUES ({", ".join(["%s"] * len(e))})', e)
        r = self.one("SELECT * FROM ml_retrain(%s, %s, test_size => 0)", (m, base))
        self.assertEqual((r["mode"], r["rows_train"]), ("incremental", len(rows) + 20))
        self.assertIn("20 new rows", r["learned"])
        everything = self.table(cols, rows + extra, "db_all")
        full = self.model_name("db_full")
        self.one("SELECT * FROM ml_train(%s, 'progression', algorithm => 'linear_regression', name => %s, "
                 "exclude => ARRAY['id'], test_size => 0)", (everything, full))
        a = self.scalar("SELECT coefficients FROM ml_versions WHERE model = %s AND deployed", (m,))
        b = self.scalar("SELECT coefficients FROM ml_versions WHERE model = %s AND version = 1", (full,))
        for k, want in b["coefficients"].items():
            self.assertTrue(rel_close(a["coefficients"][k], want, 1e-8, abs_floor=1e-6), (k, a["coefficients"][k], want))

    def test_auto_retrain_job_learns_new_rows_once(self):
        cols, rows = dataset("diabetes")
        t = self.table(cols, rows[:300], "db_job")
        m = self.model_name("dbj")
        self.one("SELECT * FROM ml_train(%s, 'progression', algorithm => 'ridge', name => %s, "
                 "exclude => ARRAY['id'], test_size => 0)", (t, m))
        self.one("SELECT ml_auto_retrain(%s, %s, 50)", (m, t))
        with self.conn.cursor() as cur:
            for i, r in enumerate(rows[300:]):
                cur.execute(f'INSERT INTO "{t}" VALUES ({", ".join(["%s"] * len(r))})', r)
        jobs = self.all("SELECT * FROM ml_run_jobs()")
        self.assertTrue(jobs)
        self.assertTrue(all(j["status"] == "succeeded" for j in jobs), jobs)
        v = self.all("SELECT version, mode, rows_train FROM ml_versions WHERE model = %s ORDER BY version", (m,))
        # every row once: the last version holds all 442 rows, whatever number of jobs ran
        self.assertEqual(v[-1]["rows_train"], len(rows))
        self.assertTrue(all(x["mode"] in ("train", "incremental") for x in v), v)
        self.assertEqual(sorted({x["rows_train"] for x in v}), [x["rows_train"] for x in v])


if __name__ == "__main__":
    unittest.main()
