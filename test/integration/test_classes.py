"""A model's classes are part of its contract (issue 11), on real datasets (iris, breast_cancer,
wine from Debian's python3-sklearn):

- a retrain CSV with a mistyped label is refused by `pg_ml retrain --csv`, naming each unknown
  label, its rows and its lines (quoted fields spanning lines counted), and nothing is written;
  in every mode; `--allow-new-classes` (allow_new_classes => true) makes a refit with them;
- after any retrain / ml_deploy / ml_rollback, ml_models.classes is the deployed version's, in
  the order ml_predict_proba returns (checked row by row with ml_class_probabilities);
- ALTER EXTENSION UPDATE fills ml.versions.classes of the versions an older release trained
  from their blobs (not from ml.models.classes), and an unreadable blob does not stop it.

The CLI binary is $PGML_CLI, else build/pg_ml."""
import csv
import io
import os
import subprocess
import unittest

import psycopg2

import pgml_test
from pgml_test import PgmlTestCase, connect, create_database, dataset, drop_database, unique
from test_cli import CLI, CliTestCase, run_cli


def labelled_rows(name, keep):
    """(columns, rows) of a dataset: the rows whose id satisfies keep(id)."""
    columns, rows = dataset(name)
    return columns, [r for r in rows if keep(int(r[0]))]


