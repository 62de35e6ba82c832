-- 0058_marketing_limit_retry.sql - a campaign message Meta did not deliver
-- for the recipient's per-user marketing limit is sent again once, later
-- (issue 53, ARCHITECTURE.md §12.11), and meta-sender's proof that a send
-- reached Meta is kept per message, so that retry is not taken for the
-- attempt Meta failed (below).
--
-- Expand only (docs/decisions/0008): every statement the services of a
-- release before it run keeps working on this schema while an upgrade
-- replaces them one by one.
--
-- Meta accepts a marketing template and then reports it failed with error
-- 131049 ("This message was not delivered to maintain healthy ecosystem
-- engagement") when the recipient has had their share of marketing
-- messages, from any business, for a while. The limit is the recipient's,
-- not the campaign's nor the account's, and lifts: Meta's advice is to try
-- again no sooner than 24 hours later. campaign-sender puts such a log back
-- to pending with retry_at = now() + retry.marketing_limit_after_s, and its
-- send round does not pick a log before its retry_at. A log that has a
-- retry_at was retried once already: a second 131049 fails it for good.
-- The column is set only, never cleared. NULL on every existing row, so
-- adding it rewrites nothing. A release's campaign-sender does not read
-- it: while one still runs during an upgrade it may send a retry before
-- its time, which Meta at worst fails again, for good.

ALTER TABLE campaign_logs ADD COLUMN retry_at timestamptz;

COMMENT ON COLUMN campaign_logs.retry_at IS
    'When a log Meta failed with 131049 (the recipient''s per-user marketing limit) may be sent again; set once, by campaign-sender: a log with it was retried already.';

-- The retry has the log's uuid as its client reference, as every attempt
-- of a campaign log does, and meta-sender looks every claimed send up by
-- that reference before its request leaves (0045). meta_send_proofs held
-- one proof per reference, that a failure deleted, so Meta's answer to
-- the first attempt undid its failure: Meta does not order its status
-- webhooks after its answer, so the `failed` status could be applied
-- before meta-sender's report of the wamid, which then proved the
-- reference again, and the retry was taken for a send that had reached
-- Meta. A proof is now one message at Meta, per reference and wamid, and
-- a failure marks that message failed for good (failed_at), whichever
-- comes first; a reference has reached Meta while one of its messages is
-- proven and not failed. A failure keeps its wamid's row, so what arrives
-- later of that message proves nothing, and an earlier attempt's failure
-- never touches a later attempt's proof.
--
-- A table of its own, not a new key and column of meta_send_proofs: the
-- chat-sync and meta-sender built since 0045 write and read that table by
-- its key (ON CONFLICT (client_reference), a failure's DELETE), and would
-- keep doing so beside this tree's during an upgrade from a release that
-- has them; a changed key or a revoked DELETE would refuse their writes.
-- (v0.45.0, the last release in docs/releases.txt, predates 0045 and
-- names neither table: this is for a release cut between 0045 and here.)
-- So meta_send_proofs, its rows and its grants stay as they were, and:
--  - chat-sync writes only meta_message_proofs;
--  - meta-sender takes a reference as sent when meta_message_proofs has a
--    message of it not failed, or meta_send_proofs has its row and
--    meta_message_proofs has not that very message failed (a row from
--    before this migration, or from a previous chat-sync during the
--    upgrade, stays a live proof until its own wamid is failed);
--  - cleanup purges both by proven_at.
-- Contract, in a migration of the release after the one that ships this
-- (once no service of a release reads or writes it): DROP TABLE
-- meta_send_proofs, which takes its grants (chat-sync's SELECT, INSERT,
-- UPDATE and DELETE, meta-sender's SELECT, cleanup's SELECT and DELETE)
-- with it, after meta-sender's and cleanup's statements stopped naming it.
-- Dropping it forgets the proofs it alone holds (a previous chat-sync's
-- during the upgrade), so that waits until they are older than cleanup's
-- retention, or copies them into meta_message_proofs first.

CREATE TABLE meta_message_proofs (
    client_reference    uuid NOT NULL,
    wam_id              text NOT NULL CHECK (wam_id <> ''),
    whatsapp_account_id bigint NOT NULL,
    proven_at           timestamptz NOT NULL DEFAULT now(),
    failed_at           timestamptz,
    PRIMARY KEY (client_reference, wam_id)
);

COMMENT ON TABLE meta_message_proofs IS
    'A Meta send''s message, by client reference (biz_opaque_callback_data) and wamid, from meta-sender''s report or a status webhook on chat.sync; failed_at once a failed status named that wamid, for good. A reference with a row without failed_at reached Meta: read before every Meta send.';
COMMENT ON COLUMN meta_message_proofs.failed_at IS
    'When a failed status named this wamid: the message is not at Meta, and no later word of it proves the reference again.';
COMMENT ON TABLE meta_send_proofs IS
    'A Meta send that reached Meta, by client reference, as chat-sync kept it before 0058 (one row a reference, removed by a failure); read still by meta-sender unless meta_message_proofs has its wamid failed; written no more by this tree; dropped by a later contract migration.';

-- cleanup's retention (older than cleanup.meta_send_proofs_retention_days)
CREATE INDEX meta_message_proofs_proven_at_idx ON meta_message_proofs (proven_at);

-- chat-sync adds proofs and marks them failed, never removes one; the
-- SELECT is what its ON CONFLICT arbiter and condition read
GRANT SELECT (client_reference, wam_id, failed_at), INSERT, UPDATE (failed_at)
    ON meta_message_proofs TO blazz_chat_sync;
GRANT SELECT ON meta_message_proofs TO blazz_meta_sender;
GRANT SELECT, DELETE ON meta_message_proofs TO blazz_cleanup;
