/*
 * audience.c - expand a campaign's contact group into campaign_logs, once.
 *
 * INSERT ... SELECT does it inside the start transaction: PostgreSQL
 * streams the members straight into the table without a round trip per
 * contact. Eligible: active, not deleted, individual contacts whose phone is
 * E.164 (+ and 7 to 15 digits, first digit not 0), and, for a campaign sent
 * from a Meta account, those known only by their BSUID.
 *
 * Two backends for large audiences. Nearly all the cost is per row inside
 * PostgreSQL (the foreign key checks on campaigns and contacts, then the
 * index inserts), one backend on one core. A group of at least
 * PARALLEL_MIN_MEMBERS members is split at its median contact id: a second
 * connection inserts the upper half in its own transaction while the start
 * transaction inserts the lower half, and the start waits for both. The
 * second transaction's foreign key check on the campaign row takes FOR KEY
 * SHARE, which does not conflict with the start's status update, and the
 * halves touch disjoint contacts and keys. If no second connection can be
 * opened, one backend does it all.
 *
 * Idempotence: the start transaction has already updated the campaign row,
 * so no other start of the same campaign can expand it until it ends. When
 * the campaign has no log yet (every real start) plain INSERTs are enough;
 * they skip the speculative insertion ON CONFLICT pays per row (an arbiter
 * probe, a speculative lock and an extra WAL record). The upper half
 * commits on its own, so a start that then fails or crashes leaves logs
 * behind; the start is retried (the command's offset was not committed) and
 * finds logs: it then reconciles in one backend, adding the missing ones
 * with ON CONFLICT (campaign_id, contact_id) DO NOTHING and deleting pending
 * logs of contacts that left the audience meanwhile. Either way the started
 * campaign's logs are its audience at the start that succeeded. The
 * campaign is not running until that start commits, so the sender sends
 * nothing from such leftovers. The UNIQUE constraint guards every path.
 *
 * Planner settings for these statements:
 *  - nested loops off: an audience is typically imported just before the
 *    campaign starts, when the statistics still say the group has one
 *    member, and a nested loop planned on that estimate rescans the
 *    workspace's contacts once per member (minutes for 10,000 contacts);
 *  - sequential scans off: the foreign key checks of every inserted row are
 *    planned in this statement too, and on a small workspaces table the
 *    planner picks a sequential scan, which then reads every workspace once
 *    per contact (about 6% of the statement's CPU at 100,000 contacts). The
 *    audience itself is read through indexes either way.
 * ORDER BY contact_id (a sort of the audience, milliseconds) makes the
 * entries of the (contact_id, campaign_id) key arrive in key order: each
 * leaf page of the index is visited once, not once per scattered contact.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "campaign_sender.h"
#include "core/log.h"
#include "pg/pg.h"

/* Below this, opening a second connection costs more than it saves (a few
 * milliseconds against about 10 us of PostgreSQL time per row halved). */
#define PARALLEL_MIN_MEMBERS 5000

/* $1 campaign, $2 workspace, $3 group, $4 split contact id. A contact known
 * only by its BSUID (phone = bsuid, decision 0010) is addressable through a
 * Meta account alone, so it belongs to the audience of a campaign sent from
 * one (Meta takes templates and messages to BSUIDs). */
#define SQL_AUDIENCE                                                                             \
    "SELECT m.contact_id FROM contact_group_members m "                                          \
    "JOIN contacts c ON c.id = m.contact_id AND c.workspace_id = m.workspace_id "                \
    "WHERE m.contact_group_id = $3 AND m.workspace_id = $2 AND c.is_active "                     \
    "AND c.deleted_at IS NULL AND c.type = 'individual' AND (c.phone ~ '^\\+[1-9][0-9]{6,14}$' " \
    "OR (c.phone = c.bsuid AND EXISTS (SELECT 1 FROM campaigns k JOIN whatsapp_accounts a "      \
    "ON a.id = k.whatsapp_account_id WHERE k.id = $1 AND a.provider_type = 'meta')))"
/* A log's uuid follows from (campaign, contact) (0045): a start replayed
 * after a restore makes the same logs, under the same idempotency keys. */
