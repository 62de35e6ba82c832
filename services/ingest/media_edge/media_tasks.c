/*
 * media_tasks.c - what a CRM worker does for a media request (see
 * media_request.h): the database and the store, off the event loop.
 *
 *   upload (the CRM's, a gateway's): BEGIN; for the CRM, its workspace's
 *            uploads no message refers to yet within their bound (409
 *            media_quota_exceeded past it); the chat_media row (its
 *            object's lock taken); the spool committed into the store;
 *            COMMIT (media/media_row.h: a row is never committed without
 *            its object) -> 201 with the row; a gateway's upload first
 *            finds its session's workspace among the signer's live
 *            accounts and checks the bytes against the digest it signed;
 *   info:    the key's workspace's row and a link to it -> 200/404;
 *   content: the row in the link's (or the gateway session's) workspace,
 *            its object opened for the event loop to send (an S3
 *            store's: a presigned link to send the client to) -> 403/404.
 *
 * An upload drops its spool before its answer goes out: a refused one so
 * that "nothing was stored" already holds when the client reads it, a
 * stored one so that no spool file outlives the 201.
 */
#include "media_edge/media_request.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/timespec.h"
#include "media/media_row.h"
#include "pg/pg.h"

/* {media_uuid, type, kind, size, sha256, name} of the row, as stored. */
static bz_status upload_answer(ing_crm_request *rq, const bz_media_row *row, json_t **out,
                               bz_error *err)
{
    const char *params[] = {row->uuid};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(rq->pg, "media row",
                                     "SELECT name, type, kind, size, sha256 FROM chat_media "
                                     "WHERE uuid = $1::uuid",
                                     1, params, &res, err);
    if (st == BZ_OK && PQntuples(res) != 1)
        st = bz_fail(err, BZ_ERR_INTERNAL, "media row %s vanished in its transaction", row->uuid);
    if (st == BZ_OK)
        *out = json_pack(
            "{s:s,s:s,s:s,s:I,s:s,s:o}", "media_uuid", row->uuid, "type", PQgetvalue(res, 0, 1),
            "kind", PQgetvalue(res, 0, 2), "size", (json_int_t)strtoll(PQgetvalue(res, 0, 3), NULL, 10),
            "sha256", PQgetvalue(res, 0, 4), "name",
            PQgetisnull(res, 0, 0) ? json_null() : json_string(PQgetvalue(res, 0, 0)));
    PQclear(res);
    return st;
}

/* Whether the workspace holds these bytes already, and the bytes of the
 * CRM's uploads it holds that no message refers to: what sending never
 * bounds, kept until cleanup's retention purges them (ARCHITECTURE.md §16.5). */
#define SQL_UNSENT_MEDIA                                                                          \
    "SELECT EXISTS (SELECT 1 FROM chat_media WHERE workspace_id = $1 AND sha256 = $2), "           \
    "coalesce(sum(m.size), 0) FROM chat_media m WHERE m.workspace_id = $1 AND m.source = 'crm' "  \
    "AND NOT EXISTS (SELECT 1 FROM chats c WHERE c.media_id = m.id)"

/* One upload of a workspace counts at a time, in every ingest: the lock
 * lasts until the upload's transaction ends, so a second one counts the
 * first's row. The workspace id is folded into the lock's 32 bits (two
 * workspaces may share one and wait for each other, nothing worse). */
#define SQL_LOCK_WORKSPACE_MEDIA                                                                  \
    "SELECT pg_advisory_xact_lock(hashtext('blazz.unsent_media'), ($1::bigint % 2147483647)::int)"

/* A CRM upload within crm.unsent_media_bytes_per_workspace, else
 * *refused and err media_quota_exceeded. Bytes the workspace holds
 * already add nothing. */
static bz_status check_quota(ing_crm_request *rq, const ing_media_request *mr, int *refused,
                             bz_error *err)
{
    uint64_t limit = ing_crm_request_config(rq)->unsent_media_bytes_per_workspace;
    if (limit == 0)
        return BZ_OK;
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, mr->workspace_id);
    const char *params[] = {ws, mr->obj.sha256};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(rq->pg, "lock the workspace's unsent media",
                                     SQL_LOCK_WORKSPACE_MEDIA, 1, params, NULL, err);
    if (st == BZ_OK)
        st = bz_pg_exec_params(rq->pg, "count the workspace's unsent media", SQL_UNSENT_MEDIA, 2,
                               params, &res, err);
    int held_already = st == BZ_OK && PQgetvalue(res, 0, 0)[0] == 't';
    uint64_t unsent = st == BZ_OK ? (uint64_t)bz_pg_get_int64(res, 0, 1) : 0;
    PQclear(res);
    if (st != BZ_OK || held_already || unsent + mr->obj.size <= limit)
        return st;
    *refused = 1;
    st = bz_fail(err, BZ_ERR_CONFLICT,
                 "field body: workspace %" PRId64 " holds %" PRIu64 " bytes of uploads no "
                 "message refers to; %" PRIu64 " more pass its limit of %" PRIu64
                 " (crm.unsent_media_bytes_per_workspace)",
                 mr->workspace_id, unsent, mr->obj.size, limit);
    err->reason = "media_quota_exceeded";
    return st;
}

