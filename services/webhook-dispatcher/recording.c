/*
 * recording.c - what the delivery worker writes back: each attempt's
 * outcome on its row and each endpoint's stats, in batches, on the
 * worker's connection.
 *
 * Outcomes are buffered (outcomes.h) and written together, each naming the
 * claim it comes from, so a holder whose lease ran out cannot overwrite the
 * next holder's; a dead letter waits for the write that confirms its claim.
 * Endpoint stats (consecutive failures, last success and failure, a 410's
 * disabling, an open circuit's period) are summed up per endpoint between
 * writes and written after the outcomes in one statement.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/utf8.h"
#include "pg/columns.h"
#include "worker_state.h"

const char wh_endpoint_stats_sql[] =
    "UPDATE webhook_endpoints e SET "
    "  consecutive_failures = CASE WHEN u.any_success THEN u.tail "
    "    ELSE e.consecutive_failures + u.tail END, "
    "  last_success_at = CASE WHEN u.any_success THEN now() ELSE e.last_success_at END, "
    "  last_failure_at = CASE WHEN u.tail > 0 THEN now() ELSE e.last_failure_at END, "
    "  failing_since = CASE WHEN u.tail = 0 THEN NULL WHEN u.any_success THEN now() "
    "    ELSE coalesce(e.failing_since, now()) END, "
    "  last_status_code = nullif(u.code, 0), "
    "  last_error = nullif(u.error, ''), "
    "  enabled = CASE WHEN u.disable <> '' THEN false ELSE e.enabled END, "
    "  disabled_reason = CASE WHEN u.disable <> '' THEN u.disable ELSE e.disabled_reason END, "
    "  disabled_at = CASE WHEN u.disable <> '' THEN now() ELSE e.disabled_at END, "
    "  circuit_open_until = CASE WHEN u.open_ms > 0 "
    "    THEN now() + u.open_ms * interval '1 millisecond' ELSE e.circuit_open_until END "
    "FROM unnest($1::bigint[], $2::int[], $3::bool[], $4::int[], $5::text[], $6::text[], "
    "  $7::bigint[]) AS u(id, tail, any_success, code, error, disable, open_ms) "
    "WHERE e.id = u.id";

/* Ensure the worker's connection. Its writes (claims, outcomes) need not
 * wait for the WAL flush: if the database loses the last few of them in a
 * crash, the rows fall due again and are re-delivered with the same
 * webhook-id, which at-least-once delivery allows. Fan-out, on the
 * consumer's connection, stays fully durable. */
bz_status wh_worker_conn(wh_worker *w, bz_error *err)
{
    if (bz_pg_ensure(w->pg, err) != BZ_OK)
        return err ? err->code : BZ_ERR_TRANSIENT;
    PGconn *conn = bz_pg_conn(w->pg);
    if (conn != w->tuned) {
        if (bz_pg_exec(conn, "SET synchronous_commit = off", err) != BZ_OK) {
            bz_pg_reset(w->pg);
            return BZ_ERR_TRANSIENT;
        }
        w->tuned = conn;
    }
    return BZ_OK;
}

/* Buffer an outcome of the row claimed as `claims`; then (a dead letter, or
 * NULL) is published only if the outcome finds the row on that claim. Out
 * of memory, the outcome is lost: the lease runs out and the row is claimed
 * again. */
void wh_add_outcome(wh_worker *w, int64_t id, int64_t claims, const char *status,
                        int failed, int64_t delay_ms, const char *error, long code, void *then)
{
    wh_outcome_row row = {.id = id,
                             .claims = claims,
                             .status = status,
                             .failed = failed,
                             .delay_ms = delay_ms,
                             .code = code,
                             .then = then};
    bz_error err;
    if (wh_outcomes_add(&w->out, &row, error, &err) != BZ_OK) {
        bz_error_log("%s; the delivery is tried again when its lease runs out", err.msg);
        if (then)
            wh_dead_letters_confirmed(then, false);
    }
}

static void on_outcome_written(void *ctx, void *then, bool applied)
{
    (void)ctx;
    wh_dead_letters_confirmed(then, applied);
}

