/*
 * http_producer.c - the HTTP path's producer and the requests waiting for
 * its acknowledgements (see http_producer.h).
 *
 * Each ing_http_acks counts its records still unreported. One mutex guards
 * every acks and the list of those whose connection is suspended; a
 * connection is suspended under that mutex, so the delivery report of its
 * last record (served on the poller thread, which takes the mutex) cannot
 * try to resume it before it was suspended. The poller also resumes
 * requests that waited produce_timeout_ms + 1 s: librdkafka reports every
 * record within message.timeout.ms, but a request must never hang on that
 * promise alone.
 *
 * An acks is freed by whoever comes last: the request releasing it, or the
 * delivery report of its last record after the request let go. Once ingest
 * stops waiting (ing_http_producer_stop_waiting, under the same mutex) no
 * connection is suspended any more: a request that comes in on a
 * kept-alive connection while libmicrohttpd is being stopped, and would
 * otherwise sleep through its stop (which aborts on a suspended
 * connection), is answered at once.
 *
 * The producer can be rebuilt after a fatal librdkafka error: the event
 * loops hold a read lock while producing; the poller makes a new producer,
 * swaps it in under the write lock, then purges the old one (failing its
 * queued records back to their requests) and destroys it.
 */
#include "http_producer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "kafka/limits.h"
#include "kafka/producer.h"

#define POLL_MS 100
#define OVERDUE_MARGIN_MS 1000

struct ing_http_acks {
    ing_http_acks *prev, *next; /* in waiting while suspended */
    struct MHD_Connection *conn;
    int64_t deadline_ms;
    int remaining;
    ing_http_outcome outcome;
    int suspended;
    int released;
};

struct ing_http_producer {
    ing_http_producer_config cfg;
    rd_kafka_t *rk;
    pthread_rwlock_t rk_lock;
    atomic_int fatal;
    atomic_int running;
    pthread_t poller;
    int poller_started;
    pthread_mutex_t mu;
    ing_http_acks *waiting;
    int n_waiting;
    int stopped_waiting; /* ing_http_producer_stop_waiting was called */
};

/* ---- waking requests (under mu) ------------------------------------------ */

static void unlink_waiting(ing_http_producer *p, ing_http_acks *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        p->waiting = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->prev = a->next = NULL;
    a->suspended = 0;
    p->n_waiting--;
}

/* a failed with why, unless it failed already. */
static void fail(ing_http_acks *a, ing_http_outcome why)
{
    if (a->outcome == ING_HTTP_ACKNOWLEDGED)
        a->outcome = why;
}

static void wake(ing_http_producer *p, ing_http_acks *a)
{
    unlink_waiting(p, a);
    MHD_resume_connection(a->conn);
}

static void wake_overdue(ing_http_producer *p)
{
    pthread_mutex_lock(&p->mu);
    int64_t now = bz_monotonic_ms();
    ing_http_acks *a = p->waiting;
    while (a) {
        ing_http_acks *next = a->next;
        if (now >= a->deadline_ms) {
            fail(a, ING_HTTP_NOT_ACKNOWLEDGED);
            wake(p, a);
        }
        a = next;
    }
    pthread_mutex_unlock(&p->mu);
}

/* ---- the producer --------------------------------------------------------- */

/* One of a's records settled (under mu) with outcome: wake its request
 * when it was the last; returns 1 when a is to be freed (its request let
 * go already). */
static int settle_locked(ing_http_producer *p, ing_http_acks *a, ing_http_outcome outcome)
{
    fail(a, outcome);
    int settled = --a->remaining == 0;
    if (settled && a->suspended)
        wake(p, a);
    return settled && a->released;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    ing_http_producer *p = opaque;
    ing_http_acks *a = msg->_private;
    if (!a)
        return;
    ing_http_outcome outcome = bz_kafka_delivery_error(msg) == RD_KAFKA_RESP_ERR_NO_ERROR
                                   ? ING_HTTP_ACKNOWLEDGED
                                   : ING_HTTP_NOT_ACKNOWLEDGED;
    pthread_mutex_lock(&p->mu);
    int orphaned = settle_locked(p, a, outcome);
    pthread_mutex_unlock(&p->mu);
    if (orphaned)
        free(a);
}

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    ing_http_producer *p = opaque;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char why[256];
        rd_kafka_fatal_error(rk, why, sizeof why);
        bz_error_log("http producer fatal error: %s; recreating", why);
        atomic_store(&p->fatal, 1);
        return;
    }
    bz_debug("http producer: %s: %s", rd_kafka_err2name(code), reason);
}

