/*
 * crm_webhooks.h - the CRM's reads of its webhook endpoints and their
 * deliveries over HTTP, on a worker (crm_request.h; crm_routes.c names
 * the handlers by path):
 *
 *   GET /v1/webhook-endpoints                     the workspace's endpoints,
 *       ?limit=&cursor=                           oldest first, a page at a time
 *   GET /v1/webhook-endpoints/{endpoint_id}/deliveries
 *       ?status=&limit=&cursor=                   its deliveries, newest first
 */
#ifndef ING_CRM_WEBHOOKS_H
#define ING_CRM_WEBHOOKS_H

#include <stddef.h>

#include "crm/crm_request.h"

/* 1 when url is /v1/webhook-endpoints. */
int ing_crm_is_endpoints_path(const char *url);

/* 1 when url is /v1/webhook-endpoints/{endpoint_id}/deliveries. */
int ing_crm_is_deliveries_path(const char *url);

/* GET /v1/webhook-endpoints: 200 {"endpoints","next_cursor"}, 400 naming
 * limit or cursor. Never an endpoint's secret. */
void ing_crm_read_endpoints(ing_crm_request *rq, const char *body, size_t len);

/* GET /v1/webhook-endpoints/{endpoint_id}/deliveries: 200
 * {"deliveries","next_cursor"}, 404 unknown_endpoint (another workspace's
 * too), 400 naming endpoint_id, status, limit or cursor. */
void ing_crm_read_deliveries(ing_crm_request *rq, const char *body, size_t len);

#endif
