/*
 * api_keys.h - who is calling: the CRM's API keys (libs/core/api_key.h),
 * checked against the api_keys table, cached.
 *
 * A key's row (workspace, secret hash, revoked or not) is cached for
 * ttl_ms after it was read, an unknown key id for the same time, so
 * revoking a key (blazzctl apikeys revoke) refuses it everywhere within
 * ttl_ms (crm.api_key_cache_s). The secret's hash is compared in constant
 * time on every request, also for unknown ids (against a dummy), so the
 * answer time tells nothing. last_used_at is refreshed at most once a
 * minute per key and instance. Ids that are not in the cache cost a query:
 * a client address whose lookups keep finding no key (2 a second, 20 at
 * once) has its further unknown ids refused without one. Thread-safe:
 * request threads share it.
 */
#ifndef ING_API_KEYS_H
#define ING_API_KEYS_H

#include <stdint.h>

#include "client_address.h"
#include "core/status.h"
#include "crm/pg_pool.h"

typedef struct ing_api_keys ing_api_keys;

/* pool is borrowed and must outlive the cache. Free with ing_api_keys_free. */
bz_status ing_api_keys_new(ing_pg_pool *pool, int64_t ttl_ms, ing_api_keys **out, bz_error *err);
void ing_api_keys_free(ing_api_keys *k);

/* The refusal of a value without the shape of a key. */
#define ING_API_KEY_SHAPE_MESSAGE "field Authorization: expected \"Bearer bzk_<key_id>_<secret>\""

/* Whether an Authorization header value has the shape of a key ("Bearer
 * bzk_<key_id>_<secret>"): public, judged before the request's body is
 * read; no lookup. */
int ing_api_keys_well_formed(const char *authorization);

/* The reason, and the seconds to wait, of a client over its budget of
 * unknown ids. */
#define ING_API_KEY_TOO_MANY_UNKNOWN "too_many_unknown_keys"
#define ING_API_KEY_RETRY_AFTER_S 1

/* The workspace of an Authorization header value ("Bearer bzk_...") sent
 * from client (client_address.h). BZ_OK fills *workspace_id;
 * BZ_ERR_INVALID with reason "unauthorized" (missing, malformed, unknown or
 * wrong key) or "revoked"; BZ_ERR_TRANSIENT with reason
 * ING_API_KEY_TOO_MANY_UNKNOWN when client is over its budget, or none when
 * PostgreSQL cannot answer. */
bz_status ing_api_keys_verify(ing_api_keys *k, const char *authorization,
                             const uint8_t client[ING_CLIENT_KEY_LEN], int64_t now_ms,
                             int64_t *workspace_id, bz_error *err);

/* Mark key_id revoked in the cache, for good: a key revoked over the API
 * (crm_api_keys.c) is refused by this instance at once, also when a
 * request read its row just before, and by the others within ttl_ms. A
 * key the cache does not hold gets a mark that has expired, so its next
 * use reads the row (as a key's, never charged as an unknown id). */
void ing_api_keys_mark_revoked(ing_api_keys *k, const char *key_id);

#endif