#define SQL_INSERT                                                                               \
    "INSERT INTO campaign_logs (uuid, workspace_id, campaign_id, contact_id) "                   \
    "SELECT blazz_campaign_log_uuid($1::bigint, a.contact_id), $2, $1, a.contact_id FROM ("
#define SQL_EXPAND_ALL SQL_INSERT SQL_AUDIENCE ") a ORDER BY a.contact_id"
#define SQL_EXPAND_LOWER SQL_INSERT SQL_AUDIENCE " AND m.contact_id <= $4) a ORDER BY a.contact_id"
#define SQL_EXPAND_UPPER SQL_INSERT SQL_AUDIENCE " AND m.contact_id > $4) a ORDER BY a.contact_id"
#define SQL_EXPAND_MISSING SQL_EXPAND_ALL " ON CONFLICT (campaign_id, contact_id) DO NOTHING"
#define SQL_DROP_DEPARTED                                                                        \
    "DELETE FROM campaign_logs l WHERE l.campaign_id = $1 AND l.status = 'pending' "             \
    "AND l.contact_id NOT IN (" SQL_AUDIENCE ")"
#define SQL_EXISTING "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1"
#define SQL_SPLIT                                                                                \
    "SELECT count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY contact_id) "                  \
    "FROM contact_group_members WHERE workspace_id = $1 AND contact_group_id = $2"
/* $1: true for this transaction only, false for the whole session. */
#define SQL_PLAN_HINTS                                                                           \
    "SELECT set_config('enable_nestloop', 'off', $1::bool), "                                    \
    "set_config('enable_seqscan', 'off', $1::bool)"
#define SQL_PLAN_RESET                                                                           \
    "SELECT set_config(name, reset_val, true) FROM pg_settings "                                 \
    "WHERE name IN ('enable_nestloop', 'enable_seqscan')"

/* The campaign, its workspace, its group and the split point, as text:
 * $1 to $4 of the statements above (SQL_SPLIT takes $2 and $3 as $1, $2). */
typedef struct audience_params {
    char campaign[24], workspace[24], group[24], split[24];
    const char *values[4];
} audience_params;

static bz_status count_existing_logs(PGconn *conn, const audience_params *p, int64_t *existing,
                                     bz_error *err)
{
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "count existing logs", SQL_EXISTING, 1, p->values, &res,
                                     err);
    if (st == BZ_OK) {
        *existing = bz_pg_get_int64(res, 0, 0);
        PQclear(res);
    }
    return st;
}

/* Run sql (3 or 4 parameters) with the planner hints set around it; *rows
 * receives the rows it inserted or deleted. */
static bz_status run_hinted(PGconn *conn, const char *what, const char *sql, int nparams,
                            const audience_params *p, int64_t *rows, bz_error *err)
{
    PGresult *res = NULL;
    const char *local[] = {"true"};
    bz_status st = bz_pg_exec_params(conn, "plan audience expansion", SQL_PLAN_HINTS, 1, local,
                                     NULL, err);
    if (st == BZ_OK)
        st = bz_pg_exec_params(conn, what, sql, nparams, p->values, &res, err);
    if (st == BZ_OK) {
        *rows = bz_pg_affected_rows(res);
        PQclear(res);
    }
    if (st == BZ_OK)
        st = bz_pg_exec_params(conn, "plan audience expansion", SQL_PLAN_RESET, 0, NULL, NULL, err);
    return st;
}

/* Start the upper half on second, without waiting for it. second runs it
 * as its own transaction, so the hints are set for the session. */
static bz_status send_upper_half(PGconn *second, const audience_params *p, bz_error *err)
{
    const char *session[] = {"false"};
    bz_status st = bz_pg_exec_params(second, "plan upper half", SQL_PLAN_HINTS, 1, session, NULL,
                                     err);
    if (st != BZ_OK)
        return st;
    if (!PQsendQueryParams(second, SQL_EXPAND_UPPER, 4, NULL, p->values, NULL, NULL, 0))
        return bz_fail(err, BZ_ERR_TRANSIENT, "expand upper half: %s", PQerrorMessage(second));
    return BZ_OK;
}

