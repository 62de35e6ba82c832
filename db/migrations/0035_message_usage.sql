-- 0035_message_usage.sql - delivered messages per account, day and
-- pricing category, so the CRM can show what the messages cost (issue 35,
-- ARCHITECTURE.md §12.9).
--
-- Meta prices a message by its category (marketing, utility,
-- authentication, service, ...) and charges it when it is delivered; its
-- status webhooks say the category (statuses[].pricing.category). chat-sync
-- adds one to (account, UTC day of the delivery, category) in the
-- transaction in which an outbound message first reaches delivered (or
-- read, which passes it), so a message counts once whatever the receipts
-- repeat. A message no price was reported for (whatsapp-web.js accounts;
-- a Meta status without pricing) counts as 'unpriced'.

CREATE TABLE message_usage (
    whatsapp_account_id bigint NOT NULL REFERENCES whatsapp_accounts (id) ON DELETE CASCADE,
    day                 date NOT NULL,
    category            text NOT NULL CHECK (category ~ '^[a-z_]{1,64}$'),
    workspace_id        bigint NOT NULL,
    delivered           bigint NOT NULL DEFAULT 0 CHECK (delivered >= 0),
    PRIMARY KEY (whatsapp_account_id, day, category)
);

COMMENT ON TABLE message_usage IS
    'Outbound messages delivered per account, UTC day and Meta pricing category (''unpriced'' when none was reported); written by chat-sync once per message.';

CREATE INDEX message_usage_workspace_day_idx ON message_usage (workspace_id, day);

ALTER TABLE message_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY message_usage_workspace_isolation ON message_usage TO blazz_crm
    USING (workspace_id = blazz_current_workspace_id());
GRANT SELECT ON message_usage TO blazz_crm;
GRANT SELECT, INSERT, UPDATE ON message_usage TO blazz_chat_sync;
