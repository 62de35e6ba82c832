/*
 * attempts.c - the delivery worker's HTTP attempts: which queued jobs may
 * start now, their signed headers, and what each finished attempt means.
 *
 * Dispatching walks the ready endpoints: an endpoint disabled or without a
 * usable secret settles its jobs without an attempt; the others start jobs
 * within their concurrency, their circuit and their token bucket (this
 * instance's share of the rate limit, peers.h), handing back a job whose
 * lease would end before its attempt could time out. A finished attempt is
 * classified (classify.h) into success, a retry (scheduled, or dead-lettered
 * once its attempts are used up), or a failure (a 410 disables the
 * endpoint), recorded in the endpoint's circuit and stats, and its outcome
 * buffered (recording.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include "classify.h"
#include "core/clock.h"
#include "core/log.h"
#include "schedule.h"
#include "wa/signature.h"
#include "worker_state.h"

#define OPEN_SHARE_MARGIN_MS 100

static double random01(void)
{
    uint32_t r;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (uint32_t)bz_monotonic_ms() * 2654435761u;
    return (double)r / 4294967296.0;
}

static struct curl_slist *add_header(struct curl_slist *list, const char *name, const char *value,
                                     bool *ok)
{
    char line[1024];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *next = curl_slist_append(list, line);
    if (!next) {
        *ok = false;
        return list;
    }
    return next;
}

/* The headers of one attempt: each attempt is signed with its own
 * timestamp; webhook-id stays the event id across attempts and replays. */
static bz_status build_headers(const wh_endpoint *ep, const wh_job *job, bz_error *err,
                               struct curl_slist **out)
{
    bool ok = true;
    struct curl_slist *h = NULL;
    h = add_header(h, "Content-Type", "application/json", &ok);
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    if (!h)
        return bz_fail(err, BZ_ERR_NOMEM, "headers: out of memory");
    h = add_header(h, "webhook-id", job->event_id, &ok);
    h = add_header(h, "X-Blazz-Event-Type", job->type, &ok);
    if (ep->whatsapp_hmac) {
        char hex[BZ_HMAC_SHA256_HEX_SIZE];
        if (bz_hmac_sha256_hex(ep->secrets[0], strlen(ep->secrets[0]), job->body, job->body_len,
                               hex, err) != BZ_OK) {
            curl_slist_free_all(h);
            return bz_wrap(err, "sign for endpoint %" PRId64, ep->id);
        }
        h = add_header(h, "X-WhatsApp-Signature", hex, &ok);
    } else {
        long long ts = (long long)(bz_wall_ms() / 1000);
        char ts_text[24], sig[MAX_SECRETS * (BZ_STDWEBHOOKS_SIG_LEN + 1) + 1];
        snprintf(ts_text, sizeof ts_text, "%lld", ts);
        if (bz_stdwebhooks_sign_all((const char *const *)ep->secrets, ep->nsecrets, job->event_id,
                                    ts, job->body, job->body_len, sig, sizeof sig,
                                    err) != BZ_OK) {
            curl_slist_free_all(h);
            return bz_wrap(err, "sign for endpoint %" PRId64, ep->id);
        }
        h = add_header(h, "webhook-timestamp", ts_text, &ok);
        h = add_header(h, "webhook-signature", sig, &ok);
    }
    if (!ok) {
        curl_slist_free_all(h);
        return bz_fail(err, BZ_ERR_NOMEM, "headers: out of memory");
    }
    *out = h;
    return BZ_OK;
}

void wh_count_delivery(wh_worker *w, const char *outcome, long status)
{
    if (w->have_metrics)
        bz_counter_inc(bz_counter_family_with(w->m.deliveries, outcome, wh_status_class(status)));
}

static void set_circuit_gauge(wh_endpoint *ep)
{
    if (ep->circuit_gauge)
        bz_gauge_set(ep->circuit_gauge, (double)ep->circuit.state);
}

/* A failure after which the delivery may be tried again: schedule it, or
 * dead-letter it when its attempts are used up. */
