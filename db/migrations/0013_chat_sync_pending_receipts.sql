-- 0013_chat_sync_pending_receipts.sql - receipts that arrived before their
-- message, parked by chat-sync until the message is stored.
--
-- Receipts (MessageAck) and messages reach chat-sync on different paths
-- (webhook retries, history sync, the provider's own ordering), so a
-- "delivered" can arrive before the message it is about. Dropping it lost
-- the status for good, and made a later replay of the same receipt (same
-- event_id) apply it, so a replay was not a no-op. chat-sync now inserts
-- such a receipt here (ON CONFLICT DO NOTHING: a replayed receipt parks
-- once), and the transaction that stores the message reads the message's
-- parked receipts, applies them with the ordinary receipt rules (status only
-- moves forward), emits the events the receipt would have emitted (ids
-- derived from the receipt's event_id, so a replay emits nothing new) and
-- deletes them.
--
-- command holds the chat.sync record's payload (a SyncCommand) and msg_key
-- its Kafka key: applying a parked receipt later re-reads the receipt with
-- its envelope (trace id, workspace, occurred_at) exactly as received. The
-- other columns are the facts the apply order and operators need.
--
-- Receipts for messages chat-sync never stores (sent from elsewhere,
-- deleted) stay parked; a cleanup retention job may purge rows older than N
-- days (created_at), which only forgets statuses no message can take any
-- more. Like outbox, the table is chat-sync's own: no grants to blazz_crm.
CREATE TABLE pending_receipts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  whatsapp_account_id bigint NOT NULL,
  wam_id text NOT NULL,
  status text NOT NULL,                 -- sent | delivered | read | played | failed | pending
  occurred_at timestamptz,              -- the receipt's timestamp (else its envelope's)
  event_id text NOT NULL,               -- the receipt command's envelope.event_id (text: the
                                        -- contract does not force a UUID, and parking must not refuse one)
  error_code text,                      -- failed receipts only
  error_message text,
  command bytea NOT NULL,
  msg_key bytea,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pending_receipts_key UNIQUE (whatsapp_account_id, wam_id, event_id));

COMMENT ON TABLE pending_receipts IS 'Receipts chat-sync received before their message; applied and deleted when the message is stored.';

CREATE INDEX pending_receipts_message_idx ON pending_receipts (whatsapp_account_id, wam_id);
