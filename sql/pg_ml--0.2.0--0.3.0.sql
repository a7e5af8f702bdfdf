-- pg_ml 0.2.0 -> 0.3.0: security and reliability (issue 10).
--
-- The full 0.3.0 install script (sql/pg_ml--0.3.0.sql) is built by the Makefile as
-- pg_ml--0.1.0.sql, pg_ml--0.1.0--0.2.0.sql and this file, so a fresh install and an update
-- run the same statements. Same rules as the install script: no CREATE OR REPLACE, no IF NOT
-- EXISTS, everything schema-qualified, search_path pinned.

\echo Use "ALTER EXTENSION pg_ml UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------- the library (issue 10)
-- First, before anything changes: the objects of 0.3.0 need the library of 0.3.0. A server
-- still running an older library (make install not done, or a preloaded library not restarted)
-- cannot find this function's symbol; say so, and the whole update rolls back.
DO $$
BEGIN
    CREATE FUNCTION ml.library_version() RETURNS text
        AS 'MODULE_PATHNAME', 'pgml_library_version_0_3' LANGUAGE C STRICT STABLE PARALLEL SAFE;
EXCEPTION WHEN undefined_function THEN
    RAISE EXCEPTION 'pg_ml 0.3.0 needs the pg_ml 0.3.0 library, but this server runs an older one'
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = SQLERRM,
              HINT = 'Install pg_ml 0.3.0 (make install), then restart the server if pg_ml is in '
                     'shared_preload_libraries, or reconnect: a loaded library stays in memory.';
END
$$;
COMMENT ON FUNCTION ml.library_version() IS 'pg_ml: the version of the loaded pg_ml library';

-- ---------------------------------------------------------------- internal aggregates (finding 1)
-- (fixed argument types, in schema ml)

-- ---------------------------------------------------------------- model ownership (findings 2-4)

-- ---------------------------------------------------------------- other changes