static void retry_or_exhaust(wh_worker *w, wh_job *job, const char *error, long code,
                             int64_t retry_after_ms)
{
    int failures = job->retry_count + 1;
    if (failures > job->max_retries) {
        wh_count_delivery(w, "exhausted", code);
        char msg[WH_ERROR_MAX + WH_SNIPPET_MAX + 96];
        snprintf(msg, sizeof msg, "exhausted after %d attempts: %s", failures, error);
        if (!wh_dead_letter_job(w, job, "webhook_exhausted", msg, code, error))
            wh_leave_to_lease(w, job, error, code);
        return;
    }
    int64_t delay = wh_schedule_delay_ms(&w->cfg.schedule, failures, random01(),
                                            retry_after_ms);
    wh_count_delivery(w, "retry", code);
    wh_add_outcome(w, job->id, job->claims, "retrying", 1, delay, error, code, NULL);
    int64_t due = bz_monotonic_ms() + delay;
    if (due < w->next_claim_ms)
        w->next_claim_ms = due;
}

/* Fail without an attempt (endpoint disabled or its secret unusable). */
static void settle_unattempted(wh_worker *w, wh_job *job)
{
    wh_endpoint *ep = job->ep;
    if (!ep->enabled) {
        char msg[sizeof ep->disabled_reason + 32];
        snprintf(msg, sizeof msg, "endpoint disabled: %s",
                 ep->disabled_reason[0] ? ep->disabled_reason : "by an operator");
        wh_count_delivery(w, "failed", 0);
        wh_add_outcome(w, job->id, job->claims, "failed", 0, 0, msg, 0, NULL);
    } else {
        retry_or_exhaust(w, job, ep->secret_error, 0, -1);
    }
    wh_free_job(w, job);
}

void wh_unlink_in_flight(wh_worker *w, wh_job *job)
{
    if (job->fl_prev)
        job->fl_prev->fl_next = job->fl_next;
    else
        w->in_flight = job->fl_next;
    if (job->fl_next)
        job->fl_next->fl_prev = job->fl_prev;
    job->fl_prev = job->fl_next = NULL;
}

/* An open circuit is shared through webhook_endpoints.circuit_open_until
 * (written with the endpoint's stats): every instance's claims skip the
 * endpoint until then, not only this one's. */
static void share_open_circuit(wh_endpoint *ep, int64_t open_ms)
{
    bz_log(BZ_LOG_WARN, "endpoint %" PRId64 ": circuit open for %" PRId64 " ms (%d of the last "
           "%d attempts failed, %d timed out in a row)", ep->id, open_ms,
           wh_circuit_failures(&ep->circuit), ep->circuit.recorded,
           ep->circuit.consecutive_timeouts);
    ep->stat_open_ms = open_ms > 0 ? open_ms : 1;
}

/* This instance's part of an endpoint's rate limit, whole (at least 1). */
static int rate_share(const wh_worker *w, const wh_endpoint *ep)
{
    double share = wh_peers_share(&w->peers, ep->rate);
    return share < 1 ? 1 : (int)(share + 0.5);
}

/* An endpoint's share of the worker now (fairness.h). */
int wh_endpoint_cap_now(const wh_worker *w, wh_endpoint *ep, int64_t now)
{
    return wh_endpoint_cap(ep->concurrency, rate_share(w, ep),
                              wh_meter_rate(&ep->finished, now), w->cfg.max_local_jobs);
}

/* An endpoint that had more rows due than its share let the last claim
 * take asks for a claim once half its share is free. */
static void claim_more_if_due(wh_worker *w, wh_endpoint *ep, int64_t now)
{
    if (ep->more_due && 2 * (ep->queued + ep->in_flight) <= wh_endpoint_cap_now(w, ep, now)) {
        ep->more_due = false;
        w->claim_now = true;
    }
}

