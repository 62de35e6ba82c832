/*
 * media_row.h - the chat_media row of a stored object (db/migrations/
 * 0041_chat_media.sql), for every service that stores bytes: ingest (the
 * CRM's and the gateways' uploads) and meta-sender (what it fetches from
 * Meta); and the lock that keeps cleanup's purge from removing an object
 * a new upload of the same bytes is about to rely on.
 *
 * Content addressing makes one object serve many uploads, so "is this
 * object still needed" and "store it" must not interleave. Every writer
 * and the purge take the object's lock, blazz_media_lock_key(workspace,
 * sha256) (0041), as a PostgreSQL advisory lock:
 *   store:  BEGIN; bz_media_row_upsert (takes the lock for the
 *           transaction, refreshes stored_at); bz_media_spool_commit;
 *           link the row; COMMIT.
 *   purge:  bz_media_row_lock_session; BEGIN; delete the row if it is
 *           still unreferenced and its stored_at older than the retention;
 *           COMMIT; remove the object; bz_media_row_unlock_session.
 * A purge that dies between its COMMIT and the removal leaves an object
 * without a row: a leak, which a later upload of the same bytes reuses,
 * never a row without its object.
 */
#ifndef BZ_MEDIA_MEDIA_ROW_H
#define BZ_MEDIA_MEDIA_ROW_H

#include <libpq-fe.h>
#include <stdint.h>

#include "core/status.h"
#include "media/store.h"

typedef struct bz_media_row {
    int64_t id;
    char uuid[37];
} bz_media_row;

/* Inside the caller's open transaction: take obj's lock until its end,
 * then the row of obj in workspace_id, inserted with name (may be NULL),
 * location and source ("meta", "webjs", "crm"), or the one already there
 * for the same (workspace, sha256), whose name and source stay and whose
 * stored_at moves to now. */
bz_status bz_media_row_upsert(PGconn *conn, int64_t workspace_id, const bz_media_object *obj,
                              const char *name, const char *location, const char *source,
                              bz_media_row *out, bz_error *err);

/* The purge's side of the lock, held across its transaction and the
 * object's removal (outside any transaction). */
bz_status bz_media_row_lock_session(PGconn *conn, int64_t workspace_id, const char *sha256,
                                    bz_error *err);
bz_status bz_media_row_unlock_session(PGconn *conn, int64_t workspace_id, const char *sha256,
                                      bz_error *err);

#endif
