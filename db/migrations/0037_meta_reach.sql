-- 0037_meta_reach.sql - who a business portfolio reached with
-- business-initiated messages, for Meta's messaging limit (issue 35,
-- ARCHITECTURE.md §12.10).
--
-- Meta limits how many unique users a business portfolio (every number of
-- it together) may reach with business-initiated messages in a moving
-- 24 hours: its tier (TIER_250, TIER_2K, TIER_10K, TIER_100K, unlimited;
-- whatsapp_accounts.meta_business_limit, 0034). A user inside their
-- customer-service window (they wrote to the number within 24 hours) is
-- not business-initiated and does not count. campaign-sender keeps, per
-- portfolio and contact, when it last released a business-initiated
-- message to them, in the transaction that releases it: the users reached
-- in the last 24 hours are the rows newer than that, one each however
-- often they were sent to, and the first of them to age out is when the
-- next user may be reached.

CREATE TABLE meta_reach (
    business_key text NOT NULL,          -- meta_business_id, else the WABA
    contact_id   bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    workspace_id bigint NOT NULL,
    reached_at   timestamptz NOT NULL,
    PRIMARY KEY (business_key, contact_id)
);

COMMENT ON TABLE meta_reach IS
    'Per business portfolio and contact, the last business-initiated message released to the contact (Meta''s 24 h unique-recipient limit); written by campaign-sender as it releases.';

CREATE INDEX meta_reach_business_reached_idx ON meta_reach (business_key, reached_at);

GRANT SELECT, INSERT, UPDATE ON meta_reach TO blazz_campaign_sender;
