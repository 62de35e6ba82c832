-- 0045_restore_fence.sql - what a database restored to an earlier point
-- must read back from Kafka before meta-sender sends anything again
-- (issue 39, ARCHITECTURE.md §6.5).
--
-- Meta has no idempotency key, and meta_sends is restored with the rest:
-- a send made after the restore point is queued again by the replay and
-- would reach the contact twice. What proves it left is in Kafka, on
-- chat.sync: meta-sender's own report (sent, with Meta's wamid) and Meta's
-- status webhooks, each naming the client reference. chat-sync keeps that
-- proof per client reference in meta_send_proofs as it applies those
-- records (a failure removes it: a campaign's retry of a failed send must
-- go), and meta-sender looks a claimed send up there before its request
-- leaves. After a restore the proofs of the window exist only once
-- chat-sync has replayed chat.sync to where it stood: `stack.sh restore`
-- writes a fence with chat.sync's end offsets, and meta-sender sends
-- nothing until chat-sync's restored offsets reached every one of them,
-- then lifts it. While a fence is up chat-sync also knows it is replaying:
-- an echo may then come before its agent's command (the two topics are
-- re-read in no order between them), and its row takes the message id.

CREATE TABLE meta_send_proofs (
    client_reference    uuid PRIMARY KEY,
    whatsapp_account_id bigint NOT NULL,
    wam_id              text NOT NULL CHECK (wam_id <> ''),
    proven_at           timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE meta_send_proofs IS
    'A Meta send that reached Meta, by client reference (biz_opaque_callback_data), from meta-sender''s report or a status webhook on chat.sync; removed by a failure. Read before every Meta send.';

-- cleanup's retention (older than meta.proof_retention_days)
CREATE INDEX meta_send_proofs_proven_at_idx ON meta_send_proofs (proven_at);

CREATE TABLE restore_fences (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    restored_to text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    lifted_at   timestamptz
);

CREATE TABLE restore_fence_offsets (
    fence_id   bigint NOT NULL REFERENCES restore_fences (id) ON DELETE CASCADE,
    group_id   text NOT NULL,
    topic      text NOT NULL,
    partition  integer NOT NULL,
    end_offset bigint NOT NULL,
    PRIMARY KEY (fence_id, group_id, topic, partition)
);

COMMENT ON TABLE restore_fences IS
    'A restore (stack.sh restore): meta-sender holds every send until chat-sync''s kafka_offsets reach the fence''s restore_fence_offsets, then sets lifted_at.';

GRANT SELECT, INSERT, UPDATE (wam_id, whatsapp_account_id, proven_at), DELETE ON meta_send_proofs
    TO blazz_chat_sync;
GRANT SELECT ON meta_send_proofs TO blazz_meta_sender;
GRANT SELECT, DELETE ON meta_send_proofs TO blazz_cleanup;
GRANT SELECT, UPDATE (lifted_at) ON restore_fences TO blazz_meta_sender;
-- chat-sync: is a replay under way (an echo may come before its command)
GRANT SELECT ON restore_fences TO blazz_chat_sync;
GRANT SELECT ON restore_fence_offsets TO blazz_meta_sender;

-- A campaign log's uuid is its send's idempotency key and client
-- reference. It was random (time-ordered, 0015), so a campaign started
-- again by the replay after a restore (its start command is on Kafka)
-- made its audience again under new uuids, and every send after the
-- restore point left a second time, under new keys no gateway or proof
-- recognises. It now follows from (campaign, contact), the pair a log is
-- unique on: UUIDv8 with the campaign id in the first 48 bits and the
-- contact id in the last 62, so one campaign's logs, inserted in contact
-- order, still fill the unique index in order (0015's reason).
CREATE FUNCTION blazz_campaign_log_uuid(campaign_id bigint, contact_id bigint) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT (lpad(to_hex(campaign_id & x'ffffffffffff'::bigint), 12, '0') || '8000'
            || lpad(to_hex((contact_id & x'3fffffffffffffff'::bigint) | (1::bigint << 63)), 16, '0'))::uuid
$$;

COMMENT ON FUNCTION blazz_campaign_log_uuid(bigint, bigint) IS
    'campaign_logs.uuid: UUIDv8 of (campaign id, contact id), so a campaign whose start is replayed after a restore makes the same logs, with the same idempotency keys.';
