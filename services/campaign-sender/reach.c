/*
 * reach.c - Meta's messaging limit as a rule of the release (see
 * reach.h): the account's portfolio and tier, the users it reached within
 * the window, which picked contacts are in their service window, then the
 * plan, then what it reached recorded.
 */
#include "reach.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/columns.h"
#include "pg/pg.h"
#include "wa/service_window.h"

#define SQL_PORTFOLIO                                                                             \
    "SELECT coalesce(meta_business_id, meta_waba_id), coalesce(meta_business_limit, '') "         \
    "FROM whatsapp_accounts WHERE id = $1::bigint AND provider_type = 'meta'"

/* The users reached within the window, when the first of them ages out,
 * and which of the picked contacts are among them. */
#define SQL_REACHED                                                                               \
    "SELECT count(*), coalesce((extract(epoch FROM min(reached_at) + make_interval(secs => "      \
    "$2::bigint)) * 1000)::bigint, 0), coalesce(array_agg(contact_id) FILTER (WHERE contact_id "  \
    "= ANY($3::bigint[])), '{}')::text FROM meta_reach WHERE business_key = $1 AND "              \
    "reached_at > now() - make_interval(secs => $2::bigint)"

/* The portfolio of each (account, workspace) reached each contact now
 * (unnest of accounts, workspaces, contacts), for Meta accounts whose
 * portfolio has a limiting tier; one row per portfolio and contact, so the
 * upsert touches each once. Campaigns' and agents' releases alike. */
#define SQL_RECORD_REACH                                                                         \
    "INSERT INTO meta_reach (business_key, contact_id, workspace_id, reached_at) "                \
    "SELECT DISTINCT ON (coalesce(a.meta_business_id, a.meta_waba_id), t.c) "                     \
    "coalesce(a.meta_business_id, a.meta_waba_id), t.c, t.w, now() "                             \
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t(a, w, c) "                        \
    "JOIN whatsapp_accounts a ON a.id = t.a AND a.workspace_id = t.w "                            \
    "WHERE a.provider_type = 'meta' AND coalesce(a.meta_business_id, a.meta_waba_id) IS NOT NULL " \
    "AND a.meta_business_limit = ANY($4::text[]) "                                                \
    "ON CONFLICT (business_key, contact_id) DO UPDATE SET reached_at = excluded.reached_at"

static const struct {
    const char *tier;
    int64_t users;
} tiers[] = {{"TIER_50", 50},       {"TIER_250", 250},     {"TIER_1K", 1000},
             {"TIER_2K", 2000},     {"TIER_10K", 10000},   {"TIER_100K", 100000}};

/* The tier's limit of unique users: TIER_250 -> 250, ...; 0 for none
 * (unlimited, unknown, never reported). */
static int64_t limit_of(const char *tier)
{
    for (size_t i = 0; tier && i < sizeof tiers / sizeof tiers[0]; i++)
        if (strcmp(tier, tiers[i].tier) == 0)
            return tiers[i].users;
    return 0;
}

/* 1 when id is in the PostgreSQL array text list ("{1,2,3}"). */
static int listed(const char *list, int64_t id)
{
    for (const char *p = list; *p;) {
        char *end;
        long long v = strtoll(p + 1, &end, 10);
        if (end != p + 1 && v == id)
            return 1;
        p = end != p + 1 ? end : p + 1;
        if (*p != ',')
            break;
    }
    return 0;
}

/* The portfolio's key and tier; *limit 0 when no tier applies. */
static bz_status portfolio_of(PGconn *conn, int64_t account, char *key, size_t cap,
                              char *tier, size_t tier_cap, int64_t *limit, bz_error *err)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, account);
    const char *params[] = {id};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "read the account's business portfolio", SQL_PORTFOLIO,
                                     1, params, &res, err);
    *limit = 0;
    if (st == BZ_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        snprintf(key, cap, "%s", PQgetvalue(res, 0, 0));
        snprintf(tier, tier_cap, "%s", PQgetvalue(res, 0, 1));
        *limit = limit_of(tier);
    }
    PQclear(res);
    return st;
}

/* The tiers that limit, as a PostgreSQL array text (heap). */
static char *limiting_tiers(void)
{
    const char *names[sizeof tiers / sizeof tiers[0]];
    for (size_t i = 0; i < sizeof tiers / sizeof tiers[0]; i++)
        names[i] = tiers[i].tier;
    return bz_pg_text_array(names, sizeof tiers / sizeof tiers[0]);
}

/* Record that the portfolios of accounts[i] (of workspaces[i]) reached
 * contacts[i] now (SQL_RECORD_REACH). */
static bz_status record_reach(PGconn *conn, const int64_t *accounts, const int64_t *workspaces,
                              const int64_t *contacts, size_t n, bz_error *err)
{
    if (n == 0)
        return BZ_OK;
    char *la = bz_pg_int64_array(accounts, n), *lw = bz_pg_int64_array(workspaces, n);
    char *lc = bz_pg_int64_array(contacts, n), *lt = limiting_tiers();
    const char *params[] = {la, lw, lc, lt};
    bz_status st = la && lw && lc && lt
                       ? bz_pg_exec_params(conn, "record the users the portfolio reached",
                                           SQL_RECORD_REACH, 4, params, NULL, err)
                       : bz_fail(err, BZ_ERR_NOMEM, "record reached users: out of memory");
    free(la);
    free(lw);
    free(lc);
    free(lt);
    return st;
}

