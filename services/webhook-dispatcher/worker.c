/*
 * worker.c - claim, send, record (see worker.h): the delivery worker's
 * thread, its loop, and its start and stop.
 *
 * One thread, one loop:
 *   1. write buffered outcomes (recording.c), then publish the dead letters
 *      whose claims those writes confirmed (dead_lettering.c)
 *   2. take the rows this process's fan-out just committed, leased to it
 *      and handed over in memory (wh_worker_hand_over); claim due rows
 *      (claim.c) when woken
 *      by another instance's NOTIFY, by the poll timer, by a retry this
 *      worker scheduled or by an endpoint with more rows due than its
 *      share let the last claim take, if there is room
 *   3. start attempts for endpoints with queued jobs, within their
 *      concurrency, rate and circuit limits (attempts.c)
 *   4. wait in curl_multi_poll for network activity or the LISTEN socket
 *   5. classify finished attempts and buffer their outcomes (attempts.c)
 * Every few seconds it also refreshes the queue-depth gauges and disables
 * endpoints that have been failing for too long; every second it renews
 * its heartbeat among the live instances, whose count divides every
 * endpoint's rate limit (peers.h), and claims nothing before its peers
 * have counted it (housekeeping.c). The state these files share, and the
 * endpoint table (endpoints.c), are described in worker_state.h.
 */
#include "worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "worker_state.h"

#define FLUSH_MAX 512 /* outcomes buffered before a write is due regardless of age */
#define FLUSH_AGE_MS 10

static void collect_results(wh_worker *w)
{
    wh_transfer *t;
    while ((t = wh_delivery_next_done(w->http)))
        wh_handle_result(w, t->user);
}

static void flush_if_due(wh_worker *w, bool force)
{
    if (w->out.n == 0 && !w->stat_head)
        return;
    if (!force && w->out.n < FLUSH_MAX / 2 &&
        bz_monotonic_ms() - w->out.oldest_ms < FLUSH_AGE_MS)
        return;
    bz_error err;
    bz_status st = wh_flush_outcomes(w, &err);
    if (st != BZ_OK) {
        /* only an unreachable database is "down": refused data was dealt
         * with by the writer and says nothing about PostgreSQL */
        if (st == BZ_ERR_TRANSIENT)
            atomic_store(&w->db_up, 0);
        bz_log(BZ_LOG_WARN, "%s (kept, retrying)", err.msg);
    }
}

static void maybe_claim(wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    if (!wh_peers_settled(&w->peers, now)) {
        w->next_claim_ms = now + 50; /* look again soon, without spinning */
        return;
    }
    /* a backlog is drained without waiting for the timer: claim again once
     * half of what is held locally has been worked off */
    bool low = w->more_due && w->local_jobs <= w->cfg.max_local_jobs / 2;
    if (!w->claim_now && !low && now < w->next_claim_ms)
        return;
    w->claim_now = false;
    flush_if_due(w, true); /* outcomes first, so rows just retried are not re-claimed early */
    bool full = false;
    int n = wh_claim(w, &full);
    w->more_due = n > 0 && full;
    if (w->more_due && w->local_jobs <= w->cfg.max_local_jobs / 2)
        w->claim_now = true;
    w->next_claim_ms = now + (n < 0 ? 1000 : w->cfg.poll_ms);
}

static void run_loop(wh_worker *w)
{
    while (!atomic_load(&w->stop)) {
        wh_heartbeat(w);
        flush_if_due(w, false);
        wh_drain_dead_letters(w);
        wh_renew_dead_letter_leases(w);
        wh_take_handed_over(w);
        maybe_claim(w);
        int64_t wait = wh_dispatch(w);
        wh_hand_back_blocked(w);
        int64_t until_claim = w->next_claim_ms - bz_monotonic_ms();
        if (until_claim < wait)
            wait = until_claim < 0 ? 0 : until_claim;
        int64_t until_beat = w->peers.next_beat_ms - bz_monotonic_ms();
        if (until_beat < wait)
            wait = until_beat < 0 ? 0 : until_beat;
        if (w->out.n > 0 && wait > FLUSH_AGE_MS)
            wait = FLUSH_AGE_MS;
        if (w->dl.head && wait > 50)
            wait = 50;
        bool notified = false;
        wh_delivery_poll(w->http, (int)wait, wh_listen_socket(w), &notified);
        if (notified)
            wh_read_notifications(w);
        collect_results(w);
        wh_housekeeping(w);
    }
}

