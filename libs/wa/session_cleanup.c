/*
 * session_cleanup.c - the session cleanup rules as SQL (see session_cleanup.h).
 *
 * Every rule is the same SELECT with a different join and predicate: the
 * shared column list and scope clauses are assembled once per rule from the
 * pieces below. All parameters are bigints ($1 now in ms, $2 threshold in
 * seconds, $3 workspace scope, $4 account scope, $5 keyset, $6 limit, $7
 * an optional id list) and are declared as such, so a rule that ignores one
 * still plans.
 */
#include "wa/session_cleanup.h"

#include "pg/columns.h"
#include "pg/pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INT8_OID 20
#define INT8_ARRAY_OID 1016
#define NPARAMS 7

#define SQL_NOW "to_timestamp($1::bigint / 1000.0)"
#define SQL_CUTOFF "(" SQL_NOW " - make_interval(secs => $2::bigint))"

#define SQL_COLUMNS                                                                                \
    "SELECT a.id, a.uuid::text, a.workspace_id, a.session_id, a.phone_number, a.status, "          \
    "a.provider_type, a.assigned_instance_index, a.assigned_instance_url, a.health_score, "        \
    "a.disconnect_reason, (extract(epoch FROM a.disconnected_at) * 1000)::bigint, "              \
    "a.assignment_epoch, "

#define SQL_SCOPE                                                                                  \
    " WHERE a.deleted_at IS NULL AND a.id > $5::bigint "                                           \
    "AND ($3::bigint = 0 OR a.workspace_id = $3::bigint) "                                         \
    "AND ($4::bigint = 0 OR a.id = $4::bigint) AND "

#define SQL_IDS " AND a.id = ANY ($7::bigint[])"
#define SQL_PAGE " ORDER BY a.id LIMIT $6::bigint"
#define SQL_LOCK " FOR UPDATE OF a SKIP LOCKED"

/* Rank of a row among live rows of its workspace and phone: the keeper is
 * the highest. Written twice (row comparison and ORDER BY) on purpose: they
 * must agree. */
#define RANK(t) "(" t ".status = 'connected', coalesce(" t ".last_connected_at, '-infinity'), " t ".id)"

/* A timestamptz expression as ISO-8601 UTC text, as the logs show times. */
#define SQL_ISO8601(ts) "to_char(" ts " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* A rule that removes accounts left in `status` since before the cutoff,
 * `since` being when they entered it. */
#define AGED_STATUS_RULE(reason_, status, since, details_)                                       \
    {                                                                                          \
        .reason = (reason_), .details = (details_), .keeper = "NULL::bigint",                  \
        .from = " FROM whatsapp_accounts a",                                                   \
        .predicate = "a.status = '" status "' AND " since " < " SQL_CUTOFF                     \
    }

typedef struct rule_sql {
    const char *reason;
    const char *details;   /* text expression: why the row was picked */
    const char *keeper;    /* bigint expression */
    const char *from;      /* FROM clause, joins included */
    const char *predicate; /* after the scope */
    const char *prefilter; /* implied by the predicate; cheap for a full pass only */
} rule_sql;

static const rule_sql rules[BZ_CLEANUP_RULE_COUNT] = {
    [BZ_CLEANUP_RULE_STALE_QR] = AGED_STATUS_RULE(
        "stale_qr", "qr_scanning", "coalesce(a.last_activity_at, a.created_at)",
        "'QR not scanned: no activity since ' || " SQL_ISO8601(
            "coalesce(a.last_activity_at, a.created_at)")),
    [BZ_CLEANUP_RULE_DISCONNECTED] = AGED_STATUS_RULE(
        "disconnected_24h", "disconnected", "coalesce(a.disconnected_at, a.updated_at)",
        "'disconnected since ' || " SQL_ISO8601("coalesce(a.disconnected_at, a.updated_at)")
        " || coalesce(' (' || a.disconnect_reason || ')', '')"),
    [BZ_CLEANUP_RULE_DUPLICATE] =
        {.reason = "duplicate",
         .details = "'duplicate of account ' || keeper.id || ' (same workspace and phone)'",
         .keeper = "keeper.id",
         .from = " FROM whatsapp_accounts a CROSS JOIN LATERAL ("
                 "SELECT k.id FROM whatsapp_accounts k "
                 "WHERE k.workspace_id = a.workspace_id AND k.phone_number = a.phone_number "
                 "AND k.deleted_at IS NULL AND " RANK("k") " > " RANK("a") " "
                 "ORDER BY k.status = 'connected' DESC, "
                 "coalesce(k.last_connected_at, '-infinity') DESC, k.id DESC LIMIT 1) keeper",
         .predicate = "a.phone_number IS NOT NULL AND a.phone_number <> ''",
         .prefilter = " AND (a.workspace_id, a.phone_number) IN (SELECT g.workspace_id, "
                      "g.phone_number FROM whatsapp_accounts g WHERE g.deleted_at IS NULL "
                      "AND g.phone_number IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1)"},
    [BZ_CLEANUP_RULE_SESSION] =
        {.reason = "manual_request",
         .details = "'removal requested for this account'",
         .keeper = "NULL::bigint",
         .from = " FROM whatsapp_accounts a",
         .predicate = "$4::bigint <> 0"},
};

