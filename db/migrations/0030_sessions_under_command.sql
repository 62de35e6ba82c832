-- 0030_sessions_under_command.sql - whatsapp-web.js sessions under the
-- backbone's command: the gateway-instance registry, assignment epochs,
-- sessions waiting for room, QR expiry, one primary account per workspace
-- (issue 34, ARCHITECTURE.md §15).
--
-- gateway_instances: one row per instance of a gateway, written by
-- chat-sync from the instances' heartbeats (inbound `instance_heartbeat`)
-- and by its assignment sweep, which declares an instance dead when its
-- heartbeats stop for sessions.instance_timeout_s. Instances of one
-- gateway share its Kafka principal and its topics; the instance index is
-- the seeds' assigned_instance_index.
--
-- whatsapp_accounts.assignment_epoch: raised each time the backbone
-- assigns the session to an instance (first assignment, failover, a
-- restarted instance). Commands carry it, instances report under it, and
-- what an instance reports under an older epoch is refused (fencing), so a
-- session is never served by two instances at once even when the "dead"
-- one was only frozen. 0: the session is not under the backbone's command
-- (its gateway assigns its sessions itself, as before).
--
-- status 'pending_assignment': created through the CRM and waiting for an
-- instance with room (or for a first instance of its gateway).
--
-- One primary per workspace: the seeds set is_primary by hand and nothing
-- kept two from being true. Existing duplicates keep the primary that was
-- set last (highest updated_at, then id) before the index is built.

CREATE TABLE gateway_instances (
    gateway_id        text NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    instance_index    smallint NOT NULL CHECK (instance_index >= 0),
    url               text,
    capacity          integer NOT NULL CHECK (capacity >= 0),
    boot_id           text NOT NULL CHECK (boot_id <> ''),
    status            text NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'dead')),
    started_at        timestamptz,
    last_heartbeat_at timestamptz NOT NULL,
    declared_dead_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, instance_index)
);

COMMENT ON TABLE gateway_instances IS
    'Gateway instances under the backbone''s command: heartbeats (chat-sync) and liveness (its assignment sweep).';

CREATE TRIGGER gateway_instances_touch BEFORE UPDATE ON gateway_instances
    FOR EACH ROW EXECUTE FUNCTION blazz_touch_updated_at();

-- the sweep: live instances whose heartbeats stopped
CREATE INDEX gateway_instances_liveness_idx ON gateway_instances (status, last_heartbeat_at);

ALTER TABLE whatsapp_accounts
    ADD COLUMN assignment_epoch bigint NOT NULL DEFAULT 0 CHECK (assignment_epoch >= 0),
    ADD COLUMN qr_expires_at timestamptz;

COMMENT ON COLUMN whatsapp_accounts.assignment_epoch IS
    'Raised at each assignment to a gateway instance; reports under an older one are refused. 0: not under the backbone''s command.';

ALTER TABLE whatsapp_accounts DROP CONSTRAINT whatsapp_accounts_status_check;
ALTER TABLE whatsapp_accounts ADD CONSTRAINT whatsapp_accounts_status_check
    CHECK (status IN ('pending_assignment', 'qr_scanning', 'authenticated', 'connected',
                      'disconnected', 'failed'));

-- the sweep: sessions waiting for room, and those of an instance declared dead
CREATE INDEX whatsapp_accounts_pending_idx ON whatsapp_accounts (gateway_id, id)
    WHERE status = 'pending_assignment' AND deleted_at IS NULL;
CREATE INDEX whatsapp_accounts_assignment_idx
    ON whatsapp_accounts (gateway_id, assigned_instance_index)
    WHERE assignment_epoch > 0 AND deleted_at IS NULL;

UPDATE whatsapp_accounts a SET is_primary = false
  FROM (SELECT id, row_number() OVER (PARTITION BY workspace_id
                                      ORDER BY updated_at DESC, id DESC) AS n
          FROM whatsapp_accounts WHERE is_primary AND deleted_at IS NULL) d
 WHERE a.id = d.id AND d.n > 1;
CREATE UNIQUE INDEX whatsapp_accounts_one_primary_idx ON whatsapp_accounts (workspace_id)
    WHERE is_primary AND deleted_at IS NULL;

GRANT SELECT, INSERT, UPDATE ON gateway_instances TO blazz_chat_sync;
GRANT INSERT ON whatsapp_accounts TO blazz_chat_sync;
GRANT SELECT (id, kind, disabled_at) ON gateways TO blazz_chat_sync;
GRANT SELECT ON gateway_instances TO blazz_ingest, blazz_cleanup;

-- A send routed to a gateway carries the assignment it was released under,
-- as the Kafka header blazz-assignment "<instance index>:<epoch>": an
-- instance sends only what is addressed to the assignment it holds, so a
-- frozen instance that comes back never sends what its successor sends
-- (what was addressed to it and not sent is the ambiguity of a lost
-- instance: ARCHITECTURE.md §15).
CREATE OR REPLACE FUNCTION blazz_outbox_route_to_gateway() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    serving text;
    instance smallint;
    epoch bigint;
BEGIN
    SELECT a.gateway_id, a.assigned_instance_index, a.assignment_epoch
      INTO serving, instance, epoch
      FROM whatsapp_accounts a
     WHERE a.session_id = convert_from(NEW.msg_key, 'UTF8')
       AND a.provider_type = 'webjs';
    IF serving IS NOT NULL THEN
        NEW.topic := NEW.topic || '.gw.' || serving;
        IF NEW.topic LIKE 'wa.outbound.gw.%' AND epoch > 0 AND instance IS NOT NULL THEN
            NEW.headers := NEW.headers ||
                jsonb_build_object('blazz-assignment', instance::text || ':' || epoch::text);
        END IF;
    END IF;
    RETURN NEW;
END
$$;
