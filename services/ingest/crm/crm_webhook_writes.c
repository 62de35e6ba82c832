/*
 * crm_webhook_writes.c - the CRM creates, disables, enables and deletes
 * its webhook endpoints, rotates their signing secrets and replays their
 * deliveries over HTTP, on a worker (crm_webhook_writes.h).
 *
 * Unlike the CRM's other writes these are not commands for chat-sync:
 * the endpoints and their deliveries are the CRM's own rows (READS.md §6),
 * which `blazzctl webhooks` changes the same way, and the dispatcher reads
 * an endpoint's state with every delivery it claims. So one statement on
 * the worker's pooled connection does each, scoped to the key's workspace
 * in SQL, writing the columns migration 0063 grants ingest's role and no
 * more. An enable of a disabled endpoint, or a replay that requeued some,
 * then NOTIFYs the dispatchers, which would otherwise find the deliveries
 * due at their next poll.
 *
 * An enable clears the reason and, when the endpoint was disabled, its
 * failure counters, as blazzctl's does; enabling an enabled endpoint
 * changes nothing, so the dispatcher's count of its failures stands.
 *
 * A deletion marks the endpoint deleted (kept for its deliveries' history,
 * and gone from the list and the count) and disabled, so that its due
 * deliveries fail without an attempt, as a disabled endpoint's do.
 *
 * A creation takes the CRM's URL, name and event types; the limits and
 * the signing scheme keep their defaults (an operator's, with blazzctl).
 * Under an advisory lock of the workspace's creations it counts the live
 * endpoints against crm.webhook_endpoints_per_workspace (each endpoint is
 * a delivery per event: the bound keeps one key from multiplying the
 * dispatchers' work), draws the row's id, seals a fresh secret bound to it
 * and inserts the row, all in one transaction; the answer shows the secret
 * once. Where the URL may point is the dispatcher's to check at each
 * connect (its SSRF guard).
 *
 * A secret rotation seals a fresh Standard Webhooks secret with ingest's
 * ring (the one gateway keys open with), bound to the endpoint's row, and
 * hands it to a database function that moves the old secret beside it for
 * the overlap (0071): ingest never reads a stored secret, and the new one
 * is in the answer alone, never in a log. The dispatcher signs every
 * delivery with both until the overlap ends. A second rotation within the
 * overlap replaces the older secret: one secret back is kept, not a chain.
 *
 * Both answers that hand out a secret are made inside the transaction that
 * stores it, and it commits only with the answer in hand: a CRM told to
 * retry after the change was made would make a second endpoint, or rotate
 * again and lose the secret it still verifies with. The secret is spliced
 * into the answer's text rather than put in a JSON document, and that text
 * is wiped wherever it is freed (here on a rollback, by the request, by
 * libmicrohttpd once sent): no copy of it is left in freed memory.
 *
 * A replay puts the endpoint's final deliveries of one status (failed, its
 * dead letters, unless success is asked) created in [since, until) back to
 * pending, due now, their attempts forgotten; each keeps its webhook-id,
 * so a receiver that had it can tell. At most ING_CRM_REPLAY_BATCH a call,
 * oldest first, so that no statement holds an endpoint's history; the
 * answer's next_cursor names the last one taken when more are left, and
 * the next call passes it back. A keyset, not the status alone: a
 * replayed delivery may be of that status again by then (delivered at
 * once, or failed at once on a disabled endpoint), and would be taken
 * again for ever. One row more than the batch is read to know whether
 * another call has work.
 */
#include "crm/crm_webhook_writes.h"

#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "core/log.h"
#include "crm/crm_json.h"
#include "crm/crm_page.h"
#include "crm/crm_webhooks.h"
#include "pg/pg.h"
#include "wa/signature.h"

#define DISABLED_BY_DEFAULT "disabled by the CRM (PATCH /v1/webhook-endpoints)"

/* The workspace's ($1) live endpoint $2 enabled ($3) or disabled with the
 * reason $4; the counters reset only when it comes back from disabled.
 * Answers the endpoint and whether it was enabled before (was_enabled),
 * read under the row's lock. */
