-- 0055_usage_paid_or_free.sql - usage that separates paid from free
-- messages: Meta's pricing type and pricing model beside the category
-- (issue 53, ARCHITECTURE.md §12.9).
--
-- Since per-message pricing (July 2025) Meta's status webhooks say, with
-- the category, how a message is priced (statuses[].pricing.type):
-- 'regular' is charged; 'free_customer_service' (a reply inside the
-- customer's 24-hour window) and 'free_entry_point' (the 72 hours after
-- a click-to-WhatsApp ad or a Facebook Page button) are not. pricing_model
-- is 'PMP' (per message) or, before July 2025, 'CBP' (per conversation).
-- A category alone counts a free utility reply with the charged ones.
--
-- A table of its own beside message_usage, not two more key columns of
-- it: a release's chat-sync keeps writing message_usage by its key
-- (account, day, category) while an upgrade replaces the services one by
-- one after this migration, and a changed key would refuse every one of
-- its writes (the upgrade test dead-lettered 100 receipts). chat-sync
-- writes both in one statement, message_usage as before and this one for
-- the receipts that name a pricing type or model; its sums are below
-- message_usage's by the messages counted without them (whatsapp-web.js,
-- statuses without pricing, a release's chat-sync during an upgrade).

CREATE TABLE message_usage_priced (
    whatsapp_account_id bigint NOT NULL REFERENCES whatsapp_accounts (id) ON DELETE CASCADE,
    day                 date NOT NULL,
    category            text NOT NULL CHECK (category ~ '^[a-z_]{1,64}$'),
    pricing_type        text NOT NULL CHECK (pricing_type ~ '^[a-z_]{0,64}$'),
    pricing_model       text NOT NULL CHECK (pricing_model ~ '^[A-Z_]{0,64}$'),
    workspace_id        bigint NOT NULL,
    delivered           bigint NOT NULL DEFAULT 0 CHECK (delivered >= 0),
    PRIMARY KEY (whatsapp_account_id, day, category, pricing_type, pricing_model)
);

COMMENT ON TABLE message_usage_priced IS
    'Outbound messages delivered per account, UTC day, Meta pricing category, pricing type (regular is charged; free_customer_service, free_entry_point) and pricing model (PMP, CBP), '''' for one not reported; only messages whose status reported either. Written by chat-sync with message_usage.';

CREATE INDEX message_usage_priced_workspace_day_idx ON message_usage_priced (workspace_id, day);

ALTER TABLE message_usage_priced ENABLE ROW LEVEL SECURITY;
CREATE POLICY message_usage_priced_workspace_isolation ON message_usage_priced TO blazz_crm
    USING (workspace_id = blazz_current_workspace_id());
GRANT SELECT ON message_usage_priced TO blazz_crm;
GRANT SELECT, INSERT, UPDATE ON message_usage_priced TO blazz_chat_sync;
