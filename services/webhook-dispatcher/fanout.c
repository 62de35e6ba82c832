/*
 * fanout.c - the consumer handler (see fanout.h).
 *
 * decode renders the body (no database); apply sends the whole batch as
 * arrays in one INSERT ... SELECT FROM unnest(...) JOIN webhook_endpoints,
 * so a batch of a thousand events costs one round trip however many
 * endpoints match. The rows take their ids in the batch's order (ORDER BY
 * the array position): the worker delivers a conversation's events in id
 * order, and a join returns its rows in whatever order its plan makes (a
 * hash join built on the batch gave one message's read, delivered, sent).
 */
#include "fanout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/grow.h"
#include "core/uuid.h"
#include "leased_row.h"
#include "pg/columns.h"
#include "pg/pg.h"

/* The rows are leased to this process's worker from the start ($7 ms:
 * the claim lease, claims 1), as a claim would lease them, and come back
 * as a claim returns them (leased_row.h); with $7 = 0 they are due now,
 * for any claim. The lease runs from the insert (clock_timestamp), not
 * from the transaction's start: the worker counts it from a moment taken
 * just before the statement, so it never believes a lease longer than it
 * is. */
static const char fanout_sql[] =
    "WITH c AS ("
    "  INSERT INTO webhook_retry_queue (event_id, endpoint_id, workspace_id, whatsapp_account_id, "
    "    event_type, endpoint, payload, max_retries, next_retry_at, status, claims) "
    "  SELECT u.event_id::uuid, e.id, e.workspace_id, "
    "    (SELECT a.id FROM whatsapp_accounts a WHERE a.workspace_id = u.workspace_id "
    "       AND a.id = nullif(u.account_id, 0)), "
    "    u.event_type, e.url, convert_to(u.body, 'UTF8'), $6::int, "
    "    clock_timestamp() + $7::bigint * interval '1 millisecond', 'pending', "
    "    CASE WHEN $7::bigint > 0 THEN 1 ELSE 0 END "
    "  FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) "
    "    WITH ORDINALITY AS u(event_id, workspace_id, event_type, body, account_id, ord) "
    "  JOIN webhook_endpoints e ON e.workspace_id = u.workspace_id AND e.enabled "
    "    AND e.deleted_at IS NULL "
    "    AND ('*' = ANY (e.event_types) OR u.event_type = ANY (e.event_types)) "
    "  ORDER BY u.ord, e.id "
    "  ON CONFLICT (event_id, endpoint_id) DO NOTHING " WH_LEASED_ROW_RETURNING ") "
    "SELECT " WH_LEASED_ROW_COLUMNS " FROM c JOIN webhook_endpoints e ON e.id = c.endpoint_id "
    "ORDER BY c.id";

static const char replay_sql[] =
    "INSERT INTO webhook_retry_queue (event_id, endpoint_id, workspace_id, event_type, endpoint, "
    "  payload, max_retries, next_retry_at, status) "
    "SELECT u.event_id::uuid, e.id, e.workspace_id, u.event_type, e.url, "
    "  convert_to(u.body, 'UTF8'), $6::int, now(), 'pending' "
    "FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[]) "
    "  WITH ORDINALITY AS u(event_id, endpoint_id, workspace_id, event_type, body, ord) "
    "JOIN webhook_endpoints e ON e.id = u.endpoint_id AND e.workspace_id = u.workspace_id "
    "  AND e.deleted_at IS NULL "
    "ORDER BY u.ord "
    "ON CONFLICT (event_id, endpoint_id) DO UPDATE SET status = 'pending', retry_count = 0, "
    "  next_retry_at = now(), last_error = NULL, last_status_code = NULL, delivered_at = NULL, "
    "  max_retries = EXCLUDED.max_retries "
    "WHERE webhook_retry_queue.status = 'failed'";

static bz_status fanout_init(void *ctx, bz_pg *pg, bz_error *err)
{
    (void)ctx;
    if (bz_pg_prepare(pg, "wh_fanout", fanout_sql, err) != BZ_OK ||
        bz_pg_prepare(pg, "wh_replay", replay_sql, err) != BZ_OK ||
        bz_pg_prepare(pg, "wh_notify", "SELECT pg_notify('" BZ_PG_WEBHOOK_CHANNEL "', $1)",
                      err) != BZ_OK)
        return err->code;
    return BZ_OK;
}