/* BEGIN; the CRM's bound; the row (its lock taken); the object into the
 * store; COMMIT (media_row.h: a row is never committed without its
 * object). */
static void store_object(ing_crm_request *rq, ing_media_request *mr, const char *source)
{
    ing_media_api *api = mr->api;
    bz_error err, ignored;
    bz_media_row row;
    json_t *answer = NULL;
    int refused = 0;
    bz_status st = bz_pg_exec(rq->pg, "BEGIN", &err);
    if (st == BZ_OK && strcmp(source, "crm") == 0)
        st = check_quota(rq, mr, &refused, &err);
    if (st == BZ_OK)
        st = bz_media_row_upsert(rq->pg, mr->workspace_id, &mr->obj, mr->name[0] ? mr->name : NULL,
                                 bz_media_store_location(api->cfg.store), source, &row, &err);
    if (st == BZ_OK) {
        pthread_mutex_lock(&api->commit_mu);
        st = bz_media_spool_commit(mr->spool, &mr->obj, &err);
        pthread_mutex_unlock(&api->commit_mu);
    }
    if (st == BZ_OK)
        st = upload_answer(rq, &row, &answer, &err);
    if (st == BZ_OK)
        st = bz_pg_exec(rq->pg, "COMMIT", &err);
    /* before the answer: a spool the store did not rename into place (the
     * object was there already, or went to S3) would otherwise stay on disk
     * until libmicrohttpd completes the request, after the client read its
     * 201 */
    ing_media_drop_spool(mr);
    if (st != BZ_OK) {
        bz_pg_exec(rq->pg, "ROLLBACK", &ignored);
        json_decref(answer);
        if (refused) {
            ing_crm_refuse(rq, &err);
            return;
        }
        bz_warn("media upload in workspace %" PRId64 ": %s", mr->workspace_id, err.msg);
        err.reason = NULL; /* answered as "unavailable" */
        ing_crm_refuse_as(rq, MHD_HTTP_SERVICE_UNAVAILABLE, &err);
        return;
    }
    ing_crm_reply_doc(rq, MHD_HTTP_CREATED, answer);
}

void ing_media_commit_upload(ing_crm_request *rq, void *ctx)
{
    store_object(rq, ctx, "crm");
}

/* The workspace of the session the signing gateway serves (a live
 * account's, the older of two, as the directory reads them), else 404.
 * This is where a session newer than the gateways' directory is confirmed
 * as the gateway's (gateway_media.h). */
static bz_status session_workspace(ing_crm_request *rq, const ing_gateway_media_claim *claim,
                                   int64_t *out, bz_error *err)
{
    const char *session = claim->session;
    const char *params[] = {session, claim->gateway};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(rq->pg, "session's workspace",
                                     "SELECT a.workspace_id FROM whatsapp_accounts a "
                                     "JOIN gateways g ON g.id = a.gateway_id AND "
                                     "g.disabled_at IS NULL WHERE a.session_id = $1 AND "
                                     "a.deleted_at IS NULL AND a.gateway_id = $2 "
                                     "ORDER BY a.id LIMIT 1",
                                     2, params, &res, err);
    if (st == BZ_OK && PQntuples(res) == 0) {
        bz_fail(err, BZ_ERR_NOT_FOUND, "field session: no live account has session %s", session);
        err->reason = "unknown_session";
        st = BZ_ERR_NOT_FOUND;
    }
    if (st == BZ_OK)
        *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return st;
}

/* A gateway's upload: the session's workspace, the bytes checked against
 * their type and against the digest the gateway signed, then stored. */
void ing_media_commit_gateway_upload(ing_crm_request *rq, void *ctx)
{
    ing_media_request *mr = ctx;
    bz_error err;
    unsigned refusal = 0;
    if (session_workspace(rq, &mr->claim, &mr->workspace_id, &err) != BZ_OK) {
        refusal = ing_crm_status_of(&err);
    } else if (bz_media_spool_finish(mr->spool, mr->workspace_id, mr->mime, &mr->obj, &err) !=
               BZ_OK) {
        refusal = ing_media_status_of_error(&err);
    } else if (strcmp(mr->obj.sha256, mr->claim.sha256) != 0) {
        bz_reject(&err, "content_sha256_mismatch",
                  "field X-Blazz-Content-SHA256: the body's SHA-256 is %s", mr->obj.sha256);
        refusal = MHD_HTTP_BAD_REQUEST;
    }
    if (refusal) {
        ing_media_drop_spool(mr);
        ing_crm_refuse_as(rq, refusal, &err);
        return;
    }
    store_object(rq, mr, "webjs");
}

#define ROW_SQL                                                                                    \
    "SELECT uuid, name, type, kind, size, sha256, path, source, "                                 \
    "(extract(epoch FROM created_at) * 1000)::bigint FROM chat_media "                            \
    "WHERE workspace_id = $1 AND uuid = $2::uuid"

/* The workspace's row of mr->uuid into *res; NOT_FOUND when it has none
 * (another workspace's row is the same as none: its existence is not
 * told). */
