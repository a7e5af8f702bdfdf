"""ALTER EXTENSION pg_ml UPDATE: a database created with 0.1.0 and updated to the current
version has exactly the objects of a fresh install, and its models keep working."""
import os
import subprocess
import unittest

import psycopg2
import psycopg2.errors

import pgml_test
from pgml_test import connect, create_database, drop_database, unique

# every member of the extension, described, with its definition where it has one
MEMBERS = """
SELECT pg_describe_object(d.classid, d.objid, 0) AS object,
       CASE d.classid
         WHEN 'pg_proc'::regclass THEN
           (SELECT concat_ws(' | ', pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
                             p.provolatile, p.proparallel, p.prosecdef, p.proisstrict, p.procost, p.prosrc,
                             array_to_string(p.proconfig, ','), p.proacl::text)
              FROM pg_proc p WHERE p.oid = d.objid)
         WHEN 'pg_class'::regclass THEN
           (SELECT concat_ws(' | ', c.relkind, c.relacl::text,
                             CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END,
                             (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
                                                CASE WHEN a.attnotnull THEN ' not null' ELSE '' END ||
                                                coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), ''),
                                                ', ' ORDER BY a.attnum)
                                FROM pg_attribute a
                                LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                             (SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname)
                                FROM pg_constraint WHERE conrelid = c.oid),
                             (SELECT string_agg(pg_get_indexdef(indexrelid), ', ' ORDER BY 1)
                                FROM pg_index WHERE indrelid = c.oid))
              FROM pg_class c WHERE c.oid = d.objid)
         WHEN 'pg_namespace'::regclass THEN
           (SELECT n.nspacl::text FROM pg_namespace n WHERE n.oid = d.objid)
       END AS definition
FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_ml')
  AND d.deptype = 'e'
ORDER BY 1, 2
"""

TRIGGERS = """
SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
FROM pg_trigger WHERE tgrelid::regclass::text LIKE 'ml.%' AND NOT tgisinternal ORDER BY 1, 2
"""


