/*
 * timer.c - when sweeps run: a sweeper thread that sweeps every
 * cleanup.interval_s (and once at start when asked), and the one-shot mode
 * (cleanup.run_once) for cron jobs and tests.
 *
 * The thread owns its own PostgreSQL connection, so a sweep never competes
 * with the request consumer's transaction. Each sweep takes a fresh "now"
 * and trace id; its outcome is counted (done, skipped_locked when another
 * instance is sweeping, failed) and timed. A failed sweep (PostgreSQL
 * restarting, say) is tried again after a backoff, 1 s doubling up to the
 * interval, not a whole interval later: with the hourly default a database
 * restart would otherwise hold every due removal back for an hour (the
 * chaos test caught it). Stopping sets ctx->stop, which a sweep
 * checks between batches, so shutdown waits for one batch at most.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/signals.h"

#define TICK_MS 100
#define RETRY_MIN_MS 1000

struct cl_timer {
    cl_ctx *ctx;
    bz_pg *pg;
    int64_t interval_ms;
    int at_start;
    pthread_t thread;
};

static const char *outcome_of(bz_status st)
{
    return st == BZ_OK ? "done" : st == BZ_ERR_CONFLICT ? "skipped_locked" : "failed";
}

static void log_result(const cl_sweep_spec *spec, const cl_sweep_result *r, double seconds)
{
    bz_log_event(BZ_LOG_INFO, NULL, spec->trace_id,
                 "sweep done (%s): removed stale_qr=%" PRIu64 " disconnected_24h=%" PRIu64
                 " duplicate=%" PRIu64 "; purged webhook_retry_queue=%" PRIu64
                 " send_ledger=%" PRIu64 " pending_receipts=%" PRIu64
                 " campaign_receipts_waiting=%" PRIu64 " meta_proofs=%" PRIu64
                 " outbox=%" PRIu64 " replaced_endpoint_secrets=%" PRIu64
                 " chat_media=%" PRIu64 " (%" PRIu64 " bytes) in %.3f s",
                 cl_type_name(spec->type), r->removed[BZ_CLEANUP_RULE_STALE_QR],
                 r->removed[BZ_CLEANUP_RULE_DISCONNECTED], r->removed[BZ_CLEANUP_RULE_DUPLICATE],
                 r->purged_webhooks, r->purged_ledger, r->purged_parked_receipts,
                 r->purged_waiting_receipts, r->purged_send_proofs,
                 r->purged_outbox, r->forgotten_secrets,
                 r->purged_media, r->purged_media_bytes, seconds);
}

/* One sweep on pg, counted and logged. */
static bz_status sweep_once(cl_ctx *ctx, bz_pg *pg, cl_type type, cl_sweep_result *out,
                            bz_error *err)
{
    cl_sweep_spec spec;
    double t0 = bz_metrics_clock();
    bz_status st = cl_spec_init(ctx, &spec, type, err);
    if (st == BZ_OK)
        st = cl_sweep_run(ctx, pg, &spec, out, err);
    double seconds = bz_metrics_clock() - t0;
    if (ctx->have_metrics) {
        bz_counter_inc(bz_counter_family_with(ctx->m.sweeps, cl_type_name(type), outcome_of(st)));
        if (st == BZ_OK)
            bz_histogram_observe(ctx->m.sweep_seconds, seconds);
    }
    if (st == BZ_OK)
        log_result(&spec, out, seconds);
    else if (st == BZ_ERR_CONFLICT)
        bz_info("sweep skipped: another instance is sweeping");
    else
        bz_log_event(BZ_LOG_ERROR, NULL, spec.trace_id, "sweep failed: %s", err->msg);
    return st;
}

