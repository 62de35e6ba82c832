/*
 * media_row.c - the chat_media row of a stored object and the object's
 * advisory lock (see media_row.h, ARCHITECTURE.md §16.1).
 *
 * The upsert takes blazz_media_lock_key(workspace, sha256) for the
 * transaction before it inserts, so a purge holding the same key (session
 * lock) either finished before (the row is gone: a fresh one is inserted
 * and the commit stores the bytes again) or waits until this transaction
 * ends (and then sees a row refreshed or referenced). ON CONFLICT keeps the
 * first upload's name and source; only stored_at moves, which is what the
 * ingest and meta-sender roles may update (0041's grants).
 */
#include "media/media_row.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pg/pg.h"

static const char lock_xact_sql[] =
    "SELECT pg_advisory_xact_lock(blazz_media_lock_key($1::bigint, $2::text))";

static const char upsert_sql[] =
    "INSERT INTO chat_media (workspace_id, name, path, location, type, kind, size, sha256, "
    "source) VALUES ($1::bigint, $2, $3, $4, $5, $6, $7::bigint, $8, $9) "
    "ON CONFLICT (workspace_id, sha256) DO UPDATE SET stored_at = now() "
    "RETURNING id, uuid";

static bz_status run_lock(PGconn *conn, const char *what, const char *sql, int64_t workspace_id,
                          const char *sha256, bz_error *err)
{
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, workspace_id);
    const char *params[] = {ws, sha256};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, what, sql, 2, params, &res, err);
    PQclear(res);
    return st;
}

bz_status bz_media_row_upsert(PGconn *conn, int64_t workspace_id, const bz_media_object *obj,
                              const char *name, const char *location, const char *source,
                              bz_media_row *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    bz_status st = run_lock(conn, "lock media object", lock_xact_sql, workspace_id, obj->sha256,
                            err);
    if (st != BZ_OK)
        return bz_wrap(err, "media row ws=%" PRId64 " sha256=%.16s", workspace_id, obj->sha256);
    char ws[24], size[24];
    snprintf(ws, sizeof ws, "%" PRId64, workspace_id);
    snprintf(size, sizeof size, "%" PRIu64, obj->size);
    const char *params[] = {ws,     name && *name ? name : NULL, obj->key, location,
                            obj->mime_type, bz_media_kind_name(obj->kind), size, obj->sha256,
                            source};
    PGresult *res = NULL;
    st = bz_pg_exec_params(conn, "upsert chat_media", upsert_sql, 9, params, &res, err);
    if (st == BZ_OK && PQntuples(res) == 1) {
        out->id = bz_pg_get_int64(res, 0, 0);
        snprintf(out->uuid, sizeof out->uuid, "%s", PQgetvalue(res, 0, 1));
    } else if (st == BZ_OK) {
        st = bz_fail(err, BZ_ERR_INTERNAL, "upsert chat_media: %d rows returned", PQntuples(res));
    }
    PQclear(res);
    if (st != BZ_OK)
        return bz_wrap(err, "media row ws=%" PRId64 " sha256=%.16s", workspace_id, obj->sha256);
    return BZ_OK;
}

bz_status bz_media_row_lock_session(PGconn *conn, int64_t workspace_id, const char *sha256,
                                    bz_error *err)
{
    return run_lock(conn, "lock media object for purge",
                    "SELECT pg_advisory_lock(blazz_media_lock_key($1::bigint, $2::text))",
                    workspace_id, sha256, err);
}

bz_status bz_media_row_unlock_session(PGconn *conn, int64_t workspace_id, const char *sha256,
                                      bz_error *err)
{
    return run_lock(conn, "unlock media object",
                    "SELECT pg_advisory_unlock(blazz_media_lock_key($1::bigint, $2::text))",
                    workspace_id, sha256, err);
}
