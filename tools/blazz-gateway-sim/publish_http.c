/*
 * publish_http.c - the http publisher: events go to ingest as a gateway's
 * webhook calls would, POST <ingest-url> with the raw protobuf body,
 * Content-Type application/x-protobuf, X-Blazz-Gateway (the gateway it is),
 * and the timestamped, replay-protected form of ingest's gateway signature
 * (wa/signature.h): X-Blazz-Timestamp (Unix seconds when the request was
 * made), X-Blazz-Key-Id (which of its keys) and X-WhatsApp-Signature =
 * lowercase hex HMAC-SHA256(K, "<timestamp>.<body>"), K derived from the key.
 *
 * A libcurl multi handle drives up to --http-concurrency requests at once;
 * each slot keeps its easy handle for the whole run and the multi handle
 * keeps the connections, so requests reuse warm keep-alive connections.
 * Outcomes: 2xx is accepted (ingest answers 202 once the broker has the
 * event); 503 and 429 ("retry later") and transport failures are retried
 * after 50 ms, 100 ms, ... (at most 2 s) up to --http-retries times, with
 * the same body, so the event keeps its event_id; anything else, or a retry
 * budget spent, counts as rejected under its status. Latency runs from the
 * first attempt to the final answer. An accepted event's messages go to
 * the --accepted-log.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accepted_log.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/text_head.h"
#include "publish.h"
#include "wa/signature.h"

#define REQUEST_TIMEOUT_MS 10000L
#define BACKOFF_FIRST_US 50000
#define BACKOFF_MAX_US 2000000
#define REJECTIONS_LOGGED 5

typedef enum slot_state { SLOT_FREE = 0, SLOT_RUNNING, SLOT_WAITING } slot_state;

typedef struct http_slot {
    slot_state state;
    CURL *easy;
    struct curl_slist *headers;
    uint8_t *body;
    size_t len;
    char event_id[BZ_UUID_STR_SIZE];
    char *accepted_lines; /* for the accepted log, written on a 2xx */
    int attempts;
    int64_t first_us;
    int64_t retry_at_us;
    char answer_text[160];
    bz_text_head answer; /* start of the response body, for rejection logs */
} http_slot;

typedef struct http_publisher {
    bz_sim_publisher base;
    CURLM *multi;
    http_slot *slots;
    int nslots;
    bz_sim_stats *stats;
    const bz_sim_options *o;
    int rejections_logged;
} http_publisher;

static void release_slot(http_slot *s)
{
    curl_slist_free_all(s->headers);
    s->headers = NULL;
    free(s->body);
    s->body = NULL;
    free(s->accepted_lines);
    s->accepted_lines = NULL;
    s->state = SLOT_FREE;
}

static bz_status start_attempt(http_publisher *p, http_slot *s, bz_error *err)
{
    s->attempts++;
    bz_text_head_init(&s->answer, s->answer_text, sizeof s->answer_text);
    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_URL, p->o->ingest_url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)s->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, bz_text_head_keep);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s->answer);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    CURLMcode mc = curl_multi_add_handle(p->multi, e);
    if (mc != CURLM_OK)
        return bz_fail(err, BZ_ERR_INTERNAL, "POST event %s: %s", s->event_id,
                       curl_multi_strerror(mc));
    s->state = SLOT_RUNNING;
    return BZ_OK;
}

static int64_t backoff_us(int attempts)
{
    int64_t d = BACKOFF_FIRST_US;
    for (int i = 1; i < attempts && d < BACKOFF_MAX_US; i++)
        d *= 2;
    return d < BACKOFF_MAX_US ? d : BACKOFF_MAX_US;
}

static void count_rejection(http_publisher *p, http_slot *s, long status, const char *why)
{
    bz_sim_stats_count_http_rejected(p->stats, status);
    if (p->rejections_logged++ < REJECTIONS_LOGGED)
        bz_log_event(BZ_LOG_WARN, s->event_id, NULL,
                     "ingest refused event after %d attempt(s): %s (status %ld): %s",
                     s->attempts, why, status, s->answer.text);
    release_slot(s);
}

