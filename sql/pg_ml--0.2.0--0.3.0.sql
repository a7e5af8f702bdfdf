-- pg_ml 0.2.0 -> 0.3.0: security and reliability (issue 10).
--
-- The full 0.3.0 install script (sql/pg_ml--0.3.0.sql) is built by the Makefile as
-- pg_ml--0.1.0.sql, pg_ml--0.1.0--0.2.0.sql and this file, so a fresh install and an update
-- run the same statements. Same rules as the install script: no CREATE OR REPLACE, no IF NOT
-- EXISTS, everything schema-qualified, search_path pinned.

\echo Use "ALTER EXTENSION pg_ml UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------- internal aggregates (finding 1)
-- (fixed argument types, in schema ml)

-- ---------------------------------------------------------------- model ownership (findings 2-4)

-- ---------------------------------------------------------------- other changes