def csv_text(columns, rows, extra=None):
    """The rows as CSV with a header; extra: {row index: text of a "note" column} (may hold newlines)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    names = [c for c, _ in columns]
    w.writerow(names + (["note"] if extra is not None else []))
    for i, r in enumerate(rows):
        w.writerow(list(r) + ([extra.get(i, "")] if extra is not None else []))
    return out.getvalue()


class CsvUnknownLabelsTest(CliTestCase):
    """pg_ml retrain --csv with labels the deployed version does not know."""

    def iris_model(self, algorithm):
        columns, rows = labelled_rows("iris", lambda i: i % 5 != 0)
        tab = self.table(columns, rows, prefix="iris")
        name = self.model_name("iris_" + algorithm[:5])
        self.scalar("SELECT version FROM ml_train(%s, 'species', algorithm => %s, name => %s, exclude => '{id}')",
                    (tab, algorithm, name))
        return name

    def state(self, model):
        """What a refused retrain must leave as it was."""
        return (self.versions(model), self.deployed(model),
                self.scalar("SELECT classes FROM ml_models WHERE name = %s", (model,)),
                self.scalar("SELECT count(*) FROM ml.versions v JOIN ml.models m ON m.id = v.model_id "
                            "WHERE m.name = %s", (model,)),
                self.scalar("SELECT count(*) FROM ml.deployments d JOIN ml.models m ON m.id = d.model_id "
                            "WHERE m.name = %s", (model,)))

    def mistyped_csv(self):
        """The held-out iris rows with three mistyped labels; a quoted note spans two lines
        before them, so records and lines differ. Returns (path, {label: [lines]})."""
        columns, rows = labelled_rows("iris", lambda i: i % 5 == 0)
        rows = [list(r) for r in rows]
        rows[2][-1] = "setosaa"      # record 3
        rows[7][-1] = "Virginica"    # record 8
        rows[25][-1] = "Virginica"   # record 26
        text = csv_text(columns, rows, extra={1: "measured\ntwice"})  # record 2 spans two lines
        # header on line 1, record n on line n + 1 up to record 2, on line n + 2 after it
        return self.write("new.csv", text), {"setosaa": [5], "Virginica": [10, 28]}

    def test_mistyped_labels_are_refused_with_their_lines(self):
        for algorithm, modes in (("logistic_regression", ["auto", "refit"]),
                                 ("naive_bayes", ["auto", "incremental", "refit"])):
            model = self.iris_model(algorithm)
            before = self.state(model)
            path, lines = self.mistyped_csv()
            for mode in modes:
                with self.subTest(algorithm=algorithm, mode=mode):
                    rc, out, err = run_cli("retrain", "--model", model, "--csv", path, "--mode", mode)
                    self.assertEqual(rc, 3, err)
                    self.assertEqual(out, "")
                    self.assertIn(f'{path}: column "species" holds 2 classes model "{model}" does not know; '
                                  f'nothing was written', err)
                    self.assertIn('"setosaa" (1 row): line 5\n', err)
                    self.assertIn('"Virginica" (2 rows): lines 10, 28\n', err)
                    self.assertIn('The model\'s classes are "setosa", "versicolor", "virginica".', err)
                    incremental = mode == "incremental" or (mode == "auto" and algorithm == "naive_bayes")
                    self.assertIn("--mode refit --allow-new-classes" if incremental else
                                  "retrain with --allow-new-classes", err)
                    self.assertEqual(self.state(model), before)
            # an incremental update cannot add them, even when allowed
            if algorithm == "naive_bayes":
                rc, out, err = run_cli("retrain", "--model", model, "--csv", path, "--mode", "incremental",
                                       "--allow-new-classes")
                self.assertEqual(rc, 3, err)
                self.assertIn('"Virginica" (2 rows): lines 10, 28\n', err)
                self.assertIn("An incremental retrain cannot add a class", err)
                self.assertEqual(self.state(model), before)
            # allowed: a refit learns them, and the view and ml_predict_proba follow the deployed version
            rc, out, err = run_cli("retrain", "--model", model, "--csv", path, "--mode", "refit",
                                   "--allow-new-classes", "--deploy", "always")
            self.assertEqual(rc, 0, err)
            self.assertEqual(self.versions(model), [1, 2])
            self.assertEqual(self.scalar("SELECT classes FROM ml_models WHERE name = %s", (model,)),
                             ["Virginica", "setosa", "setosaa", "versicolor", "virginica"])
            self.assertEqual(self.scalar("SELECT array_length(ml_predict_proba(%s, ARRAY[5.0, 3.0, 1.5, 0.2]), 1)",
                                         (model,)), 5)

    def test_many_lines_are_capped_per_label(self):
        model = self.iris_model("logistic_regression")
        before = self.state(model)
        columns, rows = labelled_rows("iris", lambda i: i % 5 == 0)
        rows = [list(r) for r in rows]
        for r in rows[:14]:
            r[-1] = "negative"
        path = self.write("many.csv", csv_text(columns, rows))
        rc, _, err = run_cli("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 3, err)
        self.assertIn('"negative" (14 rows): lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 4 more\n', err)
        self.assertEqual(self.state(model), before)

    def test_numeric_labels(self):
        # breast_cancer: an integer target (0 malignant, 1 benign); a "2" is a class it does not know
        columns, rows = labelled_rows("breast_cancer", lambda i: i % 4 != 0)
        tab = self.table(columns, rows, prefix="bc")
        model = self.model_name("bc")
        self.scalar("SELECT version FROM ml_train(%s, 'benign', algorithm => 'logistic_regression', name => %s, "
                    "exclude => '{id}')", (tab, model))
        self.assertEqual(self.scalar("SELECT classes FROM ml_models WHERE name = %s", (model,)), ["0", "1"])
        before = self.state(model)
        columns, rows = labelled_rows("breast_cancer", lambda i: i % 4 == 0)
        rows = [list(r) for r in rows]
        rows[40][-1] = "2"
        path = self.write("bc.csv", csv_text(columns, rows))
        rc, _, err = run_cli("retrain", "--model", model, "--csv", path)
        self.assertEqual(rc, 3, err)
        self.assertIn(f'{path}: column "benign" holds a class model "{model}" does not know', err)
        self.assertIn('"2" (1 row): line 42\n', err)
        self.assertEqual(self.state(model), before)
        # through SQL the same refusal, with its SQLSTATE
        tab_new = self.table(columns, rows, prefix="bc_new")
        with self.assertRaises(psycopg2.Error) as e:
            self.scalar("SELECT version FROM ml_retrain(%s, %s)", (model, tab_new))
        self.assertEqual(e.exception.pgcode, "22000")
        self.assertIn('holds a class the model does not know: "2" (1 row)', e.exception.pgerror)
        self.assertEqual(self.state(model), before)


class ClassesFollowTheDeployedVersionTest(PgmlTestCase):
    """After any retrain, ml_deploy and ml_rollback, ml_models.classes is the order of ml_predict_proba."""

    def agree(self, model, tab):
        """ml_models.classes against every row's ml_predict_proba and ml_class_probabilities."""
        classes = self.scalar("SELECT classes FROM ml_models WHERE name = %s", (model,))
        rows = self.all(f"SELECT ml_predict_proba(%s, t) AS p, ml_class_probabilities(%s, t) AS l FROM {tab} t",
                        (model, model))
        self.assertGreater(len(rows), 100)
        for r in rows:
            self.assertEqual(len(r["p"]), len(classes))
            self.assertEqual(sorted(r["l"]), sorted(classes))
            for k, label in enumerate(classes):
                self.assertEqual(r["l"][label], r["p"][k], (model, label))
        return classes

    def test_wine_two_then_three_cultivars(self):
        columns, rows = dataset("wine")
        two = self.table(columns, [r for r in rows if r[-1] in ("0", "1")], prefix="wine2")
        three = self.table(columns, rows, prefix="wine3")
        # other rows of the three cultivars, for a retrain of the three-class version
        later = self.table(columns, [r for r in rows if int(r[0]) % 3 != 0], prefix="wine3b")
        for algorithm in ("logistic_regression", "naive_bayes", "random_forest", "gradient_boosting"):
            with self.subTest(algorithm=algorithm):
                model = self.model_name("wine_" + algorithm[:5])
                hp = '{"n_estimators": 10}' if algorithm in ("random_forest", "gradient_boosting") else "{}"
                self.scalar("SELECT version FROM ml_train(%s, 'cultivar', algorithm => %s, name => %s, "
                            "exclude => '{id}', hyperparams => %s::jsonb)", (two, algorithm, model, hp))
                self.assertEqual(self.agree(model, three), ["0", "1"])
                # refused without allow_new_classes: nothing written
                with self.assertRaises(psycopg2.Error) as e:
                    self.scalar("SELECT version FROM ml_retrain(%s, %s, mode => 'refit')", (model, three))
                self.assertEqual(e.exception.pgcode, "22000")
                self.assertIn('holds a class the model does not know: "2" (48 rows)', e.exception.pgerror)
                self.assertEqual(self.scalar("SELECT count(*) FROM ml_versions WHERE model = %s", (model,)), 1)
                # a new version with the third cultivar, not deployed: the view keeps version 1's classes
                self.scalar("SELECT version FROM ml_retrain(%s, %s, mode => 'refit', allow_new_classes => true, "
                            "deploy => 'never')", (model, three))
                self.assertEqual(self.agree(model, three), ["0", "1"])
                self.scalar("SELECT ml_deploy(%s, 2)", (model,))
                self.assertEqual(self.agree(model, three), ["0", "1", "2"])
                self.scalar("SELECT ml_rollback(%s)", (model,))
                self.assertEqual(self.agree(model, three), ["0", "1"])
                self.scalar("SELECT ml_deploy(%s, 2)", (model,))
                self.assertEqual(self.agree(model, three), ["0", "1", "2"])
                # a retrain of the three-class version knows the third cultivar now
                self.scalar("SELECT version FROM ml_retrain(%s, %s, mode => 'refit', deploy => 'always')",
                            (model, later))
                self.assertEqual(self.agree(model, three), ["0", "1", "2"])
                self.assertEqual(
                    self.scalar("SELECT array_agg(classes::text ORDER BY version) FROM ml_versions WHERE model = %s",
                                (model,)),
                    ['["0", "1"]', '["0", "1", "2"]', '["0", "1", "2"]'])