static void finish_attempt(http_publisher *p, http_slot *s, CURLcode result)
{
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(p->multi, s->easy);
    if (result == CURLE_OK && status >= 200 && status < 300) {
        bz_sim_stats_count_accepted(p->stats, bz_sim_now_us() - s->first_us);
        bz_sim_accepted_log_write(p->o->accepted_log, s->accepted_lines);
        release_slot(s);
        return;
    }
    bool retryable = result != CURLE_OK || status == 503 || status == 429;
    if (retryable && s->attempts <= p->o->http_retries) {
        atomic_fetch_add(&p->stats->retries, 1);
        s->state = SLOT_WAITING;
        s->retry_at_us = bz_sim_now_us() + backoff_us(s->attempts);
        return;
    }
    count_rejection(p, s, result == CURLE_OK ? status : 0,
                    result == CURLE_OK ? "http status" : curl_easy_strerror(result));
}

/* Start retries that are due; return microseconds until the next one (or
 * -1 if none waits). */
static int64_t start_due_retries(http_publisher *p)
{
    int64_t now = bz_sim_now_us();
    int64_t next = -1;
    for (int i = 0; i < p->nslots; i++) {
        http_slot *s = &p->slots[i];
        if (s->state != SLOT_WAITING)
            continue;
        if (s->retry_at_us <= now) {
            bz_error err;
            if (start_attempt(p, s, &err) != BZ_OK)
                count_rejection(p, s, 0, err.msg);
        } else if (next < 0 || s->retry_at_us - now < next) {
            next = s->retry_at_us - now;
        }
    }
    return next;
}

static void drive(http_publisher *p, int timeout_ms)
{
    int running = 0;
    curl_multi_perform(p->multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(p->multi, &left)))
        if (m->msg == CURLMSG_DONE) {
            http_slot *s = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            finish_attempt(p, s, m->data.result);
        }
    int64_t wait_us = start_due_retries(p);
    if (timeout_ms <= 0)
        return;
    if (wait_us >= 0 && wait_us / 1000 < timeout_ms)
        timeout_ms = (int)(wait_us / 1000) + 1;
    curl_multi_poll(p->multi, NULL, 0, timeout_ms, NULL);
    curl_multi_perform(p->multi, &running);
}

static http_slot *free_slot(http_publisher *p)
{
    for (int i = 0; i < p->nslots; i++)
        if (p->slots[i].state == SLOT_FREE)
            return &p->slots[i];
    return NULL;
}

/* The request's headers: who it is, when, with which key, and the
 * signature over the time and the body. */
static struct curl_slist *signed_headers(const http_publisher *p, const bz_sim_event *ev,
                                         bz_error *err)
{
    bz_gateway_signature sig;
    if (bz_gateway_sign_request(p->o->key, strlen(p->o->key), (long long)(bz_wall_ms() / 1000),
                                ev->data, ev->len, &sig, err) != BZ_OK) {
        bz_wrap(err, "sign event %s", ev->event_id);
        return NULL;
    }
    char lines[4][160];
    snprintf(lines[0], sizeof lines[0], "X-WhatsApp-Signature: %s", sig.signature);
    snprintf(lines[1], sizeof lines[1], "X-Blazz-Gateway: %s", p->o->gateway_id);
    snprintf(lines[2], sizeof lines[2], "X-Blazz-Timestamp: %s", sig.timestamp);
    snprintf(lines[3], sizeof lines[3], "X-Blazz-Key-Id: %s", sig.key_id);
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    const char *all[] = {"Content-Type: application/x-protobuf", lines[0], lines[1], lines[2],
                         lines[3], "Expect:"};
    struct curl_slist *h = NULL;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        struct curl_slist *more = curl_slist_append(h, all[i]);
        if (!more) {
            curl_slist_free_all(h);
            bz_fail(err, BZ_ERR_NOMEM, "POST event %s: out of memory", ev->event_id);
            return NULL;
        }
        h = more;
    }
    return h;
}

