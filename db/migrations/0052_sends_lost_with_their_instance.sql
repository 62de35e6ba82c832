-- 0052_sends_lost_with_their_instance.sql - a send released to a gateway
-- instance that died before answering it ends failed, once (issue 55,
-- ARCHITECTURE.md §15.4).
--
-- A release is addressed to the session's assignment of the moment (the
-- outbox's blazz-assignment header, 0030): only that instance, under that
-- epoch, may perform it. When the sweep gives the instance up as dead and
-- moves or parks the session, nothing will ever answer what was released
-- to it and not answered yet, so the chats row stayed pending and the
-- campaign log queued for ever. Now:
--  - whatsapp_accounts.instance_lost_at is when the sweep last gave the
--    session's instance up (chat-sync's assign.c, with disconnect_reason
--    instance_restart);
--  - send_ledger.lost_at marks a release the sweep declared lost with it
--    (chat-sync's lost_sends.c), in the transaction that writes its FAILED
--    receipt (gateway_instance_lost) to the outbox, so each is failed once
--    however many rounds look at it;
--  - every round of the sweep (each second) looks for accounts whose
--    instance was lost in the last hour: a partial index on the few that
--    ever had one, not a scan of every account; then for their releases
--    by (account, time): one probe per account, instead of an hour of
--    every account's releases. send_ledger holds cleanup's retention of
--    releases (2 h at least), so building that index is short.

ALTER TABLE whatsapp_accounts ADD COLUMN instance_lost_at timestamptz;

COMMENT ON COLUMN whatsapp_accounts.instance_lost_at IS
    'When the backbone last gave up the session''s gateway instance as dead (its unanswered releases then fail: gateway_instance_lost).';

CREATE INDEX whatsapp_accounts_instance_lost_idx ON whatsapp_accounts (instance_lost_at)
    WHERE instance_lost_at IS NOT NULL;

ALTER TABLE send_ledger ADD COLUMN lost_at timestamptz;

COMMENT ON COLUMN send_ledger.lost_at IS
    'When the release was declared lost with the gateway instance it was addressed to (its FAILED receipt written then); NULL otherwise.';

CREATE INDEX send_ledger_account_released_idx ON send_ledger (whatsapp_account_id, released_at);

GRANT SELECT ON send_ledger TO blazz_chat_sync;
GRANT UPDATE (lost_at) ON send_ledger TO blazz_chat_sync;
