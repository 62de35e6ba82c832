/*
 * sender.c - the send loop's thread: its connection, the sender lock, the
 * scheduler's turn and the pace of the loop.
 *
 * One thread with its own PostgreSQL connection. Every instance runs the
 * scheduler scan (scheduler.c decides "once" in PostgreSQL); only the
 * instance holding the session advisory lock sender.lock_name runs the send
 * loop, so the send budget (budget.c) lives in one process and limits
 * hold however many instances run. The lock dies with the
 * connection, so a standby takes over within a second of a crash, and a
 * reset connection means the lock is lost.
 *
 * While holding the lock, each iteration refreshes the running campaigns
 * every sender.refresh_ms (refresh.c) with Meta's throttling of accounts
 * (meta_throttle, a rule of the budget: budget.h), reloads the send budget from
 * send_ledger when it is not known to be right (on taking the lock, after a
 * failed release), then runs one send round (send_round.c) and sleeps as
 * long as the round says, at most until the next refresh. The sleep ends
 * early on NOTIFY blazz_send (chat-sync queued an agent's message) or a
 * stop. The budget's clock is PostgreSQL's (sender_db.c), aligned at each
 * refresh and each budget reload.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/signals.h"
#include "send_loop.h"
#include "sender.h"
#include "standing.h"

#define LOCK_RETRY_MS 1000
#define STATE_METRICS_MS 5000

#define SQL_LOCK "SELECT pg_try_advisory_lock(hashtext($1)::bigint)"
#define SQL_STATES "SELECT status, count(*) FROM campaigns WHERE deleted_at IS NULL GROUP BY status"

/* Why paused campaigns wait, from the pause_reason the sender wrote (the
 * prefixes of refresh.c, standing.h and autopause.c; an operator's pause
 * says who paused it). */
#define SQL_PAUSED                                                                                \
    "SELECT CASE WHEN pause_reason LIKE '" CMP_TOKEN_PAUSE "%' THEN 'token_invalid' "             \
    "WHEN pause_reason LIKE '" CMP_TEMPLATE_PAUSE "%' THEN 'template_not_sendable' "              \
    "WHEN pause_reason LIKE '" CMP_STANDING_PAUSE "%' THEN 'account_standing' "                   \
    "WHEN pause_reason LIKE '" CMP_AUTOPAUSE_PREFIX "%' THEN 'failure_rate' "                      \
    "WHEN pause_reason LIKE 'no connected%' OR pause_reason LIKE 'sending account%' "             \
    "THEN 'no_account' "                                                                          \
    "WHEN pause_reason LIKE 'its messages cannot go through Meta%' THEN 'meta_refused' "          \
    "WHEN pause_reason LIKE 'paused by %' THEN 'manual' ELSE 'other' END, count(*) "              \
    "FROM campaigns WHERE status = 'paused' AND deleted_at IS NULL GROUP BY 1"

/* family{label} := the count sql's rows give label (label, count), for
 * each of the n labels (0 for a label no row has). */
static void count_into(cmp_sender *s, const char *what, const char *sql, bz_gauge_family *family,
                       const char *const *labels, size_t n)
{
    PGresult *res;
    bz_error err;
    if (bz_pg_exec_params(bz_pg_conn(s->pg), what, sql, 0, NULL, &res, &err) != BZ_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        double v = 0;
        for (int r = 0; r < PQntuples(res); r++)
            if (strcmp(PQgetvalue(res, r, 0), labels[i]) == 0)
                v = strtod(PQgetvalue(res, r, 1), NULL);
        bz_gauge_set(bz_gauge_family_with(family, labels[i]), v);
    }
    PQclear(res);
}

static void update_state_metrics(cmp_sender *s)
{
    static const char *const states[] = {"draft", "scheduled", "running", "paused",
                                         "completed", "failed", "cancelled"};
    static const char *const reasons[] = {"token_invalid", "template_not_sendable",
                                          "account_standing", "failure_rate", "no_account",
                                          "meta_refused", "manual", "other"};
    count_into(s, "count campaigns by state", SQL_STATES, s->ctx->m.campaigns, states,
               sizeof states / sizeof states[0]);
    count_into(s, "count paused campaigns by why", SQL_PAUSED, s->ctx->m.paused, reasons,
               sizeof reasons / sizeof reasons[0]);
}

