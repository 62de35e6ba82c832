-- 0063_crm_webhook_writes.sql - ingest disables and enables the CRM's
-- webhook endpoints and replays their deliveries over its API (PATCH
-- /v1/webhook-endpoints/{id} and POST /v1/webhook-endpoints/{id}/replay,
-- issue 54; services/ingest/crm/crm_webhook_writes.c).
--
-- Expand only (docs/decisions/0008): grants no service of an earlier
-- release misses.
--
-- These are the columns `blazzctl webhooks disable|enable|replay` writes,
-- and the CRM's own role may write them under its workspace's policy
-- (0011). Ingest's role, blazz_ingest, is the internet-facing one (0027):
-- it gets those columns and no more; never an endpoint's URL, secret or
-- limits, nor a delivery's payload, event or endpoint. The routes filter
-- by the key's workspace in SQL, as its reads do (0061).

GRANT UPDATE (enabled, disabled_reason, disabled_at, failing_since, consecutive_failures)
    ON webhook_endpoints TO blazz_ingest;
GRANT UPDATE (status, retry_count, next_retry_at, last_error, last_status_code, delivered_at)
    ON webhook_retry_queue TO blazz_ingest;