/* Let in-flight attempts finish for stop_wait_ms, hand back the rest and
 * what was claimed but not started, publish the dead letters whose claims
 * are confirmed (bounded wait), write every outcome. An attempt's own
 * timeout (up to webhook.timeout_ms, minutes if so configured) is not
 * waited out: a receiver that accepts and never answers would hold the
 * stop past the orchestrator's grace period, whose kill leaves every claim
 * leased. An attempt cut short is delivered again, with the same
 * webhook-id, which receivers deduplicate. A dead letter left waiting
 * leaves its row leased: it is claimed and dead-lettered again after the
 * lease. */
static void wind_down(wh_worker *w)
{
    wh_take_handed_over(w); /* queued now, so handed back below */
    int64_t deadline = bz_monotonic_ms() + w->cfg.stop_wait_ms;
    while (wh_delivery_running(w->http) > 0 && bz_monotonic_ms() < deadline) {
        wh_delivery_poll(w->http, 50, -1, NULL);
        collect_results(w);
    }
    int cut_short = wh_delivery_running(w->http);
    if (cut_short > 0)
        bz_warn("stopping: %d attempt(s) unanswered after webhook.stop_wait_ms (%d ms) are "
                "handed back and will be sent again (same webhook-id)",
                cut_short, w->cfg.stop_wait_ms);
    while (w->in_flight) {
        wh_job *job = w->in_flight;
        wh_unlink_in_flight(w, job);
        wh_delivery_cancel(w->http, &job->t);
        wh_add_outcome(w, job->id, job->claims, "keep", 0, 0, "", 0, NULL);
        wh_free_job(w, job);
    }
    for (size_t i = 0; i < w->table_cap; i++) {
        wh_endpoint *ep = w->table[i];
        while (ep && ep->q_head) {
            wh_job *job = wh_dequeue_job(ep);
            wh_add_outcome(w, job->id, job->claims, "keep", 0, 0, "", 0, NULL);
            wh_free_job(w, job);
        }
    }
    bz_error err;
    int64_t dlq_deadline = bz_monotonic_ms() + 5000;
    while (w->dl.head && bz_monotonic_ms() < dlq_deadline) {
        if (w->out.n > 0 && wh_flush_outcomes(w, &err) != BZ_OK)
            bz_log(BZ_LOG_WARN, "write outcomes while stopping: %s", err.msg);
        wh_drain_dead_letters(w);
        bz_producer_poll(w->producer, 50);
    }
    for (int tries = 0; (w->out.n > 0 || w->stat_head) && tries < 10; tries++)
        if (wh_flush_outcomes(w, &err) != BZ_OK) {
            bz_log(BZ_LOG_WARN, "final write of outcomes: %s", err.msg);
            bz_sleep_ms(200);
        }
    if (bz_pg_ensure(w->pg, NULL) == BZ_OK)
        wh_peers_leave(&w->peers, bz_pg_conn(w->pg));
}

static void *worker_main(void *arg)
{
    wh_worker *w = arg;
    run_loop(w);
    wind_down(w);
    return NULL;
}

