/*
 * crm_webhook_writes.h - the CRM manages its webhook endpoints over HTTP,
 * on a worker (crm_request.h; crm_routes.c names the handlers by path):
 *
 *   POST  /v1/webhook-endpoints                       a new endpoint
 *       {"url", "name"?, "event_types"?}
 *   PATCH /v1/webhook-endpoints/{endpoint_id}         disable or enable it
 *   DELETE /v1/webhook-endpoints/{endpoint_id}        delete it
 *       {"enabled", "disabled_reason"?}
 *   POST  /v1/webhook-endpoints/{endpoint_id}/replay  deliver again its failed
 *       {"since", "until"?, "status"?, "cursor"?}     (or delivered) deliveries
 *   POST  /v1/webhook-endpoints/{endpoint_id}/rotate-secret
 *       {"overlap_s"?}                                a new signing secret
 */
#ifndef ING_CRM_WEBHOOK_WRITES_H
#define ING_CRM_WEBHOOK_WRITES_H

#include <stddef.h>

#include "crm/crm_request.h"

/* The most deliveries one replay call puts back: the next call goes on
 * from there (its answer's next_cursor). */
#define ING_CRM_REPLAY_BATCH 1000

/* POST /v1/webhook-endpoints: 201 {"endpoint" (as GET
 * /v1/webhook-endpoints shows it), "secret" (shown this once)}; 400
 * naming url, name or event_types; 409 endpoint_quota_exceeded; 503 when
 * ingest holds no key to seal the secret. */
void ing_crm_create_endpoint(ing_crm_request *rq, const char *body, size_t len);

/* PATCH /v1/webhook-endpoints/{endpoint_id}: 200 the endpoint as
 * GET /v1/webhook-endpoints shows it, 404 unknown_endpoint (another
 * workspace's too), 400 naming endpoint_id, enabled or disabled_reason. */
void ing_crm_change_endpoint(ing_crm_request *rq, const char *body, size_t len);

/* DELETE /v1/webhook-endpoints/{endpoint_id}: 200 the endpoint as it was
 * deleted (disabled), gone from the list and from
 * crm.webhook_endpoints_per_workspace's count; 404 unknown_endpoint
 * (another workspace's, or deleted already), 400 naming endpoint_id. */
void ing_crm_delete_endpoint(ing_crm_request *rq, const char *body, size_t len);

/* POST /v1/webhook-endpoints/{endpoint_id}/replay: 200 {"endpoint_id",
 * "requeued", "next_cursor"}, 404 unknown_endpoint, 400 naming
 * endpoint_id, since, until, status or cursor. */
void ing_crm_replay_deliveries(ing_crm_request *rq, const char *body, size_t len);

/* POST /v1/webhook-endpoints/{endpoint_id}/rotate-secret: 200
 * {"endpoint_id", "secret", "previous_secret_until"}, the new secret shown
 * this once; 404 unknown_endpoint (another workspace's too), 400 naming
 * endpoint_id or overlap_s, 503 when ingest holds no key to seal it. */
void ing_crm_rotate_endpoint_secret(ing_crm_request *rq, const char *body, size_t len);

#endif
