-- 0042_media_fetch_jobs.sql - the durable fetch job of one inbound Meta
-- message's media (issue 36, ARCHITECTURE.md §16.2).
--
-- A Meta webhook names media by an id; the bytes need the account's token
-- (sealed; only meta-sender opens it) and a download URL that lives five
-- minutes. chat-sync inserts this row in the transaction that inserts the
-- chats row (ON CONFLICT DO NOTHING: a replayed record adds nothing), so
-- the message and its message.created never wait for the bytes, and the
-- fetch cannot be forgotten. meta-sender's media fetcher claims due
-- pending rows (FOR UPDATE SKIP LOCKED), leasing each until leased_until
-- and counting the claim in attempts; it finishes a job only while the
-- claim it made is the row's latest (attempts unchanged), so a fetcher
-- that outlived its lease cannot finish a job another one took over. A
-- killed fetcher's jobs are claimable again when their lease runs out,
-- and only those: jobs it never claimed were never leased.
--
-- state: pending (to fetch, or retrying after a transient failure at
-- next_attempt_at), done (stored, chats.media_id set), failed (a permanent
-- failure: reason says which, and a dead letter on wa.outbound.dlq
-- carries the job).

CREATE TABLE media_fetch_jobs (
    chat_id             bigint PRIMARY KEY REFERENCES chats (id) ON DELETE CASCADE,
    workspace_id        bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    whatsapp_account_id bigint NOT NULL,
    meta_media_id       text NOT NULL CHECK (meta_media_id <> '' AND length(meta_media_id) <= 256),
    -- what the webhook declared: sha256 as Meta gave it (hex or base64), or ''
    declared_sha256     text NOT NULL DEFAULT '' CHECK (length(declared_sha256) <= 128),
    declared_mime       text NOT NULL DEFAULT '' CHECK (length(declared_mime) <= 255),
    kind                text NOT NULL CHECK (kind IN ('image', 'audio', 'video', 'document', 'sticker')),
    filename            text CHECK (length(filename) <= 1024),
    -- the chat.sync record's key ("<workspace_id>:<conversation>"): the
    -- MEDIA_READY event goes out under it, after the message's own events
    event_key           text NOT NULL DEFAULT '' CHECK (length(event_key) <= 1024),
    state               text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    leased_until        timestamptz,
    reason              text,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz
);

COMMENT ON TABLE media_fetch_jobs IS
    'One fetch of an inbound Meta message''s media: written by chat-sync with the chats row, worked by meta-sender''s media fetcher (lease, retries with backoff, permanent failures dead-lettered).';

-- The fetcher's claim: due pending jobs, oldest due first.
CREATE INDEX media_fetch_jobs_due_idx ON media_fetch_jobs (next_attempt_at) WHERE state = 'pending';

ALTER TABLE media_fetch_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY media_fetch_jobs_workspace_isolation ON media_fetch_jobs TO blazz_crm
    USING (workspace_id = blazz_current_workspace_id());
GRANT SELECT ON media_fetch_jobs TO blazz_crm;
-- SELECT (chat_id): the conflict target of its ON CONFLICT (chat_id) DO NOTHING
GRANT SELECT (chat_id), INSERT ON media_fetch_jobs TO blazz_chat_sync;
GRANT SELECT,
      UPDATE (state, attempts, next_attempt_at, leased_until, reason, last_error, finished_at)
    ON media_fetch_jobs TO blazz_meta_sender;
-- the fetcher reads the chat it links (uuid, wam_id for the event)
GRANT SELECT (id, uuid, workspace_id, whatsapp_account_id, wam_id) ON chats TO blazz_meta_sender;