static void lose_leadership(cmp_sender *s)
{
    if (atomic_load(&s->leader))
        bz_warn("campaign sender: lost the sender lock (connection reset)");
    atomic_store(&s->leader, 0);
    bz_gauge_set(s->ctx->m.leader, 0);
}

static void try_become_leader(cmp_sender *s, int64_t now)
{
    PGconn *conn = bz_pg_conn(s->pg);
    if (atomic_load(&s->leader) && PQbackendPID(conn) != s->leader_pid)
        lose_leadership(s);
    if (atomic_load(&s->leader) || now < s->next_lock_ms)
        return;
    s->next_lock_ms = now + LOCK_RETRY_MS;
    const char *params[] = {s->ctx->set.lock_name};
    PGresult *res;
    bz_error err;
    if (bz_pg_exec_params(conn, "take the sender lock", SQL_LOCK, 1, params, &res, &err) != BZ_OK) {
        bz_warn("campaign sender: %s", err.msg);
        return;
    }
    if (PQgetvalue(res, 0, 0)[0] == 't') {
        s->leader_pid = PQbackendPID(conn);
        atomic_store(&s->leader, 1);
        bz_gauge_set(s->ctx->m.leader, 1);
        s->next_refresh_ms = now;
        s->budget_loaded = 0; /* what the previous holder released counts */
        s->agents_due = 1;
        bz_info("campaign sender: holding the sender lock '%s', sending", s->ctx->set.lock_name);
    }
    PQclear(res);
}

static bz_status schedule_in_tx(cmp_sender *s, PGconn *conn, void *arg)
{
    (void)s;
    (void)arg;
    int started = 0;
    bz_error err;
    bz_status st = cmp_scheduler_run(conn, &started, &err);
    if (st != BZ_OK)
        bz_error_log("scheduler: %s", err.msg);
    return st;
}

static int stopping(const cmp_sender *s)
{
    return atomic_load(&s->stop) || bz_shutdown_requested();
}

/* LISTEN on the current backend (again after a reconnect). */
static void ensure_listening(cmp_sender *s)
{
    PGconn *conn = bz_pg_conn(s->pg);
    if (PQbackendPID(conn) == s->listen_pid)
        return;
    bz_error err;
    if (bz_pg_exec(conn, "LISTEN blazz_send", &err) != BZ_OK) {
        bz_warn("campaign sender: %s", err.msg);
        return;
    }
    s->listen_pid = PQbackendPID(conn);
    s->agents_due = 1; /* notifications sent before this LISTEN were missed */
}

static int stop_asked(void *s)
{
    return stopping(s);
}

/* Sleep up to ms, waking early when chat-sync queues an agent message (a
 * NOTIFY blazz_send) or a stop is asked (looked at every 50 ms). */
static void wait_for_work(cmp_sender *s, int64_t ms)
{
    PGconn *listening = s->listen_pid ? bz_pg_conn(s->pg) : NULL;
    if (bz_pg_wait_notify_or_stop(listening, ms, 50, stop_asked, s))
        s->agents_due = 1;
}

/* Before the first release as holder of the lock (and after a failed
 * release): align the clock and count what send_ledger says was released
 * in the last hour, whoever released it. */
static bz_status load_budget(cmp_sender *s, bz_error *err)
{
    bz_status st = cmp_sender_align_clock(s, err);
    if (st == BZ_OK)
        st = cmp_budget_load(s->budget, bz_pg_conn(s->pg), cmp_sender_budget_now(s), err);
    s->budget_loaded = st == BZ_OK;
    return st;
}

