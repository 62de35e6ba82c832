/*
 * housekeeping.c - the delivery worker's LISTEN connection, its heartbeat
 * among the live instances and its periodic chores.
 *
 * The LISTEN connection (channel blazz_webhook, notified by the fan-outs at
 * commit) wakes the loop for a claim, unless the notification names an
 * instance: that fan-out leased its rows to its own worker (fanout.h);
 * after a reconnect it subscribes
 * again and asks for a claim, as notifications may have been missed. It
 * also runs the queue-depth count, which is slow beside a large backlog,
 * so deliveries never wait for it. Every second the heartbeat is renewed
 * (peers.h); when the number of live instances changed, every endpoint's
 * bucket gets this instance's new share of its rate. Every
 * HOUSEKEEPING_MS endpoints failing continuously for auto_disable_after_ms
 * are disabled.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "fanout.h"
#include "worker_state.h"

#define HOUSEKEEPING_MS 5000

const char wh_auto_disable_sql[] =
    "UPDATE webhook_endpoints SET enabled = false, disabled_at = now(), "
    "  disabled_reason = 'auto-disabled: failing continuously since ' || failing_since "
    "WHERE enabled AND deleted_at IS NULL "
    "  AND failing_since < now() - $1::bigint * interval '1 millisecond' RETURNING id";

const char wh_depth_sql[] =
    "SELECT status, count(*) FROM webhook_retry_queue "
    "WHERE status IN ('pending', 'retrying') GROUP BY status";

/* The LISTEN connection's socket, (re)subscribing after a reconnect; -1
 * while the database is away (the poll timer covers that time). */
int wh_listen_socket(wh_worker *w)
{
    bz_error err;
    if (bz_pg_ensure(w->listen, &err) != BZ_OK)
        return -1;
    PGconn *conn = bz_pg_conn(w->listen);
    if (conn != w->listening_on) {
        if (bz_pg_exec(conn, "LISTEN " BZ_PG_WEBHOOK_CHANNEL, &err) != BZ_OK) {
            bz_pg_reset(w->listen);
            return -1;
        }
        w->listening_on = conn;
        w->depth_on = NULL;
        w->claim_now = true; /* notifications may have been missed meanwhile */
    }
    return PQsocket(conn);
}

/* The queue-depth gauges count every open row, which took 200 ms beside a
 * large backlog: the count runs on the LISTEN connection, sent by
 * housekeeping and collected on a later turn of the loop, so deliveries
 * never wait for it. */
static void send_depth_query(wh_worker *w)
{
    PGconn *conn = bz_pg_conn(w->listen);
    if (w->depth_on || !conn || conn != w->listening_on)
        return;
    if (PQsendQueryPrepared(conn, "wh_depth", 0, NULL, NULL, NULL, 0))
        w->depth_on = conn;
}

static void collect_depth(wh_worker *w, PGconn *conn)
{
    if (!w->depth_on || conn != w->depth_on || PQisBusy(conn))
        return;
    w->depth_on = NULL;
    PGresult *res;
    while ((res = PQgetResult(conn))) {
        double pending = 0, retrying = 0;
        for (int r = 0; PQresultStatus(res) == PGRES_TUPLES_OK && r < PQntuples(res); r++) {
            double v = strtod(PQgetvalue(res, r, 1), NULL);
            if (strcmp(PQgetvalue(res, r, 0), "pending") == 0)
                pending = v;
            else
                retrying = v;
        }
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            bz_gauge_set(bz_gauge_family_with(w->m.depth, "pending"), pending);
            bz_gauge_set(bz_gauge_family_with(w->m.depth, "retrying"), retrying);
        }
        PQclear(res);
    }
}

void wh_read_notifications(wh_worker *w)
{
    PGconn *conn = bz_pg_conn(w->listen);
    if (!conn)
        return;
    if (!PQconsumeInput(conn)) {
        bz_pg_reset(w->listen);
        w->listening_on = w->depth_on = NULL;
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(conn))) {
        /* a fan-out that names its instance leased its rows to that
         * instance's worker: nothing for a claim */
        if (n->extra[0] == '\0')
            w->claim_now = true;
        PQfreemem(n);
    }
    collect_depth(w, conn);
}

static void auto_disable(wh_worker *w)
{
    char after[24];
    snprintf(after, sizeof after, "%" PRId64, w->cfg.auto_disable_after_ms);
    const char *params[] = {after};
    PGresult *res = NULL;
    bz_error err;
    if (bz_pg_exec_prepared(bz_pg_conn(w->pg), "wh_auto_disable", 1, params, NULL, NULL, &res,
                            &err) != BZ_OK)
        return;
    for (int r = 0; r < PQntuples(res); r++) {
        int64_t id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        wh_endpoint *ep = wh_find_endpoint(w, id);
        if (ep) {
            ep->enabled = false;
            snprintf(ep->disabled_reason, sizeof ep->disabled_reason,
                     "auto-disabled: failing continuously");
        }
        bz_log(BZ_LOG_WARN, "endpoint %" PRId64 " auto-disabled: failing for more than %" PRId64
               " ms", id, w->cfg.auto_disable_after_ms);
    }
    PQclear(res);
}

/* Renew the heartbeat when due; when the number of live instances changed,
 * give every endpoint's bucket this instance's new share of its rate. */
void wh_heartbeat(wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    if (now < w->peers.next_beat_ms || bz_pg_ensure(w->pg, NULL) != BZ_OK)
        return;
    bz_error err;
    bz_error_clear(&err);
    if (!wh_peers_beat(&w->peers, bz_pg_conn(w->pg), now, &err)) {
        if (err.msg[0])
            bz_log(BZ_LOG_WARN, "webhook dispatchers: heartbeat: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < w->table_cap; i++) {
        wh_endpoint *ep = w->table[i];
        if (ep && ep->rate > 0) {
            double share = wh_peers_share(&w->peers, ep->rate);
            bz_token_bucket_set_rate(&ep->bucket, share, share, now);
        }
    }
}

void wh_housekeeping(wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    if (now < w->next_housekeeping_ms || bz_pg_ensure(w->pg, NULL) != BZ_OK)
        return;
    w->next_housekeeping_ms = now + HOUSEKEEPING_MS;
    if (w->have_metrics) {
        send_depth_query(w);
        bz_gauge_set(w->m.in_flight, (double)wh_delivery_running(w->http));
    }
    if (w->cfg.auto_disable_after_ms > 0)
        auto_disable(w);
}