static void record_in_circuit(wh_worker *w, wh_endpoint *ep, const wh_transfer *t,
                              bool success, int64_t now)
{
    wh_circuit_state before = ep->circuit.state;
    if (t->transport == WH_T_TIMEOUT)
        wh_circuit_record_timeout(&ep->circuit, now);
    else
        wh_circuit_record(&ep->circuit, success, now);
    if (ep->circuit.state == WH_CIRCUIT_OPEN && before != WH_CIRCUIT_OPEN) {
        share_open_circuit(ep, ep->circuit.open_until_ms - now);
        /* claim when it half-opens, so the probe goes then, not a poll
         * later; a little after, as the shared open period was written a
         * little after it opened here */
        int64_t probe_ms = ep->circuit.open_until_ms + OPEN_SHARE_MARGIN_MS;
        if (probe_ms < w->next_claim_ms)
            w->next_claim_ms = probe_ms;
    }
    set_circuit_gauge(ep);
}

void wh_handle_result(wh_worker *w, wh_job *job)
{
    wh_endpoint *ep = job->ep;
    wh_unlink_in_flight(w, job);
    wh_transfer *t = &job->t;
    int64_t now = bz_monotonic_ms();
    ep->in_flight--;
    if (w->have_metrics)
        bz_histogram_observe(w->m.attempt_seconds, bz_metrics_clock() - job->attempt_started);
    wh_outcome o = wh_classify(t->transport, t->http_status, t->retry_after_ms,
                                      w->cfg.retry_after_max_ms);
    char error[WH_ERROR_MAX + WH_SNIPPET_MAX + 32];
    if (t->transport == WH_T_RESPONSE)
        snprintf(error, sizeof error, "HTTP %ld%s%s", t->http_status, t->snippet[0] ? ": " : "",
                 t->snippet);
    else
        snprintf(error, sizeof error, "%s: %s", o.reason, t->error);
    long code = t->transport == WH_T_RESPONSE ? t->http_status : 0;
    bool success = o.verdict == WH_SUCCESS;
    wh_meter_add(&ep->finished, now);
    wh_note_endpoint_result(w, ep, success, code, success ? "" : error);
    record_in_circuit(w, ep, t, success, now); /* after: it may add to the stats */
    switch (o.verdict) {
    case WH_SUCCESS:
        wh_count_delivery(w, "success", code);
        wh_add_outcome(w, job->id, job->claims, "success", 0, 0, "", code, NULL);
        if (w->have_metrics && job->created_ms > 0)
            bz_histogram_observe(w->m.to_success, (double)(bz_wall_ms() - job->created_ms) / 1000.0);
        break;
    case WH_RETRY:
        retry_or_exhaust(w, job, error, code, o.retry_after_ms);
        break;
    case WH_FAIL_DISABLE: {
        char reason[WH_ERROR_MAX];
        snprintf(reason, sizeof reason, "HTTP 410 Gone from %s", ep->url);
        wh_set_text(ep->stat_disable, sizeof ep->stat_disable, reason);
        wh_set_text(ep->disabled_reason, sizeof ep->disabled_reason, reason);
        ep->enabled = false;
        bz_log(BZ_LOG_WARN, "endpoint %" PRId64 " answered 410 Gone: disabled", ep->id);
    }
        /* fall through */
    case WH_FAIL:
        wh_count_delivery(w, "failed", code);
        wh_add_outcome(w, job->id, job->claims, "failed", 1, 0, error, code, NULL);
        break;
    }
    wh_free_job(w, job);
    claim_more_if_due(w, ep, now);
    wh_mark_ready(w, ep);
}

static void start_attempt(wh_worker *w, wh_endpoint *ep, wh_job *job)
{
    bz_error err;
    struct curl_slist *headers = NULL;
    if (build_headers(ep, job, &err, &headers) != BZ_OK) {
        retry_or_exhaust(w, job, err.msg, 0, -1);
        wh_free_job(w, job);
        return;
    }
    job->t.url = ep->url;
    job->t.body = job->body;
    job->t.body_len = job->body_len;
    job->t.headers = headers;
    job->t.timeout_ms = ep->timeout_ms;
    job->t.user = job;
    job->attempt_started = bz_metrics_clock();
    if (wh_delivery_start(w->http, &job->t, &err) != BZ_OK) {
        retry_or_exhaust(w, job, err.msg, 0, -1);
        wh_free_job(w, job);
        return;
    }
    ep->in_flight++;
    job->fl_prev = NULL;
    job->fl_next = w->in_flight;
    if (w->in_flight)
        w->in_flight->fl_prev = job;
    w->in_flight = job;
    if (w->have_metrics) {
        bz_counter_inc(w->m.attempts);
        if (job->retry_count == 0 && job->created_ms > 0)
            bz_histogram_observe(w->m.to_first_attempt,
                                 (double)(bz_wall_ms() - job->created_ms) / 1000.0);
    }
}

