-- 0072_crm_endpoint_create.sql - the CRM creates and deletes its webhook
-- endpoints over the API (issue 54: POST /v1/webhook-endpoints, DELETE
-- /v1/webhook-endpoints/{id}, services/ingest/crm/crm_webhook_writes.c).
--
-- Expand only (docs/decisions/0008): grants no service of an earlier
-- release misses.
--
-- Ingest draws the new row's id first (its secret is sealed bound to it,
-- SECURITY.md §9.3) and inserts the columns a CRM chooses: its URL, name
-- and event types, and the secret it sealed. Never an existing endpoint's
-- URL or secret (0063 still holds: it updates neither), nor the limits
-- (rate, concurrency, timeout) and the signing scheme, which keep their
-- defaults and stay the operator's (blazzctl webhooks). Where an endpoint
-- may point is the dispatcher's to check at each connect (its SSRF guard,
-- webhook.allow_private_targets); how many a workspace may hold is
-- ingest's (crm.webhook_endpoints_per_workspace, counted under an advisory
-- lock of the workspace).

GRANT INSERT (id, workspace_id, name, url, secret_ciphertext, event_types)
    ON webhook_endpoints TO blazz_ingest;

-- A deletion marks the row (deleted_at: gone from the list, the count and
-- the fan-out; kept for its deliveries) and disables it (0063's columns).
GRANT UPDATE (deleted_at) ON webhook_endpoints TO blazz_ingest;

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SEQUENCE %s TO blazz_ingest',
                   pg_get_serial_sequence('webhook_endpoints', 'id'));
END
$$;
