-- 0055_usage_paid_or_free.sql - message_usage separates paid from free
-- messages: Meta's pricing type and pricing model beside the category
-- (issue 53, ARCHITECTURE.md §12.9).
--
-- Since per-message pricing (July 2025) Meta's status webhooks say, with
-- the category, how a message is priced (statuses[].pricing.type):
-- 'regular' is charged; 'free_customer_service' (a reply inside the
-- customer's 24-hour window) and 'free_entry_point' (the 72 hours after
-- a click-to-WhatsApp ad or a Facebook Page button) are not. pricing_model
-- is 'PMP' (per message) or, before July 2025, 'CBP' (per conversation).
-- A category alone counts a free utility reply with the charged ones, so
-- both become part of the row's key; '' means not reported (rows from
-- before this migration, whatsapp-web.js accounts, a status without
-- them). chat-sync writes them; the CRM sums 'regular' for what it pays.

ALTER TABLE message_usage
    ADD COLUMN pricing_type text NOT NULL DEFAULT '' CHECK (pricing_type ~ '^[a-z_]{0,64}$'),
    ADD COLUMN pricing_model text NOT NULL DEFAULT '' CHECK (pricing_model ~ '^[A-Z_]{0,64}$');

ALTER TABLE message_usage DROP CONSTRAINT message_usage_pkey;
ALTER TABLE message_usage
    ADD PRIMARY KEY (whatsapp_account_id, day, category, pricing_type, pricing_model);

COMMENT ON TABLE message_usage IS
    'Outbound messages delivered per account, UTC day, Meta pricing category (''unpriced'' when none was reported), pricing type and pricing model (both '''' when not reported); written by chat-sync once per message.';
COMMENT ON COLUMN message_usage.pricing_type IS
    'Meta''s statuses[].pricing.type: regular (charged), free_customer_service, free_entry_point; '''' when not reported.';
COMMENT ON COLUMN message_usage.pricing_model IS
    'Meta''s statuses[].pricing.pricing_model: PMP (per message, since July 2025) or CBP; '''' when not reported.';