static void *sweeper_main(void *arg)
{
    cl_timer *t = arg;
    int64_t next = bz_monotonic_ms() + (t->at_start ? 0 : t->interval_ms);
    cl_type type = t->at_start ? CL_TYPE_AUTOMATIC : CL_TYPE_SCHEDULED;
    int64_t retry_ms = RETRY_MIN_MS;
    while (!atomic_load(&t->ctx->stop)) {
        if (bz_monotonic_ms() < next) {
            bz_sleep_ms(TICK_MS);
            continue;
        }
        cl_sweep_result result = {0};
        bz_error err;
        bz_error_clear(&err);
        bz_status st = sweep_once(t->ctx, t->pg, type, &result, &err);
        type = CL_TYPE_SCHEDULED;
        if (st == BZ_OK || st == BZ_ERR_CONFLICT) {
            next = bz_monotonic_ms() + t->interval_ms;
            retry_ms = RETRY_MIN_MS;
        } else {
            next = bz_monotonic_ms() + (retry_ms < t->interval_ms ? retry_ms : t->interval_ms);
            if (retry_ms < t->interval_ms)
                retry_ms *= 2;
        }
    }
    return NULL;
}

bz_status cl_timer_start(cl_ctx *ctx, const char *pg_dsn, int64_t interval_s, int at_start,
                         cl_timer **out, bz_error *err)
{
    cl_timer *t = calloc(1, sizeof *t);
    if (!t)
        return bz_fail(err, BZ_ERR_NOMEM, "start the sweep timer: out of memory");
    t->ctx = ctx;
    t->interval_ms = interval_s * 1000;
    t->at_start = at_start;
    bz_status st = bz_pg_open(pg_dsn, &t->pg, err);
    if (st == BZ_OK && pthread_create(&t->thread, NULL, sweeper_main, t) != 0)
        st = bz_fail(err, BZ_ERR_INTERNAL, "start the sweep timer: pthread_create failed");
    if (st != BZ_OK) {
        bz_pg_close(t->pg);
        free(t);
        return st;
    }
    *out = t;
    return BZ_OK;
}

void cl_timer_stop(cl_timer *t)
{
    if (!t)
        return;
    atomic_store(&t->ctx->stop, true);
    pthread_join(t->thread, NULL);
    bz_pg_close(t->pg);
    free(t);
}

/* ---- one-shot mode ---------------------------------------------------------------- */

static bz_status outbox_pending_up_to(PGconn *conn, int64_t max_id, int *pending, bz_error *err)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, max_id);
    const char *params[] = {id};
    PGresult *res = PQexecParams(conn, "SELECT EXISTS (SELECT 1 FROM outbox WHERE id <= $1::bigint)",
                                 1, NULL, params, NULL, NULL, 0);
    bz_status st = bz_pg_check(conn, res, "check the outbox", err);
    if (st == BZ_OK)
        *pending = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return st;
}

/* Wait until every outbox row that exists now is published (the relay
 * deletes it), at most timeout_ms. */
static bz_status wait_outbox_drained(bz_pg *pg, int64_t timeout_ms, bz_error *err)
{
    PGconn *conn = bz_pg_conn(pg);
    PGresult *res = PQexec(conn, "SELECT coalesce(max(id), 0) FROM outbox");
    bz_status st = bz_pg_check(conn, res, "read the outbox high-water mark", err);
    int64_t max_id = st == BZ_OK ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    int64_t deadline = bz_monotonic_ms() + timeout_ms;
    int pending = 1;
    while (st == BZ_OK && (st = outbox_pending_up_to(conn, max_id, &pending, err)) == BZ_OK &&
           pending) {
        if (bz_monotonic_ms() > deadline || bz_shutdown_requested())
            return bz_fail(err, BZ_ERR_TRANSIENT,
                           "run once: outbox rows up to id %" PRId64 " still unpublished", max_id);
        bz_sleep_ms(50);
    }
    return st;
}

bz_status cl_run_once(cl_ctx *ctx, const char *pg_dsn, int64_t drain_timeout_ms, bz_error *err)
{
    bz_pg *pg = NULL;
    bz_status st = bz_pg_open(pg_dsn, &pg, err);
    if (st == BZ_OK)
        st = bz_pg_ensure(pg, err);
    cl_sweep_result result = {0};
    if (st == BZ_OK)
        st = sweep_once(ctx, pg, CL_TYPE_SCHEDULED, &result, err);
    if (st == BZ_ERR_CONFLICT)
        st = BZ_OK; /* the instance holding the lock is doing the job */
    if (st == BZ_OK && drain_timeout_ms > 0)
        st = wait_outbox_drained(pg, drain_timeout_ms, err);
    bz_pg_close(pg);
    return st;
}