/* Wait for the upper half; *rows receives its inserted rows. */
static bz_status await_upper_half(PGconn *second, int64_t *rows, bz_error *err)
{
    bz_status st = BZ_OK;
    PGresult *res;
    int seen = 0;
    while ((res = PQgetResult(second)) != NULL) {
        if (!seen++ && (st = bz_pg_check(second, res, "expand upper half", err)) == BZ_OK)
            *rows = bz_pg_affected_rows(res);
        PQclear(res);
    }
    if (!seen)
        st = bz_fail(err, BZ_ERR_TRANSIENT, "expand upper half: no result");
    return st;
}

/* Stop a running upper half after the lower one failed, and drain it. */
static void abandon_upper_half(PGconn *second)
{
    PGcancel *cancel = PQgetCancel(second);
    char why[256];
    if (cancel) {
        PQcancel(cancel, why, sizeof why);
        PQfreeCancel(cancel);
    }
    PGresult *res;
    while ((res = PQgetResult(second)) != NULL)
        PQclear(res);
}

static bz_status expand_in_two_halves(PGconn *conn, PGconn *second, const audience_params *p,
                                      int64_t *inserted, bz_error *err)
{
    int64_t lower = 0, upper = 0;
    bz_status st = send_upper_half(second, p, err);
    if (st != BZ_OK)
        return st;
    st = run_hinted(conn, "expand lower half", SQL_EXPAND_LOWER, 4, p, &lower, err);
    if (st != BZ_OK) {
        abandon_upper_half(second);
        return st;
    }
    st = await_upper_half(second, &upper, err);
    *inserted = lower + upper;
    return st;
}

/* The first expansion of the campaign: two backends when the group is
 * large and a second connection opens, else one. */
static bz_status expand_new(PGconn *conn, audience_params *p, int64_t *inserted, bz_error *err)
{
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "split audience", SQL_SPLIT, 2, p->values + 1, &res,
                                     err);
    if (st != BZ_OK)
        return st;
    int64_t members = bz_pg_get_int64(res, 0, 0), split = bz_pg_get_int64(res, 0, 1);
    PQclear(res);
    PGconn *second = NULL;
    if (members >= PARALLEL_MIN_MEMBERS) {
        bz_error why;
        if (bz_pg_connect_like(conn, &second, &why) != BZ_OK)
            bz_warn("campaign %s: expanding %" PRId64 " members in one backend: %s", p->campaign,
                    members, why.msg);
    }
    if (!second)
        return run_hinted(conn, "expand audience", SQL_EXPAND_ALL, 3, p, inserted, err);
    snprintf(p->split, sizeof p->split, "%" PRId64, split);
    st = expand_in_two_halves(conn, second, p, inserted, err);
    PQfinish(second);
    return st;
}

/* A later start after a failed one: make the logs equal the audience. */
static bz_status reconcile(PGconn *conn, const audience_params *p, int64_t existing,
                           int64_t *inserted, int64_t *total, bz_error *err)
{
    int64_t departed = 0;
    bz_status st = run_hinted(conn, "add missing logs", SQL_EXPAND_MISSING, 3, p, inserted, err);
    if (st == BZ_OK)
        st = run_hinted(conn, "drop departed contacts", SQL_DROP_DEPARTED, 3, p, &departed, err);
    *total = existing + *inserted - departed;
    return st;
}

bz_status cmp_audience_expand(PGconn *conn, int64_t campaign_id, int64_t workspace_id,
                              int64_t contact_group_id, int64_t *inserted, int64_t *total,
                              bz_error *err)
{
    audience_params p = {.values = {p.campaign, p.workspace, p.group, p.split}};
    snprintf(p.campaign, sizeof p.campaign, "%" PRId64, campaign_id);
    snprintf(p.workspace, sizeof p.workspace, "%" PRId64, workspace_id);
    snprintf(p.group, sizeof p.group, "%" PRId64, contact_group_id);
    int64_t existing = 0;
    *inserted = 0;
    bz_status st = count_existing_logs(conn, &p, &existing, err);
    if (st == BZ_OK && existing > 0)
        st = reconcile(conn, &p, existing, inserted, total, err);
    else if (st == BZ_OK && (st = expand_new(conn, &p, inserted, err)) == BZ_OK)
        *total = *inserted;
    if (st != BZ_OK)
        return bz_wrap(err, "campaign %" PRId64 " group %" PRId64, campaign_id, contact_group_id);
    return BZ_OK;
}
