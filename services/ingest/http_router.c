/*
 * http_router.c - the HTTP path's route to chat.sync (see http_router.h).
 *
 * The event loops append events to one list under a mutex and signal; the
 * router's thread takes the whole list at once and routes it in order.
 * Between lists, and at least every SESSION_POLL_MS, it serves its session
 * cache's session.events watcher, so an account removed or moved stops
 * resolving from the cache at once, as on the Kafka path.
 *
 * A dead letter wraps the event as the raw record the Kafka path would
 * have read (key: the session, or "waba:<id>"; headers event_id,
 * trace_id and the signing gateway), with partition and offset -1: it
 * never was on wa.inbound.raw, and `blazzctl dlq replay` sends it there,
 * where the Kafka path routes it again.
 */
#include "http_router.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "events/normalize.h"
#include "events/sync_route.h"
#include "kafka/dlq.h"
#include "kafka/limits.h"

#define SERVICE_NAME "ingest"
#define SESSION_POLL_MS 200
/* Events waiting for the router at most. Each belongs to a request, and
 * requests are bounded (http_guard.h), but an event outlives a request
 * answered 503 when it waited too long, and its sender's retry adds
 * another: past this, a slow database answers 503 at once instead. */
#define QUEUE_MAX 65536
#define RAW_KEY_MAX (ING_SESSION_ID_MAX + 16)

typedef struct routed_event {
    struct routed_event *next;
    Blazz__V1__InboundEvent *ev;
    ing_http_acks *acks;
    const char *path; /* a string literal */
    int normalized;
    char gateway[BZ_GATEWAY_ID_MAX + 1];
    char conversation[ING_CONVERSATION_MAX];
} routed_event;

struct ing_http_router {
    ing_http_router_config cfg;
    ing_sessions *sessions;
    ing_sync_record record;
    uint64_t session_queries_reported;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    routed_event *head, *tail; /* under mu */
    size_t queued;             /* under mu */
    int stopping;              /* under mu */
};

static void count(bz_counter_family *fam, const char *a, const char *b)
{
    if (fam)
        bz_counter_inc(b ? bz_counter_family_with(fam, a, b) : bz_counter_family_with(fam, a));
}

/* ---- one event --------------------------------------------------------------- */

static void raw_key(const Blazz__V1__InboundEvent *ev, char *out, size_t cap)
{
    if (ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_BUSINESS_NOTICE)
        snprintf(out, cap, "waba:%s", ev->business_notice->waba_id);
    else
        snprintf(out, cap, "%s", ev->envelope->session_id);
}