/* A job whose attempt could outlast its lease is handed back rather than
 * sent: by then another claim may have the row, and both would send it.
 * It falls due at once and is claimed again, with a fresh lease. */
static bool hand_back_if_lease_short(wh_worker *w, wh_endpoint *ep, int64_t now)
{
    wh_job *job = ep->q_head;
    if (now + ep->timeout_ms <= job->lease_until_ms)
        return false;
    wh_dequeue_job(ep);
    bz_log_event(BZ_LOG_DEBUG, job->event_id, NULL, "delivery %" PRId64 ": its lease ends "
                 "before an attempt could time out; handed back", job->id);
    wh_add_outcome(w, job->id, job->claims, "keep", 0, 0, "", 0, NULL);
    wh_free_job(w, job);
    return true;
}

/* Start what the limits allow; returns ms until a rate-limited endpoint
 * has a token again (or LOOP_WAIT_MAX_MS). */
int64_t wh_dispatch(wh_worker *w)
{
    int64_t wait = LOOP_WAIT_MAX_MS, now = bz_monotonic_ms();
    wh_endpoint *ep = w->ready_head, *keep_head = NULL, *keep_tail = NULL;
    w->ready_head = w->ready_tail = NULL;
    while (ep) {
        wh_endpoint *next = ep->next_ready;
        ep->ready_listed = false;
        while (ep->q_head && (!ep->enabled || ep->nsecrets == 0))
            settle_unattempted(w, wh_dequeue_job(ep));
        while (ep->q_head && ep->in_flight < ep->concurrency) {
            if (hand_back_if_lease_short(w, ep, now))
                continue;
            if (!wh_circuit_allow(&ep->circuit, now))
                break;
            if (!bz_token_bucket_try_take(&ep->bucket, now)) {
                /* the probe, if one was handed out, goes with the next token */
                if (ep->circuit.state == WH_CIRCUIT_HALF_OPEN)
                    ep->circuit.probe_in_flight = false;
                int64_t t = bz_token_bucket_wait_ms(&ep->bucket, now);
                if (t < wait)
                    wait = t;
                break;
            }
            start_attempt(w, ep, wh_dequeue_job(ep));
        }
        set_circuit_gauge(ep);
        if (ep->q_head) {
            ep->ready_listed = true;
            ep->next_ready = NULL;
            if (keep_tail)
                keep_tail->next_ready = ep;
            else
                keep_head = ep;
            keep_tail = ep;
        }
        ep = next;
    }
    /* endpoints made ready while dispatching were appended to the fresh list */
    if (keep_tail) {
        keep_tail->next_ready = w->ready_head;
        if (!w->ready_head)
            w->ready_tail = keep_tail;
        w->ready_head = keep_head;
    }
    return wait < 1 ? 1 : wait;
}

/* A circuit that opened with jobs still queued hands them back, due when
 * it half-opens, so they do not sit on a lease another instance could use. */
void wh_hand_back_blocked(wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    for (wh_endpoint *ep = w->ready_head; ep; ep = ep->next_ready) {
        if (ep->circuit.state != WH_CIRCUIT_OPEN || !ep->q_head)
            continue;
        int64_t delay = ep->circuit.open_until_ms - now;
        while (ep->q_head) {
            wh_job *job = wh_dequeue_job(ep);
            wh_add_outcome(w, job->id, job->claims, "keep", 0, delay > 0 ? delay : 0, "", 0,
                              NULL);
            wh_free_job(w, job);
        }
    }
}
