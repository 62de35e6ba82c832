/*
 * crm_api_keys.h - the CRM lists its API keys and revokes one over HTTP,
 * on a worker (crm_request.h; crm_routes.c names the handlers by path):
 *
 *   GET    /v1/api-keys?limit=&cursor=   the workspace's keys, oldest first
 *   DELETE /v1/api-keys/{key_id}         revoke one, for good
 *
 * Never a secret (none is stored) nor its hash. Creating a key is an
 * operator's (blazzctl apikeys create): see migration 0064.
 */
#ifndef ING_CRM_API_KEYS_H
#define ING_CRM_API_KEYS_H

#include <stddef.h>

#include "crm/crm_request.h"

/* 1 when url is /v1/api-keys. */
int ing_crm_is_api_keys_path(const char *url);

/* 1 when url is /v1/api-keys/{key_id}. */
int ing_crm_is_api_key_path(const char *url);

/* GET /v1/api-keys: 200 {"api_keys","next_cursor"}, revoked keys too; 400
 * naming limit or cursor. */
void ing_crm_read_api_keys(ing_crm_request *rq, const char *body, size_t len);

/* DELETE /v1/api-keys/{key_id}: 200 the key, revoked (the first
 * revocation's time when it was already); 404 unknown_api_key (another
 * workspace's too); 400 naming key_id. */
void ing_crm_revoke_api_key(ing_crm_request *rq, const char *body, size_t len);

#endif
