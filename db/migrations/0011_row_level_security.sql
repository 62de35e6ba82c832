-- 0011_row_level_security.sql - workspace isolation enforced by PostgreSQL.
--
-- Every tenant table gets row level security with one policy for the role
-- blazz_crm: a row is visible, and may be written, only when its
-- workspace_id equals the session's blazz.workspace_id (see 0001). With the
-- setting absent or empty nothing matches, so a forgotten SET exposes no
-- data. The WITH CHECK half stops the CRM from writing a row into another
-- workspace.
--
-- The services connect as the tables' owner and are not subject to these
-- policies (owners bypass RLS unless the table is FORCEd, which it is not).
-- Infrastructure tables (kafka_offsets, outbox) get no grants at all.

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'whatsapp_accounts', 'contacts', 'whatsapp_groups', 'chats',
        'contact_groups', 'contact_group_members', 'templates',
        'campaigns', 'campaign_logs', 'webhook_endpoints',
        'webhook_retry_queue', 'session_cleanup_logs'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I TO blazz_crm '
                       'USING (workspace_id = blazz_current_workspace_id()) '
                       'WITH CHECK (workspace_id = blazz_current_workspace_id())',
                       t || '_workspace_isolation', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO blazz_crm', t);
    END LOOP;
END
$$;

-- The workspace row itself: the CRM sees only its own.
ALTER TABLE workspaces ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspaces_workspace_isolation ON workspaces TO blazz_crm
    USING (id = blazz_current_workspace_id())
    WITH CHECK (id = blazz_current_workspace_id());
GRANT SELECT, UPDATE ON workspaces TO blazz_crm;

-- Users are shared across workspaces and not tenant data.
GRANT SELECT ON users TO blazz_crm;
