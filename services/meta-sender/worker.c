/*
 * worker.c - the active Meta sender's thread: its connection, the sender
 * lock and the round (see meta_sender.h, ARCHITECTURE.md §12).
 *
 * One thread, one PostgreSQL connection, one libcurl multi handle (a pool
 * of keep-alive connections to the Graph API host). Only the instance that
 * holds the session advisory lock named meta.lock_name sends; others retry
 * the lock every second. A round:
 *   1. every second, or when NOTIFY blazz_meta_send arrives (at most every
 *      NOTIFIED_REFRESH_MS), re-read the accounts and tokens (tokens.c);
 *   2. in one transaction, write the outcomes of finished requests and
 *      claim, per account with a valid token, as many due queued rows as
 *      its pace allows, setting them in_flight (outcomes.c, claim.c): the
 *      row is durably in_flight before its request leaves, so after a
 *      crash it is known to be possibly at Meta;
 *   3. start their requests (claim.c) and wait on the sockets (libcurl's
 *      and the database's, for notifications) until something finishes, a
 *      row falls due or the pace allows more; finished requests are
 *      collected there (outcomes.c).
 * Taking the lock, the worker first writes the outcomes it still holds
 * (requests made under a lock this connection lost), then settles the
 * rows a previous holder left in_flight: each is the ambiguous window (it
 * may or may not have reached Meta), counted in ambiguous_resends and put
 * back due after meta.ambiguous_hold_ms. A lost connection loses the lock
 * with it. On stop, the requests in flight get up to the request timeout
 * to finish and their outcomes are written.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "pg/pg.h"
#include "active_sender.h"

#define LOCK_RETRY_MS 1000
#define REFRESH_MS 1000
#define NOTIFIED_REFRESH_MS 100
#define BACKLOG_EVERY_MS 10000 /* a count over the queue: not every round */
#define POLL_MAX_MS 50

#define SQL_RECOVER                                                                               \
    "UPDATE meta_sends SET state = 'queued', ambiguous_resends = ambiguous_resends + 1, "       \
    "due_at = now() + $1::bigint * interval '1 millisecond' WHERE state = 'in_flight'"

static void drop_connection(ms_worker *w, const char *why)
{
    if (w->conn) {
        bz_warn("meta sender: database connection dropped (%s)%s", why,
                w->locked ? "; the sender lock is released with it" : "");
        PQfinish(w->conn);
    }
    w->conn = NULL;
    w->locked = 0;
    w->next_connect_ms = bz_monotonic_ms() + LOCK_RETRY_MS;
}

static bz_status connect_db(ms_worker *w, bz_error *err)
{
    bz_pg *pg = NULL;
    bz_status st = bz_pg_open(w->dsn, &pg, err);
    if (st == BZ_OK)
        st = bz_pg_ensure(pg, err);
    PGconn *probe = st == BZ_OK ? bz_pg_conn(pg) : NULL;
    if (probe)
        st = bz_pg_connect_like(probe, &w->conn, err);
    bz_pg_close(pg);
    if (st == BZ_OK && w->conn)
        st = bz_pg_exec(w->conn, "LISTEN blazz_meta_send", err);
    return st;
}

/* The rows a previous holder left in_flight: the ambiguous window. */
static bz_status recover_in_flight(ms_worker *w, bz_error *err)
{
    char hold[24];
    snprintf(hold, sizeof hold, "%" PRId64, w->s->ambiguous_hold_ms);
    const char *params[] = {hold};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(w->conn, "recover in-flight Meta sends", SQL_RECOVER, 1,
                                     params, &res, err);
    if (st == BZ_OK) {
        int64_t n = bz_pg_affected_rows(res);
        if (n)
            bz_warn("meta sender: %" PRId64 " sends were in flight when the previous sender "
                    "stopped (ambiguous): each is sent again after %" PRId64
                    " ms unless a status webhook shows it reached Meta",
                    n, w->s->ambiguous_hold_ms);
    }
    PQclear(res);
    return st;
}

static bz_status take_lock(ms_worker *w, bz_error *err)
{
    const char *params[] = {w->s->lock_name};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(w->conn, "take the Meta sender lock",
                                     "SELECT pg_try_advisory_lock(hashtext($1)::bigint)", 1,
                                     params, &res, err);
    int got = st == BZ_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (st != BZ_OK || !got)
        return st;
    /* Outcomes of requests made under a lock this connection lost are ours:
     * written before the rows are declared ambiguous. */
    st = ms_write_outcomes(w, err);
    if (st == BZ_OK)
        st = recover_in_flight(w, err);
    if (st == BZ_OK) {
        w->locked = 1;
        w->next_refresh_ms = 0;
        bz_info("meta sender: active (sender lock taken)");
    }
    return st;
}

static void read_notifications(ms_worker *w)
{
    if (w->conn && bz_pg_take_notifications(w->conn))
        w->notified = 1;
}

static int64_t next_wait_ms(ms_worker *w, int64_t now)
{
    int64_t wait = POLL_MAX_MS;
    for (size_t i = 0; i < w->accounts.n; i++) {
        ms_account *a = w->accounts.items[i];
        if (a->state != MS_TOKEN_OPEN)
            continue;
        int64_t d = ms_pace_wait_ms(&a->pace, now);
        if (d > 0 && d < wait)
            wait = d;
    }
    return wait;
}

static void wait_for_work(ms_worker *w)
{
    int64_t now = bz_monotonic_ms();
    int timeout = w->notified ? 0 : (int)next_wait_ms(w, now);
    struct curl_waitfd extra = {.fd = w->conn ? PQsocket(w->conn) : -1, .events = CURL_WAIT_POLLIN};
    curl_multi_poll(w->multi, extra.fd >= 0 ? &extra : NULL, extra.fd >= 0 ? 1 : 0, timeout, NULL);
    int still;
    curl_multi_perform(w->multi, &still);
    ms_collect_finished(w);
    read_notifications(w);
}