#define SQL_CHANGE_ENDPOINT                                                                      \
    "WITH prior AS (SELECT id AS prior_id, enabled AS was_enabled FROM webhook_endpoints "       \
    "WHERE workspace_id = $1 AND id = $2::bigint AND deleted_at IS NULL FOR UPDATE) "            \
    "UPDATE webhook_endpoints SET enabled = $3, "                                                \
    "disabled_reason = CASE WHEN $3 THEN NULL ELSE $4 END, "                                     \
    "disabled_at = CASE WHEN $3 THEN NULL WHEN enabled THEN now() ELSE disabled_at END, "        \
    "failing_since = CASE WHEN $3 AND NOT enabled THEN NULL ELSE failing_since END, "            \
    "consecutive_failures = CASE WHEN $3 AND NOT enabled THEN 0 ELSE consecutive_failures END "  \
    "FROM prior WHERE id = prior.prior_id "                                                      \
    "RETURNING " ING_CRM_ENDPOINT_COLUMNS ", was_enabled"

/* The workspace's ($1) live endpoint $2: its deliveries of status $3
 * created in [$4, $5) (microseconds since the epoch, as a cursor's time;
 * $5 NULL: no end) after the cursor ($7 created_at in microseconds, NULL
 * for the first call; $8 id),
 * the oldest $6 of them back to pending. Answers whether the endpoint is
 * one, how many were requeued, and when more are left the cursor of the
 * last one taken (created_at in microseconds, id). */
#define SQL_REPLAY                                                                               \
    "WITH e AS (SELECT id FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2::bigint "   \
    "AND deleted_at IS NULL), "                                                                  \
    "picked AS (SELECT d.id, d.created_at FROM webhook_retry_queue d "                           \
    "WHERE d.endpoint_id = $2::bigint AND EXISTS (SELECT 1 FROM e) AND d.status = $3 "           \
    "AND d.created_at >= " ING_CRM_CURSOR_TIME("4", "-infinity") " "                             \
    "AND d.created_at < " ING_CRM_CURSOR_TIME("5", "infinity") " "                               \
    "AND (d.created_at, d.id) > (" ING_CRM_CURSOR_TIME("7", "-infinity") ", "                    \
    "$8::bigint) ORDER BY d.created_at, d.id LIMIT $6::int + 1), "                               \
    "taken AS (SELECT id, created_at FROM picked ORDER BY created_at, id LIMIT $6::int), "       \
    "requeued AS (UPDATE webhook_retry_queue q SET status = 'pending', retry_count = 0, "        \
    "next_retry_at = now(), last_error = NULL, last_status_code = NULL, delivered_at = NULL "    \
    "WHERE q.id IN (SELECT id FROM taken) AND q.status = $3 RETURNING 1), "                      \
    "last AS (SELECT " ING_CRM_US("created_at") " AS us, id FROM taken "                         \
    "WHERE (SELECT count(*) FROM picked) > $6::int ORDER BY created_at DESC, id DESC LIMIT 1) "  \
    "SELECT EXISTS (SELECT 1 FROM e), (SELECT count(*) FROM requeued), "                         \
    "(SELECT us FROM last), (SELECT id FROM last)"
enum { REPLAY_ENDPOINT_FOUND, REPLAY_REQUEUED, REPLAY_NEXT_US, REPLAY_NEXT_ID };

/* The workspace's ($1) live endpoints, which crm.webhook_endpoints_per_workspace
 * bounds, counted under a lock of the workspace's creations (taken first,
 * in its own statement: a count's snapshot must follow the lock), and the
 * new endpoint's id, drawn so that its secret is sealed bound to it. */
#define SQL_LOCK_CREATIONS                                                                       \
    "SELECT pg_advisory_xact_lock(hashtext('blazz.webhook_endpoints'), "                         \
    "($1::bigint % 2147483647)::int)"
#define SQL_ENDPOINTS_HELD                                                                       \
    "SELECT count(*), nextval(pg_get_serial_sequence('webhook_endpoints', 'id')) FROM "          \
    "webhook_endpoints WHERE workspace_id = $1::bigint AND deleted_at IS NULL"