static bz_status fill_slot(http_publisher *p, http_slot *s, const bz_sim_event *ev, bz_error *err)
{
    struct curl_slist *h = signed_headers(p, ev, err);
    if (!h)
        return err->code;
    s->body = malloc(ev->len ? ev->len : 1);
    if (!s->body) {
        curl_slist_free_all(h);
        return bz_fail(err, BZ_ERR_NOMEM, "POST event %s: out of memory", ev->event_id);
    }
    s->headers = h;
    memcpy(s->body, ev->data, ev->len);
    s->len = ev->len;
    snprintf(s->event_id, sizeof s->event_id, "%s", ev->event_id);
    s->accepted_lines = bz_sim_accepted_lines(p->o->accepted_log, ev);
    s->attempts = 0;
    s->first_us = bz_sim_now_us();
    return BZ_OK;
}

static bz_status http_publish(bz_sim_publisher *base, const bz_sim_event *ev, bz_error *err)
{
    http_publisher *p = (http_publisher *)base;
    http_slot *s;
    while (!(s = free_slot(p)))
        drive(p, 50); /* every request ends within REQUEST_TIMEOUT_MS */
    bz_status st = fill_slot(p, s, ev, err);
    if (st == BZ_OK && (st = start_attempt(p, s, err)) != BZ_OK)
        release_slot(s);
    if (st != BZ_OK)
        return st;
    bz_sim_stats_count_sent(p->stats, ev->kind);
    drive(p, 0);
    return BZ_OK;
}

static void http_poll(bz_sim_publisher *base, int timeout_ms)
{
    drive((http_publisher *)base, timeout_ms);
}

static int slots_busy(const http_publisher *p)
{
    int n = 0;
    for (int i = 0; i < p->nslots; i++)
        n += p->slots[i].state != SLOT_FREE;
    return n;
}

static bz_status http_drain(bz_sim_publisher *base, int timeout_ms, bz_error *err)
{
    http_publisher *p = (http_publisher *)base;
    int64_t deadline = bz_sim_now_us() + (int64_t)timeout_ms * 1000;
    while (slots_busy(p) && bz_sim_now_us() < deadline)
        drive(p, 50);
    int busy = slots_busy(p);
    if (busy)
        return bz_fail(err, BZ_ERR_TRANSIENT, "ingest: %d request(s) still open after %d ms",
                       busy, timeout_ms);
    return BZ_OK;
}

static void http_free(bz_sim_publisher *base)
{
    http_publisher *p = (http_publisher *)base;
    for (int i = 0; p->slots && i < p->nslots; i++) {
        http_slot *s = &p->slots[i];
        if (s->state == SLOT_RUNNING)
            curl_multi_remove_handle(p->multi, s->easy);
        if (s->state != SLOT_FREE)
            bz_sim_stats_count_http_rejected(p->stats, 0);
        release_slot(s);
        if (s->easy)
            curl_easy_cleanup(s->easy);
    }
    free(p->slots);
    if (p->multi)
        curl_multi_cleanup(p->multi);
    free(p);
}

static const bz_sim_publisher_ops http_ops = {http_publish, http_poll, http_drain, http_free};

bz_status bz_sim_publisher_new_http(const bz_sim_options *o, bz_sim_stats *stats,
                                    bz_sim_publisher **out, bz_error *err)
{
    http_publisher *p = calloc(1, sizeof *p);
    if (!p)
        return bz_fail(err, BZ_ERR_NOMEM, "http publisher: out of memory");
    p->base.ops = &http_ops;
    p->stats = stats;
    p->o = o;
    p->nslots = o->http_concurrency;
    p->multi = curl_multi_init();
    p->slots = calloc((size_t)p->nslots, sizeof *p->slots);
    bool ok = p->multi && p->slots;
    for (int i = 0; ok && i < p->nslots; i++)
        ok = (p->slots[i].easy = curl_easy_init()) != NULL;
    if (!ok) {
        http_free(&p->base);
        return bz_fail(err, BZ_ERR_NOMEM, "http publisher: cannot create curl handles");
    }
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long)p->nslots);
    *out = &p->base;
    return BZ_OK;
}
