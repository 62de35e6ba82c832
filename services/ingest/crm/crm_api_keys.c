/*
 * crm_api_keys.c - the CRM's API keys over HTTP, on a worker
 * (crm_api_keys.h).
 *
 * The list is a keyset page (crm_rows.h) of the key's workspace's keys by
 * (created_at, id) along api_keys_workspace_idx: a workspace has a few.
 * A revocation sets revoked_at when the key is live, in the key's
 * workspace; when it changed no row, the key is read as it is, in a new
 * snapshot, so that revoking twice (or two revocations at once: the
 * second UPDATE waits for the first and then finds no live key) answers
 * the first revocation (0026 makes it final), and no key is 404. The
 * instance then marks the key revoked in its cache, so it is refused here
 * at once, and by the other instances within crm.api_key_cache_s, as a
 * revocation by blazzctl is. A key may revoke itself: the CRM's way out
 * when it leaked.
 */
#include "crm/crm_api_keys.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/api_key.h"
#include "crm/crm_rows.h"
#include "pg/pg.h"

#define API_KEYS_PATH "/v1/api-keys"

#define KEY_COLUMNS                                                                              \
    "key_id, name, " ING_CRM_MS("created_at") ", " ING_CRM_MS("revoked_at") ", "                 \
    ING_CRM_MS("last_used_at") ", " ING_CRM_US("created_at") ", id"
enum { KEY_ID, KEY_NAME, KEY_CREATED, KEY_REVOKED, KEY_USED, KEY_CURSOR_US, KEY_CURSOR_ID };

/* The workspace's ($1) keys after the cursor ($2 created_at in
 * microseconds, NULL for the first page; $3 id), oldest first, $4 of them. */
#define SQL_KEYS                                                                                 \
    "SELECT " KEY_COLUMNS " FROM api_keys WHERE workspace_id = $1 "                              \
    "AND (created_at, id) > (" ING_CRM_CURSOR_TIME("2", "-infinity") ", $3::bigint) "            \
    "ORDER BY created_at, id LIMIT $4"

/* The workspace's ($1) live key $2 revoked now: the key, or no row when
 * there is no such live key. */
#define SQL_REVOKE                                                                               \
    "UPDATE api_keys SET revoked_at = now() WHERE workspace_id = $1 AND key_id = $2 "            \
    "AND revoked_at IS NULL RETURNING " KEY_COLUMNS

/* The workspace's ($1) key $2 as it is, in a snapshot of its own: one
 * revoked before, or by a revocation the UPDATE waited for. */
#define SQL_KEY "SELECT " KEY_COLUMNS " FROM api_keys WHERE workspace_id = $1 AND key_id = $2"

int ing_crm_is_api_keys_path(const char *url)
{
    return strcmp(url, API_KEYS_PATH) == 0;
}

int ing_crm_is_api_key_path(const char *url)
{
    size_t len;
    return ing_crm_path_segment(url, API_KEYS_PATH "/", "", &len) != NULL;
}

static json_t *key_doc(const PGresult *res, int row)
{
    return json_pack("{s:s,s:s,s:o,s:o,s:o}", "key_id", PQgetvalue(res, row, KEY_ID), "name",
                     PQgetvalue(res, row, KEY_NAME), "created_at",
                     ing_crm_time_or_null(res, row, KEY_CREATED), "revoked_at",
                     ing_crm_time_or_null(res, row, KEY_REVOKED), "last_used_at",
                     ing_crm_time_or_null(res, row, KEY_USED));
}

void ing_crm_read_api_keys(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    ing_crm_answer_workspace_page(rq, "read the workspace's API keys", "api_keys", SQL_KEYS,
                                  "api_keys", key_doc, KEY_CURSOR_US, KEY_CURSOR_ID,
                                  ING_CRM_PAGE_DEFAULT);
}

/* The key_id of the path into out: 16 of [a-z0-9], else 400 naming key_id. */
static bz_status path_key_id(const ing_crm_request *rq, char out[BZ_API_KEY_ID_LEN + 1],
                             bz_error *err)
{
    size_t len = 0;
    const char *id = ing_crm_path_segment(ing_crm_request_path(rq), API_KEYS_PATH "/", "", &len);
    if (!id || !bz_api_key_id_valid(id, len))
        return bz_reject(err, "invalid_field",
                         "field key_id: a key is its id, 16 of a-z and 0-9 (bzk_<key_id>_...)");
    snprintf(out, BZ_API_KEY_ID_LEN + 1, "%.*s", (int)len, id);
    return BZ_OK;
}

void ing_crm_revoke_api_key(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    char key_id[BZ_API_KEY_ID_LEN + 1], ws[24];
    bz_error err;
    PGresult *res = NULL;
    bz_status st = path_key_id(rq, key_id, &err);
    if (st == BZ_OK) {
        snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
        const char *params[] = {ws, key_id};
        st = bz_pg_exec_params(rq->pg, "revoke the workspace's API key", SQL_REVOKE, 2, params,
                               &res, &err);
        if (st == BZ_OK && PQntuples(res) == 0) {
            PQclear(res);
            res = NULL;
            st = bz_pg_exec_params(rq->pg, "read the workspace's API key", SQL_KEY, 2, params,
                                   &res, &err);
        }
    }
    if (st == BZ_OK && PQntuples(res) == 0)
        st = ing_crm_not_found(&err, "unknown_api_key", "key_id", rq->workspace_id);
    if (st == BZ_OK)
        ing_api_keys_mark_revoked(rq->keys, key_id);
    ing_crm_answer_first_row(rq, st, res, key_doc, &err);
    PQclear(res);
}