#define SQL_INSERT_ENDPOINT                                                                      \
    "INSERT INTO webhook_endpoints (id, workspace_id, url, name, event_types, "                  \
    "secret_ciphertext) VALUES ($1::bigint, $2::bigint, $3, $4, $5::text[], $6::bytea) "         \
    "RETURNING " ING_CRM_ENDPOINT_COLUMNS

/* The workspace's ($1) live endpoint $2 deleted (kept, as every deleted
 * row, for its deliveries' history), disabled so that what is due for it
 * fails without an attempt. */
#define SQL_DELETE_ENDPOINT                                                                      \
    "UPDATE webhook_endpoints SET deleted_at = now(), enabled = false, "                         \
    "disabled_reason = coalesce(disabled_reason, 'deleted by the CRM (DELETE "                   \
    "/v1/webhook-endpoints)'), disabled_at = coalesce(disabled_at, now()) "                      \
    "WHERE workspace_id = $1 AND id = $2::bigint AND deleted_at IS NULL "                        \
    "RETURNING " ING_CRM_ENDPOINT_COLUMNS

/* The new sealed secret ($3, bytea) of the workspace's ($1) live endpoint
 * $2, the old one signing beside it for $4 seconds (the function moves it:
 * ingest's role never reads a secret, 0071). No row: not the workspace's. */
#define SQL_ROTATE_SECRET                                                                        \
    "SELECT endpoint_id, " ING_CRM_MS("previous_secret_until") " FROM "                          \
    "blazz_rotate_endpoint_secret($1::bigint, $2::bigint, $3::bytea, $4::int)"
enum { ROTATED_ENDPOINT, ROTATED_PREVIOUS_UNTIL };

/* Wake the dispatchers for deliveries due now. A failure is logged, not
 * answered: the change is committed, and the dispatchers' poll finds the
 * deliveries a little later. */
static void wake_dispatchers(ing_crm_request *rq, const char *endpoint)
{
    bz_error err;
    PGresult *res = NULL;
    if (bz_pg_exec_params(rq->pg, "wake the webhook dispatchers", BZ_PG_WEBHOOK_WAKE_SQL, 0, NULL,
                          &res, &err) != BZ_OK)
        bz_log(BZ_LOG_WARN, "endpoint %s: %s (they find its deliveries at their next poll)",
               endpoint, err.msg);
    PQclear(res);
}

void ing_crm_change_endpoint(ing_crm_request *rq, const char *body, size_t len)
{
    char endpoint[24], ws[24], reason[ING_CRM_REASON_SIZE];
    int enabled = 0;
    bz_error err;
    PGresult *res = NULL;
    bz_status st = ing_crm_endpoint_of_path(rq, "", endpoint, sizeof endpoint, &err);
    if (st == BZ_OK)
        st = ing_crm_json_endpoint_change(body, len, &enabled, reason, sizeof reason, &err);
    if (st == BZ_OK) {
        snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
        const char *params[] = {ws, endpoint, enabled ? "true" : "false",
                                reason[0] ? reason : DISABLED_BY_DEFAULT};
        st = bz_pg_exec_params(rq->pg, "change the workspace's webhook endpoint",
                               SQL_CHANGE_ENDPOINT, 4, params, &res, &err);
    }
    if (st == BZ_OK && PQntuples(res) == 0)
        st = ing_crm_not_found(&err, "unknown_endpoint", "endpoint_id", rq->workspace_id);
    if (st != BZ_OK) {
        ing_crm_refuse(rq, &err);
        PQclear(res);
        return;
    }
    if (enabled && PQgetvalue(res, 0, PQfnumber(res, "was_enabled"))[0] == 'f')
        wake_dispatchers(rq, endpoint);
    ing_crm_reply_doc(rq, 200, ing_crm_endpoint_doc(res, 0));
    PQclear(res);
}