/* Decide, in order, which of the n asked logs (rows[k] of the plan,
 * contacts[k]) go (see reach.h). */
static bz_status plan_in_order(PGconn *conn, const char *key, const char *tier, int64_t limit,
                               int64_t account, int64_t workspace, const size_t *rows,
                               const int64_t *contacts, size_t n, int64_t window_s,
                               cmp_release_plan *plan, bz_error *err)
{
    int64_t *accounts = calloc(n, sizeof *accounts), *reached_now = calloc(n, sizeof *reached_now);
    int64_t *workspaces = calloc(n, sizeof *workspaces);
    int *open = calloc(n, sizeof *open);
    char *list = bz_pg_int64_array(contacts, n), window[24];
    bz_status st = accounts && reached_now && workspaces && open && list
                       ? BZ_OK
                       : bz_fail(err, BZ_ERR_NOMEM, "plan the portfolio's reach: out of memory");
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        accounts[i] = account;
        workspaces[i] = workspace;
    }
    if (st == BZ_OK)
        st = bz_wa_service_window_open(conn, accounts, contacts, n, open, err);
    snprintf(window, sizeof window, "%" PRId64, window_s);
    const char *params[] = {key, window, list};
    PGresult *res = NULL;
    if (st == BZ_OK)
        st = bz_pg_exec_params(conn, "count the users the portfolio reached", SQL_REACHED, 3,
                               params, &res, err);
    size_t nrecord = 0;
    if (st == BZ_OK) {
        int64_t room = limit - bz_pg_get_int64(res, 0, 0);
        int64_t next_room_ms = bz_pg_get_int64(res, 0, 1);
        const char *already = PQgetvalue(res, 0, 2);
        for (size_t i = 0; i < n; i++) {
            int counted = listed(already, contacts[i]);
            if (!open[i] && !counted && room <= 0) {
                cmp_plan_hold *h =
                    cmp_release_plan_hold(plan, rows[i], CMP_REACH_REASON, next_room_ms);
                h->detail_name = "tier";
                snprintf(h->detail, sizeof h->detail, "%s", tier);
                continue;
            }
            if (!cmp_release_plan_admit(plan, rows[i]))
                continue; /* past the round's room: not reached now */
            if (!open[i] && !counted)
                room--;
            if (!open[i])
                reached_now[nrecord++] = contacts[i];
        }
        st = record_reach(conn, accounts, workspaces, reached_now, nrecord, err);
    }
    PQclear(res);
    free(list);
    free(open);
    free(reached_now);
    free(workspaces);
    free(accounts);
    return st;
}

bz_status cmp_reach_apply(PGconn *conn, int64_t account, int64_t workspace,
                          const int64_t *contacts, int64_t window_s, cmp_release_plan *plan,
                          bz_error *err)
{
    char key[64] = "", tier[32] = "";
    int64_t limit;
    bz_status st = portfolio_of(conn, account, key, sizeof key, tier, sizeof tier, &limit, err);
    if (st != BZ_OK)
        return bz_wrap(err, "account %" PRId64, account);
    if (limit == 0)
        return BZ_OK;
    size_t *rows = calloc(plan->n ? plan->n : 1, sizeof *rows), n = 0;
    int64_t *asked = calloc(plan->n ? plan->n : 1, sizeof *asked);
    if (!rows || !asked)
        st = bz_fail(err, BZ_ERR_NOMEM, "plan the portfolio's reach: out of memory");
    if (st == BZ_OK)
        n = cmp_release_plan_going(plan, contacts, rows, asked);
    if (st == BZ_OK && n > 0)
        st = plan_in_order(conn, key, tier, limit, account, workspace, rows, asked, n, window_s,
                           plan, err);
    free(asked);
    free(rows);
    return st == BZ_OK ? BZ_OK : bz_wrap(err, "portfolio %s of account %" PRId64, key, account);
}

bz_status cmp_reach_record_agents(PGconn *conn, const int64_t *accounts,
                                  const int64_t *workspaces, const int64_t *contacts, size_t n,
                                  bz_error *err)
{
    if (n == 0)
        return BZ_OK;
    int *open = calloc(n, sizeof *open);
    int64_t *a = calloc(n, sizeof *a), *w = calloc(n, sizeof *w), *c = calloc(n, sizeof *c);
    size_t m = 0;
    bz_status st = open && a && w && c
                       ? bz_wa_service_window_open(conn, accounts, contacts, n, open, err)
                       : bz_fail(err, BZ_ERR_NOMEM, "count agents' reach: out of memory");
    for (size_t i = 0; st == BZ_OK && i < n; i++)
        if (!open[i] && contacts[i] > 0) {
            a[m] = accounts[i];
            w[m] = workspaces[i];
            c[m++] = contacts[i];
        }
    if (st == BZ_OK)
        st = record_reach(conn, a, w, c, m, err);
    free(c);
    free(w);
    free(a);
    free(open);
    return st;
}
