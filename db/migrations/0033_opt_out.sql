-- 0033_opt_out.sql - contacts who opt out of campaigns, and campaigns that
-- skip them (issue 35, ARCHITECTURE.md §12.6).
--
-- A contact opts out by sending one of its workspace's opt-out keywords as
-- a whole message (STOP, BERHENTI, ...), or by tapping Meta's marketing
-- opt-out button on a template; it opts back in with an opt-in keyword
-- (START, MULAI). chat-sync applies it in the transaction that stores the
-- message (services/chat-sync/optout.c). The keywords are per workspace, in
-- workspaces.metadata.opt_out {"out": [...], "in": [...]} beside
-- metadata.rate_limits: the CRM owns the workspace's settings, two short
-- lists need no table, and chat-sync reads them with the accounts it locks
-- in every batch anyway (one more column, no more statements).
--
-- contacts.opt_out_changed_at is the time of the message that last opted
-- the contact out or in: an older message (a late delivery, a replay of
-- history) changes nothing. opted_out_at is NULL while the contact takes
-- campaigns.
--
-- campaign_logs gain the final status 'skipped' with its reason in
-- skip_reason (not in the status: other reasons will come, such as a
-- contact outside its service window), and campaigns count them in
-- messages_skipped. campaign-sender decides at release: a contact opted out
-- when its message would leave is skipped, whenever it opted out.

ALTER TABLE contacts
    ADD COLUMN opted_out_at       timestamptz,
    ADD COLUMN opt_out_source     text CHECK (opt_out_source IN ('keyword', 'button')),
    ADD COLUMN opt_out_keyword    text,
    ADD COLUMN opt_out_changed_at timestamptz,
    ADD CONSTRAINT contacts_opt_out_has_source
        CHECK ((opted_out_at IS NULL) = (opt_out_source IS NULL));

COMMENT ON COLUMN contacts.opted_out_at IS
    'When the contact opted out of campaigns (the message''s time); NULL: it takes campaigns.';
COMMENT ON COLUMN contacts.opt_out_source IS
    'How it opted out: keyword (a whole message) or button (Meta''s marketing opt-out button).';
COMMENT ON COLUMN contacts.opt_out_keyword IS
    'The keyword or button text it opted out with, as the workspace lists it.';
COMMENT ON COLUMN contacts.opt_out_changed_at IS
    'Time of the message that last opted the contact out or in: older messages change nothing.';

-- 'skipped' joins the final statuses. NOT VALID then VALIDATE: the old
-- rows are checked without holding off writers for the whole scan.
ALTER TABLE campaign_logs DROP CONSTRAINT campaign_logs_status_check;
ALTER TABLE campaign_logs
    ADD CONSTRAINT campaign_logs_status_check
        CHECK (status IN ('pending', 'queued', 'sent', 'delivered', 'read', 'failed', 'skipped'))
        NOT VALID;
ALTER TABLE campaign_logs VALIDATE CONSTRAINT campaign_logs_status_check;

ALTER TABLE campaign_logs
    ADD COLUMN skip_reason text CONSTRAINT campaign_logs_skip_reason_check
        CHECK (skip_reason IN ('opted_out')),
    ADD COLUMN skipped_at  timestamptz,
    ADD CONSTRAINT campaign_logs_skipped_has_reason
        CHECK ((status = 'skipped') = (skip_reason IS NOT NULL)) NOT VALID;
ALTER TABLE campaign_logs VALIDATE CONSTRAINT campaign_logs_skipped_has_reason;

COMMENT ON COLUMN campaign_logs.skip_reason IS
    'Why a skipped log was not sent: opted_out (the contact had opted out when it would have left).';

ALTER TABLE campaigns
    ADD COLUMN messages_skipped integer NOT NULL DEFAULT 0 CHECK (messages_skipped >= 0);

COMMENT ON COLUMN campaigns.messages_skipped IS
    'Logs skipped at release (campaign_logs.status skipped, reason in skip_reason).';

-- chat-sync reads the workspace's keywords with the accounts of a batch.
GRANT SELECT (id, metadata) ON workspaces TO blazz_chat_sync;
