-- 0066_meta_send_proofs_read_no_more.sql - the proofs 0045's table alone
-- holds, copied where meta-sender reads them, so that no service of this
-- release names meta_send_proofs (issue 53; the contract step 0058 set
-- out).
--
-- 0058 moved the proofs of Meta sends to meta_message_proofs, one row a
-- message (client reference and wamid), and left meta_send_proofs (one row
-- a reference, as a chat-sync before 0058 kept them) for meta-sender to
-- read beside it until its rows were forgotten. The last release's
-- chat-sync writes meta_message_proofs alone (0058 was in v0.46.0), so no
-- service writes meta_send_proofs any more: its rows are copied here, as
-- proofs not failed, unless meta_message_proofs has that message already
-- (a failed one among them stays failed, as meta-sender read it before).
-- This release's meta-sender and cleanup then name meta_send_proofs no
-- more, and the release after it drops the table (docs/decisions/0008,
-- rule 1: its last reader, the last release's meta-sender, stops with
-- this release).

INSERT INTO meta_message_proofs (client_reference, wam_id, whatsapp_account_id, proven_at)
SELECT client_reference, wam_id, whatsapp_account_id, proven_at FROM meta_send_proofs
ON CONFLICT (client_reference, wam_id) DO NOTHING;

COMMENT ON TABLE meta_send_proofs IS
    'The proofs of Meta sends as kept before 0058, copied into meta_message_proofs by 0066; read and written by no service since; dropped by the release after 0066''s.';
