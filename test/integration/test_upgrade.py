"""ALTER EXTENSION pg_ml UPDATE: a database created with 0.1.0 and updated to the current
version has exactly the objects of a fresh install, and its models keep working."""
import unittest

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


class UpgradeTest(unittest.TestCase):
    def setUp(self):
        self.old = unique("pgml_upgrade_old")
        self.fresh = unique("pgml_upgrade_new")
        create_database(self.old, extension=False)
        create_database(self.fresh)

    def tearDown(self):
        drop_database(self.old)
        drop_database(self.fresh)

    def test_update_from_0_1_0_equals_a_fresh_install(self):
        conn = connect(self.old)
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE EXTENSION pg_ml VERSION '0.1.0'")
                cur.execute("CREATE TABLE pts AS SELECT i::float8 AS x, (2 * i + 1)::float8 AS y "
                            "FROM generate_series(1, 100) i")
                cur.execute("SELECT version FROM ml_train('pts', 'y', 'linear_regression', name => 'line')")
                self.assertEqual(cur.fetchone()[0], 1)
                cur.execute("SELECT ml_predict('line', ARRAY[10.0])")
                before = cur.fetchone()[0]
                cur.execute("ALTER EXTENSION pg_ml UPDATE")
        finally:
            conn.close()
        # a new connection loads the current library
        conn = connect(self.old)
        try:
            with conn.cursor() as cur:
                cur.execute("SET pg_ml.progress = off")
                cur.execute("SELECT ml_predict('line', ARRAY[10.0])")
                self.assertAlmostEqual(cur.fetchone()[0], before, places=9)
                self.assertAlmostEqual(before, 21.0, places=6)
                # the 0.1.0 model retrains with the 0.2.0 code, through the aggregate
                cur.execute("SELECT version, parent_version FROM ml_retrain('line', 'pts', mode => 'incremental', "
                            "deploy => 'always')")
                self.assertEqual(cur.fetchone(), (2, 1))
                cur.execute("SELECT count(*) FROM ml_versions WHERE model = 'line'")
                self.assertEqual(cur.fetchone()[0], 2)
        finally:
            conn.close()

        old_version, old_members, old_triggers, old_config = snapshot(self.old)
        new_version, new_members, new_triggers, new_config = snapshot(self.fresh)
        self.assertEqual(old_version, new_version)
        old_set, new_set = dict(old_members), dict(new_members)
        self.assertEqual(sorted(set(new_set) - set(old_set)), [], "missing after the update")
        self.assertEqual(sorted(set(old_set) - set(new_set)), [], "left over by the update")
        for obj in sorted(new_set):
            self.assertEqual(old_set[obj], new_set[obj], obj)
        self.assertEqual(old_triggers, new_triggers)
        self.assertEqual(sorted(zip(old_config[0], old_config[1])), sorted(zip(new_config[0], new_config[1])))


class OwnershipUpdateTest(unittest.TestCase):
    """The update to 0.3.0 makes every existing model an owned object (issue 10, findings 2-3): its
    sequence owned by its owner, its grants moved onto the sequence, role columns kept as names."""

    def setUp(self):
        self.db = unique("pgml_upgrade_owner")
        self.roles = {r: unique(f"pgml_upd_{r}") for r in ("alice", "bob", "carol")}
        admin = connect()
        with admin.cursor() as cur:
            for role in self.roles.values():
                cur.execute(f'CREATE ROLE "{role}" NOLOGIN')
        admin.close()
        self.addCleanup(self._drop_roles)
        create_database(self.db, extension=False)
        self.addCleanup(drop_database, self.db)

    def _drop_roles(self):
        admin = connect()
        try:
            with admin.cursor() as cur:
                for role in self.roles.values():
                    cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            admin.close()

    def test_update_moves_ownership_and_grants(self):
        alice, bob, carol = self.roles["alice"], self.roles["bob"], self.roles["carol"]
        conn = connect(self.db)
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE EXTENSION pg_ml VERSION '0.1.0'")
                cur.execute("CREATE TABLE pts AS SELECT i::float8 AS x, (2 * i + 1)::float8 AS y "
                            "FROM generate_series(1, 100) i")
                cur.execute(f'GRANT SELECT ON pts TO "{alice}", "{carol}"')
                cur.execute(f'SET ROLE "{alice}"')
                cur.execute("SELECT version FROM ml_train('pts', 'y', 'linear_regression', name => 'line_a')")
                cur.execute("SELECT ml_grant('line_a', %s)", (bob,))
                cur.execute(f'SET ROLE "{carol}"')
                cur.execute("SELECT version FROM ml_train('pts', 'y', 'linear_regression', name => 'line_c')")
                cur.execute("RESET ROLE")
                # before 0.3.0 nothing stopped this: carol's model is left with a bare OID
                cur.execute(f'REVOKE ALL ON pts FROM "{carol}"')
                cur.execute(f'DROP ROLE "{carol}"')
                # default privileges for sequences must not give the models away
                cur.execute("ALTER DEFAULT PRIVILEGES GRANT SELECT, USAGE ON SEQUENCES TO PUBLIC")
                cur.execute("ALTER EXTENSION pg_ml UPDATE")
                warnings = [n for n in conn.notices if "no longer exists" in n]
                self.assertEqual(len(warnings), 1, conn.notices)
                self.assertIn('model "line_c"', warnings[0])
        finally:
            conn.close()
        conn = connect(self.db)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_user")
                me = cur.fetchone()[0]
                cur.execute("SELECT name, owner::text FROM ml_models ORDER BY name")
                self.assertEqual(cur.fetchall(), [("line_a", alice), ("line_c", me)])
                cur.execute("SELECT model, trained_by FROM ml_versions ORDER BY model")
                rows = cur.fetchall()
                self.assertEqual(rows[0], ("line_a", alice))
                self.assertRegex(rows[1][1], r"^\d+$")  # the OID the role had: history, not ownership
                # the sequences are not members of the extension (pg_dump dumps them)
                cur.execute("SELECT count(*) FROM ml.models m JOIN pg_depend d ON d.objid = m.seq "
                            "AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'")
                self.assertEqual(cur.fetchone()[0], 0)
                cur.execute("SELECT m.name, a.grantee::regrole::text FROM ml.models m JOIN pg_class c ON c.oid = m.seq, "
                            "aclexplode(c.relacl) a WHERE a.grantee <> c.relowner ORDER BY 1, 2")
                self.assertEqual(cur.fetchall(), [("line_a", bob)])
                # the grant moved: bob predicts; alice and bob can no longer be dropped
                cur.execute(f'SET ROLE "{bob}"')
                cur.execute("SELECT round(ml_predict('line_a', ARRAY[10.0])::numeric, 6)")
                self.assertEqual(float(cur.fetchone()[0]), 21.0)
                cur.execute("RESET ROLE")
                for role in (alice, bob):
                    with self.assertRaises(psycopg2.errors.DependentObjectsStillExist):
                        cur.execute(f'DROP ROLE "{role}"')
                cur.execute(f'DROP OWNED BY "{alice}", "{bob}"')
                cur.execute("SELECT name FROM ml_models ORDER BY name")
                self.assertEqual(cur.fetchall(), [("line_c",)])
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
