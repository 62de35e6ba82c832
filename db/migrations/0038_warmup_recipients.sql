-- 0038_warmup_recipients.sql - the new recipients a whatsapp-web.js number
-- reached, for its warm-up (issue 35, ARCHITECTURE.md §11.3).
--
-- WhatsApp bans unofficial numbers for sudden volume: a young number may
-- reach only a few recipients it never talked to per day, more as it ages
-- (campaign-sender's warmup.schedule). campaign-sender keeps, per account
-- and contact, when it first released a campaign message to a contact the
-- account had no conversation with, in the transaction that releases it:
-- the new recipients of the last 24 hours are the rows newer than that, and
-- the first of them to age out is when the next may be reached. A row is
-- never moved: a contact reached once is known from then on (as is one
-- with any chats row with the account).
--
-- Unlike meta_reach (0037: the last business-initiated message per
-- portfolio and contact, moved at every release, since Meta counts unique
-- users reached in the window), this keeps the first message per account.

CREATE TABLE warmup_recipients (
    whatsapp_account_id bigint NOT NULL REFERENCES whatsapp_accounts (id) ON DELETE CASCADE,
    contact_id          bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    workspace_id        bigint NOT NULL,
    first_sent_at       timestamptz NOT NULL,
    PRIMARY KEY (whatsapp_account_id, contact_id)
);

COMMENT ON TABLE warmup_recipients IS
    'Per whatsapp-web.js account and contact, the first campaign message released to a contact the account had no conversation with (the warm-up''s daily cap of new recipients); written by campaign-sender as it releases.';

CREATE INDEX warmup_recipients_account_sent_idx
    ON warmup_recipients (whatsapp_account_id, first_sent_at);

GRANT SELECT, INSERT ON warmup_recipients TO blazz_campaign_sender;