const char *bz_cleanup_rule_reason(bz_cleanup_rule rule)
{
    if ((int)rule < 0 || rule >= BZ_CLEANUP_RULE_COUNT)
        return NULL;
    return rules[rule].reason;
}

/* The full statement for a rule; heap memory the caller frees. The
 * prefilter goes only into full passes: with an id list it would cost a
 * whole-table aggregate for a handful of rows. */
static char *rule_statement(bz_cleanup_rule rule, int lock, int with_ids)
{
    const rule_sql *r = &rules[rule];
    const char *narrow = with_ids ? SQL_IDS : r->prefilter ? r->prefilter : "";
    char *sql = NULL;
    if (asprintf(&sql, "%s%s AS details, %s AS keeper%s%s%s%s%s%s", SQL_COLUMNS, r->details,
                 r->keeper, r->from, SQL_SCOPE, r->predicate, narrow, SQL_PAGE,
                 lock ? SQL_LOCK : "") < 0)
        return NULL;
    return sql;
}

static const char *text_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static void read_candidate(const PGresult *res, int row, bz_cleanup_candidate *c)
{
    c->id = bz_pg_get_int64(res, row, 0);
    c->uuid = text_or_null(res, row, 1);
    c->workspace_id = bz_pg_get_int64(res, row, 2);
    c->session_id = text_or_null(res, row, 3);
    c->phone_number = text_or_null(res, row, 4);
    c->status = text_or_null(res, row, 5);
    c->provider_type = text_or_null(res, row, 6);
    c->instance_index = PQgetisnull(res, row, 7) ? -1 : (int)bz_pg_get_int64(res, row, 7);
    c->instance_url = text_or_null(res, row, 8);
    c->health_score = (int)bz_pg_get_int64(res, row, 9);
    c->disconnect_reason = text_or_null(res, row, 10);
    c->disconnected_at_ms = bz_pg_get_int64(res, row, 11);
    c->assignment_epoch = bz_pg_get_int64(res, row, 12);
    c->details = text_or_null(res, row, 13);
    c->keeper_id = bz_pg_get_int64(res, row, 14);
}

bz_status bz_cleanup_select(PGconn *conn, const bz_cleanup_query *q, bz_cleanup_batch *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    out->last_id = q->after_id;
    if ((int)q->rule < 0 || q->rule >= BZ_CLEANUP_RULE_COUNT)
        return bz_fail(err, BZ_ERR_INTERNAL, "select cleanup candidates: rule %d out of range",
                       (int)q->rule);
    char *sql = rule_statement(q->rule, q->lock, q->ids != NULL);
    char *ids = q->ids ? bz_pg_int64_array(q->ids, q->nids) : NULL;
    if (!sql || (q->ids && !ids)) {
        free(sql);
        free(ids);
        return bz_fail(err, BZ_ERR_NOMEM, "select %s candidates: out of memory",
                       rules[q->rule].reason);
    }
    char p[NPARAMS - 1][24];
    const int64_t values[NPARAMS - 1] = {q->now_ms,    q->threshold_s, q->workspace_id,
                                         q->account_id, q->after_id,    q->limit};
    const char *params[NPARAMS];
    const Oid types[NPARAMS] = {INT8_OID, INT8_OID, INT8_OID, INT8_OID,
                                INT8_OID, INT8_OID, INT8_ARRAY_OID};
    for (int i = 0; i < NPARAMS - 1; i++) {
        snprintf(p[i], sizeof p[i], "%" PRId64, values[i]);
        params[i] = p[i];
    }
    params[NPARAMS - 1] = ids; /* NULL: no id list */
    PGresult *res = PQexecParams(conn, sql, NPARAMS, types, params, NULL, NULL, 0);
    free(sql);
    free(ids);
    char what[96];
    snprintf(what, sizeof what, "select %s candidates after id %" PRId64, rules[q->rule].reason,
             q->after_id);
    bz_status st = bz_pg_check(conn, res, what, err);
    if (st != BZ_OK) {
        PQclear(res);
        return st;
    }
    out->res = res;
    out->n = (size_t)PQntuples(res);
    if (out->n == 0)
        return BZ_OK;
    out->items = calloc(out->n, sizeof *out->items);
    if (!out->items)
        return bz_fail(err, BZ_ERR_NOMEM, "%s: out of memory for %zu rows", what, out->n);
    for (size_t i = 0; i < out->n; i++)
        read_candidate(res, (int)i, &out->items[i]);
    out->last_id = out->items[out->n - 1].id;
    return BZ_OK;
}

