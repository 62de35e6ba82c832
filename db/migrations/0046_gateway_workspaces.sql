-- 0046_gateway_workspaces.sql - which workspaces a whatsapp-web.js gateway
-- serves (issue 49, ARCHITECTURE.md §9.2).
--
-- Gateways belonged to no workspace: a CRM key could create a session on
-- any enabled gateway by name, one an operator runs for another tenant
-- included, and the assignment sweep put a session that names none on any
-- gateway with room. A gateway with rows here now serves only the
-- workspaces they name; a gateway with none is shared by every workspace,
-- which is what every gateway was until now, so nothing changes until an
-- operator grants one (`blazzctl gateways grant|revoke`).
--
-- blazz_gateway_serves is that rule, written once for everyone who applies
-- it: ingest's answer to POST /v1/sessions (a gateway the workspace may not
-- use is 404 unknown_gateway, as one that does not exist) and its "room"
-- query, chat-sync's create and its sweep. An invoker's function, inlined
-- by the planner; its callers need SELECT on the table.

CREATE TABLE gateway_workspaces (
    gateway_id   text NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    workspace_id bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, workspace_id)
);

COMMENT ON TABLE gateway_workspaces IS
    'The workspaces a gateway serves; a gateway without rows serves every workspace. Written by blazzctl gateways grant|revoke.';

-- a workspace's delete cascades here
CREATE INDEX gateway_workspaces_workspace_idx ON gateway_workspaces (workspace_id);

CREATE FUNCTION blazz_gateway_serves(gateway text, workspace bigint) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT NOT EXISTS (SELECT 1 FROM gateway_workspaces w WHERE w.gateway_id = gateway)
        OR EXISTS (SELECT 1 FROM gateway_workspaces w
                    WHERE w.gateway_id = gateway AND w.workspace_id = workspace)
$$;

COMMENT ON FUNCTION blazz_gateway_serves(text, bigint) IS
    'Whether the gateway may serve the workspace''s sessions: it has no gateway_workspaces rows (shared), or one for the workspace.';

REVOKE ALL ON FUNCTION blazz_gateway_serves(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION blazz_gateway_serves(text, bigint) TO blazz_ingest, blazz_chat_sync;
GRANT SELECT ON gateway_workspaces TO blazz_ingest, blazz_chat_sync;