/* One iteration; returns how long to sleep. */
static int64_t loop_once(cmp_sender *s)
{
    const cmp_settings *set = &s->ctx->set;
    bz_error err;
    if (bz_pg_ensure(s->pg, &err) != BZ_OK) {
        lose_leadership(s);
        return CMP_SENDER_ERROR_BACKOFF_MS;
    }
    ensure_listening(s);
    int64_t now = bz_monotonic_ms();
    int failed = 0;
    if (set->scheduler_enabled && now >= s->next_schedule_ms) {
        s->next_schedule_ms = now + set->scheduler_interval_ms;
        failed |= cmp_sender_run_in_tx(s, schedule_in_tx, NULL, &err) != BZ_OK;
    }
    if (set->sender_enabled)
        try_become_leader(s, now);
    int64_t sleep_ms = set->sender_idle_ms;
    if (atomic_load(&s->leader)) {
        if (now >= s->next_states_ms) {
            s->next_states_ms = now + STATE_METRICS_MS;
            update_state_metrics(s);
        }
        if (now >= s->next_refresh_ms) {
            s->next_refresh_ms = now + set->sender_refresh_ms;
            s->agents_due = 1; /* a lost notification costs one refresh at most */
            if (cmp_sender_refresh(s, &err) != BZ_OK || cmp_sender_align_clock(s, &err) != BZ_OK ||
                cmp_budget_load_throttles(s->budget, bz_pg_conn(s->pg), cmp_sender_budget_now(s),
                                          &err) != BZ_OK) {
                bz_error_log("campaign sender refresh: %s", err.msg);
                failed = 1;
            }
            bz_gauge_set(bz_gauge_family_with(s->ctx->m.accounts_slowed, "meta_throttled"),
                         (double)cmp_budget_throttled_accounts(s->budget));
        }
        if (!failed && !s->budget_loaded && load_budget(s, &err) != BZ_OK) {
            bz_error_log("campaign sender: %s", err.msg);
            failed = 1;
        }
        if (!failed)
            sleep_ms = cmp_sender_send_round(s, &failed);
        int64_t to_refresh = s->next_refresh_ms - bz_monotonic_ms();
        if (to_refresh < sleep_ms)
            sleep_ms = to_refresh < 0 ? 0 : to_refresh;
    }
    if (failed) {
        if (PQstatus(bz_pg_conn(s->pg)) != CONNECTION_OK) {
            bz_pg_reset(s->pg);
            lose_leadership(s);
        }
        return CMP_SENDER_ERROR_BACKOFF_MS;
    }
    return sleep_ms;
}

static void *sender_main(void *arg)
{
    cmp_sender *s = arg;
    while (!stopping(s)) {
        int64_t sleep_ms = loop_once(s);
        if (sleep_ms > 0)
            wait_for_work(s, sleep_ms);
    }
    return NULL;
}

bz_status cmp_sender_start(const cmp_ctx *ctx, const char *dsn, cmp_sender **out, bz_error *err)
{
    cmp_sender *s = calloc(1, sizeof *s);
    if (!s)
        return bz_fail(err, BZ_ERR_NOMEM, "campaign sender: out of memory");
    s->ctx = ctx;
    s->budget = cmp_budget_new(ctx->set.window_guard_ms, ctx->set.smoothing_ms,
                               (cmp_pair_rate){ctx->set.pair_interval_ms, ctx->set.pair_burst});
    s->jitter_seed = (uint64_t)bz_wall_ms(); /* two instances draw different gaps */
    bz_status st = s->budget ? bz_pg_open(dsn, &s->pg, err)
                             : bz_fail(err, BZ_ERR_NOMEM, "campaign sender: out of memory");
    if (st == BZ_OK)
        st = cmp_sender_prepare_sends(s->pg, err);
    if (st == BZ_OK && pthread_create(&s->thread, NULL, sender_main, s) != 0)
        st = bz_fail(err, BZ_ERR_INTERNAL, "campaign sender: cannot start thread");
    if (st != BZ_OK) {
        bz_pg_close(s->pg);
        cmp_budget_free(s->budget);
        free(s);
        return st;
    }
    *out = s;
    return BZ_OK;
}

void cmp_sender_stop(cmp_sender *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < s->ncampaigns; i++)
        cmp_campaign_slot_free(s->campaigns[i]);
    for (size_t i = 0; i < s->naccounts; i++) {
        bz_account_clear(&s->accounts[i]->acc);
        free(s->accounts[i]);
    }
    for (size_t i = 0; i < s->nworkspaces; i++)
        free(s->workspaces[i]);
    free(s->campaigns);
    free(s->accounts);
    free(s->workspaces);
    bz_pg_close(s->pg); /* releases the sender lock */
    cmp_budget_free(s->budget);
    free(s);
}

int cmp_sender_is_leader(const cmp_sender *s)
{
    return s && atomic_load(&s->leader);
}