def snapshot(dbname):
    conn = connect(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute(MEMBERS)
            members = cur.fetchall()
            cur.execute(TRIGGERS)
            triggers = cur.fetchall()
            cur.execute("SELECT extconfig::regclass[]::text[], extcondition FROM pg_extension WHERE extname = 'pg_ml'")
            config = cur.fetchone()
            cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_ml'")
            version = cur.fetchone()[0]
    finally:
        conn.close()
    return version, members, triggers, config


RELEASES = ["0.1.0", "0.2.0"]  # every released version: test/upgrade/pg_ml-<version>.sql
FIXTURES = os.path.join(pgml_test.ROOT, "test", "upgrade")


def update_path(conn, start):
    """The versions ALTER EXTENSION walks from `start` to the default version, in order."""
    with conn.cursor() as cur:
        cur.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'pg_ml'")
        target = cur.fetchone()[0]
        cur.execute("SELECT path FROM pg_extension_update_paths('pg_ml') WHERE source = %s AND target = %s",
                    (start, target))
        path = cur.fetchone()[0]
    return path.split("--")[1:]


def ensure_fixture_roles():
    conn = pgml_test.maintenance_connect()
    try:
        with conn.cursor() as cur:
            for role in ("pgml_fx_alice", "pgml_fx_bob"):
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if cur.fetchone() is None:
                    cur.execute(f"CREATE ROLE {role}")
    finally:
        conn.close()


class UpdateWithModelsTest(unittest.TestCase):
    """A database whose models a released version trained (test/upgrade/pg_ml-<version>.sql, a
    pg_dump made with that version's library) is updated step by step to the current version;
    every model then predicts what the released library predicted, keeps its owner, grants,
    versions and deployments, retrains, and (0.2.0) its auto-retrain trigger keeps counting."""

    def load(self, release):
        ensure_fixture_roles()
        db = unique("pgml_upd_" + release.replace(".", ""))
        create_database(db, extension=False)
        self.addCleanup(drop_database, db)
        conn = connect(db)
        with conn.cursor() as cur:
            cur.execute(f"CREATE EXTENSION pg_ml VERSION '{release}'")
        conn.close()
        # the dump's own CREATE EXTENSION IF NOT EXISTS keeps the installed version
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db,
                        "-f", os.path.join(FIXTURES, f"pg_ml-{release}.sql")],
                       check=True, stdout=subprocess.DEVNULL)
        return db

    def check_release(self, release):
        db = self.load(release)
        conn = connect(db)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM ml.versions")
            nversions = cur.fetchone()[0]
            steps = update_path(conn, release)
            self.assertTrue(steps, "no update path from " + release)
            for step in steps:
                cur.execute(f"ALTER EXTENSION pg_ml UPDATE TO '{step}'")
        conn.close()

        conn = connect(db)  # a new backend: the current library
        with conn.cursor() as cur:
            cur.execute("SET pg_ml.progress = off")
            cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_ml'")
            self.assertEqual(cur.fetchone()[0], steps[-1])
            cur.execute("SELECT name, owner::text, deployed_version FROM ml_models ORDER BY name")
            models = cur.fetchall()
            self.assertEqual(len(models), 13, models)
            owners = {name: owner for name, owner, _ in models}
            self.assertEqual(owners["fx_bob_model"], "pgml_fx_bob")
            self.assertTrue(all(o == "pgml_fx_alice" for n, o in owners.items() if n != "fx_bob_model"), owners)
            deployed = {name: v for name, _, v in models}
            self.assertEqual(deployed["fx_ridge"], 2)
            self.assertEqual(deployed["fx_tree"], 1)  # rolled back
            cur.execute("SELECT count(*) FROM ml_versions")
            self.assertEqual(cur.fetchone()[0], nversions)

            # every row predicts as the released library did
            cur.execute("""
                SELECT e.model, e.id, e.value, e.label, e.proba,
                       CASE WHEN e.label IS NULL THEN ml_predict(e.model, r) END,
                       CASE WHEN e.label IS NOT NULL THEN ml_predict_label(e.model, r) END,
                       CASE WHEN e.label IS NOT NULL THEN ml_predict_proba(e.model, r) END
                  FROM fx_expected e JOIN fx_reg r USING (id)
                 WHERE e.model IN (SELECT name FROM ml_models WHERE target IS DISTINCT FROM 'label')
                UNION ALL
                SELECT e.model, e.id, e.value, e.label, e.proba, NULL,
                       ml_predict_label(e.model, c), ml_predict_proba(e.model, c)
                  FROM fx_expected e JOIN fx_cls c USING (id)
                 WHERE e.model IN (SELECT name FROM ml_models WHERE target = 'label')""")
            rows = cur.fetchall()
            self.assertGreater(len(rows), 13 * 300 - 1)
            for model, rid, value, label, proba, new_value, new_label, new_proba in rows:
                where = f"{model} row {rid}"
                if label is None:
                    self.assertAlmostEqual(new_value, value, delta=1e-9 * max(1.0, abs(value)), msg=where)
                else:
                    self.assertEqual(new_label, label, where)
                    self.assertEqual(len(new_proba), len(proba), where)
                    for a, b in zip(new_proba, proba):
                        self.assertAlmostEqual(a, b, delta=1e-9, msg=where)
        conn.close()

        # grants: bob predicts with alice's fx_ridge (granted) but not with fx_lasso
        conn = connect(db)
        with conn.cursor() as cur:
            cur.execute("SET ROLE pgml_fx_bob")
            cur.execute("SELECT ml_predict('fx_ridge', r) IS NOT NULL FROM fx_reg r WHERE id = 1")
            self.assertTrue(cur.fetchone()[0])
            with self.assertRaises(psycopg2.Error) as err:
                cur.execute("SELECT ml_predict('fx_lasso', r) FROM fx_reg r WHERE id = 1")
            self.assertIn(err.exception.pgcode, ("42501", "42704"))
            with self.assertRaises(psycopg2.Error) as err:
                cur.execute("SELECT ml_deploy('fx_ridge', 1)")
            self.assertIn(err.exception.pgcode, ("42501", "42704"))
        conn.close()

        # the owner retrains an old model with the current code; a 0.2.0 trigger keeps counting
        conn = connect(db)
        with conn.cursor() as cur:
            cur.execute("SET ROLE pgml_fx_alice")
            cur.execute("SET pg_ml.progress = off")
            for model, rel in (("fx_ridge", "fx_reg"), ("fx_bayes", "fx_cls"), ("fx_boost", "fx_cls")):
                cur.execute("SELECT version, parent_version FROM ml_retrain(%s, %s, mode => 'refit', "
                            "deploy => 'always')", (model, rel))
                version, parent = cur.fetchone()
                self.assertEqual(parent, version - 1, model)
        conn.close()
        if release != "0.1.0":
            conn = connect(db)
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM ml_jobs")
                before = cur.fetchone()[0]
                # 10 rows were pending in the dump; 40 more reach min_new_rows = 50
                cur.execute("INSERT INTO fx_reg SELECT i, i % 17, sin(i), 'east', 3 * (i % 17) "
                            "FROM generate_series(311, 350) i")
                cur.execute("SELECT count(*) FROM ml_jobs WHERE model = 'fx_linear'")
                self.assertEqual(cur.fetchone()[0], before + 1)
            conn.close()

    def test_update_from_0_1_0_with_models(self):
        self.check_release("0.1.0")

    def test_update_from_0_2_0_with_models(self):
        self.check_release("0.2.0")

    def test_every_release_has_a_fixture(self):
        conn = connect()
        with conn.cursor() as cur:
            cur.execute("SELECT version FROM pg_available_extension_versions WHERE name = 'pg_ml' "
                        "AND NOT version = (SELECT default_version FROM pg_available_extensions "
                        "WHERE name = 'pg_ml') ORDER BY 1")
            released = [r[0] for r in cur.fetchall()]
        conn.close()
        self.assertEqual(released, RELEASES)
        for release in RELEASES:
            self.assertTrue(os.path.exists(os.path.join(FIXTURES, f"pg_ml-{release}.sql")), release)


