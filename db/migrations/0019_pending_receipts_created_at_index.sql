-- 0019_pending_receipts_created_at_index.sql - lets cleanup's retention find
-- old parked receipts without scanning the table.
--
-- A receipt parked for a message chat-sync never stores stays in
-- pending_receipts (0013). blazz-cleanup deletes the rows older than
-- cleanup.pending_receipts_retention_days, batch by batch, by created_at.
CREATE INDEX pending_receipts_created_at_idx ON pending_receipts (created_at);