static bz_status find_row(ing_crm_request *rq, ing_media_request *mr, PGresult **res,
                          bz_error *err)
{
    if (!mr->uuid[0])
        return ing_crm_not_found(err, "unknown_media", "media_uuid", rq->workspace_id);
    bz_status st = ing_crm_lookup(rq, "media row", ROW_SQL, mr->uuid, res, err);
    if (st == BZ_OK && !*res)
        return ing_crm_not_found(err, "unknown_media", "media_uuid", rq->workspace_id);
    return st;
}

static json_t *info_json(const PGresult *res, const char *url, int64_t expires_ms)
{
    char expires[32], created[32];
    bz_time_format(expires_ms, expires, sizeof expires);
    bz_time_format(strtoll(PQgetvalue(res, 0, 8), NULL, 10), created, sizeof created);
    return json_pack(
        "{s:s,s:o,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s}", "media_uuid", PQgetvalue(res, 0, 0), "name",
        PQgetisnull(res, 0, 1) ? json_null() : json_string(PQgetvalue(res, 0, 1)), "type",
        PQgetvalue(res, 0, 2), "kind", PQgetvalue(res, 0, 3), "size",
        (json_int_t)strtoll(PQgetvalue(res, 0, 4), NULL, 10), "sha256", PQgetvalue(res, 0, 5),
        "source", PQgetvalue(res, 0, 7), "created_at", created, "url", url,
        "expires_at", expires);
}

void ing_media_describe(ing_crm_request *rq, void *ctx)
{
    ing_media_request *mr = ctx;
    ing_media_api *api = mr->api;
    bz_error err;
    PGresult *res = NULL;
    char *url = NULL;
    int64_t now_s = bz_wall_ms() / 1000;
    bz_status st = find_row(rq, mr, &res, &err);
    if (st == BZ_OK)
        st = bz_media_store_link(api->cfg.store, rq->workspace_id, mr->uuid,
                                 PQgetvalue(res, 0, 6), now_s, &url, &err);
    if (st == BZ_OK)
        ing_crm_reply_doc(rq, MHD_HTTP_OK, info_json(res, url, (now_s + api->cfg.link_ttl_s) * 1000));
    else
        ing_crm_refuse(rq, &err);
    free(url);
    PQclear(res);
}

/* The object of the row found (res) made ready for the event loop: a
 * local store's opened (its bytes are sent from the descriptor), an S3
 * store's as a presigned GET, valid media.link_ttl_s, that the client is
 * sent to (the bucket serves the bytes: no worker waits on a download,
 * no copy passes through ingest); 503 when neither can be had. The link
 * names the object's key, ws/<workspace>/<sha256>, in the workspace the
 * row was found in: it opens nothing else. */
static void open_object(ing_crm_request *rq, ing_media_request *mr, const PGresult *res)
{
    bz_media_store *store = mr->api->cfg.store;
    const char *key = PQgetvalue(res, 0, 6);
    bz_error err;
    snprintf(mr->mime, sizeof mr->mime, "%s", PQgetvalue(res, 0, 2));
    bz_status st = strcmp(bz_media_store_location(store), "s3") == 0
                       ? bz_media_store_link(store, rq->workspace_id, mr->uuid, key,
                                             bz_wall_ms() / 1000, &mr->link, &err)
                       : bz_media_store_open_local(store, key, &mr->fd, &mr->size, &err);
    if (st == BZ_OK)
        return;
    bz_warn("media content %s: %s", mr->uuid, err.msg);
    err.reason = NULL; /* answered as "unavailable" */
    ing_crm_refuse_as(rq, MHD_HTTP_SERVICE_UNAVAILABLE, &err);
}

/* The link's row in the link's workspace, its object opened; 403 when the
 * workspace has no such row (the link was made for another one's). */
void ing_media_open_content(ing_crm_request *rq, void *ctx)
{
    ing_media_request *mr = ctx;
    bz_error err;
    PGresult *res = NULL;
    bz_status st = find_row(rq, mr, &res, &err);
    if (st == BZ_ERR_NOT_FOUND) {
        bz_fail(&err, BZ_ERR_INVALID, "field signature: the link does not name this media");
        err.reason = "bad_link_signature";
        ing_crm_refuse_as(rq, MHD_HTTP_FORBIDDEN, &err);
    } else if (st == BZ_OK) {
        open_object(rq, mr, res);
    } else {
        ing_crm_refuse(rq, &err);
    }
    PQclear(res);
}

/* A gateway's read: the row in its session's workspace, its object opened
 * (or linked); 404 unknown_media for another workspace's or an unknown
 * uuid. */
void ing_media_open_gateway_content(ing_crm_request *rq, void *ctx)
{
    ing_media_request *mr = ctx;
    bz_error err;
    PGresult *res = NULL;
    bz_status st = session_workspace(rq, &mr->claim, &rq->workspace_id, &err);
    if (st == BZ_OK)
        st = find_row(rq, mr, &res, &err);
    if (st == BZ_OK)
        open_object(rq, mr, res);
    else
        ing_crm_refuse(rq, &err);
    PQclear(res);
}