class UpdateFillsVersionClassesTest(unittest.TestCase):
    """ALTER EXTENSION UPDATE from 0.2.0 (a dump its library made: test/upgrade/pg_ml-0.2.0.sql)
    fills ml.versions.classes from each version's blob."""

    def test_update_from_0_2_0(self):
        from test_upgrade import FIXTURES, ensure_fixture_roles, update_path
        ensure_fixture_roles()
        db = unique("pgml_upd_cls")
        create_database(db, extension=False)
        self.addCleanup(drop_database, db)
        conn = connect(db)
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION pg_ml VERSION '0.2.0'")
        conn.close()
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db,
                        "-f", os.path.join(FIXTURES, "pg_ml-0.2.0.sql")], check=True, stdout=subprocess.DEVNULL)
        conn = connect(db)
        with conn.cursor() as cur:
            # the update must read the blobs: ml.models.classes is version 1's at best
            cur.execute("UPDATE ml.models SET classes = '[\"wrong\"]' WHERE name = 'fx_logistic'")
            # an unreadable blob: a WARNING, its classes unknown, and the update goes on
            cur.execute("UPDATE ml.versions v SET blob = set_byte(blob, 40, get_byte(blob, 40) # 255) "
                        "FROM ml.models m WHERE m.id = v.model_id AND m.name = 'fx_svm'")
            for step in update_path(conn, "0.2.0"):
                cur.execute(f"ALTER EXTENSION pg_ml UPDATE TO '{step}'")
        warnings = [n for n in conn.notices if "fx_svm" in n]
        conn.close()
        self.assertEqual(len(warnings), 1, conn.notices)
        self.assertIn('version 1 of model "fx_svm" is unreadable; its classes are unknown', warnings[0])

        conn = connect(db)
        with conn.cursor() as cur:
            cur.execute("SELECT m.name, v.version, v.classes FROM ml.versions v JOIN ml.models m ON m.id = v.model_id "
                        "WHERE m.task = 'classification' ORDER BY 1, 2")
            versions = cur.fetchall()
            names = {n for n, _, _ in versions}
            self.assertTrue({"fx_logistic", "fx_tree", "fx_boost", "fx_bayes", "fx_bob_model"} <= names, names)
            self.assertIn(("fx_tree", 2, ["high", "low"]), versions)  # a version that is not deployed
            for name, version, classes in versions:
                self.assertEqual(classes, None if name == "fx_svm" else ["high", "low"], (name, version))
            cur.execute("SELECT count(*) FROM ml.versions v JOIN ml.models m ON m.id = v.model_id "
                        "WHERE m.task <> 'classification' AND v.classes IS NOT NULL")
            self.assertEqual(cur.fetchone()[0], 0)
            # the view and ml_predict_proba agree for every classifier that predicts
            cur.execute("SELECT m.name, m.classes, ml_predict_proba(m.name, c), ml_class_probabilities(m.name, c) "
                        "FROM ml_models m, fx_cls c WHERE m.task = 'classification' AND m.name <> 'fx_svm' "
                        "AND c.id = 7")
            for name, classes, proba, labelled in cur.fetchall():
                self.assertEqual(classes, ["high", "low"], name)
                self.assertEqual([labelled[k] for k in classes], proba, name)
        conn.close()


if __name__ == "__main__":
    unittest.main()