void ing_crm_delete_endpoint(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    char endpoint[24], ws[24];
    bz_error err;
    PGresult *res = NULL;
    bz_status st = ing_crm_endpoint_of_path(rq, "", endpoint, sizeof endpoint, &err);
    if (st == BZ_OK) {
        snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
        const char *params[] = {ws, endpoint};
        st = bz_pg_exec_params(rq->pg, "delete the workspace's webhook endpoint",
                               SQL_DELETE_ENDPOINT, 2, params, &res, &err);
    }
    if (st == BZ_OK && PQntuples(res) == 0)
        st = ing_crm_not_found(&err, "unknown_endpoint", "endpoint_id", rq->workspace_id);
    if (st == BZ_OK)
        ing_crm_reply_doc(rq, 200, ing_crm_endpoint_doc(res, 0));
    else
        ing_crm_refuse(rq, &err);
    PQclear(res);
}

/* The replay's answer: next_cursor names the last delivery taken when more
 * are left, null else. */
static json_t *replay_doc(const char *endpoint, const PGresult *res)
{
    json_t *next = json_null();
    if (!PQgetisnull(res, 0, REPLAY_NEXT_US)) {
        char cursor[ING_CRM_CURSOR_SIZE];
        ing_crm_cursor_format((ing_crm_cursor){bz_pg_get_int64(res, 0, REPLAY_NEXT_US),
                                               bz_pg_get_int64(res, 0, REPLAY_NEXT_ID)},
                              cursor, sizeof cursor);
        next = json_string(cursor);
    }
    return json_pack("{s:I,s:I,s:o}", "endpoint_id", (json_int_t)strtoll(endpoint, NULL, 10),
                     "requeued", (json_int_t)bz_pg_get_int64(res, 0, REPLAY_REQUEUED),
                     "next_cursor", next);
}

void ing_crm_replay_deliveries(ing_crm_request *rq, const char *body, size_t len)
{
    char endpoint[24], ws[24], since[24], until[24], batch[16], at[24], id[24];
    ing_crm_replay replay = {0};
    bz_error err;
    PGresult *res = NULL;
    bz_status st =
        ing_crm_endpoint_of_path(rq, ING_CRM_REPLAY_SUFFIX, endpoint, sizeof endpoint, &err);
    if (st == BZ_OK)
        st = ing_crm_json_replay(body, len, &replay, &err);
    if (st == BZ_OK) {
        snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
        snprintf(since, sizeof since, "%" PRId64, replay.since_ms * 1000);
        snprintf(until, sizeof until, "%" PRId64, replay.until_ms * 1000);
        snprintf(batch, sizeof batch, "%d", ING_CRM_REPLAY_BATCH);
        snprintf(at, sizeof at, "%" PRId64, replay.cursor.created_us);
        snprintf(id, sizeof id, "%" PRId64, replay.cursor.id);
        const char *params[] = {ws,
                                endpoint,
                                replay.status,
                                since,
                                replay.has_until ? until : NULL,
                                batch,
                                replay.has_cursor ? at : NULL,
                                id};
        st = bz_pg_exec_params(rq->pg, "replay the endpoint's deliveries", SQL_REPLAY, 8,
                               params, &res, &err);
    }
    if (st == BZ_OK && PQgetvalue(res, 0, REPLAY_ENDPOINT_FOUND)[0] != 't')
        st = ing_crm_not_found(&err, "unknown_endpoint", "endpoint_id", rq->workspace_id);
    if (st != BZ_OK) {
        ing_crm_refuse(rq, &err);
        PQclear(res);
        return;
    }
    if (bz_pg_get_int64(res, 0, REPLAY_REQUEUED) > 0)
        wake_dispatchers(rq, endpoint);
    ing_crm_reply_doc(rq, 200, replay_doc(endpoint, res));
    PQclear(res);
}

/* A fresh secret for the endpoint (secret, cap bytes) and its bytea
 * literal, sealed with ingest's newest key bound to the endpoint's row
 * (*sealed_text: heap, the caller frees). */
