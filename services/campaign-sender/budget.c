/*
 * budget.c - release windows per account and workspace, loaded from and
 * written to send_ledger (see budget.h).
 *
 * Each key (account or workspace) has a sorted array of release times
 * covering the longest window (an hour plus the guard); older entries are
 * dropped as time passes. Counting the releases in a window is a binary
 * search; accounts with no hourly limit keep only what their shorter
 * windows need, but pruning is by the longest window, so a limit raised at
 * run time still sees the past hour. A campaign's releases are kept a
 * second time under the pace key of their account and workspace, where
 * the pace windows count them: campaigns are paced by what campaigns
 * released, while the limits count everything. The accounts Meta throttled lately
 * are a short list beside the windows, replaced at each load: an
 * account's limits are scaled by its factor before its window is counted,
 * so the throttle changes how much room there is and when more comes,
 * through the same arithmetic as every other limit. The pair rate's
 * buckets (pair.c) are loaded from the same rows, those of its shorter
 * span, each with the recipient send_ledger names.
 */
#include "budget.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "pg/columns.h"
#include "pg/pg.h"
#include "wa/meta_throttle.h"

#define NBUCKETS 1024
#define HOUR_MS ((int64_t)3600000)

#define SQL_LOAD                                                                                 \
    "SELECT whatsapp_account_id, workspace_id, "                                                 \
    "(extract(epoch FROM released_at) * 1000)::bigint, kind = 'campaign', "                      \
    "coalesce(recipient, '') FROM send_ledger "                                                  \
    "WHERE released_at > to_timestamp($1::bigint / 1000.0) ORDER BY released_at, id"

#define SQL_LEDGER_INSERT                                                                        \
    "INSERT INTO send_ledger (released_at, whatsapp_account_id, workspace_id, kind, reference, "  \
    "recipient) SELECT to_timestamp($1::bigint / 1000.0), a, w, $2, r, nullif(p, '') "            \
    "FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[]) AS t(a, w, r, p)"

#define SQL_NOW "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"

#define SQL_THROTTLES                                                                            \
    "SELECT whatsapp_account_id, factor, (extract(epoch FROM throttled_at) * 1000)::bigint "     \
    "FROM meta_throttle"

typedef struct account_throttle {
    int64_t account;
    bz_meta_throttle state; /* since_ms on the budget's clock */
} account_throttle;

typedef struct window {
    struct window *next;
    int64_t key; /* account id, or -workspace id */
    int64_t *at;
    size_t n, cap;
} window;

/* Marks the pace key of an account or workspace key (ids stay below it). */
#define PACE_BIT ((int64_t)1 << 61)

/* At most cap releases in any span_ms: what each window admits. */
typedef struct window_limit {
    int64_t cap, span_ms;
} window_limit;

struct cmp_budget {
    int64_t guard_ms, smoothing_ms;
    window *buckets[NBUCKETS];
    cmp_pairs *pairs; /* Meta's pair rate per account and recipient (pair.h) */
    account_throttle *throttles; /* accounts Meta throttled lately */
    size_t nthrottles, capthrottles;
};

cmp_budget *cmp_budget_new(int64_t guard_ms, int64_t smoothing_ms, cmp_pair_rate pair_rate)
{
    cmp_budget *b = calloc(1, sizeof *b);
    if (b && !(b->pairs = cmp_pairs_new(pair_rate))) {
        free(b);
        return NULL;
    }
    if (b) {
        b->guard_ms = guard_ms;
        b->smoothing_ms = smoothing_ms > 0 ? smoothing_ms : 1;
    }
    return b;
}

cmp_pairs *cmp_budget_pairs(cmp_budget *b)
{
    return b->pairs;
}

static void clear(cmp_budget *b)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        while (b->buckets[i]) {
            window *w = b->buckets[i];
            b->buckets[i] = w->next;
            free(w->at);
            free(w);
        }
}

void cmp_budget_free(cmp_budget *b)
{
    if (!b)
        return;
    clear(b);
    cmp_pairs_free(b->pairs);
    free(b->throttles);
    free(b);
}

static window *window_of(cmp_budget *b, int64_t key, int create)
{
    size_t h = (size_t)((uint64_t)key * 0x9E3779B97F4A7C15ull >> 54) % NBUCKETS;
    for (window *w = b->buckets[h]; w; w = w->next)
        if (w->key == key)
            return w;
    if (!create)
        return NULL;
    window *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->key = key;
    w->next = b->buckets[h];
    b->buckets[h] = w;
    return w;
}

/* Drop what no window can see any more. */
static void prune(cmp_budget *b, window *w, int64_t now_ms)
{
    int64_t horizon = now_ms - HOUR_MS - b->guard_ms;
    size_t drop = 0;
    while (drop < w->n && w->at[drop] <= horizon)
        drop++;
    if (drop) {
        memmove(w->at, w->at + drop, (w->n - drop) * sizeof *w->at);
        w->n -= drop;
    }
}