static bz_status register_metrics(wh_worker *w, bz_error *err)
{
    /* Delivery latencies: fine where a first attempt lives, and up to the
     * 10 hours a row's retries can take. */
    static const double latency[] = {0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02,
                                     0.025, 0.03,  0.04,  0.05,  0.075,  0.1,  0.15,  0.2,
                                     0.25,  0.3,   0.5,   1,     2.5,    5,    10,    30,
                                     60,    300,   1800,  7200,  36000};
    const size_t n_latency = sizeof latency / sizeof *latency;
    wh_worker_metrics *m = &w->m;
    const bz_metric_decl decls[] = {
        {.def = {.name = "blazz_webhook_dispatcher_deliveries_total",
                 .help = "Delivery attempts by outcome (success, retry, failed, exhausted) and "
                         "HTTP status class.",
                 .label_names = (const char *const[]){"outcome", "status_class", NULL}},
         .counters = &m->deliveries},
        {.def = {.name = "blazz_webhook_dispatcher_attempts_total",
                 .help = "HTTP attempts started."},
         .counter = &m->attempts},
        {.def = {.name = "blazz_webhook_dispatcher_dead_lettered_total",
                 .help = "Exhausted deliveries written to webhook.dlq."},
         .counter = &m->dead_lettered},
        {.def = {.name = "blazz_webhook_dispatcher_dead_letters_pending",
                 .help = "Dead letters held in memory until the broker acknowledges them (at "
                         "most webhook.max_pending_dead_letters)."},
         .gauge = &m->dead_letters_pending},
        {.def = {.name = "blazz_webhook_dispatcher_dead_letters_deferred_total",
                 .help = "Undeliverable deliveries left in the table for a lease because "
                         "enough dead letters were pending."},
         .counter = &m->dead_letters_deferred},
        {.def = {.name = "blazz_webhook_dispatcher_stale_outcomes_total",
                 .help = "Outcomes ignored: the row was on another claim (this one's lease had "
                         "run out) or already final."},
         .counter = &m->stale_outcomes},
        {.def = {.name = "blazz_webhook_dispatcher_dropped_outcomes_total",
                 .help = "Outcomes PostgreSQL refused even without their error text (the "
                         "delivery is tried again)."},
         .counter = &m->dropped_outcomes},
        {.def = {.name = "blazz_webhook_dispatcher_handed_over_total",
                 .help = "Rows the fan-out handed to this worker after its commit: leased for "
                         "their first attempt, or left to the claims.",
                 .label_names = (const char *const[]){"outcome", NULL}},
         .counters = &m->handed_over},
        {.def = {.name = "blazz_webhook_dispatcher_queue_depth",
                 .help = "Open rows of webhook_retry_queue by status.",
                 .label_names = (const char *const[]){"status", NULL}},
         .gauges = &m->depth},
        {.def = {.name = "blazz_webhook_dispatcher_circuit_state",
                 .help = "Circuit breaker per endpoint: 0 closed, 1 open, 2 half-open.",
                 .label_names = (const char *const[]){"endpoint", NULL},
                 .max_children = 1024},
         .gauges = &m->circuit},
        {.def = {.name = "blazz_webhook_dispatcher_in_flight", .help = "HTTP attempts in flight."},
         .gauge = &m->in_flight},
        {.def = {.name = "blazz_webhook_dispatcher_enqueue_to_first_attempt_seconds",
                 .help = "From fan-out (row created) to the first attempt.",
                 .buckets = latency,
                 .n_buckets = n_latency},
         .histogram = &m->to_first_attempt},
        {.def = {.name = "blazz_webhook_dispatcher_first_attempt_to_success_seconds",
                 .help = "From fan-out (row created, when the first attempt is due) to "
                         "success, retries included.",
                 .buckets = latency,
                 .n_buckets = n_latency},
         .histogram = &m->to_success},
        {.def = {.name = "blazz_webhook_dispatcher_attempt_seconds",
                 .help = "One HTTP attempt, from its start to the endpoint's answer (or the "
                         "transport's failure).",
                 .buckets = latency,
                 .n_buckets = n_latency},
         .histogram = &m->attempt_seconds},
    };
    bz_status st = BZ_METRICS_DECLARE(w->cfg.metrics, decls, err);
    if (st != BZ_OK)
        return st;
    w->have_metrics = true;
    return BZ_OK;
}

static bz_status prepare_statements(wh_worker *w, bz_error *err)
{
    if (wh_outcomes_prepare(w->pg, err) != BZ_OK ||
        wh_dead_letters_prepare(w->pg, err) != BZ_OK ||
        bz_pg_prepare(w->pg, "wh_endpoint_stats", wh_endpoint_stats_sql, err) != BZ_OK ||
        bz_pg_prepare(w->pg, "wh_auto_disable", wh_auto_disable_sql, err) != BZ_OK ||
        bz_pg_prepare(w->pg, WH_PEERS_BEAT_STMT, wh_peers_beat_sql, err) != BZ_OK ||
        bz_pg_prepare(w->pg, WH_PEERS_LEAVE_STMT, wh_peers_leave_sql, err) != BZ_OK ||
        bz_pg_prepare(w->listen, "wh_depth", wh_depth_sql, err) != BZ_OK)
        return err->code;
    return BZ_OK;
}

