-- 005_roles.sql - least-privilege roles.
--
--   tradeflow_writer  the consumers and the relay: read/write the internal
--                     tables, run the apply functions; no DDL, no roles,
--                     cannot change the migrations or the group reference
--                     table (edited by an administrator, then `rebuild`).
--   tradeflow_reader  BI tools: SELECT on the reporting views only (003).
--
-- Both are NOLOGIN: grant them to login roles, e.g.
--   CREATE ROLE aggregator LOGIN PASSWORD '...' IN ROLE tradeflow_writer;
-- Migrations are applied by the owner (`tradeflow-aggregate migrate`).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tradeflow_writer') THEN
        CREATE ROLE tradeflow_writer NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END;
$$;

GRANT USAGE ON SCHEMA tradeflow, reporting TO tradeflow_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tradeflow TO tradeflow_writer;
REVOKE INSERT, UPDATE, DELETE ON tradeflow.schema_migrations, tradeflow.group_members
    FROM tradeflow_writer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA tradeflow TO tradeflow_writer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tradeflow TO tradeflow_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO tradeflow_writer;
-- Tables of later migrations (created by the same owner) follow suit.
ALTER DEFAULT PRIVILEGES IN SCHEMA tradeflow
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO tradeflow_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA tradeflow
    GRANT USAGE ON SEQUENCES TO tradeflow_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA reporting
    GRANT SELECT ON TABLES TO tradeflow_writer, tradeflow_reader;