#define SQL_BACKLOG                                                                               \
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "                  \
    "FROM meta_sends WHERE state = 'queued'"

/* The queue behind the sender, for operators (the backlog alert): what
 * the active sender sees; a standby exports nothing of it. */
static void measure_backlog(ms_worker *w)
{
    PGresult *res = NULL;
    bz_error err;
    if (bz_pg_exec_params(w->conn, "measure the send backlog", SQL_BACKLOG, 0, NULL, &res,
                          &err) == BZ_OK && PQntuples(res) == 1) {
        bz_gauge_set(w->m->backlog, strtod(PQgetvalue(res, 0, 0), NULL));
        bz_gauge_set(w->m->backlog_oldest_seconds, strtod(PQgetvalue(res, 0, 1), NULL));
    }
    PQclear(res);
}

/* Steps 1-3, with the lock held. */
static bz_status round_locked(ms_worker *w, bz_error *err)
{
    int64_t now = bz_monotonic_ms();
    bz_status st = BZ_OK;
    /* A notification means new sends or a new token: the accounts are
     * re-read then too, but not more often than NOTIFIED_REFRESH_MS, since
     * under load the intake commits (and notifies) every few milliseconds
     * and every round claims the known accounts' rows anyway. */
    if (now >= w->next_refresh_ms ||
        (w->notified && now - w->last_refresh_ms >= NOTIFIED_REFRESH_MS)) {
        if (now >= w->next_backlog_ms) {
            w->next_backlog_ms = now + BACKLOG_EVERY_MS;
            measure_backlog(w);
        }
        w->next_refresh_ms = now + REFRESH_MS;
        w->last_refresh_ms = now;
        st = ms_accounts_refresh(w->conn, &w->accounts, w->s, now, err);
        if (st == BZ_OK)
            st = ms_restore_fence_check(w, err);
    }
    w->notified = 0;
    PGresult *claimed = NULL;
    if (st == BZ_OK)
        st = ms_round_transaction(w, atomic_load(&w->stop) ? NULL : &claimed, err);
    if (st == BZ_OK)
        ms_start_claimed_rows(w, claimed);
    PQclear(claimed);
    return st;
}

static void round_once(ms_worker *w)
{
    bz_error err;
    bz_error_clear(&err);
    int64_t now = bz_monotonic_ms();
    bz_status st = BZ_OK;
    if (!w->conn && now >= w->next_connect_ms) {
        st = connect_db(w, &err);
        if (st != BZ_OK) {
            bz_warn("meta sender: %s", err.msg);
            drop_connection(w, "connect failed");
            return;
        }
    }
    if (w->conn && !w->locked && now >= w->next_connect_ms) {
        st = take_lock(w, &err);
        w->next_connect_ms = now + LOCK_RETRY_MS;
    } else if (w->conn && w->locked) {
        st = round_locked(w, &err);
    }
    if (st != BZ_OK) {
        bz_error_log("meta sender: %s", err.msg);
        if (st == BZ_ERR_TRANSIENT || PQstatus(w->conn) != CONNECTION_OK)
            drop_connection(w, err.msg);
    }
}

static void *worker_main(void *arg)
{
    ms_worker *w = arg;
    while (!atomic_load(&w->stop)) {
        round_once(w);
        wait_for_work(w);
    }
    /* Finish what is in flight: its outcomes are known soon (request timeout). */
    int64_t deadline = bz_monotonic_ms() + w->s->request_timeout_ms + 1000;
    while (w->running && bz_monotonic_ms() < deadline)
        wait_for_work(w);
    bz_error err;
    bz_error_clear(&err);
    if (w->conn && w->locked && ms_write_outcomes(w, &err) != BZ_OK)
        bz_error_log("meta sender: outcomes at shutdown: %s (their rows stay in_flight)", err.msg);
    return NULL;
}

bz_status ms_worker_start(const ms_settings *s, const char *dsn, ms_metrics *m, ms_worker **out,
                          bz_error *err)
{
    *out = NULL;
    ms_worker *w = calloc(1, sizeof *w);
    if (!w)
        return bz_fail(err, BZ_ERR_NOMEM, "meta sender: out of memory");
    w->s = s;
    w->dsn = dsn;
    w->m = m;
    w->multi = curl_multi_init();
    if (!w->multi) {
        free(w);
        return bz_fail(err, BZ_ERR_NOMEM, "meta sender: no libcurl multi handle");
    }
    curl_multi_setopt(w->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)s->max_connections);
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)s->max_connections);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        curl_multi_cleanup(w->multi);
        free(w);
        return bz_fail(err, BZ_ERR_INTERNAL, "meta sender: cannot start its thread");
    }
    *out = w;
    return BZ_OK;
}

void ms_worker_stop(ms_worker *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, 1);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    for (size_t i = 0; i < w->done.n; i++)
        ms_job_free(w->done.items[i]);
    free(w->done.items);
    /* Requests still running past the deadline: their rows stay in_flight. */
    if (w->running)
        bz_warn("meta sender: %zu requests still running at exit: their rows stay in_flight",
                w->running);
    for (ms_job *j = w->running_head, *next; j; j = next) {
        next = j->next;
        curl_multi_remove_handle(w->multi, j->easy);
        ms_job_free(j);
    }
    w->running_head = NULL;
    w->running = 0;
    curl_multi_cleanup(w->multi);
    ms_accounts_free(&w->accounts);
    if (w->conn)
        PQfinish(w->conn);
    free(w);
}

