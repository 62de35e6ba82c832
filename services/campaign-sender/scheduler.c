/*
 * scheduler.c - start scheduled campaigns when scheduled_at is due, once.
 *
 * Every instance runs this scan; exactly-once comes from PostgreSQL, not
 * from the instances agreeing: the due rows are locked with FOR UPDATE SKIP
 * LOCKED (a concurrent scanner skips them instead of waiting), and the start
 * itself is the compare-and-set UPDATE ... WHERE status IN ('draft',
 * 'scheduled') of lifecycle.c, so a scanner that read a row just before the
 * other's commit finds it running and does nothing.
 */
#include <stdio.h>
#include <stdlib.h>

#include "campaign_sender.h"
#include "pg/pg.h"

#define SQL_DUE                                                                                  \
    "SELECT id FROM campaigns WHERE status = 'scheduled' AND scheduled_at <= now() "             \
    "AND deleted_at IS NULL ORDER BY scheduled_at, id LIMIT 20 FOR UPDATE SKIP LOCKED"

bz_status cmp_scheduler_run(PGconn *conn, int *started, bz_error *err)
{
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "find due scheduled campaigns", SQL_DUE, 0, NULL, &res,
                                     err);
    if (st != BZ_OK)
        return st;
    const cmp_actor who = {.actor = "scheduler", .reason = "scheduled_at reached"};
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++) {
        int moved;
        st = cmp_campaign_start(conn, strtoll(PQgetvalue(res, i, 0), NULL, 10), &who, &moved, err);
        *started += moved;
    }
    PQclear(res);
    return st;
}