static bz_status seal_new_secret(const ing_crm_request *rq, const char *endpoint,
                                 const char *workspace, char *secret, size_t cap,
                                 char **sealed_text, bz_error *err)
{
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    *sealed_text = NULL;
    bz_status st = bz_stdwebhooks_new_secret(secret, cap, err);
    if (st == BZ_OK && (!rq->cfg->keyring || rq->cfg->keyring->count == 0))
        st = bz_fail(err, BZ_ERR_CONFIG,
                     "endpoint %s: ingest holds no secrets.keys to seal a new secret with",
                     endpoint);
    if (st == BZ_OK)
        st = bz_keyring_seal_row(rq->cfg->keyring, "webhook_endpoints", endpoint, workspace,
                                 secret, strlen(secret), &sealed, &sealed_len, err);
    if (st == BZ_OK && !(*sealed_text = bz_hex_dup("\\x", sealed, sealed_len)))
        st = bz_fail(err, BZ_ERR_NOMEM, "endpoint %s: out of memory for its sealed secret",
                     endpoint);
    free(sealed);
    return st;
}

/* doc's text with "secret" first into *answer (heap; doc released here).
 * The secret never enters jansson, which frees its strings unwiped: it is
 * spliced into the text (whsec_ and base64: nothing to escape), and the
 * answer is wiped wherever it is freed (commit_with_answer,
 * ing_crm_reply_secret). */
static bz_status answer_with_secret(json_t *doc, const char *secret, char **answer,
                                    bz_error *err)
{
    char *rest = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    *answer = NULL;
    if (rest) {
        size_t cap = strlen(rest) + strlen(secret) + 16;
        if ((*answer = malloc(cap)))
            snprintf(*answer, cap, "{\"secret\":\"%s\"%s%s", secret,
                     strcmp(rest, "{}") != 0 ? "," : "", rest + 1);
    }
    free(rest);
    return *answer ? BZ_OK : bz_fail(err, BZ_ERR_NOMEM, "out of memory for the answer");
}

/* The transaction begun for a change that hands out a secret, committed
 * when st and the answer are there, else rolled back with the answer
 * freed. */
static bz_status commit_with_answer(ing_crm_request *rq, bz_status st, char **answer,
                                    bz_error *err)
{
    if (st == BZ_OK)
        st = bz_pg_commit(rq->pg, err);
    if (st != BZ_OK) {
        bz_pg_rollback(rq->pg);
        ing_crm_free_wiped(*answer);
        *answer = NULL;
    }
    return st;
}

/* The rotation and its answer (*answer) in one transaction. */
static bz_status rotate_secret(ing_crm_request *rq, const char *endpoint, const char *ws,
                               int overlap_s, char *secret, size_t cap, char **answer,
                               bz_error *err)
{
    char overlap[16], *sealed_text = NULL;
    PGresult *res = NULL;
    *answer = NULL;
    bz_status st = seal_new_secret(rq, endpoint, ws, secret, cap, &sealed_text, err);
    if (st != BZ_OK || (st = bz_pg_begin(rq->pg, err)) != BZ_OK) {
        free(sealed_text);
        return st;
    }
    snprintf(overlap, sizeof overlap, "%d", overlap_s);
    const char *params[] = {ws, endpoint, sealed_text, overlap};
    st = bz_pg_exec_params(rq->pg, "rotate the endpoint's signing secret", SQL_ROTATE_SECRET, 4,
                           params, &res, err);
    if (st == BZ_OK && PQntuples(res) == 0)
        st = ing_crm_not_found(err, "unknown_endpoint", "endpoint_id", rq->workspace_id);
    if (st == BZ_OK)
        st = answer_with_secret(
            json_pack("{s:I,s:o}", "endpoint_id",
                      (json_int_t)bz_pg_get_int64(res, 0, ROTATED_ENDPOINT),
                      "previous_secret_until",
                      ing_crm_time_or_null(res, 0, ROTATED_PREVIOUS_UNTIL)),
            secret, answer, err);
    PQclear(res);
    free(sealed_text);
    return commit_with_answer(rq, st, answer, err);
}

