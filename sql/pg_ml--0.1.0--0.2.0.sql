-- pg_ml 0.1.0 -> 0.2.0: aggregates for single-pass parallel training, the batch predict path,
-- auto-retrain jobs, progress, export / import.
--
-- The full 0.2.0 install script (sql/pg_ml--0.2.0.sql) is built by the Makefile as
-- pg_ml--0.1.0.sql followed by this file, so a fresh install and an update run the same
-- statements. Same rules as the install script: no CREATE OR REPLACE, no IF NOT EXISTS,
-- everything schema-qualified.

\echo Use "ALTER EXTENSION pg_ml UPDATE TO '0.2.0'" to load this file. \quit