static int append(window *w, int64_t at_ms)
{
    if (!bz_grow((void **)&w->at, &w->cap, w->n + 1, sizeof *w->at, 16))
        return -1;
    /* the clock is PostgreSQL's and moves forward; keep the order anyway */
    if (w->n && at_ms < w->at[w->n - 1])
        at_ms = w->at[w->n - 1];
    w->at[w->n++] = at_ms;
    return 0;
}

/* Index of the first release after since (binary search). */
static size_t first_after(const window *w, int64_t since)
{
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->at[mid] > since)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static const double period_ms[3] = {1000.0, 60000.0, 3600000.0};

static double limit_at(const cmp_limits *l, int i)
{
    return i == 0 ? l->per_second : i == 1 ? l->per_minute : l->per_hour;
}

/* The windows the limits of l set: L per period P admits ceil(L) in P (a
 * limit that is not a whole number, 0.5/s or 2.5/min, admits up to its
 * ceiling), with the guard on the minute and hour windows. Returns how
 * many (no window for a limit of 0). */
static size_t limit_windows(const cmp_budget *b, const cmp_limits *l, window_limit out[3])
{
    size_t n = 0;
    for (int i = 0; i < 3; i++)
        if (limit_at(l, i) > 0)
            out[n++] = (window_limit){(int64_t)ceil(limit_at(l, i)),
                                      (int64_t)period_ms[i] + (i > 0 ? b->guard_ms : 0)};
    return n;
}

/* The pace windows of l: L per period P spreads releases evenly, B of
 * them in any B*P/L, B being what the rate earns in the smoothing
 * interval (at least one). Without them a campaign would release its
 * whole minute at once and then wait. */
static size_t pace_windows(const cmp_budget *b, const cmp_limits *l, window_limit out[3])
{
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        double limit = limit_at(l, i);
        if (limit <= 0)
            continue;
        double burst = floor((double)b->smoothing_ms * limit / period_ms[i]);
        if (burst < 1)
            burst = 1;
        double span = ceil(burst * period_ms[i] / limit);
        out[n++] = (window_limit){(int64_t)burst, span < HOUR_MS ? (int64_t)span : HOUR_MS};
    }
    return n;
}

/* Room in w under its n windows at now_ms; *next receives when room for
 * one appears. */
static int64_t room_in(cmp_budget *b, window *w, const window_limit *lim, size_t n,
                       int64_t now_ms, int64_t *next)
{
    int64_t room = INT64_MAX / 2;
    *next = now_ms;
    if (w)
        prune(b, w, now_ms);
    for (size_t i = 0; i < n; i++) {
        int64_t cap = lim[i].cap;
        size_t from = w ? first_after(w, now_ms - lim[i].span_ms) : 0;
        int64_t used = w ? (int64_t)(w->n - from) : 0;
        int64_t left = cap - used;
        if (left < room)
            room = left;
        if (left <= 0 && w) {
            /* the (used - cap + 1)th oldest release in the window must leave
             * it: the window is (now - span, now], so at its time + span */
            int64_t frees = w->at[from + (size_t)(used - cap)] + lim[i].span_ms;
            if (frees > *next)
                *next = frees;
        }
    }
    return room < 0 ? 0 : room;
}

size_t cmp_budget_throttled_accounts(const cmp_budget *b)
{
    return b->nthrottles;
}

/* The factor of account's per-second and per-minute limits at now_ms: 1
 * unless Meta throttled it lately. */
static double throttle_factor(const cmp_budget *b, int64_t account, int64_t now_ms)
{
    for (size_t i = 0; i < b->nthrottles; i++)
        if (b->throttles[i].account == account)
            return bz_meta_throttle_factor(&b->throttles[i].state, now_ms);
    return 1.0;
}

/* The account's limits as Meta lets it send now. */
static cmp_limits account_limits(const cmp_budget *b, int64_t account, const cmp_limits *al,
                                 int64_t now_ms)
{
    cmp_limits l = *al;
    double factor = throttle_factor(b, account, now_ms);
    l.per_second *= factor;
    l.per_minute *= factor;
    return l;
}

/* The room of one release kind at now_ms (see budget.h): the limits of
 * the account (scaled by Meta's throttle) and of the workspace, and for
 * campaigns their pace; *next when room for one appears, *why which of
 * them leaves none. */