static void free_worker(wh_worker *w)
{
    for (size_t i = 0; i < w->table_cap; i++)
        if (w->table[i])
            wh_free_endpoint(w->table[i]);
    free(w->table);
    /* the producer first: freeing it reports on the dead letters it still
     * holds, whose memory the dead-letter set owns */
    if (w->producer)
        bz_producer_free(w->producer, 5000);
    wh_dead_letters_free(&w->dl);
    wh_outcomes_free(&w->out);
    wh_delivery_free(w->http);
    bz_pg_close(w->listen);
    bz_pg_close(w->pg);
    while (w->handed_head) {
        wh_handed_over *next = w->handed_head->next;
        PQclear(w->handed_head->rows);
        free(w->handed_head);
        w->handed_head = next;
    }
    pthread_mutex_destroy(&w->handed_mu);
    free(w);
}

bz_status wh_worker_start(const wh_worker_config *cfg, wh_worker **out, bz_error *err)
{
    wh_worker *w = calloc(1, sizeof *w);
    if (!w)
        return bz_fail(err, BZ_ERR_NOMEM, "webhook worker: out of memory");
    w->cfg = *cfg;
    pthread_mutex_init(&w->handed_mu, NULL);
    w->table_cap = 64;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): slots are pointers, sized as such */
    w->table = calloc(w->table_cap, sizeof *w->table);
    const char *bases[3] = {bz_topic_base(BZ_TOPIC_CHAT_EVENTS),
                            bz_topic_base(BZ_TOPIC_SESSION_EVENTS),
                            bz_topic_base(BZ_TOPIC_CAMPAIGN_EVENTS)};
    bz_status st = w->table ? BZ_OK : bz_fail(err, BZ_ERR_NOMEM, "webhook worker: out of memory");
    for (int i = 0; st == BZ_OK && i < 3; i++)
        st = bz_topic_name_checked(cfg->topic_prefix, bases[i], w->source_topics[i],
                                   sizeof w->source_topics[i], err);
    if (st == BZ_OK && cfg->metrics)
        st = register_metrics(w, err);
    if (st == BZ_OK)
        st = wh_peers_init(&w->peers, err);
    if (st == BZ_OK)
        st = bz_pg_open(cfg->pg_dsn, &w->pg, err);
    if (st == BZ_OK)
        st = bz_pg_open(cfg->pg_dsn, &w->listen, err);
    if (st == BZ_OK)
        st = prepare_statements(w, err);
    if (st == BZ_OK)
        st = wh_delivery_new(&cfg->delivery, &w->http, err);
    if (st == BZ_OK)
        st = bz_producer_new(&cfg->kafka, &w->producer, err);
    if (st == BZ_OK) {
        w->dl = (wh_dead_letters){.producer = w->producer,
                                     .topic = cfg->dlq_topic,
                                     .service = cfg->service,
                                     .max_pending = cfg->max_pending_dead_letters,
                                     .lease_ms = cfg->claim_lease_ms};
        atomic_init(&w->stop, false);
        atomic_init(&w->db_up, 0);
        w->claim_now = true;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            st = bz_fail(err, BZ_ERR_INTERNAL, "webhook worker: cannot start its thread");
    }
    if (st != BZ_OK) {
        free_worker(w);
        return bz_wrap(err, "start webhook delivery worker");
    }
    *out = w;
    return BZ_OK;
}

void wh_worker_stop(wh_worker *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    free_worker(w);
}

int wh_worker_db_up(const wh_worker *w)
{
    return atomic_load(&w->db_up);
}

void wh_worker_hand_over(wh_worker *w, PGresult *rows, int64_t leased_at_ms)
{
    wh_handed_over *h = malloc(sizeof *h);
    if (!h) {
        /* their lease runs out, then anyone claims them */
        PQclear(rows);
        return;
    }
    h->next = NULL;
    h->rows = rows;
    h->leased_at_ms = leased_at_ms;
    pthread_mutex_lock(&w->handed_mu);
    if (w->handed_tail)
        w->handed_tail->next = h;
    else
        w->handed_head = h;
    w->handed_tail = h;
    pthread_mutex_unlock(&w->handed_mu);
    wh_delivery_wakeup(w->http);
}

const char *wh_worker_instance_id(const wh_worker *w)
{
    return w->peers.instance_id;
}
