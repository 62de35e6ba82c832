/*
 * media_retention.c - purging media no message refers to any more
 * (ARCHITECTURE.md §16.5).
 *
 * A chat_media row is kept while a chats row points at it; once none does
 * (the message was deleted, or the CRM uploaded a file and never sent it)
 * and its bytes were last stored more than media.retention_days ago, the
 * row and its object go. Content addressing makes one object serve every
 * upload of the same bytes in a workspace, so the purge takes the object's
 * lock (libs/media/media_row.h) around a transaction that deletes the row
 * only if it is still unreferenced and old, and removes the object after
 * that commit: an upload of the same bytes meanwhile waits for the lock,
 * then inserts a new row and stores the object again. A purge that dies
 * between its commit and the removal leaves an object without a row, a
 * leak that the next upload of those bytes reuses, never a row without its
 * object.
 *
 * Only the timer's sweep purges media (its own connection, outside any
 * transaction): a CleanupRequest runs inside the consumer's transaction,
 * where an object removed before the commit could outlive a rollback.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "core/log.h"
#include "media/media_row.h"

#define UNREFERENCED_AND_OLD                                                                       \
    "stored_at < to_timestamp($1::bigint / 1000.0) - make_interval(secs => $2::bigint) "          \
    "AND NOT EXISTS (SELECT 1 FROM chats c WHERE c.media_id = m.id)"

static const char sql_list_candidates[] =
    "SELECT m.id, m.workspace_id, m.sha256 FROM chat_media m WHERE " UNREFERENCED_AND_OLD
    " ORDER BY m.stored_at LIMIT $3::bigint";

static const char sql_delete_if_still_unused[] =
    "DELETE FROM chat_media m WHERE m.id = $3::bigint AND " UNREFERENCED_AND_OLD
    " RETURNING m.path, m.size";

typedef struct media_candidate {
    int64_t id;
    int64_t workspace_id;
    char sha256[65];
} media_candidate;

/* Up to batch candidates into a heap array *out (the caller frees it). */
static bz_status list_candidates(cl_ctx *ctx, PGconn *conn, int64_t now_ms,
                                 media_candidate **out, int *n, bz_error *err)
{
    char now[24], age[24], limit[24];
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(age, sizeof age, "%" PRId64, ctx->s.media_retention_s);
    snprintf(limit, sizeof limit, "%d", ctx->s.batch_size);
    const char *params[] = {now, age, limit};
    PGresult *res = PQexecParams(conn, sql_list_candidates, 3, NULL, params, NULL, NULL, 0);
    bz_status st = bz_pg_check(conn, res, "list unreferenced media", err);
    *n = st == BZ_OK ? PQntuples(res) : 0;
    *out = NULL;
    if (st == BZ_OK && *n > 0 && !(*out = calloc((size_t)*n, sizeof **out)))
        st = bz_fail(err, BZ_ERR_NOMEM, "list unreferenced media: out of memory");
    for (int i = 0; st == BZ_OK && i < *n; i++) {
        (*out)[i].id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        (*out)[i].workspace_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        snprintf((*out)[i].sha256, sizeof (*out)[i].sha256, "%s", PQgetvalue(res, i, 2));
    }
    PQclear(res);
    return st;
}

/* Delete the row if nothing refers to it yet (autocommit: one statement is
 * its own transaction); *path is the object's key when it went, "" when
 * the row was linked or stored again since it was listed. */
static bz_status delete_row_if_still_unused(cl_ctx *ctx, PGconn *conn, int64_t now_ms,
                                            const media_candidate *c, char *path,
                                            size_t path_size, int64_t *size, bz_error *err)
{
    char now[24], age[24], id[24];
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(age, sizeof age, "%" PRId64, ctx->s.media_retention_s);
    snprintf(id, sizeof id, "%" PRId64, c->id);
    const char *params[] = {now, age, id};
    PGresult *res = PQexecParams(conn, sql_delete_if_still_unused, 3, NULL, params, NULL, NULL, 0);
    bz_status st = bz_pg_check(conn, res, "delete unreferenced media row", err);
    path[0] = '\0';
    if (st == BZ_OK && PQntuples(res) == 1) {
        snprintf(path, path_size, "%s", PQgetvalue(res, 0, 0));
        *size = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return st;
}

/* One candidate under its object's lock: the row, then the object. */
static bz_status purge_one(cl_ctx *ctx, PGconn *conn, int64_t now_ms, const media_candidate *c,
                           cl_sweep_result *out, bz_error *err)
{
    bz_status st = bz_media_row_lock_session(conn, c->workspace_id, c->sha256, err);
    if (st != BZ_OK)
        return st;
    char path[256];
    int64_t size = 0;
    st = delete_row_if_still_unused(ctx, conn, now_ms, c, path, sizeof path, &size, err);
    if (st == BZ_OK && path[0]) {
        st = bz_media_store_remove(ctx->media, path, err);
        if (st == BZ_OK) {
            out->purged_media++;
            out->purged_media_bytes += (uint64_t)size;
        }
    }
    bz_error unlock_err;
    bz_status unlocked = bz_media_row_unlock_session(conn, c->workspace_id, c->sha256,
                                                     &unlock_err);
    if (st == BZ_OK && unlocked != BZ_OK) {
        *err = unlock_err;
        st = unlocked;
    }
    if (st != BZ_OK)
        return bz_wrap(err, "purge media id=%" PRId64 " workspace=%" PRId64, c->id,
                       c->workspace_id);
    return BZ_OK;
}

bz_status cl_media_purge(cl_ctx *ctx, PGconn *conn, int64_t now_ms, cl_sweep_result *out,
                         bz_error *err)
{
    if (!ctx->media || ctx->s.media_retention_s <= 0)
        return BZ_OK;
    uint64_t before = out->purged_media, bytes_before = out->purged_media_bytes;
    bz_status st = BZ_OK;
    int n;
    do {
        media_candidate *list = NULL;
        st = list_candidates(ctx, conn, now_ms, &list, &n, err);
        for (int i = 0; st == BZ_OK && i < n && !atomic_load(&ctx->stop); i++)
            st = purge_one(ctx, conn, now_ms, &list[i], out, err);
        free(list);
    } while (st == BZ_OK && n == ctx->s.batch_size && !atomic_load(&ctx->stop));
    uint64_t purged = out->purged_media - before;
    if (ctx->have_metrics && purged) {
        bz_counter_add(bz_counter_family_with(ctx->m.purged, "chat_media"), purged);
        bz_counter_add(ctx->m.purged_media_bytes, out->purged_media_bytes - bytes_before);
    }
    return st;
}
