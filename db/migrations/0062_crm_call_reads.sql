-- 0062_crm_call_reads.sql - ingest reads a contact's WhatsApp calls over
-- the CRM's API (GET /v1/contacts/{contact_id}/calls, issue 53: a CRM
-- shows calls in the conversation; services/ingest/crm/crm_calls.c).
--
-- Expand only (docs/decisions/0008): a grant no service of an earlier
-- release misses.
--
-- 0060 let the CRM's role read calls and chat-sync write them; ingest,
-- which answers the route, had no grant. Its role, blazz_ingest, is the
-- internet-facing one (0027): it gets the columns the route answers and
-- pages by (a call as the call.updated webhook shows it) and no more, not
-- updated_at. The route walks calls_contact_idx (0060), as read_contract.sql's
-- contact_calls does, so no index is added.

GRANT SELECT (id, uuid, meta_call_id, workspace_id, whatsapp_account_id, contact_id, direction,
              status, connected_at, started_at, ended_at, terminated_at, duration_s, error_code,
              error_message, created_at)
    ON calls TO blazz_ingest;