class UpgradeTest(unittest.TestCase):
    """Every released version updated to the current one has exactly the objects of a fresh install."""
    def setUp(self):
        self.fresh = unique("pgml_upgrade_new")
        create_database(self.fresh)

    def tearDown(self):
        drop_database(self.fresh)

    def check_objects(self, release):
        old = unique("pgml_upgrade_old")
        create_database(old, extension=False)
        self.addCleanup(drop_database, old)
        conn = connect(old)
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE EXTENSION pg_ml VERSION '{release}'")
                cur.execute("ALTER EXTENSION pg_ml UPDATE")
        finally:
            conn.close()
        old_version, old_members, old_triggers, old_config = snapshot(old)
        new_version, new_members, new_triggers, new_config = snapshot(self.fresh)
        self.assertEqual(old_version, new_version)
        old_set, new_set = dict(old_members), dict(new_members)
        self.assertEqual(sorted(set(new_set) - set(old_set)), [], "missing after the update")
        self.assertEqual(sorted(set(old_set) - set(new_set)), [], "left over by the update")
        for obj in sorted(new_set):
            self.assertEqual(old_set[obj], new_set[obj], obj)
        self.assertEqual(old_triggers, new_triggers)
        self.assertEqual(sorted(zip(old_config[0], old_config[1])), sorted(zip(new_config[0], new_config[1])))

    def test_update_from_0_1_0_equals_a_fresh_install(self):
        self.check_objects("0.1.0")

    def test_update_from_0_2_0_equals_a_fresh_install(self):
        self.check_objects("0.2.0")


