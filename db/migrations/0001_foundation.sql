-- 0001_foundation.sql - roles and helper functions every later migration uses.
--
-- Workspace isolation is enforced by PostgreSQL row level security for the
-- role `blazz_crm` (the CRM application's role; its login roles are granted
-- membership). Each tenant table gets a policy comparing its workspace_id
-- with the session setting `blazz.workspace_id`, which the CRM sets per
-- request or transaction:
--
--     SET LOCAL ROLE blazz_crm; SET LOCAL blazz.workspace_id = '42';
--
-- The backbone services connect as the owner of the tables. A table owner
-- bypasses row level security (the tables are not FORCEd), which the
-- services need: they work across workspaces and resolve the workspace
-- themselves. Running this migration therefore needs CREATEROLE (or a
-- superuser) the first time, to create `blazz_crm`.
--
-- The migrator wraps this file in a transaction: no BEGIN/COMMIT here.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'blazz_crm') THEN
        CREATE ROLE blazz_crm NOLOGIN;
    END IF;
END
$$;

-- The workspace the current session acts for, NULL when unset. After a
-- transaction that used SET LOCAL, PostgreSQL leaves the custom setting
-- defined but empty, hence the nullif: ''::bigint would raise instead of
-- simply matching no row.
CREATE FUNCTION blazz_current_workspace_id() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('blazz.workspace_id', true), '')::bigint $$;

COMMENT ON FUNCTION blazz_current_workspace_id() IS
    'Workspace of the current session (setting blazz.workspace_id), NULL when unset; used by the RLS policies.';

-- Keeps updated_at current on every UPDATE that does not set it itself, so
-- the CRM (which sets it explicitly) and the services (which usually do not)
-- both leave a correct value, and tests may still backdate rows on purpose.
CREATE FUNCTION blazz_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;
