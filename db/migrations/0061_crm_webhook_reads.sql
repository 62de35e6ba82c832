-- 0061_crm_webhook_reads.sql - ingest reads the CRM's webhook endpoints
-- and their deliveries over its API (GET /v1/webhook-endpoints and
-- /v1/webhook-endpoints/{id}/deliveries, issue 54;
-- services/ingest/crm/crm_webhooks.c).
--
-- Its role, blazz_ingest, is the internet-facing one (0027): it gets the
-- columns these reads answer and no more. Never an endpoint's sealed
-- secret (secret_ciphertext, secret_nonce) nor a delivery's payload (the
-- events' content, which the webhooks carry and the reads do not).
--
-- The endpoints are listed oldest first a keyset page at a time, by
-- (created_at, id) within the workspace: the new index walks them in that
-- order from the cursor, live ones only. webhook_endpoints is small (tens
-- of rows a workspace), so a plain CREATE INDEX locks its writers (the
-- dispatcher's health updates, blazzctl) for a moment only.
--
-- An endpoint's deliveries are read newest first along
-- webhook_retry_queue_endpoint_created_idx (0031), and so are its
-- deliveries that succeeded (most of them: a filter on that walk stops
-- soon). Its failed deliveries are few among many: filtered on that walk
-- they meant reading the endpoint's whole history, and the planner
-- rather read every final row (webhook_retry_queue_final_updated_idx) and
-- sorted (160,800 index entries for 3 rows in a test of 400,000
-- deliveries). A partial index of the failed rows orders them alone; a
-- row enters it once, when it fails for good, so the dispatcher's claims
-- and retries never touch it. Its open rows (pending, retrying) are few
-- and the due index (0020) holds them alone.

GRANT SELECT (id, uuid, workspace_id, name, url, event_types, enabled, disabled_reason,
              disabled_at, consecutive_failures, failing_since, last_failure_at,
              last_success_at, last_status_code, last_error, created_at, deleted_at)
    ON webhook_endpoints TO blazz_ingest;
GRANT SELECT (id, uuid, event_id, endpoint_id, workspace_id, event_type, status, retry_count,
              max_retries, next_retry_at, last_status_code, last_error, delivered_at,
              created_at, updated_at)
    ON webhook_retry_queue TO blazz_ingest;

CREATE INDEX webhook_endpoints_workspace_created_idx
    ON webhook_endpoints (workspace_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX webhook_retry_queue_endpoint_failed_idx
    ON webhook_retry_queue (endpoint_id, created_at DESC, id DESC) WHERE status = 'failed';
