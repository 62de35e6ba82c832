-- 0049_replay_order.sql - campaign-sender keeps order in a restore's
-- replay (ARCHITECTURE.md §6.5), where topics come back in no order
-- between them.
--
-- Agents' sends: the replay re-reads agents' commands (crm.commands) and
-- their gateways' echoes (chat.sync). A command read before its echo
-- stored the message again as pending and queued it, and campaign-sender
-- released it to the whatsapp-web.js gateway a second time (the restore
-- drill counted 8 such repeats). While a fence is up campaign-sender now
-- releases no agent message; once it is lifted, a queued message whose
-- row has the provider's message id (its echo was replayed) leaves the
-- queue unsent. meta-sender already holds Meta sends behind the fence.
--
-- Campaign receipts: campaign.receipts may come back before the
-- campaign.commands start that makes their logs; such a receipt was
-- dead-lettered unknown_campaign_log, its log never moved and its
-- campaign never completed. While a fence is up it now waits here (once
-- per event id), and the batch that applies a command takes back the
-- receipts whose logs exist by then, oldest first.

GRANT SELECT ON restore_fences TO blazz_campaign_sender;

CREATE TABLE campaign_receipts_waiting (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id  text NOT NULL UNIQUE,
    log_uuid  uuid,
    log_id    bigint NOT NULL DEFAULT 0,
    receipt   bytea NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE campaign_receipts_waiting IS
    'Campaign receipts a restore''s replay brought before their logs'' campaign start: applied by campaign-sender once the log exists.';

GRANT SELECT, INSERT, DELETE ON campaign_receipts_waiting TO blazz_campaign_sender;
