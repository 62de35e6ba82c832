-- 0018_campaign_logs_redundant_checks.sql - two per-row costs of audience
-- expansion that guarded nothing another constraint does not already guard.
--
-- Starting a campaign inserts one campaign_logs row per audience contact in
-- one statement (campaign-sender, audience.c). After 0015, each row still
-- paid five foreign key triggers and six index inserts. Measured on a
-- 100,000-contact group (the statement alone, same window, three rounds
-- each, table vacuumed): 2.61 s before, 2.23 s after change 1, 2.10 s after
-- both (about -20%).
--
-- 1. The foreign key campaign_logs (workspace_id) -> workspaces (id) is
--    dropped. The seeds' schema has it because there campaign_id alone
--    references campaigns. Here the key to campaigns is composite,
--    (workspace_id, campaign_id) -> campaigns (workspace_id, id), and
--    campaigns.workspace_id itself references workspaces (id). So a log's
--    workspace exists whenever its campaign does, and deleting a workspace
--    still removes its logs: it cascades to campaigns, which cascade to
--    their logs. Same guarantee, one trigger fewer per inserted row (about
--    15% of the expansion).
--
-- 2. UNIQUE (campaign_id, contact_id) becomes UNIQUE (contact_id,
--    campaign_id), and campaign_logs_contact_idx (contact_id) is dropped:
--    the unique index now serves both of its uses with one index insert
--    instead of two.
--     - Idempotent expansion: ON CONFLICT (campaign_id, contact_id) infers
--       the arbiter from the set of columns, so audience.c and the
--       seeds-compatible inserts are unchanged; uniqueness is the same.
--     - The ON DELETE CASCADE of the foreign key from contacts (DELETE ...
--       WHERE workspace_id = $1 AND contact_id = $2) searches the leading
--       column, as it searched campaign_logs_contact_idx.
--    Searches by campaign_id never needed the unique index: the sender's
--    pick (sender.c SQL_PICK), completion (lifecycle.c), progress counts
--    (events.c, blazzctl) and the existing-log count (audience.c) use
--    campaign_logs_campaign_status_idx (campaign_id, status, id); chat-sync
--    and the receipts find logs by uuid or wam_id. Checked: every statement
--    in services/ and tools/, and the seeds' documented CRM queries (none
--    searches campaign_logs by contact).
--
-- The other foreign keys stay: campaigns and contacts (checked per row),
-- whatsapp_accounts and chats (NULL at expansion, set later).

ALTER TABLE campaign_logs DROP CONSTRAINT campaign_logs_workspace_id_fkey;

ALTER TABLE campaign_logs DROP CONSTRAINT campaign_logs_campaign_contact_key;
ALTER TABLE campaign_logs
    ADD CONSTRAINT campaign_logs_contact_campaign_key UNIQUE (contact_id, campaign_id);
DROP INDEX campaign_logs_contact_idx;
