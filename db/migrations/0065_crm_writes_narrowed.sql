-- 0065_crm_writes_narrowed.sql - the CRM's role may write what READS.md §6
-- says the CRM writes, and no more (issue 54; least privilege).
--
-- 0011 gave blazz_crm every write on every tenant table: the seeds' CRM
-- wrote them all. But a write the backbone does not see changes no event,
-- no webhook and no counter, and a message INSERTed into chats is never
-- sent. READS.md §6 has said since 0031 that the CRM writes its own tables
-- and asks the API for the rest, and that the grants would follow once the
-- API covered what such a CRM still wrote directly. Here they follow, for
-- the tables the last release's API covers already (v0.46.0: messages and
-- read marks, sessions and their actions, contacts and merges):
--
--   chats, whatsapp_accounts, whatsapp_groups   chat-sync's (POST /v1/messages,
--                                               /v1/chats/read, /v1/sessions)
--   campaign_logs, session_cleanup_logs         campaign-sender's, cleanup's
--   contacts                                    chat-sync's, but for the CRM's
--                                               own columns: first_name,
--                                               last_name, email
--
-- Reading stays as it was (SELECT, row level security). A contact is made,
-- renamed or opted out through POST and PATCH /v1/contacts, which send its
-- webhooks; its identifiers are never the CRM's. webhook_endpoints and
-- webhook_retry_queue keep their grants one release more (docs/decisions/
-- 0008, rule 1): the API's disable, enable and replay (0063) are new in
-- this one, so a CRM that does them in SQL has a release to move.

REVOKE INSERT, UPDATE, DELETE ON chats, whatsapp_accounts, whatsapp_groups, campaign_logs,
    session_cleanup_logs, contacts FROM blazz_crm;
GRANT UPDATE (first_name, last_name, email) ON contacts TO blazz_crm;
