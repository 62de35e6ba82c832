/*
 * crm_webhooks.h - the CRM's reads of its webhook endpoints and their
 * deliveries over HTTP, on a worker (crm_request.h; crm_routes.c names
 * the handlers by path):
 *
 *   GET /v1/webhook-endpoints                     the workspace's endpoints,
 *       ?limit=&cursor=                           oldest first, a page at a time
 *   GET /v1/webhook-endpoints/{endpoint_id}/deliveries
 *       ?status=&limit=&cursor=                   its deliveries, newest first
 *
 * and what the reads and the writes (crm_webhook_writes.h) share: the
 * paths, an endpoint's columns and its JSON.
 */
#ifndef ING_CRM_WEBHOOKS_H
#define ING_CRM_WEBHOOKS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "crm/crm_request.h"
#include "crm/crm_rows.h"

#define ING_CRM_REPLAY_SUFFIX "/replay"
#define ING_CRM_ROTATE_SECRET_SUFFIX "/rotate-secret"

/* An endpoint's columns as ing_crm_endpoint_doc reads them (never its
 * secret), then its keyset position: created_at in microseconds, id. */
#define ING_CRM_ENDPOINT_COLUMNS                                                                 \
    "id, uuid::text, name, url, array_to_json(event_types)::text, enabled, disabled_reason, "    \
    ING_CRM_MS("disabled_at") ", consecutive_failures, " ING_CRM_MS("failing_since") ", "        \
    ING_CRM_MS("last_failure_at") ", " ING_CRM_MS("last_success_at") ", last_status_code, "      \
    "last_error, " ING_CRM_MS("created_at") ", " ING_CRM_US("created_at") ", id"

/* 1 when url is /v1/webhook-endpoints. */
int ing_crm_is_endpoints_path(const char *url);

/* 1 when url is /v1/webhook-endpoints/{endpoint_id}/deliveries. */
int ing_crm_is_deliveries_path(const char *url);

/* 1 when url is /v1/webhook-endpoints/{endpoint_id}. */
int ing_crm_is_endpoint_path(const char *url);

/* 1 when url is /v1/webhook-endpoints/{endpoint_id}/replay. */
int ing_crm_is_replay_path(const char *url);

/* 1 when url is /v1/webhook-endpoints/{endpoint_id}/rotate-secret. */
int ing_crm_is_rotate_secret_path(const char *url);

/* Row row of ING_CRM_ENDPOINT_COLUMNS as the API shows an endpoint (a new
 * reference; NULL when out of memory). */
json_t *ing_crm_endpoint_doc(const PGresult *res, int row);

/* The endpoint_id of rq's path /v1/webhook-endpoints/{endpoint_id}<suffix>
 * into out (cap bytes): a positive integer, else 400 naming endpoint_id. */
bz_status ing_crm_endpoint_of_path(const ing_crm_request *rq, const char *suffix, char *out,
                                   size_t cap, bz_error *err);

/* GET /v1/webhook-endpoints: 200 {"endpoints","next_cursor"}, 400 naming
 * limit or cursor. Never an endpoint's secret. */
void ing_crm_read_endpoints(ing_crm_request *rq, const char *body, size_t len);

/* GET /v1/webhook-endpoints/{endpoint_id}/deliveries: 200
 * {"deliveries","next_cursor"}, 404 unknown_endpoint (another workspace's
 * too), 400 naming endpoint_id, status, limit or cursor. */
void ing_crm_read_deliveries(ing_crm_request *rq, const char *body, size_t len);

#endif
