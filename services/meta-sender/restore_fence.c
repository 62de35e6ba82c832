/*
 * restore_fence.c - after the database was restored to an earlier point,
 * no send leaves until the proofs of the sends made since are back
 * (ARCHITECTURE.md §6.5, db/migrations/0045).
 *
 * `stack.sh restore` records a fence: the end offsets chat.sync had then,
 * per consumer group that reads it. Every send made after the restore
 * point left its proof there (meta-sender's report, Meta's status
 * webhooks), and chat-sync, re-reading from its restored offsets, writes
 * those proofs to meta_send_proofs again. So while a fence is up, the
 * sender claims nothing; once chat-sync's kafka_offsets reached every end
 * offset of the fence, the proofs are all in, the fence is lifted
 * (lifted_at) and every send claimed from then on is looked up among them
 * (claim.c) like any other. Checked with the accounts, once a second.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "core/log.h"
#include "pg/pg.h"
#include "active_sender.h"

/* Per unlifted fence, how many of its partitions chat-sync has not read
 * to the end offset yet. */
#define SQL_FENCES                                                                                \
    "SELECT f.id, f.restored_to, count(o.partition) FILTER (WHERE coalesce(k.next_offset, 0) < " \
    "  o.end_offset), coalesce(sum(greatest(o.end_offset - coalesce(k.next_offset, 0), 0)), 0) " \
    "FROM restore_fences f LEFT JOIN restore_fence_offsets o ON o.fence_id = f.id "              \
    "LEFT JOIN kafka_offsets k ON k.group_id = o.group_id AND k.topic = o.topic "                 \
    "  AND k.partition = o.partition "                                                            \
    "WHERE f.lifted_at IS NULL GROUP BY f.id, f.restored_to ORDER BY f.id"

#define SQL_LIFT "UPDATE restore_fences SET lifted_at = now() WHERE id = $1::bigint"

static bz_status lift(ms_worker *w, const char *id, const char *restored_to, bz_error *err)
{
    const char *params[] = {id};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(w->conn, "lift the restore fence", SQL_LIFT, 1, params,
                                     &res, err);
    PQclear(res);
    if (st == BZ_OK)
        bz_info("meta sender: restore fence %s (restored to %s) lifted: chat-sync has read "
                "chat.sync back to where it stood, every send made since is proven; sending again",
                id, restored_to);
    return st;
}

bz_status ms_restore_fence_check(ms_worker *w, bz_error *err)
{
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(w->conn, "read the restore fences", SQL_FENCES, 0, NULL,
                                     &res, err);
    int held = 0;
    int64_t behind = 0;
    for (int row = 0; st == BZ_OK && row < PQntuples(res); row++) {
        if (bz_pg_get_int64(res, row, 2) == 0) {
            st = lift(w, PQgetvalue(res, row, 0), PQgetvalue(res, row, 1), err);
            continue;
        }
        held = 1;
        behind += bz_pg_get_int64(res, row, 3);
    }
    if (st == BZ_OK) {
        if (held && !w->fence_held)
            bz_warn("meta sender: the database was restored (restore fence %s, to %s): no send "
                    "leaves until chat-sync has re-read chat.sync, %" PRId64 " records to go",
                    PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), behind);
        w->fence_held = held;
        bz_gauge_set(w->m->restore_fence_records, (double)behind);
    }
    PQclear(res);
    return st;
}