static int64_t replay_endpoint(const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *value;
    size_t size;
    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs ||
        rd_kafka_header_get_last(hdrs, WH_REPLAY_HEADER, &value, &size) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        !value || size == 0 || size > 20)
        return 0;
    char buf[24];
    memcpy(buf, value, size);
    buf[size] = '\0';
    long long id = strtoll(buf, NULL, 10);
    return id > 0 ? id : -1;
}

static bz_status fanout_decode(void *ctx, const rd_kafka_message_t *msg, void **decoded,
                               bz_error *err)
{
    const wh_fanout *f = ctx;
    const char *topic = rd_kafka_topic_name(msg->rkt);
    wh_event *ev = malloc(sizeof *ev);
    if (!ev)
        return bz_fail(err, BZ_ERR_TRANSIENT, "decode %s: out of memory", topic);
    bz_status st;
    int64_t endpoint = replay_endpoint(msg);
    if (endpoint < 0)
        st = bz_reject(err, "bad_replay_header", "%s header is not an endpoint id",
                       WH_REPLAY_HEADER);
    else if (endpoint > 0)
        st = wh_event_from_replay(endpoint, msg->payload, msg->len, ev, err);
    else if (strcmp(topic, f->chat_topic) == 0)
        st = wh_event_from_record(WH_SOURCE_CHAT, msg->payload, msg->len, ev, err);
    else if (strcmp(topic, f->session_topic) == 0)
        st = wh_event_from_record(WH_SOURCE_SESSION, msg->payload, msg->len, ev, err);
    else if (strcmp(topic, f->campaign_topic) == 0)
        st = wh_event_from_record(WH_SOURCE_CAMPAIGN, msg->payload, msg->len, ev, err);
    else
        st = bz_fail(err, BZ_ERR_INTERNAL, "record from unexpected topic %s", topic);
    if (st == BZ_OK && !bz_uuid_is_valid(ev->event_id)) {
        st = bz_reject(err, "bad_event_id", "event_id '%s' is not a UUID", ev->event_id);
        wh_event_clear(ev);
    }
    if (st != BZ_OK) {
        free(ev);
        return st;
    }
    *decoded = ev;
    return BZ_OK;
}

static void fanout_release(void *ctx, void *decoded)
{
    (void)ctx;
    if (decoded) {
        wh_event_clear(decoded);
        free(decoded);
    }
}

/* One statement's rows, as the array columns of its parameters: ids,
 * workspaces, types, bodies and accounts for the fan-out; ids, endpoints,
 * workspaces, types and bodies for a replay; the scalars after them. */
typedef struct rows {
    bz_pg_columns cols;
    const char **ids, **types, **bodies;
    int64_t *workspaces, *accounts, *endpoints; /* accounts: fan-out; endpoints: replay */
    size_t n;
} rows;

static bz_status rows_alloc(rows *r, size_t n, int replay, bz_error *err)
{
    memset(r, 0, sizeof *r);
    bz_pg_columns_init(&r->cols, n);
    r->ids = bz_pg_columns_text(&r->cols);
    if (replay)
        r->endpoints = bz_pg_columns_int64(&r->cols);
    r->workspaces = bz_pg_columns_int64(&r->cols);
    r->types = bz_pg_columns_text(&r->cols);
    r->bodies = bz_pg_columns_text(&r->cols);
    if (!replay)
        r->accounts = bz_pg_columns_int64(&r->cols);
    if (r->cols.nomem)
        return bz_fail(err, BZ_ERR_TRANSIENT, "apply: out of memory");
    return BZ_OK;
}

static void rows_add(rows *r, const wh_event *ev)
{
    r->ids[r->n] = ev->event_id;
    r->types[r->n] = ev->type;
    r->bodies[r->n] = ev->body;
    r->workspaces[r->n] = ev->workspace_id;
    if (r->accounts)
        r->accounts[r->n] = ev->whatsapp_account_id;
    else
        r->endpoints[r->n] = ev->replay_endpoint_id;
    r->n++;
}

/* Two replays of one (event, endpoint) in a batch would make ON CONFLICT
 * DO UPDATE touch a row twice, which PostgreSQL refuses. */
static int replay_seen(const rows *r, const wh_event *ev)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->endpoints[i] == ev->replay_endpoint_id && strcmp(r->ids[i], ev->event_id) == 0)
            return 1;
    return 0;
}

/* Keep res, the rows leased to the worker at leased_at_ms (monotonic),
 * until their transaction ends. */
static bz_status keep_leased_rows(wh_fanout *f, PGresult *res, int64_t leased_at_ms,
                                  bz_error *err)
{
    if (!bz_grow((void **)&f->leased, &f->capleased, f->nleased + 1, sizeof *f->leased, 4))
        return bz_fail(err, BZ_ERR_TRANSIENT, "apply: out of memory");
    f->leased[f->nleased++] = (wh_leased_rows){.rows = res, .leased_at_ms = leased_at_ms};
    return BZ_OK;
}

