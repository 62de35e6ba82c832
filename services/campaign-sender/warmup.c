/*
 * warmup.c - the warm-up of a whatsapp-web.js number (see warmup.h): the
 * schedule and the age arithmetic (pure), the account's age read from
 * whatsapp_accounts, then per release one statement telling which picked
 * contacts are known and how many new ones the window holds, the plan,
 * and the new recipients recorded.
 */
#include "warmup.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/timespec.h"
#include "pg/columns.h"
#include "pg/pg.h"

#define DAY_MS (86400 * 1000LL)

/* The account's clock, creation and the operator's warmup_since. */
#define SQL_AGE                                                                                   \
    "SELECT (extract(epoch FROM now()) * 1000)::bigint, (extract(epoch FROM created_at) * "       \
    "1000)::bigint, coalesce(metadata->>'warmup_since', '') FROM whatsapp_accounts WHERE id = "   \
    "$1::bigint"

/* Per picked contact, in order: known to the account (a conversation with
 * it, or reached by an earlier release); with each row the new recipients
 * first reached within the window and when the first of them ages out. */
#define SQL_KNOWN                                                                                 \
    "WITH w AS (SELECT count(*) AS n, min(first_sent_at) AS first FROM warmup_recipients WHERE "  \
    "whatsapp_account_id = $1::bigint AND first_sent_at > now() - make_interval(secs => "         \
    "$2::bigint)) SELECT EXISTS (SELECT 1 FROM warmup_recipients r WHERE r.whatsapp_account_id "  \
    "= $1::bigint AND r.contact_id = u.c) OR EXISTS (SELECT 1 FROM chats m WHERE m.contact_id = " \
    "u.c AND m.whatsapp_account_id = $1::bigint), w.n, coalesce((extract(epoch FROM w.first + "   \
    "make_interval(secs => $2::bigint)) * 1000)::bigint, 0) FROM unnest($3::bigint[]) WITH "      \
    "ORDINALITY AS u(c, ord), w ORDER BY u.ord"

#define SQL_RECORD                                                                                \
    "INSERT INTO warmup_recipients (whatsapp_account_id, contact_id, workspace_id, "              \
    "first_sent_at) SELECT $1::bigint, c, $3::bigint, now() FROM unnest($2::bigint[]) AS c "      \
    "ON CONFLICT (whatsapp_account_id, contact_id) DO NOTHING"

static const char *skip_spaces(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

bz_status cmp_warmup_schedule_parse(const char *text, cmp_warmup_schedule *out, bz_error *err)
{
    out->n = 0;
    const char *p = skip_spaces(text);
    while (*p) {
        char *end;
        long long day = strtoll(p, &end, 10), cap;
        if (end == p || *(p = skip_spaces(end)) != ':')
            return bz_fail(err, BZ_ERR_CONFIG, "warmup.schedule '%s': expected from_day:cap at '%s'",
                           text, p);
        p = skip_spaces(p + 1);
        cap = strtoll(p, &end, 10);
        if (end == p || cap < 0)
            return bz_fail(err, BZ_ERR_CONFIG, "warmup.schedule '%s': a cap >= 0 at '%s'", text, p);
        if (out->n == CMP_WARMUP_STEPS)
            return bz_fail(err, BZ_ERR_CONFIG, "warmup.schedule '%s': more than %d steps", text,
                           CMP_WARMUP_STEPS);
        if (out->n == 0 ? day != 0 : day <= out->steps[out->n - 1].from_day)
            return bz_fail(err, BZ_ERR_CONFIG,
                           "warmup.schedule '%s': days start at 0 and ascend (day %lld)", text,
                           day);
        out->steps[out->n++] = (cmp_warmup_step){day, cap};
        p = skip_spaces(end);
        if (*p && *p != ',')
            return bz_fail(err, BZ_ERR_CONFIG, "warmup.schedule '%s': expected ',' at '%s'", text,
                           p);
        if (*p && !*(p = skip_spaces(p + 1)))
            return bz_fail(err, BZ_ERR_CONFIG, "warmup.schedule '%s': a step after the last ','",
                           text);
    }
    return BZ_OK;
}

int64_t cmp_warmup_cap_at(const cmp_warmup_schedule *s, int64_t age_days)
{
    int64_t cap = 0;
    for (size_t i = 0; i < s->n && s->steps[i].from_day <= age_days; i++)
        cap = s->steps[i].cap;
    return cap;
}

/* 2000-01-01: an earlier date is no number's age. */
#define WARMUP_SINCE_MIN_MS 946684800000LL

int64_t cmp_warmup_since_ms(const char *text)
{
    /* exactly "DDDD-DD-DD", digits where D is; bz_time_parse checks the date */
    static const char shape[] = "DDDD-DD-DD";
    for (size_t i = 0; i < sizeof shape; i++)
        if (shape[i] == 'D' ? !isdigit((unsigned char)text[i]) : text[i] != shape[i])
            return 0;
    int64_t ms;
    bz_error err;
    if (bz_time_parse(text, 0, &ms, &err) != BZ_OK || ms < WARMUP_SINCE_MIN_MS)
        return 0;
    return ms;
}

int64_t cmp_warmup_gap_ms(int64_t min_ms, int64_t max_ms, uint64_t *seed)
{
    /* xorshift64: the gaps only need to look irregular, not be secret */
    uint64_t x = *seed ? *seed : 0x9E3779B97F4A7C15ULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *seed = x;
    return max_ms > min_ms ? min_ms + (int64_t)(x % (uint64_t)(max_ms - min_ms + 1)) : min_ms;
}

bz_status cmp_warmup_of(PGconn *conn, int64_t account, const cmp_warmup_schedule *s,
                        cmp_warmup *out, bz_error *err)
{
    out->cap = out->age_days = 0;
    if (s->n == 0)
        return BZ_OK;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, account);
    const char *params[] = {id};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "read the number's age", SQL_AGE, 1, params, &res, err);
    if (st == BZ_OK && PQntuples(res) == 1) {
        int64_t now = bz_pg_get_int64(res, 0, 0);
        int64_t since = cmp_warmup_since_ms(PQgetvalue(res, 0, 2));
        if (since == 0)
            since = bz_pg_get_int64(res, 0, 1);
        out->age_days = now > since ? (now - since) / DAY_MS : 0;
        out->cap = cmp_warmup_cap_at(s, out->age_days);
    }
    PQclear(res);
    return st == BZ_OK ? BZ_OK : bz_wrap(err, "account %" PRId64, account);
}

