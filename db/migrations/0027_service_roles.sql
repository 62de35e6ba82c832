-- 0027_service_roles.sql - one PostgreSQL login role per service, with
-- only the privileges its code needs (issue 32; ARCHITECTURE.md §9).
--
-- Before, every service connected as the tables' owner, a superuser in
-- compose: a compromise of the internet-facing ingest could read every
-- sealed secret's ciphertext, rewrite any row or run COPY ... TO PROGRAM.
-- Now the migrator (blazzctl migrate, as the owner) owns the schema and
-- each service logs in as its own role:
--   blazz_ingest blazz_chat_sync blazz_webhook_dispatcher
--   blazz_campaign_sender blazz_cleanup blazz_meta_sender
-- made here LOGIN without a password (a password-authenticated server lets
-- none of them in until `blazzctl migrate` sets one from
-- BLAZZ_PG_PASSWORD_<SERVICE>; the loopback test stack trusts them).
-- Two group roles carry the shared machinery: blazz_eo_consumer (the
-- exactly-once consumer's offsets, libs/kafka/eo_offsets.c) and
-- blazz_outbox_relay (the outbox every relay drains, whichever service's
-- relay holds the lock, libs/kafka/outbox.c).
--
-- Privileges are per table and per kind of statement (SELECT, INSERT,
-- UPDATE, DELETE), read from the services' SQL; a row lock (FOR UPDATE)
-- needs UPDATE. The roles bypass row level security: the services work
-- across workspaces and resolve the workspace themselves (0011's policies
-- are the CRM's); BYPASSRLS needs a superuser to grant, as the migrator is
-- in compose and on the local stack. Identity columns need no sequence
-- grant; triggers, foreign keys, LISTEN/NOTIFY and advisory locks need
-- none either.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['blazz_eo_consumer', 'blazz_outbox_relay'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    FOREACH r IN ARRAY ARRAY['blazz_ingest', 'blazz_chat_sync', 'blazz_webhook_dispatcher',
                             'blazz_campaign_sender', 'blazz_cleanup', 'blazz_meta_sender'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN BYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE', r);
        END IF;
    END LOOP;
END;
$$;

GRANT SELECT, INSERT, UPDATE ON kafka_offsets TO blazz_eo_consumer;
GRANT SELECT, INSERT, DELETE ON outbox TO blazz_outbox_relay;
GRANT blazz_eo_consumer TO blazz_chat_sync, blazz_webhook_dispatcher, blazz_campaign_sender,
    blazz_cleanup, blazz_meta_sender;
GRANT blazz_outbox_relay TO blazz_chat_sync, blazz_campaign_sender, blazz_cleanup,
    blazz_meta_sender;

-- ingest: the gateways' and the CRM's edge; reads, and notes an API key's use.
GRANT SELECT (id, workspace_id, key_id, secret_sha256, revoked_at) ON api_keys TO blazz_ingest;
GRANT UPDATE (last_used_at) ON api_keys TO blazz_ingest;
GRANT SELECT ON contacts, whatsapp_groups, whatsapp_accounts, chats, users, templates, gateways,
    gateway_keys TO blazz_ingest;

-- chat-sync: the messages, contacts, groups and sessions gateways report.
GRANT SELECT, UPDATE ON whatsapp_accounts TO blazz_chat_sync;
GRANT SELECT, INSERT, UPDATE ON contacts, whatsapp_groups, chats TO blazz_chat_sync;
GRANT SELECT, INSERT, UPDATE, DELETE ON pending_receipts TO blazz_chat_sync;
GRANT INSERT ON outbound_queue TO blazz_chat_sync;
GRANT SELECT ON campaign_logs, templates, users, meta_credentials TO blazz_chat_sync;

-- campaign-sender: campaigns, their logs and the paced sends.
GRANT SELECT, UPDATE ON campaigns TO blazz_campaign_sender;
GRANT SELECT, INSERT, UPDATE, DELETE ON campaign_logs TO blazz_campaign_sender;
GRANT SELECT, UPDATE, DELETE ON outbound_queue TO blazz_campaign_sender;
GRANT SELECT, INSERT ON send_ledger TO blazz_campaign_sender;
GRANT SELECT ON contacts, contact_group_members, contact_groups, templates, workspaces,
    whatsapp_accounts, chats, meta_credentials TO blazz_campaign_sender;

-- webhook-dispatcher: deliveries and the endpoints' health.
GRANT SELECT, INSERT, UPDATE ON webhook_retry_queue TO blazz_webhook_dispatcher;
GRANT SELECT, UPDATE ON webhook_endpoints TO blazz_webhook_dispatcher;
GRANT SELECT ON whatsapp_accounts TO blazz_webhook_dispatcher;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_dispatchers TO blazz_webhook_dispatcher;

-- cleanup: stale sessions and retention.
GRANT SELECT, UPDATE ON whatsapp_accounts TO blazz_cleanup;
GRANT SELECT, INSERT ON session_cleanup_logs TO blazz_cleanup;
GRANT SELECT ON users TO blazz_cleanup;
GRANT SELECT, DELETE ON webhook_retry_queue, send_ledger, pending_receipts TO blazz_cleanup;

-- meta-sender: the Cloud API sends and the accounts' tokens.
GRANT SELECT, INSERT, UPDATE ON meta_sends TO blazz_meta_sender;
GRANT SELECT, UPDATE ON meta_credentials TO blazz_meta_sender;
GRANT SELECT ON whatsapp_accounts, chats, campaign_logs TO blazz_meta_sender;