void ing_crm_rotate_endpoint_secret(ing_crm_request *rq, const char *body, size_t len)
{
    char endpoint[24], ws[24], secret[BZ_STDWEBHOOKS_NEW_SECRET_LEN + 1] = "";
    char *answer = NULL;
    int overlap_s = 0;
    bz_error err;
    bz_status st = ing_crm_endpoint_of_path(rq, ING_CRM_ROTATE_SECRET_SUFFIX, endpoint,
                                            sizeof endpoint, &err);
    if (st == BZ_OK)
        st = ing_crm_json_secret_rotation(body, len, &overlap_s, &err);
    snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
    if (st == BZ_OK)
        st = rotate_secret(rq, endpoint, ws, overlap_s, secret, sizeof secret, &answer, &err);
    if (st == BZ_OK)
        ing_crm_reply_secret(rq, 200, answer);
    else
        ing_crm_refuse(rq, &err);
    OPENSSL_cleanse(secret, sizeof secret);
}

/* Under the lock of the workspace's creations: room for one more endpoint
 * (409 endpoint_quota_exceeded) and the new one's id into id (cap bytes). */
static bz_status room_for_an_endpoint(ing_crm_request *rq, const char *ws, char *id, size_t cap,
                                      bz_error *err)
{
    const char *params[] = {ws};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(rq->pg, "lock the workspace's endpoint creations",
                                     SQL_LOCK_CREATIONS, 1, params, &res, err);
    PQclear(res);
    res = NULL;
    if (st == BZ_OK)
        st = bz_pg_exec_params(rq->pg, "count the workspace's webhook endpoints",
                               SQL_ENDPOINTS_HELD, 1, params, &res, err);
    uint32_t quota = rq->cfg->endpoints_per_workspace;
    int64_t held = st == BZ_OK ? bz_pg_get_int64(res, 0, 0) : 0;
    if (st == BZ_OK)
        snprintf(id, cap, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    if (st == BZ_OK && quota > 0 && held >= (int64_t)quota) {
        st = bz_fail(err, BZ_ERR_CONFLICT,
                     "field url: workspace %s holds %" PRId64 " webhook endpoints, its limit "
                     "is %" PRIu32 " (crm.webhook_endpoints_per_workspace)",
                     ws, held, quota);
        err->reason = "endpoint_quota_exceeded";
    }
    return st;
}

/* In one transaction: the room, the sealed secret, the row and its
 * answer (*answer). */
static bz_status insert_endpoint(ing_crm_request *rq, const ing_crm_new_endpoint *e,
                                 const char *ws, char *secret, size_t cap, char **answer,
                                 bz_error *err)
{
    char id[24] = "";
    char *sealed_text = NULL;
    PGresult *res = NULL;
    *answer = NULL;
    bz_status st = bz_pg_begin(rq->pg, err);
    if (st != BZ_OK)
        return st;
    st = room_for_an_endpoint(rq, ws, id, sizeof id, err);
    if (st == BZ_OK)
        st = seal_new_secret(rq, id, ws, secret, cap, &sealed_text, err);
    if (st == BZ_OK) {
        const char *params[] = {id, ws, e->url, e->name, e->event_types, sealed_text};
        st = bz_pg_exec_params(rq->pg, "create the workspace's webhook endpoint",
                               SQL_INSERT_ENDPOINT, 6, params, &res, err);
    }
    if (st == BZ_OK)
        st = answer_with_secret(json_pack("{s:o}", "endpoint", ing_crm_endpoint_doc(res, 0)),
                                secret, answer, err);
    PQclear(res);
    free(sealed_text);
    return commit_with_answer(rq, st, answer, err);
}

void ing_crm_create_endpoint(ing_crm_request *rq, const char *body, size_t len)
{
    char ws[24], secret[BZ_STDWEBHOOKS_NEW_SECRET_LEN + 1] = "";
    char *answer = NULL;
    ing_crm_new_endpoint e;
    bz_error err;
    snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
    bz_status st = ing_crm_json_new_endpoint(body, len, &e, &err);
    if (st == BZ_OK)
        st = insert_endpoint(rq, &e, ws, secret, sizeof secret, &answer, &err);
    if (st == BZ_OK)
        ing_crm_reply_secret(rq, 201, answer);
    else
        ing_crm_refuse(rq, &err);
    OPENSSL_cleanse(secret, sizeof secret);
    ing_crm_new_endpoint_free(&e);
}
