-- 0039_send_ledger_recipient.sql - whom each release went to, for Meta's
-- pair rate (issue 35, ARCHITECTURE.md §11.3).
--
-- A business number may send one message every 6 s to the same WhatsApp
-- user (131056 beyond), with a burst of up to 45. campaign-sender keeps a
-- bucket per (account, recipient) beside the send budget's windows, and
-- like them it must survive a restart or a hand-over to another instance:
-- the active sender derives it from the releases of the last
-- pair_burst * pair_interval (at most 100 min, under cleanup's 2 h minimum
-- retention of send_ledger), so every release records its recipient in
-- the row it already writes in the releasing transaction. The recipient
-- is the contact's phone, what the provider addresses (E.164, or the JID
-- a phone-less contact is known by); NULL when the release is to no user
-- (an agent's message to a group). No index: the sender reads the ledger
-- by time (send_ledger_released_idx), never by recipient.

ALTER TABLE send_ledger ADD COLUMN recipient text;

COMMENT ON COLUMN send_ledger.recipient IS
    'The contact''s phone the message went to (Meta''s pair rate counts per account and recipient); NULL for a group.';
