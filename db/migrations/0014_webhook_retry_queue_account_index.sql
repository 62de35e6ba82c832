-- 0014: index the account reference of webhook_retry_queue.
--
-- webhook_retry_queue (workspace_id, whatsapp_account_id) references
-- whatsapp_accounts ON DELETE SET NULL. Without an index on the account
-- column, every deleted account made PostgreSQL scan the whole delivery
-- table to null its references: deleting a workspace with many accounts (or
-- a cleanup purge of accounts) became quadratic. Found when a benchmark's
-- teardown of 1,000,000 accounts ran for more than 15 minutes. Every other
-- account reference already has an index leading with the account column.
CREATE INDEX webhook_retry_queue_account_idx ON webhook_retry_queue (whatsapp_account_id)
    WHERE whatsapp_account_id IS NOT NULL;