void bz_cleanup_batch_free(bz_cleanup_batch *batch)
{
    if (!batch)
        return;
    PQclear(batch->res);
    free(batch->items);
    memset(batch, 0, sizeof *batch);
}

/* ---- preview --------------------------------------------------------------------- */

/* Ids already reported, so a row that several rules pick shows up once. */
typedef struct id_set {
    int64_t *slots; /* 0 = empty (ids are positive) */
    size_t cap, n;
} id_set;

static size_t id_slot(const id_set *s, int64_t id)
{
    size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
    while (s->slots[i] != 0 && s->slots[i] != id)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static int id_set_contains(const id_set *s, int64_t id)
{
    return s->cap && s->slots[id_slot(s, id)] == id;
}

static bz_status id_set_add(id_set *s, int64_t id, bz_error *err)
{
    if ((s->n + 1) * 2 > s->cap) {
        id_set grown = {.cap = s->cap ? s->cap * 2 : 1024};
        if (!(grown.slots = calloc(grown.cap, sizeof *grown.slots)))
            return bz_fail(err, BZ_ERR_NOMEM, "cleanup preview: out of memory for %zu ids", s->n);
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i])
                grown.slots[id_slot(&grown, s->slots[i])] = s->slots[i];
        grown.n = s->n;
        free(s->slots);
        *s = grown;
    }
    size_t i = id_slot(s, id);
    if (s->slots[i] == 0) {
        s->slots[i] = id;
        s->n++;
    }
    return BZ_OK;
}

static bz_status preview_rule(PGconn *conn, bz_cleanup_query *q, id_set *seen,
                              bz_cleanup_preview_fn fn, void *ctx, bz_error *err)
{
    for (;;) {
        bz_cleanup_batch batch;
        bz_status st = bz_cleanup_select(conn, q, &batch, err);
        for (size_t i = 0; st == BZ_OK && i < batch.n; i++) {
            if (id_set_contains(seen, batch.items[i].id))
                continue;
            st = id_set_add(seen, batch.items[i].id, err);
            if (st == BZ_OK)
                fn(ctx, q->rule, &batch.items[i]);
        }
        size_t n = batch.n;
        q->after_id = batch.last_id;
        bz_cleanup_batch_free(&batch);
        if (st != BZ_OK || n < (size_t)q->limit)
            return st;
    }
}

bz_status bz_cleanup_preview(PGconn *conn, const bz_cleanup_rule *rule_list, size_t nrules,
                     const int64_t thresholds_s[BZ_CLEANUP_RULE_COUNT], int64_t now_ms,
                     int64_t workspace_id, int64_t account_id, int batch_size,
                     bz_cleanup_preview_fn fn, void *ctx, bz_error *err)
{
    id_set seen = {0};
    bz_status st = BZ_OK;
    for (size_t i = 0; st == BZ_OK && i < nrules; i++) {
        bz_cleanup_query q = {.rule = rule_list[i],
                              .now_ms = now_ms,
                              .threshold_s = thresholds_s[rule_list[i]],
                              .workspace_id = workspace_id,
                              .account_id = account_id,
                              .limit = batch_size > 0 ? batch_size : 1000};
        st = preview_rule(conn, &q, &seen, fn, ctx, err);
    }
    free(seen.slots);
    return st;
}