/* A new librdkafka producer for p in *out. */
static bz_status create_handle(ing_http_producer *p, rd_kafka_t **out, bz_error *err)
{
    char linger[16], timeout[16];
    snprintf(linger, sizeof linger, "%d", p->cfg.linger_ms);
    snprintf(timeout, sizeof timeout, "%d", p->cfg.produce_timeout_ms);
    const char *const defaults[] = {"enable.idempotence", "true", /* implies acks=all */
                                    "linger.ms", linger,
                                    "message.timeout.ms", timeout,
                                    "message.max.bytes", BZ_LIMIT_TEXT(BZ_KAFKA_RECORD_MAX_BYTES),
                                    NULL};
    bz_kafka_settings settings = {.brokers = p->cfg.brokers, .client_id = "blazz-ingest-http"};
    rd_kafka_t *rk;
    bz_status st = bz_kafka_producer_handle_new(&settings, defaults, p, on_delivery, on_error, &rk,
                                                err);
    if (st != BZ_OK)
        return st;
    /* Best effort: otherwise the first requests after a start wait up to a
     * second for librdkafka to learn the topic. */
    bz_error why;
    if (bz_kafka_learn_topic(rk, p->cfg.main_topic, BZ_KAFKA_TOPIC_SCAN_MS, &why) != BZ_OK)
        bz_warn("ingest http: %s; the first requests may wait up to a second", why.msg);
    *out = rk;
    return BZ_OK;
}

/* The new producer is made before the write lock is taken, so the event
 * loops (which produce under the read lock) wait only for a pointer swap.
 * Until one could be made, requests get 503 and the poller tries again. */
static void recreate_producer(ing_http_producer *p)
{
    rd_kafka_t *fresh = NULL;
    bz_error err;
    if (create_handle(p, &fresh, &err) != BZ_OK)
        bz_error_log("recreate http producer: %s", err.msg);
    pthread_rwlock_wrlock(&p->rk_lock);
    rd_kafka_t *old = p->rk;
    p->rk = fresh;
    atomic_store(&p->fatal, fresh == NULL);
    pthread_rwlock_unlock(&p->rk_lock);
    if (old)
        bz_kafka_producer_handle_free(old);
}

static void *poll_deliveries(void *arg)
{
    ing_http_producer *p = arg;
    while (atomic_load(&p->running)) {
        if (atomic_load(&p->fatal))
            recreate_producer(p);
        pthread_rwlock_rdlock(&p->rk_lock);
        int have = p->rk != NULL;
        if (have)
            rd_kafka_poll(p->rk, POLL_MS);
        pthread_rwlock_unlock(&p->rk_lock);
        if (!have)
            bz_sleep_ms(POLL_MS);
        wake_overdue(p);
    }
    return NULL;
}

bz_status ing_http_producer_new(const ing_http_producer_config *cfg, ing_http_producer **out,
                               bz_error *err)
{
    ing_http_producer *p = calloc(1, sizeof *p);
    if (!p)
        return bz_fail(err, BZ_ERR_NOMEM, "ingest http producer: out of memory");
    p->cfg = *cfg;
    pthread_rwlock_init(&p->rk_lock, NULL);
    pthread_mutex_init(&p->mu, NULL);
    atomic_store(&p->running, 1);
    bz_status st = create_handle(p, &p->rk, err);
    if (st == BZ_OK && pthread_create(&p->poller, NULL, poll_deliveries, p) != 0)
        st = bz_fail(err, BZ_ERR_INTERNAL, "ingest http: cannot start the delivery poller");
    p->poller_started = st == BZ_OK;
    if (st != BZ_OK) {
        ing_http_producer_free(p);
        return st;
    }
    *out = p;
    return BZ_OK;
}