static int64_t room_of(cmp_budget *b, cmp_release_kind kind, int64_t account,
                       const cmp_limits *al, int64_t workspace, const cmp_limits *wl,
                       int64_t now_ms, int64_t *next, const char **why)
{
    cmp_limits l = account_limits(b, account, al, now_ms);
    int throttled = throttle_factor(b, account, now_ms) < 1.0;
    window_limit lim[3];
    struct {
        int64_t key;
        const cmp_limits *limits;
        int paced;
        const char *why;
    } checks[] = {
        {account, &l, 0, throttled ? "meta_throttled" : "account_rate"},
        {-workspace, wl, 0, "workspace_rate"},
        {account ^ PACE_BIT, &l, 1, throttled ? "meta_throttled" : "account_pace"},
        {-workspace ^ PACE_BIT, wl, 1, "workspace_pace"},
    };
    size_t nchecks = kind == CMP_RELEASE_CAMPAIGN ? 4 : 2;
    int64_t room = INT64_MAX / 2;
    *next = now_ms;
    *why = NULL;
    for (size_t i = 0; i < nchecks; i++) {
        size_t n = checks[i].paced ? pace_windows(b, checks[i].limits, lim)
                                   : limit_windows(b, checks[i].limits, lim);
        int64_t at;
        int64_t r = room_in(b, window_of(b, checks[i].key, 0), lim, n, now_ms, &at);
        if (r <= 0 && !*why)
            *why = checks[i].why;
        if (r < room)
            room = r;
        if (at > *next)
            *next = at;
    }
    return room;
}

int64_t cmp_budget_room(cmp_budget *b, cmp_release_kind kind, int64_t account,
                        const cmp_limits *al, int64_t workspace, const cmp_limits *wl,
                        int64_t now_ms)
{
    int64_t next;
    const char *why;
    return room_of(b, kind, account, al, workspace, wl, now_ms, &next, &why);
}

int64_t cmp_budget_next_room(cmp_budget *b, cmp_release_kind kind, int64_t account,
                             const cmp_limits *al, int64_t workspace, const cmp_limits *wl,
                             int64_t now_ms, const char **why)
{
    int64_t next;
    const char *reason;
    room_of(b, kind, account, al, workspace, wl, now_ms, &next, &reason);
    if (why)
        *why = reason;
    return next;
}

int cmp_budget_record(cmp_budget *b, cmp_release_kind kind, int64_t account, int64_t workspace,
                      int64_t at_ms, int64_t n)
{
    window *w[4] = {window_of(b, account, 1), window_of(b, -workspace, 1), NULL, NULL};
    size_t nw = 2;
    if (kind == CMP_RELEASE_CAMPAIGN) {
        w[nw++] = window_of(b, account ^ PACE_BIT, 1);
        w[nw++] = window_of(b, -workspace ^ PACE_BIT, 1);
    }
    for (size_t k = 0; k < nw; k++)
        if (!w[k])
            return -1;
    for (int64_t i = 0; i < n; i++)
        for (size_t k = 0; k < nw; k++)
            if (append(w[k], at_ms) != 0)
                return -1;
    return 0;
}

int cmp_budget_record_release(cmp_budget *b, cmp_release_kind kind, int64_t account,
                              int64_t workspace, const char *recipient, int64_t at_ms)
{
    return cmp_budget_record(b, kind, account, workspace, at_ms, 1) != 0 ||
                   cmp_pairs_record(b->pairs, account, recipient, at_ms) != 0
               ? -1
               : 0;
}

int cmp_budget_record_ledger(cmp_budget *b, cmp_release_kind kind, const cmp_ledger *l,
                             int64_t at_ms)
{
    for (size_t i = 0; i < l->n; i++)
        if (cmp_budget_record_release(b, kind, l->accounts[i], l->workspaces[i], l->recipients[i],
                                      at_ms) != 0)
            return -1;
    return 0;
}

bz_status cmp_budget_load(cmp_budget *b, PGconn *conn, int64_t now_ms, bz_error *err)
{
    clear(b);
    cmp_pairs_reset(b->pairs, now_ms);
    int64_t pair_since = now_ms - cmp_pairs_span_ms(b->pairs);
    int64_t since_ms = now_ms - HOUR_MS - b->guard_ms;
    char since[24];
    snprintf(since, sizeof since, "%" PRId64, pair_since < since_ms ? pair_since : since_ms);
    const char *params[] = {since};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "load the send budget from send_ledger", SQL_LOAD, 1,
                                     params, &res, err);
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++) {
        int64_t account = bz_pg_get_int64(res, i, 0), at = bz_pg_get_int64(res, i, 2);
        cmp_release_kind kind =
            strcmp(PQgetvalue(res, i, 3), "t") == 0 ? CMP_RELEASE_CAMPAIGN : CMP_RELEASE_AGENT;
        if (cmp_budget_record(b, kind, account, bz_pg_get_int64(res, i, 1), at, 1) != 0 ||
            (at > pair_since &&
             cmp_pairs_record(b->pairs, account, PQgetvalue(res, i, 4), at) != 0))
            st = bz_fail(err, BZ_ERR_NOMEM, "load the send budget: out of memory");
    }
    cmp_pairs_loaded(b->pairs);
    PQclear(res);
    return st;
}

