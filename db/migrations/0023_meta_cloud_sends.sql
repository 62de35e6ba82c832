-- 0023_meta_cloud_sends.sql - Meta Cloud API accounts really send
-- (ARCHITECTURE.md §12).
--
-- meta_credentials: one row per Meta account (provider_type 'meta'; its
-- session_id is Meta's phone_number_id). The access token is AES-256-GCM
-- sealed like webhook secrets (libs/core/secretbox.c, associated data = the
-- account id, so a ciphertext copied to another account's row does not
-- open); `blazzctl meta token` writes it, blazz-meta-sender opens it. status
-- 'invalid' means Meta refused the token (code 190): the account's sends
-- wait in meta_sends and campaign-sender pauses its campaigns with reason
-- token_invalid until a new token is set (status back to 'valid').
--
-- meta_sends: the wa.outbound records of Meta accounts, written by
-- meta-sender's exactly-once consumer (one row per idempotency key: a
-- repeated publish of the same SendMessage is ignored) and worked by its
-- single active sender (advisory lock). States:
--   queued     waiting for its turn (due_at), its account's pace and token;
--   in_flight  committed BEFORE the HTTP request leaves: a row found in
--              this state by a sender that takes over may have reached Meta
--              (the ambiguous window); it is counted in ambiguous_resends
--              and sent again unless a status webhook already named it;
--   sent       Meta answered with wamid;
--   failed     permanent failure (error_code: reengagement_required, Meta's
--              code, or attempts exhausted).
-- Nothing here is tenant data: no grants to blazz_crm.

CREATE TABLE meta_credentials (
    whatsapp_account_id bigint PRIMARY KEY,
    workspace_id        bigint NOT NULL,
    token_ciphertext    bytea NOT NULL,
    token_nonce         bytea NOT NULL CHECK (length(token_nonce) = 12),
    status              text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'invalid')),
    invalid_reason      text,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (workspace_id, whatsapp_account_id)
        REFERENCES whatsapp_accounts (workspace_id, id) ON DELETE CASCADE
);

COMMENT ON TABLE meta_credentials IS 'Sealed Cloud API access tokens of Meta accounts; status invalid pauses their sends.';

CREATE TABLE meta_sends (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key     text NOT NULL UNIQUE,
    whatsapp_account_id bigint NOT NULL,
    workspace_id        bigint NOT NULL,
    msg_key             text NOT NULL,   -- "<workspace_id>:<conversation>" of the outcome
    payload             bytea NOT NULL,  -- the SendMessage as released
    state               text NOT NULL DEFAULT 'queued'
                        CHECK (state IN ('queued', 'in_flight', 'sent', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    ambiguous_resends   integer NOT NULL DEFAULT 0,
    due_at              timestamptz NOT NULL DEFAULT now(),
    wam_id              text,
    error_code          text,
    error_message       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    requested_at        timestamptz,     -- the last request's start
    finished_at         timestamptz
);

COMMENT ON TABLE meta_sends IS 'Sends of Meta accounts taken from wa.outbound by meta-sender; in_flight = maybe at Meta.';

-- The sender claims per account in due order and looks for accounts with
-- open sends: both per account, so a backlog of one account (or many)
-- does not make every claim walk all open rows.
CREATE INDEX meta_sends_queued_idx ON meta_sends (whatsapp_account_id, due_at, id)
    WHERE state = 'queued';
CREATE INDEX meta_sends_in_flight_idx ON meta_sends (whatsapp_account_id) WHERE state = 'in_flight';
CREATE INDEX meta_sends_finished_idx ON meta_sends (finished_at) WHERE finished_at IS NOT NULL;

CREATE FUNCTION blazz_meta_send_notify() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('blazz_meta_send', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER meta_sends_notify AFTER INSERT ON meta_sends
    FOR EACH STATEMENT EXECUTE FUNCTION blazz_meta_send_notify();
CREATE TRIGGER meta_credentials_notify AFTER INSERT OR UPDATE ON meta_credentials
    FOR EACH STATEMENT EXECUTE FUNCTION blazz_meta_send_notify();