class OwnershipUpdateTest(unittest.TestCase):
    """The update to 0.3.0 makes every existing model an owned object (issue 10, findings 2-3): its
    sequence owned by its owner, its grants moved onto the sequence, role columns kept as names.
    The models are those 0.1.0 trained (test/upgrade/pg_ml-0.1.0.sql)."""

    def setUp(self):
        self.carol = unique("pgml_upd_carol")
        admin = connect()
        with admin.cursor() as cur:
            cur.execute(f'CREATE ROLE "{self.carol}" NOLOGIN')
        admin.close()
        self.addCleanup(self._drop_role)

    def _drop_role(self):
        admin = connect()
        try:
            with admin.cursor() as cur:
                cur.execute(f'DROP ROLE IF EXISTS "{self.carol}"')
        finally:
            admin.close()

    def test_update_moves_ownership_and_grants(self):
        alice, bob, carol = "pgml_fx_alice", "pgml_fx_bob", self.carol
        db = UpdateWithModelsTest.load(self, "0.1.0")
        conn = connect(db)
        try:
            with conn.cursor() as cur:
                # before 0.3.0 nothing stopped this: carol's model is left with a bare OID
                cur.execute(f"UPDATE ml.models SET owner = '{carol}' WHERE name = 'fx_svm'")
                cur.execute(f'DROP ROLE "{carol}"')
                # default privileges for sequences must not give the models away
                cur.execute("ALTER DEFAULT PRIVILEGES GRANT SELECT, USAGE ON SEQUENCES TO PUBLIC")
                cur.execute("ALTER EXTENSION pg_ml UPDATE")
                warnings = [n for n in conn.notices if "no longer exists" in n]
                self.assertEqual(len(warnings), 1, conn.notices)
                self.assertIn('model "fx_svm"', warnings[0])
        finally:
            conn.close()
        conn = connect(db)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_user")
                me = cur.fetchone()[0]
                cur.execute("SELECT name, owner::text FROM ml_models WHERE name IN ('fx_ridge', 'fx_svm', "
                            "'fx_bob_model') ORDER BY name")
                self.assertEqual(cur.fetchall(), [("fx_bob_model", bob), ("fx_ridge", alice), ("fx_svm", me)])
                cur.execute("SELECT DISTINCT trained_by FROM ml_versions WHERE model = 'fx_ridge'")
                self.assertEqual(cur.fetchall(), [(alice,)])
                # the sequences are not members of the extension (pg_dump dumps them)
                cur.execute("SELECT count(*) FROM ml.models m JOIN pg_depend d ON d.objid = m.seq "
                            "AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'")
                self.assertEqual(cur.fetchone()[0], 0)
                cur.execute("SELECT m.name, a.grantee::regrole::text FROM ml.models m JOIN pg_class c ON c.oid = m.seq, "
                            "aclexplode(c.relacl) a WHERE a.grantee <> c.relowner ORDER BY 1, 2")
                self.assertEqual(cur.fetchall(), [("fx_ridge", bob)])
                # the grant moved: bob predicts; alice and bob can no longer be dropped
                cur.execute(f'SET ROLE "{bob}"')
                cur.execute("SELECT ml_predict('fx_ridge', r) IS NOT NULL FROM fx_reg r WHERE id = 1")
                self.assertTrue(cur.fetchone()[0])
                cur.execute("RESET ROLE")
                for role in (alice, bob):
                    with self.assertRaises(psycopg2.errors.DependentObjectsStillExist):
                        cur.execute(f'DROP ROLE "{role}"')
                cur.execute(f'DROP OWNED BY "{alice}", "{bob}"')
                cur.execute("SELECT name FROM ml_models ORDER BY name")
                self.assertEqual(cur.fetchall(), [("fx_svm",)])
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
