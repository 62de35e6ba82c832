-- 0073_meta_volume_tiers.sql - a WABA's volume-based pricing tiers as Meta
-- reports them (issue 53, ARCHITECTURE.md §12.9).
--
-- Expand only (docs/decisions/0008): a new table no service of an earlier
-- release names.
--
-- Since October 2025 Meta prices utility and authentication messages by
-- volume: the more a WABA sends in a market in a month, the lower its
-- band. account_update's VOLUME_BASED_PRICING_TIER_UPDATE says the WABA
-- reached a band (volume_tier_info: effective_month, pricing_category,
-- region, tier, tier_update_time). One row per WABA, month, category and
-- market holds the band it reached last: Meta does not promise the order
-- of its deliveries, so a report whose tier_update_time (else its entry
-- time) is older than the row's changes nothing. No account's standing
-- moves with it, so no account.updated goes out: the CRM reads the bands
-- beside its usage (docs/META.md §12.9).

CREATE TABLE meta_volume_tiers (
    workspace_id     bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    waba_id          text NOT NULL CHECK (waba_id <> ''),
    effective_month  text NOT NULL CHECK (effective_month ~ '^[0-9]{4}-[0-9]{2}$'),
    pricing_category text NOT NULL CHECK (pricing_category <> ''),
    region           text NOT NULL CHECK (region <> ''),
    tier             text NOT NULL CHECK (tier <> ''),
    tier_updated_at  timestamptz,
    reported_at      timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, waba_id, effective_month, pricing_category, region)
);

COMMENT ON TABLE meta_volume_tiers IS
    'The volume-based pricing band (tier, e.g. ''25000001:50000000'') a WABA reached in one market (region) and pricing category for one month (effective_month, YYYY-MM), in Meta''s words; the latest by tier_updated_at (Meta''s tier_update_time), else reported_at (the webhook entry''s time). Written by chat-sync from account_update VOLUME_BASED_PRICING_TIER_UPDATE.';

ALTER TABLE meta_volume_tiers ENABLE ROW LEVEL SECURITY;
CREATE POLICY meta_volume_tiers_workspace_isolation ON meta_volume_tiers TO blazz_crm
    USING (workspace_id = blazz_current_workspace_id());
GRANT SELECT ON meta_volume_tiers TO blazz_crm;
GRANT SELECT, INSERT, UPDATE ON meta_volume_tiers TO blazz_chat_sync;
