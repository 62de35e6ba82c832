-- 0068_history_sync_switch.sql - an account's initial history sync switched
-- off (issue 55, seed 002's sync_enabled).
--
-- Seed 002 limits the initial sync (500 chats or 30 days, the last 50
-- messages of a chat, 10 chats a second, batches of 50) and switches it off
-- as a whole (WHATSAPP_SYNC_ENABLED). chat-sync sends the limits with every
-- CREATE and RESTART (SessionCommand.history_sync, its history_sync
-- settings, history_sync.enabled the deployment's switch) and this column
-- is the account's: false when the CRM created the session with
-- history_sync false. NOT NULL DEFAULT true: the last release's chat-sync
-- inserts accounts without it and they sync, as they did (decision 0008).

ALTER TABLE whatsapp_accounts ADD COLUMN sync_enabled boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN whatsapp_accounts.sync_enabled IS
    'Whether a connect of this session starts the initial history sync (seed 002); false when the CRM created it with history_sync false.';
