/*
 * audience.c - expand a campaign's contact group into campaign_logs, once.
 *
 * One INSERT ... SELECT does it inside the start transaction: PostgreSQL
 * streams the members straight into the table without a round trip per
 * contact. Eligible: active, not deleted, individual contacts whose phone is
 * E.164 (+ and 7 to 15 digits, first digit not 0).
 *
 * Idempotence: the start transaction has already updated the campaign row,
 * so no other transaction can expand the same campaign until it ends. When
 * the campaign has no log yet (every real start) a plain INSERT is enough;
 * it skips the speculative insertion ON CONFLICT pays per row (an arbiter
 * probe, a speculative lock and an extra WAL record). When logs exist, the
 * INSERT carries ON CONFLICT (campaign_id, contact_id) DO NOTHING and adds
 * only the missing ones. The UNIQUE constraint still guards both paths. The
 * audience size is the count taken before plus the rows inserted, which
 * spares recounting the rows just written.
 *
 * Planner settings for this one statement:
 *  - nested loops off: an audience is typically imported just before the
 *    campaign starts, when the statistics still say the group has one
 *    member, and a nested loop planned on that estimate rescans the
 *    workspace's contacts once per member (minutes for 10,000 contacts);
 *  - sequential scans off: the foreign key checks of every inserted row are
 *    planned in this statement too, and on a small workspaces table the
 *    planner picks a sequential scan, which then reads every workspace once
 *    per contact (about 6% of the statement's CPU at 100,000 contacts). The
 *    audience itself is read through indexes either way.
 * ORDER BY contact_id (free: the merge join yields that order) makes the
 * index entries of (campaign_id, contact_id) and (contact_id) arrive in key
 * order, appended instead of scattered.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "campaign_sender.h"

#define SQL_EXPAND_SELECT                                                                        \
    "INSERT INTO campaign_logs (workspace_id, campaign_id, contact_id) "                         \
    "SELECT $2, $1, m.contact_id FROM contact_group_members m "                                  \
    "JOIN contacts c ON c.id = m.contact_id AND c.workspace_id = m.workspace_id "                \
    "WHERE m.contact_group_id = $3 AND m.workspace_id = $2 AND c.is_active "                     \
    "AND c.deleted_at IS NULL AND c.type = 'individual' AND c.phone ~ '^\\+[1-9][0-9]{6,14}$' "  \
    "ORDER BY m.contact_id"
#define SQL_EXPAND_NEW SQL_EXPAND_SELECT
#define SQL_EXPAND_MISSING SQL_EXPAND_SELECT " ON CONFLICT (campaign_id, contact_id) DO NOTHING"
#define SQL_EXISTING "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1"
#define SQL_PLAN_HINTS                                                                           \
    "SELECT set_config('enable_nestloop', 'off', true), set_config('enable_seqscan', 'off', true)"
#define SQL_PLAN_RESET                                                                           \
    "SELECT set_config(name, reset_val, true) FROM pg_settings "                                 \
    "WHERE name IN ('enable_nestloop', 'enable_seqscan')"

static bz_status count_existing_logs(PGconn *conn, const char *const *params, int64_t *existing,
                                     bz_error *err)
{
    PGresult *res;
    bz_status st = cmp_exec(conn, "count existing logs", SQL_EXISTING, 1, params, &res, err);
    if (st != BZ_OK)
        return st;
    *existing = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return BZ_OK;
}

static bz_status insert_logs(PGconn *conn, const char *const *params, int64_t existing,
                             int64_t *inserted, bz_error *err)
{
    PGresult *res;
    const char *sql = existing == 0 ? SQL_EXPAND_NEW : SQL_EXPAND_MISSING;
    bz_status st = cmp_exec(conn, "plan audience expansion", SQL_PLAN_HINTS, 0, NULL, NULL, err);
    if (st == BZ_OK && (st = cmp_exec(conn, "expand audience", sql, 3, params, &res, err)) == BZ_OK) {
        *inserted = strtoll(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    if (st == BZ_OK)
        st = cmp_exec(conn, "plan audience expansion", SQL_PLAN_RESET, 0, NULL, NULL, err);
    return st;
}

bz_status cmp_audience_expand(PGconn *conn, int64_t campaign_id, int64_t workspace_id,
                              int64_t contact_group_id, int64_t *inserted, int64_t *total,
                              bz_error *err)
{
    char c[24], w[24], g[24];
    snprintf(c, sizeof c, "%" PRId64, campaign_id);
    snprintf(w, sizeof w, "%" PRId64, workspace_id);
    snprintf(g, sizeof g, "%" PRId64, contact_group_id);
    const char *params[] = {c, w, g};
    int64_t existing = 0;
    if (count_existing_logs(conn, params, &existing, err) != BZ_OK ||
        insert_logs(conn, params, existing, inserted, err) != BZ_OK)
        return bz_wrap(err, "campaign %" PRId64 " group %" PRId64, campaign_id, contact_group_id);
    *total = existing + *inserted;
    return BZ_OK;
}
