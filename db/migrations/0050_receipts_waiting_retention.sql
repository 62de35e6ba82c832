-- 0050_receipts_waiting_retention.sql - cleanup forgets campaign receipts
-- that waited for their log too long (issue 55).
--
-- A receipt parks in campaign_receipts_waiting (0049) while a restore's
-- replay has not yet re-read the campaign start that makes its log. A start
-- that never comes back (its record gone with Kafka's retention, its
-- campaign deleted) would leave the row for ever. cleanup purges rows
-- parked longer than cleanup.pending_receipts_retention_days (7), the
-- rule it already applies to chat-sync's pending_receipts: a log that has
-- not appeared in that long will not, and forgetting its receipt forgets
-- only a status no stored log can take.

GRANT SELECT, DELETE ON campaign_receipts_waiting TO blazz_cleanup;

CREATE INDEX campaign_receipts_waiting_parked_at ON campaign_receipts_waiting (parked_at);