/* Forget the rows kept since the first `keep` of them (a statement after
 * them failed: they roll back with it). */
static void forget_leased_rows(wh_fanout *f, size_t keep)
{
    while (f->nleased > keep)
        PQclear(f->leased[--f->nleased].rows);
}

static bz_status insert_rows(wh_fanout *f, PGconn *conn, const char *stmt, rows *r, int replay,
                             int *inserted, bz_error *err)
{
    char retries[16], lease[24];
    snprintf(retries, sizeof retries, "%d", f->max_retries);
    snprintf(lease, sizeof lease, "%lld", f->worker ? (long long)f->lease_ms : 0LL);
    bz_pg_columns_trim(&r->cols, r->n);
    bz_pg_columns_scalar(&r->cols, retries);
    if (!replay)
        bz_pg_columns_scalar(&r->cols, lease);
    PGresult *res = NULL;
    int64_t leased_at = bz_monotonic_ms();
    bz_status st = bz_pg_columns_exec(&r->cols, conn, stmt, &res, err);
    if (st == BZ_OK && replay) {
        *inserted += (int)bz_pg_affected_rows(res);
        PQclear(res);
    } else if (st == BZ_OK) {
        *inserted += PQntuples(res);
        if (f->worker && PQntuples(res) > 0 &&
            (st = keep_leased_rows(f, res, leased_at, err)) == BZ_OK)
            res = NULL;
        PQclear(res);
    }
    return st;
}

static bz_status fanout_apply(void *ctx, PGconn *conn, bz_eo_record *recs, size_t n,
                              bz_error *err)
{
    wh_fanout *f = ctx;
    size_t kept_before = f->nleased;
    rows fan = {0}, rep = {0};
    bz_status st = rows_alloc(&fan, n, 0, err);
    if (st == BZ_OK)
        st = rows_alloc(&rep, n, 1, err);
    int64_t now = bz_wall_ms();
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        const wh_event *ev = recs[i].decoded;
        if (ev->replay_endpoint_id > 0) {
            if (!replay_seen(&rep, ev))
                rows_add(&rep, ev);
        } else {
            rows_add(&fan, ev);
            if (f->produced_to_enqueued && ev->produced_at_ms > 0 && now >= ev->produced_at_ms)
                bz_histogram_observe(f->produced_to_enqueued,
                                     (double)(now - ev->produced_at_ms) / 1000.0);
        }
    }
    int inserted = 0, replayed = 0;
    if (st == BZ_OK && fan.n > 0)
        st = insert_rows(f, conn, "wh_fanout", &fan, 0, &inserted, err);
    if (st == BZ_OK && rep.n > 0)
        st = insert_rows(f, conn, "wh_replay", &rep, 1, &replayed, err);
    /* other instances have nothing to claim from rows leased to this one;
     * replayed rows are due now, for any (this one too) */
    const char *notify[] = {f->worker && replayed == 0 ? f->instance_id : ""};
    if (st == BZ_OK && inserted + replayed > 0)
        st = bz_pg_exec_prepared(conn, "wh_notify", 1, notify, NULL, NULL, NULL, err);
    inserted += replayed;
    if (st == BZ_OK && f->enqueued)
        bz_counter_add(f->enqueued, (uint64_t)inserted);
    if (st != BZ_OK)
        forget_leased_rows(f, kept_before);
    bz_pg_columns_free(&fan.cols);
    bz_pg_columns_free(&rep.cols);
    return st;
}

/* The rows of a committed transaction go to the worker they are leased
 * to; those of one rolled back are forgotten (the records come again). */
static void fanout_finished(void *ctx, int committed)
{
    wh_fanout *f = ctx;
    if (!committed || !f->worker) {
        forget_leased_rows(f, 0);
        return;
    }
    for (size_t i = 0; i < f->nleased; i++)
        wh_worker_hand_over(f->worker, f->leased[i].rows, f->leased[i].leased_at_ms);
    f->nleased = 0;
}

void wh_fanout_clear(wh_fanout *f)
{
    fanout_finished(f, 0);
    free(f->leased);
    f->leased = NULL;
    f->capleased = 0;
}

const bz_eo_handler wh_fanout_handler = {
    .init = fanout_init,
    .decode = fanout_decode,
    .apply = fanout_apply,
    .release = fanout_release,
    .finished = fanout_finished,
};