void ing_http_producer_free(ing_http_producer *p)
{
    if (!p)
        return;
    atomic_store(&p->running, 0);
    if (p->poller_started)
        pthread_join(p->poller, NULL);
    if (p->rk) {
        rd_kafka_flush(p->rk, p->cfg.produce_timeout_ms);
        bz_kafka_producer_handle_free(p->rk);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_rwlock_destroy(&p->rk_lock);
    free(p);
}

/* ---- one request's records ------------------------------------------------ */

ing_http_acks *ing_http_acks_new(void)
{
    return calloc(1, sizeof(ing_http_acks));
}

void ing_http_acks_expect(ing_http_producer *p, ing_http_acks *acks)
{
    pthread_mutex_lock(&p->mu);
    acks->remaining++;
    pthread_mutex_unlock(&p->mu);
}

void ing_http_acks_settle(ing_http_producer *p, ing_http_acks *acks, ing_http_outcome why)
{
    pthread_mutex_lock(&p->mu);
    int orphaned = settle_locked(p, acks, why);
    pthread_mutex_unlock(&p->mu);
    if (orphaned)
        free(acks);
}

void ing_http_producer_send(ing_http_producer *p, const ing_http_record *rec, ing_http_acks *acks)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(rec->nheaders);
    for (size_t i = 0; i < rec->nheaders; i++)
        rd_kafka_header_add(hdrs, rec->headers[i].name, -1, rec->headers[i].value,
                            (ssize_t)rec->headers[i].len);
    pthread_rwlock_rdlock(&p->rk_lock);
    rd_kafka_resp_err_t e = p->rk ? rd_kafka_producev(
                                        p->rk, RD_KAFKA_V_TOPIC(rec->topic),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_KEY(rec->key, rec->key_len),
                                        RD_KAFKA_V_VALUE((void *)rec->value, rec->len),
                                        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(acks),
                                        RD_KAFKA_V_END)
                                  : RD_KAFKA_RESP_ERR__STATE;
    pthread_rwlock_unlock(&p->rk_lock);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    bz_warn("produce to %s: %s", rec->topic, rd_kafka_err2str(e));
    rd_kafka_headers_destroy(hdrs);
    ing_http_acks_settle(p, acks, ING_HTTP_NOT_ACKNOWLEDGED);
}

int ing_http_acks_await(ing_http_producer *p, ing_http_acks *acks, struct MHD_Connection *conn,
                       ing_http_outcome *outcome)
{
    pthread_mutex_lock(&p->mu);
    if (acks->remaining == 0) {
        *outcome = acks->outcome;
        pthread_mutex_unlock(&p->mu);
        free(acks);
        return 1;
    }
    if (p->stopped_waiting) {
        *outcome = ING_HTTP_STOPPING;
        acks->released = 1;
        pthread_mutex_unlock(&p->mu);
        return 1;
    }
    acks->conn = conn;
    acks->deadline_ms = bz_monotonic_ms() + p->cfg.produce_timeout_ms + OVERDUE_MARGIN_MS;
    acks->suspended = 1;
    acks->next = p->waiting;
    if (p->waiting)
        p->waiting->prev = acks;
    p->waiting = acks;
    p->n_waiting++;
    MHD_suspend_connection(conn);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

ing_http_outcome ing_http_acks_release(ing_http_producer *p, ing_http_acks *acks)
{
    pthread_mutex_lock(&p->mu);
    if (acks->suspended)
        unlink_waiting(p, acks);
    int settled = acks->remaining == 0;
    ing_http_outcome outcome = settled ? acks->outcome : ING_HTTP_NOT_ACKNOWLEDGED;
    acks->released = 1;
    pthread_mutex_unlock(&p->mu);
    if (settled)
        free(acks);
    return outcome;
}

int ing_http_producer_waiting(ing_http_producer *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->n_waiting;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void ing_http_producer_stop_waiting(ing_http_producer *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopped_waiting = 1;
    while (p->waiting) {
        fail(p->waiting, ING_HTTP_NOT_ACKNOWLEDGED);
        wake(p, p->waiting);
    }
    pthread_mutex_unlock(&p->mu);
}
