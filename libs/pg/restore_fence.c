/*
 * restore_fence.c - the restore fence, read and lifted (restore_fence.h).
 *
 * One statement reads, per unlifted fence, how many of its partitions
 * some group has not read to the fence's end offset yet (its kafka_offsets
 * row, absent counting as offset 0) and how many records that leaves. A
 * fence with none left is lifted by an UPDATE that only an unlifted row
 * matches, so of two services lifting at once one logs it.
 */
#include "pg/restore_fence.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "pg/pg.h"

#define SQL_FENCES                                                                                \
    "SELECT f.id, f.restored_to, count(o.partition) FILTER (WHERE coalesce(k.next_offset, 0) < " \
    "  o.end_offset), coalesce(sum(greatest(o.end_offset - coalesce(k.next_offset, 0), 0)), 0) " \
    "FROM restore_fences f LEFT JOIN restore_fence_offsets o ON o.fence_id = f.id "              \
    "LEFT JOIN kafka_offsets k ON k.group_id = o.group_id AND k.topic = o.topic "                 \
    "  AND k.partition = o.partition "                                                            \
    "WHERE f.lifted_at IS NULL GROUP BY f.id, f.restored_to ORDER BY f.id"

#define SQL_LIFT                                                                                  \
    "UPDATE restore_fences SET lifted_at = now() WHERE id = $1::bigint AND lifted_at IS NULL"

enum { COL_ID, COL_RESTORED_TO, COL_PARTITIONS_BEHIND, COL_RECORDS_BEHIND };

static bz_status lift(PGconn *conn, const char *who, const char *id, const char *restored_to,
                      bz_error *err)
{
    const char *params[] = {id};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "lift the restore fence", SQL_LIFT, 1, params, &res,
                                     err);
    if (st == BZ_OK && strcmp(PQcmdTuples(res), "1") == 0)
        bz_info("%s: restore fence %s (restored to %s) lifted: every consumer has read chat.sync "
                "and the campaign topics back to where they stood",
                who, id, restored_to);
    PQclear(res);
    return st;
}

bz_status bz_restore_fence_check(PGconn *conn, const char *who, bz_restore_fence *out,
                                 bz_error *err)
{
    memset(out, 0, sizeof *out);
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "read the restore fences", SQL_FENCES, 0, NULL, &res,
                                     err);
    for (int row = 0; st == BZ_OK && row < PQntuples(res); row++) {
        if (bz_pg_get_int64(res, row, COL_PARTITIONS_BEHIND) == 0) {
            st = lift(conn, who, PQgetvalue(res, row, COL_ID),
                      PQgetvalue(res, row, COL_RESTORED_TO), err);
            continue;
        }
        if (!out->held) {
            snprintf(out->fence_id, sizeof out->fence_id, "%s", PQgetvalue(res, row, COL_ID));
            snprintf(out->restored_to, sizeof out->restored_to, "%s",
                     PQgetvalue(res, row, COL_RESTORED_TO));
        }
        out->held = 1;
        out->records_to_go += bz_pg_get_int64(res, row, COL_RECORDS_BEHIND);
    }
    PQclear(res);
    return st;
}
