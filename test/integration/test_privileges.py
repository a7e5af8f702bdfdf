"""Model ownership, ml_grant, catalog protection, hostile names, and training with the
caller's privileges (table privileges and row-level security)."""
import os
import unittest

import psycopg2
import psycopg2.extras
from psycopg2 import sql

from pgml_test import PgmlTestCase, connect, create_table, dataset, unique

DENIED = "42501"


class PrivilegesTest(PgmlTestCase):
    def setUp(self):
        super().setUp()
        self.roles = {}
        for who in ("alice", "bob", "carol"):
            role = unique(who)
            password = unique("pw")
            with self.conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(role)), (password,))
            self.roles[who] = (role, password)
            self.addCleanup(self._drop_role, role)
        # carol is a member of alice: she may manage alice's models
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(self.role("alice")),
                                                          sql.Identifier(self.role("carol"))))
        cols, rows = dataset("diabetes")
        self.cols, self.rows = cols, rows
        self.data = self.table(cols, rows, "priv_diabetes")
        self.grant_select(self.data, "alice")

    def role(self, who):
        return self.roles[who][0]

    def _drop_role(self, role):
        c = connect()
        try:
            with c.cursor() as cur:
                # models the role still owns go first (a superuser may drop any model)
                cur.execute("SELECT ml_drop_model(name) FROM ml_models WHERE owner = %s::regrole", (role,))
                cur.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        finally:
            c.close()

    def grant_select(self, table, who, columns=None):
        with self.conn.cursor() as cur:
            cols = sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Identifier, columns))) if columns else sql.SQL("")
            cur.execute(sql.SQL("GRANT SELECT {} ON {} TO {}").format(cols, sql.Identifier(table),
                                                                      sql.Identifier(self.role(who))))

    def login(self, who):
        """A connection as the role itself (password login through the environment's host)."""
        role, password = self.roles[who]
        try:
            conn = connect(user=role, password=password)
        except psycopg2.OperationalError:
            if os.environ.get("PGHOST"):
                raise
            # a local socket with peer authentication: become the role inside a superuser session
            conn = connect()
            with conn.cursor() as cur:
                cur.execute(sql.SQL("SET SESSION AUTHORIZATION {}").format(sql.Identifier(role)))
        self.addCleanup(conn.close)
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)")
            self.assertEqual(cur.fetchone(), (role, False))
        return conn

    def train_as(self, conn, relation, name, **kw):
        extra = "".join(f", {k} => %({k})s" for k in kw)
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(f"SELECT * FROM ml_train(%(rel)s, 'progression', algorithm => 'linear_regression', "
                        f"name => %(name)s{extra})", dict(rel=relation, name=name, **kw))
            return cur.fetchone()

    def alice_model(self):
        alice = self.login("alice")
        name = unique("alice_model")
        r = self.train_as(alice, self.data, name, exclude=["id"])
        self.assertEqual(r["model"], name)
        self.last_alice_model = name
        return alice, name, r["model_id"]

    FEATURES = ('{"age": 50, "sex": 1, "bmi": 25.1, "bp": 90, "s1": 180, "s2": 110, "s3": 45, "s4": 4, '
                '"s5": 4.6, "s6": 90}')

    def test_catalog_tables_are_not_readable(self):
        self.alice_model()
        bob = self.login("bob")
        for table in ("ml.models", "ml.versions", "ml.training_log", "ml.deployments"):
            self.assertSqlError(DENIED, f"SELECT * FROM {table}", conn=bob)
        # a grant is SELECT on the model's sequence, which only its owner may grant
        seq = self.scalar("SELECT seq::text FROM ml.models WHERE name = %s", (self.last_alice_model,))
        self.assertSqlError(DENIED, f"GRANT SELECT ON SEQUENCE {seq} TO current_user", conn=bob)
        self.assertSqlError(DENIED, f"DROP SEQUENCE {seq}", conn=bob)
        self.assertSqlError(DENIED, f"ALTER SEQUENCE {seq} OWNER TO current_user", conn=bob)
        self.assertSqlError(DENIED, "UPDATE ml.models SET deployed_version = 1", conn=bob)
        self.assertSqlError(DENIED, "DELETE FROM ml.versions", conn=bob)
        self.assertSqlError(DENIED, "SELECT nextval('ml.models_id_seq')", conn=bob)
        # even the model's owner reads the catalog only through the views
        alice = self.login("alice")
        self.assertSqlError(DENIED, "SELECT * FROM ml.versions", conn=alice)
        self.assertSqlError(DENIED, "UPDATE ml.versions SET metrics = '{}'", conn=alice)

    def test_other_roles_models(self):
        alice, model, model_id = self.alice_model()
        bob = self.login("bob")
        pred_alice = self.scalar("SELECT ml_predict(%s, %s::jsonb)", (model, self.FEATURES), conn=alice)

        self.assertEqual(self.scalar("SELECT count(*) FROM ml_models WHERE name = %s", (model,), conn=bob), 0)
        self.assertEqual(self.scalar("SELECT count(*) FROM ml_versions WHERE model_id = %s", (model_id,), conn=bob), 0)
        self.assertEqual(self.scalar("SELECT count(*) FROM ml_models WHERE name = %s", (model,), conn=alice), 1)

        for query, params in [
            ("SELECT ml_predict(%s, %s::jsonb)", (model, self.FEATURES)),
            ("SELECT ml_predict(%s::bigint, %s::jsonb)", (model_id, self.FEATURES)),
            ("SELECT ml_predict(%s, ARRAY[50, 1, 25.1, 90, 180, 110, 45, 4, 4.6, 90]::float8[])", (model,)),
            ("SELECT ml_evaluate(%s, %s)", (model, self.data)),
            ("SELECT * FROM ml_retrain(%s, %s)", (model, self.data)),
            ("SELECT * FROM ml_retrain(%s::bigint, %s)", (model_id, self.data)),
            ("SELECT ml_drop_model(%s)", (model,)),
            ("SELECT ml_drop_model(%s::bigint)", (model_id,)),
            ("SELECT ml_deploy(%s, 1)", (model,)),
            ("SELECT ml_rollback(%s)", (model,)),
            ("SELECT ml_grant(%s, current_user::regrole)", (model,)),
            ("SELECT ml_revoke(%s, current_user::regrole)", (model,)),
        ]:
            with self.subTest(query=query):
                self.assertSqlError(DENIED, query, params, conn=bob)

        # after ml_grant: bob may predict (and evaluate), nothing more
        with alice.cursor() as cur:
            cur.execute("SELECT ml_grant(%s, %s)", (model, self.role("bob")))
        self.assertEqual(self.scalar("SELECT ml_predict(%s, %s::jsonb)", (model, self.FEATURES), conn=bob), pred_alice)
        self.assertEqual(self.scalar("SELECT count(*) FROM ml_models WHERE name = %s", (model,), conn=bob), 1)
        self.assertEqual(self.scalar("SELECT count(*) FROM ml_versions WHERE model = %s", (model,), conn=bob), 1)
        for query, params in [
            ("SELECT * FROM ml_retrain(%s, %s)", (model, self.data)),
            ("SELECT ml_drop_model(%s)", (model,)),
            ("SELECT ml_deploy(%s, 1)", (model,)),
            ("SELECT ml_rollback(%s)", (model,)),
            ("SELECT ml_grant(%s, %s::regrole)", (model, self.role("carol"))),
        ]:
            with self.subTest(granted=query):
                self.assertSqlError(DENIED, query, params, conn=bob)
        self.assertEqual(self.scalar("SELECT deployed_version FROM ml_models WHERE name = %s", (model,), conn=alice), 1)

        # ml_revoke takes it back
        with alice.cursor() as cur:
            cur.execute("SELECT ml_revoke(%s, %s)", (model, self.role("bob")))
        self.assertSqlError(DENIED, "SELECT ml_predict(%s, %s::jsonb)", (model, self.FEATURES), conn=bob)
        self.assertEqual(self.scalar("SELECT count(*) FROM ml_models WHERE name = %s", (model,), conn=bob), 0)

    def test_member_of_owner_manages(self):
        alice, model, _ = self.alice_model()
        carol = self.login("carol")
        self.grant_select(self.data, "carol")
        self.assertEqual(self.scalar("SELECT count(*) FROM ml_models WHERE name = %s", (model,), conn=carol), 1)
        r = self.one("SELECT version, parent_version FROM ml_retrain(%s, %s, mode => 'refit', deploy => 'always')", (model, self.data),
                     conn=carol)
        self.assertEqual((r["version"], r["parent_version"]), (2, 1))
        self.assertEqual(self.scalar("SELECT trained_by::text FROM ml_versions WHERE model = %s AND version = 2", (model,),
                                     conn=alice), self.role("carol"))
        with carol.cursor() as cur:
            cur.execute("SELECT ml_drop_model(%s)", (model,))
        self.assertEqual(self.scalar("SELECT count(*) FROM ml_models WHERE name = %s", (model,), conn=alice), 0)

    def test_hostile_names(self):
        alice = self.login("alice")
        canary = self.table([("id", "integer")], [[1]], "priv_canary")
        for name in ["x'; DROP TABLE t; --", f"x'); DROP TABLE {canary}; --", 'a"b; SELECT pg_sleep(10); --',
                     "$$; DROP TABLE " + canary + "; $$", "ünïcødé model\\n%s %% \\x00"]:
            with self.subTest(name=name):
                r = self.train_as(alice, self.data, name, exclude=["id"])
                self.assertEqual(r["model"], name)
                self.assertEqual(self.scalar("SELECT name FROM ml_models WHERE name = %s", (name,), conn=alice), name)
                self.assertIsNotNone(self.scalar("SELECT ml_predict(%s, %s::jsonb)", (name, self.FEATURES), conn=alice))
                with alice.cursor() as cur:
                    cur.execute("SELECT * FROM ml_retrain(%s, %s, mode => 'refit')", (name, self.data))
                    cur.execute("SELECT ml_drop_model(%s)", (name,))
                self.assertEqual(self.scalar("SELECT count(*) FROM ml_models WHERE name = %s", (name,)), 0)
        self.assertEqual(self.scalar(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(canary))), 1)

        # hostile relation names are names, not SQL
        for rel in [f"{self.data}; DROP TABLE {canary}", f"{self.data} WHERE false", f"{canary}, {self.data}"]:
            with self.subTest(relation=rel):
                with self.assertRaises(psycopg2.Error) as cm:
                    self.train_as(alice, rel, unique("never"))
                self.assertIn(cm.exception.pgcode, ("42602", "42P01", "3F000"), f"{cm.exception.pgcode}: {cm.exception}")
        self.assertEqual(self.scalar(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(canary))), 1)

        # and a table and columns whose names need quoting work when quoted
        odd = unique('Odd "Tab;le')
        cols = [(("Progression" if n == "progression" else f"{n} col") if n != "id" else n, t) for n, t in self.cols]
        with self.conn.cursor() as cur:
            create_table(cur, odd, cols, self.rows[:100])
        self.addCleanup(self._drop_table, odd)
        self.grant_select(odd, "alice")
        name = unique("odd")
        quoted = '"' + odd.replace('"', '""') + '"'
        with alice.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SELECT * FROM ml_train(%s, 'Progression', name => %s, exclude => ARRAY['id'])", (quoted, name))
            r = cur.fetchone()
            self.assertEqual(r["rows_train"] + r["rows_test"], 100)
            cur.execute("SELECT ml_predict(%s, t) AS p FROM " + sql.Identifier(odd).as_string(cur) + " t LIMIT 1",
                        (name,))
            self.assertIsNotNone(cur.fetchone()["p"])

    def test_training_needs_select(self):
        alice = self.login("alice")
        hidden = self.table(self.cols, self.rows, "priv_hidden")  # no grant to alice
        err = self.assertSqlError(DENIED, "SELECT * FROM ml_train(%s, 'progression', exclude => ARRAY['id'])", (hidden,),
                                  conn=alice)
        self.assertIn("permission denied", str(err))
        # retrain and evaluate read with the caller's rights too
        _, model, _ = self.alice_model()
        self.assertSqlError(DENIED, "SELECT * FROM ml_retrain(%s, %s)", (model, hidden), conn=alice)
        self.assertSqlError(DENIED, "SELECT ml_evaluate(%s, %s)", (model, hidden), conn=alice)
        # a view does not launder rights: its owner's are checked, and alice may not read the view
        view = unique("priv_view")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(sql.Identifier(view), sql.Identifier(hidden)))
        self.addCleanup(self._drop_view, view)
        self.assertSqlError(DENIED, "SELECT * FROM ml_train(%s, 'progression', exclude => ARRAY['id'])", (view,),
                            conn=alice)
        # with only some columns granted, training on all of them is refused
        partial = self.table(self.cols, self.rows, "priv_partial")
        self.grant_select(partial, "alice", ["age", "bmi", "progression"])
        self.assertSqlError(DENIED, "SELECT * FROM ml_train(%s, 'progression', exclude => ARRAY['id'])", (partial,),
                            conn=alice)
        self.assertEqual(self.scalar("SELECT count(*) FROM ml_models WHERE owner = %s::regrole", (self.role("alice"),)), 1)

    def _drop_view(self, view):
        c = connect()
        try:
            with c.cursor() as cur:
                cur.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(view)))
        finally:
            c.close()

    def test_row_level_security(self):
        alice_role = self.role("alice")
        cols = self.cols + [("visible_to", "text")]
        rows = [r + [alice_role if int(r[0]) % 3 == 0 else "nobody"] for r in self.rows]
        rls = self.table(cols, rows, "priv_rls")
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(rls)))
            cur.execute(sql.SQL("CREATE POLICY own_rows ON {} FOR SELECT USING (visible_to = current_user)").format(
                sql.Identifier(rls)))
        self.grant_select(rls, "alice")
        visible = sum(1 for r in self.rows if int(r[0]) % 3 == 0)

        alice = self.login("alice")
        self.assertEqual(self.scalar(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(rls)), conn=alice), visible)
        name = unique("rls_model")
        r = self.train_as(alice, rls, name, exclude=["id", "visible_to"], test_size=0.0)
        self.assertEqual(r["rows_train"] + r["rows_test"], visible, "row-level security was not applied")
        report = self.scalar("SELECT report FROM ml_versions WHERE model = %s", (name,), conn=alice)
        self.assertEqual(report["rows_read"], visible)
        # evaluate and retrain see the same rows
        self.assertEqual(self.scalar("SELECT ml_evaluate(%s, %s)->'rows'", (name, rls), conn=alice), visible)
        r = self.one("SELECT rows_train, rows_test FROM ml_retrain(%s, %s, mode => 'refit', test_size => 0)", (name, rls),
                     conn=alice)
        self.assertEqual(r["rows_train"] + r["rows_test"], visible)
        # the table's owner (not subject to the policy) trains on every row
        owner = unique("rls_owner_model")
        self.addCleanup(self._drop_model, owner)
        r = self.train_as(self.conn, rls, owner, exclude=["id", "visible_to"], test_size=0.0)
        self.assertEqual(r["rows_train"], len(self.rows))


if __name__ == "__main__":
    unittest.main()
