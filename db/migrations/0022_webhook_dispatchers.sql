-- 0022: the webhook dispatcher instances that are alive, so that together
-- they keep each endpoint's rate limit (ARCHITECTURE.md §5.3).
--
-- Every dispatcher instance claims from the same webhook_retry_queue and
-- sends part of every busy endpoint's deliveries. Each kept a token bucket
-- of its own at the endpoint's full rate_limit_per_sec, so two instances
-- sent twice the limit. Now each instance registers here and renews
-- heartbeat_at every second; its bucket runs at the limit divided by the
-- instances whose heartbeat is recent (services/webhook-dispatcher/peers.h).
-- An instance stopping cleanly deletes its row; rows of dead instances stop
-- counting after a few seconds and are deleted after an hour by any live
-- instance. Written only by the dispatchers; not the CRM's (no grants).
CREATE TABLE webhook_dispatchers (
    instance_id   uuid PRIMARY KEY,
    host          text NOT NULL,
    pid           integer NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);