/* Dead-letter e's event (refused for good, why) as its raw record. */
static void dead_letter(ing_http_router *r, routed_event *e, const bz_error *why)
{
    const Blazz__V1__InboundEvent *ev = e->ev;
    const char *event_id = ev->envelope->event_id, *trace_id = ev->envelope->trace_id;
    size_t len = blazz__v1__inbound_event__get_packed_size(ev);
    uint8_t *value = malloc(len ? len : 1);
    if (!value) {
        bz_warn("dead-letter %s: out of memory", event_id);
        ing_http_acks_settle(r->cfg.producer, e->acks, ING_HTTP_NOT_ROUTED);
        return;
    }
    blazz__v1__inbound_event__pack(ev, value);
    char key[RAW_KEY_MAX];
    raw_key(ev, key, sizeof key);
    bz_kafka_header headers[3] = {{"event_id", event_id, strlen(event_id)},
                                  {"trace_id", trace_id, strlen(trace_id)},
                                  {ING_GATEWAY_HEADER, e->gateway, strlen(e->gateway)}};
    bz_dlq_original orig = {.topic = r->cfg.raw_topic, .partition = -1, .offset = -1,
                            .key = key, .key_len = strlen(key), .value = value,
                            .value_len = len, .headers = headers, .nheaders = 3};
    const char *reason = why->reason ? why->reason : "invalid_field";
    int64_t now = bz_wall_ms();
    bz_dead_letter_info info = {.error_code = reason, .error_message = why->msg,
                                .service = SERVICE_NAME, .event_id = event_id, .attempts = 1,
                                .first_failed_at_ms = now, .last_failed_at_ms = now};
    bz_dlq_record rec;
    bz_error err;
    if (bz_dlq_build(&orig, &info, &rec, &err) != BZ_OK) {
        bz_warn("dead-letter %s: %s", event_id, err.msg);
        ing_http_acks_settle(r->cfg.producer, e->acks, ING_HTTP_NOT_ROUTED);
    } else {
        ing_http_record out = {.topic = r->cfg.dlq_topic, .key = rec.key, .key_len = rec.key_len,
                               .value = rec.value, .len = rec.value_len,
                               .headers = rec.headers, .nheaders = rec.nheaders};
        ing_http_producer_send(r->cfg.producer, &out, e->acks);
        bz_dlq_record_free(&rec);
        bz_log_event(BZ_LOG_WARN, event_id, NULL, "dead-lettered %s event of session %s: %s: %s",
                     e->path, ev->envelope->session_id, reason, why->msg);
        if (r->cfg.metrics) {
            count(r->cfg.metrics->dead_lettered, reason, NULL);
            count(r->cfg.metrics->rejected, e->path, reason);
        }
    }
    free(value);
}

static void route_event(ing_http_router *r, routed_event *e)
{
    Blazz__V1__InboundEvent *ev = e->ev;
    bz_error err;
    bz_status st = BZ_OK;
    if (!e->normalized) {
        ing_norm_opts opts = {.default_cc = r->cfg.default_cc, .now_ms = bz_wall_ms(),
                              .max_future_ms = r->cfg.max_future_ms, .meta_edge = 1};
        st = ing_normalize(ev, &opts, e->conversation, &err);
    }
    if (st == BZ_OK)
        st = ing_sync_route(r->sessions, ev, e->gateway, e->conversation, &r->record, &err);
    if (st == BZ_OK) {
        bz_kafka_header headers[2];
        ing_sync_headers(ev, headers);
        ing_http_record out = {.topic = r->cfg.sync_topic, .key = r->record.key,
                               .key_len = r->record.key_len, .value = r->record.value,
                               .len = r->record.len, .headers = headers, .nheaders = 2};
        ing_http_producer_send(r->cfg.producer, &out, e->acks);
    } else if (st == BZ_ERR_INVALID) {
        dead_letter(r, e, &err);
    } else {
        bz_log_event(BZ_LOG_WARN, ev->envelope->event_id, NULL,
                     "route %s event: %s (answered 503: its sender retries)", e->path, err.msg);
        ing_http_acks_settle(r->cfg.producer, e->acks, ING_HTTP_NOT_ROUTED);
    }
}

bz_status ing_http_router_check_size(const Blazz__V1__InboundEvent *ev, bz_error *err)
{
    const Blazz__V1__Envelope *env = ev->envelope;
    static const char longest_gateway[BZ_GATEWAY_ID_MAX + 1] = {0};
    bz_kafka_header headers[3] = {{"event_id", env->event_id, strlen(env->event_id)},
                                  {"trace_id", env->trace_id, strlen(env->trace_id)},
                                  {ING_GATEWAY_HEADER, longest_gateway, BZ_GATEWAY_ID_MAX}};
    size_t size = bz_kafka_record_size(strlen(env->session_id),
                                       blazz__v1__inbound_event__get_packed_size(ev), headers, 3);
    if (size > BZ_INBOUND_EVENT_MAX_BYTES)
        return bz_reject(err, "too_large",
                         "field body: normalized, the event is %zu bytes; at most %d are accepted",
                         size, BZ_INBOUND_EVENT_MAX_BYTES);
    return BZ_OK;
}