bz_status cmp_budget_load_throttles(cmp_budget *b, PGconn *conn, int64_t now_ms, bz_error *err)
{
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "read Meta's throttling of accounts", SQL_THROTTLES, 0,
                                     NULL, &res, err);
    if (st != BZ_OK)
        return st;
    b->nthrottles = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        account_throttle t = {.account = bz_pg_get_int64(res, i, 0),
                              .state = {strtod(PQgetvalue(res, i, 1), NULL),
                                        bz_pg_get_int64(res, i, 2)}};
        if (bz_meta_throttle_factor(&t.state, now_ms) >= 1.0)
            continue; /* recovered: no longer a limit */
        if (!bz_grow((void **)&b->throttles, &b->capthrottles, b->nthrottles + 1,
                     sizeof *b->throttles, 8)) {
            st = bz_fail(err, BZ_ERR_NOMEM, "read Meta's throttling: out of memory");
            break;
        }
        b->throttles[b->nthrottles++] = t;
    }
    PQclear(res);
    return st;
}

/* ---- send_ledger rows ----------------------------------------------------------------- */

void cmp_ledger_init(cmp_ledger *l)
{
    memset(l, 0, sizeof *l);
}

/* Grow the ledger's arrays to cap entries; 0, or -1 when out of memory
 * (what grew stays owned by l). */
static int ledger_grow(cmp_ledger *l, size_t cap)
{
    int64_t *a = realloc(l->accounts, cap * sizeof *a);
    if (a)
        l->accounts = a;
    int64_t *w = realloc(l->workspaces, cap * sizeof *w);
    if (w)
        l->workspaces = w;
    char **r = realloc(l->refs, cap * sizeof *r);
    if (r)
        l->refs = r;
    char **p = realloc(l->recipients, cap * sizeof *p);
    if (p)
        l->recipients = p;
    if (!a || !w || !r || !p)
        return -1;
    l->cap = cap;
    return 0;
}

void cmp_ledger_add(cmp_ledger *l, int64_t account, int64_t workspace, const char *ref,
                    const char *recipient)
{
    if (l->oom)
        return;
    if (l->n == l->cap && ledger_grow(l, l->cap ? l->cap * 2 : 64) != 0) {
        l->oom = 1;
        return;
    }
    l->refs[l->n] = strdup(ref);
    l->recipients[l->n] = strdup(recipient ? recipient : "");
    if (!l->refs[l->n] || !l->recipients[l->n]) {
        free(l->refs[l->n]);
        free(l->recipients[l->n]);
        l->oom = 1;
        return;
    }
    l->accounts[l->n] = account;
    l->workspaces[l->n++] = workspace;
}

bz_status cmp_ledger_write(cmp_ledger *l, PGconn *conn, const char *kind, int64_t at_ms,
                           bz_error *err)
{
    if (l->oom)
        return bz_fail(err, BZ_ERR_NOMEM, "record releases in send_ledger: out of memory");
    if (l->n == 0)
        return BZ_OK;
    char at[24];
    snprintf(at, sizeof at, "%" PRId64, at_ms);
    char *accounts = bz_pg_int64_array(l->accounts, l->n);
    char *workspaces = bz_pg_int64_array(l->workspaces, l->n);
    char *refs = bz_pg_text_array((const char *const *)l->refs, l->n);
    char *recipients = bz_pg_text_array((const char *const *)l->recipients, l->n);
    bz_status st = accounts && workspaces && refs && recipients
                       ? BZ_OK
                       : bz_fail(err, BZ_ERR_NOMEM, "record releases in send_ledger: out of memory");
    if (st == BZ_OK) {
        const char *params[] = {at, kind, accounts, workspaces, refs, recipients};
        st = bz_pg_exec_params(conn, "record releases in send_ledger", SQL_LEDGER_INSERT, 6,
                               params, NULL, err);
    }
    free(accounts);
    free(workspaces);
    free(refs);
    free(recipients);
    return st;
}

void cmp_ledger_free(cmp_ledger *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->refs[i]);
        free(l->recipients[i]);
    }
    free(l->accounts);
    free(l->workspaces);
    free(l->refs);
    free(l->recipients);
    memset(l, 0, sizeof *l);
}

bz_status cmp_pg_now_ms(PGconn *conn, int64_t *out, bz_error *err)
{
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "read PostgreSQL's clock", SQL_NOW, 0, NULL, &res, err);
    if (st == BZ_OK)
        *out = bz_pg_get_int64(res, 0, 0);
    PQclear(res);
    return st;
}