static bz_status record_new(PGconn *conn, int64_t account, int64_t workspace,
                            const int64_t *contacts, size_t n, bz_error *err)
{
    if (n == 0)
        return BZ_OK;
    char *list = bz_pg_int64_array(contacts, n), acc[24], ws[24];
    if (!list)
        return bz_fail(err, BZ_ERR_NOMEM, "record new recipients: out of memory");
    snprintf(acc, sizeof acc, "%" PRId64, account);
    snprintf(ws, sizeof ws, "%" PRId64, workspace);
    const char *params[] = {acc, list, ws};
    bz_status st = bz_pg_exec_params(conn, "record the number's new recipients", SQL_RECORD, 3,
                                     params, NULL, err);
    free(list);
    return st;
}

/* Decide, in order, which of the n asked logs (rows[k] of the plan,
 * contacts[k]) go (see warmup.h). */
static bz_status plan_in_order(PGconn *conn, int64_t account, int64_t workspace,
                               const cmp_warmup *w, const size_t *rows, const int64_t *contacts,
                               size_t n, int64_t window_s, cmp_release_plan *plan, bz_error *err)
{
    char *list = bz_pg_int64_array(contacts, n), acc[24], window[24];
    int64_t *fresh = calloc(n, sizeof *fresh);
    if (!list || !fresh) {
        free(list);
        free(fresh);
        return bz_fail(err, BZ_ERR_NOMEM, "plan the warm-up: out of memory");
    }
    snprintf(acc, sizeof acc, "%" PRId64, account);
    snprintf(window, sizeof window, "%" PRId64, window_s);
    const char *params[] = {acc, window, list};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "find the number's known recipients", SQL_KNOWN, 3,
                                     params, &res, err);
    size_t nfresh = 0;
    if (st == BZ_OK && (size_t)PQntuples(res) != n)
        st = bz_fail(err, BZ_ERR_INTERNAL, "%d answers for %zu contacts", PQntuples(res), n);
    if (st == BZ_OK) {
        int64_t room = w->cap - bz_pg_get_int64(res, 0, 1);
        int64_t next_room_ms = bz_pg_get_int64(res, 0, 2);
        for (size_t i = 0; i < n; i++) {
            int known = PQgetvalue(res, (int)i, 0)[0] == 't';
            if (!known && room <= 0) {
                cmp_plan_hold *h =
                    cmp_release_plan_hold(plan, rows[i], CMP_WARMUP_REASON, next_room_ms);
                h->detail_name = "warmup";
                snprintf(h->detail, sizeof h->detail, "cap %" PRId64 " at day %" PRId64, w->cap,
                         w->age_days);
                continue;
            }
            if (!cmp_release_plan_admit(plan, rows[i]) || known)
                continue; /* past the round's room, or known: nothing to record */
            room--;
            fresh[nfresh++] = contacts[i];
        }
        st = record_new(conn, account, workspace, fresh, nfresh, err);
    }
    PQclear(res);
    free(fresh);
    free(list);
    return st;
}

bz_status cmp_warmup_apply(PGconn *conn, int64_t account, int64_t workspace, const cmp_warmup *w,
                           const int64_t *contacts, int64_t window_s, cmp_release_plan *plan,
                           bz_error *err)
{
    if (w->cap == 0 || plan->n == 0)
        return BZ_OK;
    size_t *rows = calloc(plan->n, sizeof *rows), n = 0;
    int64_t *asked = calloc(plan->n, sizeof *asked);
    bz_status st = rows && asked ? BZ_OK
                                 : bz_fail(err, BZ_ERR_NOMEM, "plan the warm-up: out of memory");
    if (st == BZ_OK)
        n = cmp_release_plan_going(plan, contacts, rows, asked);
    if (st == BZ_OK && n > 0)
        st = plan_in_order(conn, account, workspace, w, rows, asked, n, window_s, plan, err);
    free(asked);
    free(rows);
    return st == BZ_OK ? BZ_OK : bz_wrap(err, "warm-up of account %" PRId64, account);
}
