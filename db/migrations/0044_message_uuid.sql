-- 0044_message_uuid.sql - an inbound message's chats.uuid follows from the
-- message itself (issue 39, ARCHITECTURE.md §6.5).
--
-- chats.uuid is the id the CRM knows a message by (message.created and
-- every later webhook carry it). It was the column's random default, so a
-- message stored again after a restore to an earlier point (consumers
-- re-read from Kafka what came after the restored offsets) became a new
-- row to the CRM, with a uuid it had never seen, beside the one it had. A
-- message is one per (account, wam_id) already (chats_account_wam_id_key),
-- so its uuid is now derived from that pair: the same message stored twice
-- is the same uuid. The form is RFC 9562's UUIDv8 (custom: version 8,
-- variant 10) over the first bytes of SHA-256, as ingest's event ids are.
-- Rows without a wam_id keep the random default, and so do outbound rows,
-- whose uuid is the CRM's message_id.

CREATE FUNCTION blazz_message_uuid(account_id bigint, wam_id text) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT (substr(h, 1, 12) || '8' || substr(h, 14, 3)
            || substr('89ab', (get_byte(decode(substr(h, 17, 2), 'hex'), 0) & 3) + 1, 1)
            || substr(h, 18, 15))::uuid
    FROM (SELECT encode(sha256(convert_to('blazz-message:' || account_id || ':' || wam_id,
                                          'UTF8')), 'hex') AS h) AS digest
$$;

COMMENT ON FUNCTION blazz_message_uuid(bigint, text) IS
    'chats.uuid of an inbound message: UUIDv8 over SHA-256 of (account, wam_id), so a message stored again (a replay after a restore) keeps its uuid.';
