-- 0067_session_storage.sql - where a session's credentials are, which
-- instances reach them, and a session whose credentials were not found
-- (issue 55, seed 003's session storage).
--
-- An instance reports the shared store a session's credentials are in and
-- when it last found them there (SessionStatus.session_storage,
-- session_storage_verified_at_ms); chat-sync writes them with the path into
-- seed 003's session_storage_path and session_storage_verified_at, never
-- written before, and the store's name into session_storage. A heartbeat
-- lists the stores its instance reaches (InstanceHeartbeat.storages) into
-- gateway_instances.storages: the assignment sweep moves a session only to
-- an instance that reaches its store (NULL: the instance does not say, a
-- gateway from before the field, and it may take any session).
-- ingest checks the names (letters, digits, ".", "_", ":", "-"; at most 64)
-- before chat-sync sees them. Both columns are new and nullable: the last release's services neither
-- read nor write them (decision 0008).

ALTER TABLE whatsapp_accounts ADD COLUMN session_storage text;
COMMENT ON COLUMN whatsapp_accounts.session_storage IS
    'The shared store holding the session''s credentials (session_storage_path), as the instance serving it names it; NULL until one reports it.';

ALTER TABLE gateway_instances ADD COLUMN storages text[];
COMMENT ON COLUMN gateway_instances.storages IS
    'The shared session stores the instance reaches, from its heartbeats; NULL when it does not say (then any session may be placed on it).';

-- A restart or a move that did not find the credentials: the session must
-- be linked again (DisconnectReason CREDENTIALS_MISSING). The last
-- release's chat-sync never writes it, and reads it as unknown.
ALTER TABLE whatsapp_accounts DROP CONSTRAINT whatsapp_accounts_disconnect_reason_check,
    ADD CONSTRAINT whatsapp_accounts_disconnect_reason_check CHECK (disconnect_reason IN
        ('user_initiated', 'instance_restart', 'timeout', 'error', 'qr_expired', 'unknown',
         'credentials_missing'));
