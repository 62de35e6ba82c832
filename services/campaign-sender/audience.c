/*
 * audience.c - expand a campaign's contact group into campaign_logs, once.
 *
 * One INSERT ... SELECT ... ON CONFLICT (campaign_id, contact_id) DO NOTHING
 * does it inside the start transaction: PostgreSQL streams the members
 * straight into the table without a round trip per contact, and a repeated
 * expansion (a replayed start, a crash between expansion and commit) adds
 * nothing. Eligible: active, not deleted, individual contacts whose phone
 * is E.164 (+ and 7 to 15 digits, first digit not 0).
 *
 * Nested loops are switched off for this one statement: an audience is
 * typically imported just before the campaign starts, when the statistics
 * still say the group has one member, and a nested loop planned on that
 * estimate rescans the workspace's contacts once per member (minutes for
 * 10,000 contacts). A hash join is right for every audience size.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "campaign_sender.h"

#define SQL_EXPAND                                                                               \
    "INSERT INTO campaign_logs (workspace_id, campaign_id, contact_id) "                         \
    "SELECT $2, $1, m.contact_id FROM contact_group_members m "                                  \
    "JOIN contacts c ON c.id = m.contact_id AND c.workspace_id = m.workspace_id "                \
    "WHERE m.contact_group_id = $3 AND m.workspace_id = $2 AND c.is_active "                     \
    "AND c.deleted_at IS NULL AND c.type = 'individual' AND c.phone ~ '^\\+[1-9][0-9]{6,14}$' "  \
    "ORDER BY m.contact_id "                                                                     \
    "ON CONFLICT (campaign_id, contact_id) DO NOTHING"
#define SQL_SIZE "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1"

bz_status cmp_audience_expand(PGconn *conn, int64_t campaign_id, int64_t workspace_id,
                              int64_t contact_group_id, int64_t *inserted, int64_t *total,
                              bz_error *err)
{
    char c[24], w[24], g[24];
    snprintf(c, sizeof c, "%" PRId64, campaign_id);
    snprintf(w, sizeof w, "%" PRId64, workspace_id);
    snprintf(g, sizeof g, "%" PRId64, contact_group_id);
    const char *params[] = {c, w, g};
    PGresult *res;
    bz_status st = cmp_exec(conn, "plan audience expansion", "SET LOCAL enable_nestloop = off", 0,
                            NULL, NULL, err);
    if (st == BZ_OK && (st = cmp_exec(conn, "expand audience", SQL_EXPAND, 3, params, &res,
                                      err)) == BZ_OK) {
        *inserted = strtoll(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    if (st == BZ_OK)
        st = cmp_exec(conn, "plan audience expansion", "SET LOCAL enable_nestloop TO DEFAULT", 0,
                      NULL, NULL, err);
    if (st != BZ_OK)
        return bz_wrap(err, "campaign %" PRId64 " group %" PRId64, campaign_id, contact_group_id);
    if (cmp_exec(conn, "count audience", SQL_SIZE, 1, params, &res, err) != BZ_OK)
        return bz_wrap(err, "campaign %" PRId64, campaign_id);
    *total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return BZ_OK;
}