static bz_status flush_endpoint_stats(wh_worker *w, bz_error *err);

/* Write the buffered outcomes, then the endpoint stats. Stats refused for
 * their data are dropped (logged): they are a summary, the next outcomes
 * write them again. */
bz_status wh_flush_outcomes(wh_worker *w, bz_error *err)
{
    if (w->out.n > 0) {
        if (wh_worker_conn(w, err) != BZ_OK)
            return err->code;
        size_t stale = 0, dropped = 0;
        bz_status st = wh_outcomes_flush(&w->out, bz_pg_conn(w->pg), on_outcome_written, w,
                                            &stale, &dropped, err);
        if (w->have_metrics) {
            bz_counter_add(w->m.stale_outcomes, stale);
            bz_counter_add(w->m.dropped_outcomes, dropped);
        }
        if (st != BZ_OK) {
            if (st == BZ_ERR_TRANSIENT)
                bz_pg_reset(w->pg);
            return st;
        }
    }
    bz_status st = flush_endpoint_stats(w, err);
    if (st == BZ_ERR_INVALID) {
        bz_log(BZ_LOG_WARN, "%s (dropped)", err->msg);
        return BZ_OK;
    }
    return st;
}

/* Stored text is valid UTF-8: snprintf may cut a character in two. */
void wh_set_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
    bz_utf8_scrub(dst);
}

void wh_note_endpoint_result(wh_worker *w, wh_endpoint *ep, bool success, long code,
                                 const char *error)
{
    if (!ep->stat_listed) {
        ep->stat_listed = true;
        ep->stat_any_success = false;
        ep->stat_tail = 0;
        ep->stat_disable[0] = '\0';
        ep->stat_open_ms = 0;
        ep->next_stat = w->stat_head;
        w->stat_head = ep;
    }
    if (success) {
        ep->stat_any_success = true;
        ep->stat_tail = 0;
    } else {
        ep->stat_tail++;
    }
    ep->stat_code = code;
    wh_set_text(ep->stat_error, sizeof ep->stat_error, error ? error : "");
}

static bz_status flush_endpoint_stats(wh_worker *w, bz_error *err)
{
    size_t n = 0;
    for (wh_endpoint *ep = w->stat_head; ep; ep = ep->next_stat)
        n++;
    if (n == 0)
        return BZ_OK;
    bz_pg_columns c;
    bz_pg_columns_init(&c, n);
    int64_t *ids = bz_pg_columns_int64(&c), *tails = bz_pg_columns_int64(&c);
    const char **succ = bz_pg_columns_text(&c);
    int64_t *codes = bz_pg_columns_int64(&c);
    const char **errors = bz_pg_columns_text(&c), **disable = bz_pg_columns_text(&c);
    int64_t *opens = bz_pg_columns_int64(&c);
    size_t i = 0;
    for (wh_endpoint *ep = w->stat_head; !c.nomem && ep; ep = ep->next_stat, i++) {
        ids[i] = ep->id;
        tails[i] = ep->stat_tail;
        codes[i] = ep->stat_code;
        succ[i] = ep->stat_any_success ? "t" : "f";
        errors[i] = ep->stat_error;
        disable[i] = ep->stat_disable;
        opens[i] = ep->stat_open_ms;
    }
    bz_status st = bz_pg_columns_exec(&c, bz_pg_conn(w->pg), "wh_endpoint_stats", NULL, err);
    bz_pg_columns_free(&c);
    if (st == BZ_ERR_TRANSIENT)
        bz_pg_reset(w->pg);
    if (st != BZ_OK && st != BZ_ERR_INVALID)
        return bz_wrap(err, "write stats of %zu endpoints", n);
    for (wh_endpoint *ep = w->stat_head; ep;) {
        wh_endpoint *next = ep->next_stat;
        ep->stat_listed = false;
        ep->next_stat = NULL;
        ep = next;
    }
    w->stat_head = NULL;
    return st == BZ_OK ? BZ_OK : bz_wrap(err, "write stats of %zu endpoints", n);
}