/* ---- the thread ------------------------------------------------------------- */

static void report_session_queries(ing_http_router *r)
{
    uint64_t q = ing_sessions_queries(r->sessions);
    if (r->cfg.metrics && q > r->session_queries_reported)
        bz_counter_add(r->cfg.metrics->session_queries, q - r->session_queries_reported);
    r->session_queries_reported = q;
}

/* The list handed over so far (NULL after SESSION_POLL_MS without one);
 * *stopping tells whether the router is being stopped. */
static routed_event *take_list(ing_http_router *r, int *stopping)
{
    pthread_mutex_lock(&r->mu);
    if (!r->head && !r->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)SESSION_POLL_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&r->wake, &r->mu, &until);
    }
    routed_event *list = r->head;
    r->head = r->tail = NULL;
    r->queued = 0;
    *stopping = r->stopping;
    pthread_mutex_unlock(&r->mu);
    return list;
}

static void *run_router(void *arg)
{
    ing_http_router *r = arg;
    for (;;) {
        int stopping;
        routed_event *list = take_list(r, &stopping);
        if (!list && stopping)
            break;
        while (list) {
            routed_event *next = list->next;
            route_event(r, list);
            blazz__v1__inbound_event__free_unpacked(list->ev, NULL);
            free(list);
            list = next;
        }
        ing_sessions_poll(r->sessions);
        report_session_queries(r);
    }
    return NULL;
}

/* ---- life ------------------------------------------------------------------- */

bz_status ing_http_router_start(const ing_http_router_config *cfg, ing_http_router **out,
                               bz_error *err)
{
    ing_http_router *r = calloc(1, sizeof *r);
    if (!r)
        return bz_fail(err, BZ_ERR_NOMEM, "ingest http router: out of memory");
    r->cfg = *cfg;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &attr);
    pthread_condattr_destroy(&attr);
    bz_status st = ing_sessions_new(&cfg->sessions, &r->sessions, err);
    if (st == BZ_OK && pthread_create(&r->thread, NULL, run_router, r) != 0)
        st = bz_fail(err, BZ_ERR_INTERNAL, "ingest http: cannot start the router");
    r->started = st == BZ_OK;
    if (st != BZ_OK) {
        ing_http_router_stop(r);
        return st;
    }
    *out = r;
    return BZ_OK;
}

void ing_http_router_route(ing_http_router *r, Blazz__V1__InboundEvent *ev, const char *gateway,
                          const char *conversation, const char *path, ing_http_acks *acks)
{
    ing_http_acks_expect(r->cfg.producer, acks);
    routed_event *e = calloc(1, sizeof *e);
    if (!e) {
        bz_warn("route %s: out of memory", ev->envelope->event_id);
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
        ing_http_acks_settle(r->cfg.producer, acks, ING_HTTP_NOT_ROUTED);
        return;
    }
    e->ev = ev;
    e->acks = acks;
    e->path = path;
    snprintf(e->gateway, sizeof e->gateway, "%s", gateway);
    if (conversation) {
        e->normalized = 1;
        snprintf(e->conversation, sizeof e->conversation, "%s", conversation);
    }
    pthread_mutex_lock(&r->mu);
    int full = r->queued >= QUEUE_MAX;
    if (!full) {
        if (r->tail)
            r->tail->next = e;
        else
            r->head = e;
        r->tail = e;
        r->queued++;
        pthread_cond_signal(&r->wake);
    }
    pthread_mutex_unlock(&r->mu);
    if (full) {
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
        free(e);
        ing_http_acks_settle(r->cfg.producer, acks, ING_HTTP_NOT_ROUTED);
    }
}

void ing_http_router_stop(ing_http_router *r)
{
    if (!r)
        return;
    if (r->started) {
        pthread_mutex_lock(&r->mu);
        r->stopping = 1;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
    }
    ing_sessions_free(r->sessions);
    ing_sync_record_clear(&r->record);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
