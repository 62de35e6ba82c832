/*
 * worker.c - the active Meta sender (see meta_sender.h, ARCHITECTURE.md §12).
 *
 * One thread, one PostgreSQL connection, one libcurl multi handle (a pool
 * of keep-alive connections to the Graph API host). Only the instance that
 * holds the session advisory lock named meta.lock_name sends; others retry
 * the lock every second. A round:
 *   1. write the outcomes of finished requests in one transaction: the
 *      rows' new states (one UPDATE ... unnest) and their reports on
 *      chat.sync (outbox rows, report.c);
 *   2. every second, or when NOTIFY blazz_meta_send arrives, re-read the
 *      accounts and tokens (tokens.c);
 *   3. claim, per account with a valid token, as many due queued rows as
 *      its pace allows (pacing.c), setting them in_flight in one
 *      autocommitted UPDATE ... RETURNING: the row is durably in_flight
 *      before its request leaves, so after a crash it is known to be
 *      possibly at Meta;
 *   4. start their requests and wait on the sockets (libcurl's and the
 *      database's, for notifications) until something finishes, a row falls
 *      due or the pace allows more.
 * Taking the lock, the worker first settles the rows a previous holder left
 * in_flight: each is the ambiguous window (it may or may not have reached
 * Meta), counted in ambiguous_resends and put back due after
 * meta.ambiguous_hold_ms. Before a row with ambiguous_resends > 0 is sent
 * again, the worker looks for a status webhook that named it (Meta repeats
 * biz_opaque_callback_data, our client reference, in every status; chat-sync
 * stored it on the chats row or the campaign log): found, the row is sent
 * with that wamid and no second request leaves.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/uuid.h"
#include "meta_sender.h"
#include "pg/pg.h"

#define RESPONSE_MAX (64 * 1024)
#define LOCK_RETRY_MS 1000
#define REFRESH_MS 1000
#define NOTIFIED_REFRESH_MS 100
#define POLL_MAX_MS 50

#define SQL_RECOVER                                                                               \
    "UPDATE meta_sends SET state = 'queued', ambiguous_resends = ambiguous_resends + 1, "       \
    "due_at = now() + $1::bigint * interval '1 millisecond' WHERE state = 'in_flight'"

#define SQL_CLAIM                                                                                 \
    "UPDATE meta_sends s SET state = 'in_flight', attempts = s.attempts + 1, "                   \
    "requested_at = now() FROM ("                                                                 \
    "  SELECT m.id FROM unnest($1::bigint[], $2::int[]) AS r(acc, room) "                        \
    "  CROSS JOIN LATERAL (SELECT q.id FROM meta_sends q WHERE q.whatsapp_account_id = r.acc "  \
    "    AND q.state = 'queued' AND q.due_at <= now() ORDER BY q.due_at, q.id LIMIT r.room) m"  \
    ") c WHERE s.id = c.id "                                                                      \
    "RETURNING s.id, s.whatsapp_account_id, s.workspace_id, s.idempotency_key, s.msg_key, "     \
    "encode(s.payload, 'hex'), s.attempts, s.ambiguous_resends"

#define SQL_SETTLED                                                                               \
    "SELECT r.ref, coalesce("                                                                     \
    "  (SELECT c.wam_id FROM chats c WHERE c.uuid = r.ref::uuid AND c.wam_id <> '' LIMIT 1), "  \
    "  (SELECT l.wam_id FROM campaign_logs l WHERE l.uuid = r.ref::uuid AND l.wam_id <> '' "    \
    "     AND l.status IN ('sent', 'delivered', 'read') LIMIT 1), '') "                          \
    "FROM unnest($1::text[]) AS r(ref)"

#define SQL_OUTCOMES                                                                              \
    "UPDATE meta_sends s SET state = u.state, wam_id = nullif(u.wam, ''), "                      \
    "error_code = nullif(u.code, ''), error_message = nullif(u.msg, ''), "                      \
    "due_at = now() + u.delay_ms * interval '1 millisecond', "                                   \
    "ambiguous_resends = s.ambiguous_resends + u.amb, attempts = s.attempts - u.refund, "       \
    "finished_at = CASE WHEN u.state IN ('sent', 'failed') THEN now() END "                     \
    "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], "  \
    "  $7::int[], $8::int[]) AS u(id, state, wam, code, msg, delay_ms, amb, refund) "           \
    "WHERE s.id = u.id AND s.state = 'in_flight'"

typedef struct ms_job {
    struct ms_job *prev, *next; /* the running list */
    ms_row row;
    ms_account *acc;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char *resp;
    size_t resp_len;
    int64_t started_ms;
    ms_outcome outcome;
} ms_job;

typedef struct job_list {
    ms_job **items;
    size_t n, cap;
} job_list;

struct ms_worker {
    const ms_settings *s;
    const char *dsn;
    ms_metrics *m;
    pthread_t thread;
    atomic_bool stop;
    atomic_int active;
    PGconn *conn;
    int locked;
    int64_t next_connect_ms, next_refresh_ms, last_refresh_ms;
    int notified;
    CURLM *multi;
    ms_accounts accounts;
    job_list done;
    ms_job *running_head;
    size_t running;
};

/* ---- jobs ------------------------------------------------------------------------- */

static int list_push(job_list *l, ms_job *j)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        ms_job **items = realloc(l->items, cap * sizeof(ms_job *));
        if (!items)
            return -1;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = j;
    return 0;
}

static void link_running(ms_worker *w, ms_job *j)
{
    j->next = w->running_head;
    if (j->next)
        j->next->prev = j;
    j->prev = NULL;
    w->running_head = j;
    w->running++;
}

static void unlink_running(ms_worker *w, ms_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        w->running_head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
    w->running--;
}

static void cleanse_headers(struct curl_slist *h)
{
    for (; h; h = h->next)
        OPENSSL_cleanse(h->data, strlen(h->data));
}

static void job_free(ms_job *j)
{
    if (!j)
        return;
    if (j->easy)
        curl_easy_cleanup(j->easy);
    cleanse_headers(j->headers);
    curl_slist_free_all(j->headers);
    free(j->body);
    free(j->resp);
    if (j->row.m)
        blazz__v1__send_message__free_unpacked(j->row.m, NULL);
    free(j->row.key);
    free(j->row.msg_key);
    free(j);
}

static size_t on_response(char *data, size_t size, size_t nmemb, void *arg)
{
    ms_job *j = arg;
    size_t n = size * nmemb;
    if (j->resp_len + n > RESPONSE_MAX)
        return n; /* Meta's answers are small; the rest of a huge one is not read */
    char *grown = realloc(j->resp, j->resp_len + n + 1);
    if (!grown)
        return 0;
    j->resp = grown;
    memcpy(j->resp + j->resp_len, data, n);
    j->resp_len += n;
    j->resp[j->resp_len] = '\0';
    return n;
}

/* The easy handle of a request to POST {base}/{version}/{phone_number_id}/messages. */
static bz_status job_prepare(ms_worker *w, ms_job *j, bz_error *err)
{
    const ms_settings *s = w->s;
    char url[1024], auth[4096];
    snprintf(url, sizeof url, "%s/%s/%s/messages", s->base_url, s->api_version,
             j->acc->phone_number_id);
    int n = snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->acc->token);
    j->easy = curl_easy_init();
    if (n < 0 || (size_t)n >= sizeof auth || !j->easy)
        return bz_fail(err, BZ_ERR_NOMEM, "request for send %s: cannot build it", j->row.key);
    j->headers = curl_slist_append(NULL, auth);
    OPENSSL_cleanse(auth, sizeof auth);
    j->headers = curl_slist_append(j->headers, "Content-Type: application/json");
    CURL *e = j->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_response);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->request_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    return BZ_OK;
}

/* ---- outcomes ---------------------------------------------------------------------- */

static int64_t backoff_ms(const ms_settings *s, int attempts)
{
    int64_t d = s->retry_base_ms;
    for (int i = 1; i < attempts && d < s->retry_max_ms; i++)
        d *= 2;
    return d < s->retry_max_ms ? d : s->retry_max_ms;
}

typedef struct outcome_arrays {
    int64_t *ids, *delays;
    const char **states, **wams, **codes, **msgs;
    int64_t *amb, *refund;
    size_t n;
} outcome_arrays;

static void arrays_free(outcome_arrays *a)
{
    free(a->ids);
    free(a->delays);
    free(a->states);
    free(a->wams);
    free(a->codes);
    free(a->msgs);
    free(a->amb);
    free(a->refund);
}

static int arrays_alloc(outcome_arrays *a, size_t n)
{
    a->ids = calloc(n, sizeof *a->ids);
    a->delays = calloc(n, sizeof *a->delays);
    a->states = calloc(n, sizeof *a->states);
    a->wams = calloc(n, sizeof *a->wams);
    a->codes = calloc(n, sizeof *a->codes);
    a->msgs = calloc(n, sizeof *a->msgs);
    a->amb = calloc(n, sizeof *a->amb);
    a->refund = calloc(n, sizeof *a->refund);
    return a->ids && a->delays && a->states && a->wams && a->codes && a->msgs && a->amb &&
                   a->refund
               ? 0
               : -1;
}

/* What the row becomes after j's outcome, and its report. */
static bz_status plan_outcome(ms_worker *w, ms_job *j, outcome_arrays *a, bz_outbox_batch *batch,
                              int64_t now_ms, bz_error *err)
{
    const ms_outcome *o = &j->outcome;
    size_t i = a->n++;
    a->ids[i] = j->row.id;
    a->wams[i] = o->wam_id;
    a->codes[i] = o->code;
    a->msgs[i] = o->message;
    a->states[i] = "queued";
    switch (o->verdict) {
    case MS_SENT:
        a->states[i] = "sent";
        return ms_report_sent(batch, &j->row, o->wam_id, now_ms, err);
    case MS_FAILED:
        a->states[i] = "failed";
        return ms_report_failed(batch, &j->row, o->code, o->message, now_ms, err);
    case MS_TOKEN_INVALID:
        a->refund[i] = 1; /* held, not tried: the attempt does not count */
        return BZ_OK;
    case MS_AMBIGUOUS:
        a->amb[i] = 1;
        break;
    case MS_RETRY:
    case MS_THROTTLED:
        break;
    }
    if (j->row.attempts >= w->s->max_attempts) {
        a->states[i] = "failed";
        return ms_report_failed(batch, &j->row, o->code, o->message, now_ms, err);
    }
    int64_t d = backoff_ms(w->s, j->row.attempts);
    if (o->verdict == MS_AMBIGUOUS && d < w->s->ambiguous_hold_ms)
        d = w->s->ambiguous_hold_ms;
    a->delays[i] = d;
    return BZ_OK;
}

/* The rows' new states, in the caller's open transaction. */
static bz_status exec_outcomes(ms_worker *w, outcome_arrays *a, bz_error *err)
{
    char *p[8] = {bz_pg_int64_array(a->ids, a->n),
                  bz_pg_text_array(a->states, a->n),
                  bz_pg_text_array(a->wams, a->n),
                  bz_pg_text_array(a->codes, a->n),
                  bz_pg_text_array(a->msgs, a->n),
                  bz_pg_int64_array(a->delays, a->n),
                  bz_pg_int64_array(a->amb, a->n),
                  bz_pg_int64_array(a->refund, a->n)};
    bz_status st = BZ_OK;
    for (int i = 0; i < 8; i++)
        if (!p[i])
            st = bz_fail(err, BZ_ERR_NOMEM, "record Meta outcomes: out of memory");
    if (st == BZ_OK)
        st = bz_pg_exec_params(w->conn, "record Meta outcomes", SQL_OUTCOMES, 8,
                               (const char *const *)p, NULL, err);
    for (int i = 0; i < 8; i++)
        free(p[i]);
    return st;
}

static void count_outcomes(ms_worker *w)
{
    for (size_t i = 0; i < w->done.n; i++) {
        ms_job *j = w->done.items[i];
        bz_counter_inc(bz_counter_family_with(w->m->requests, ms_verdict_name(j->outcome.verdict)));
    }
}

static bz_status claim_rows(ms_worker *w, PGresult **claimed, bz_error *err);

static int any_room(ms_worker *w)
{
    int64_t now = bz_monotonic_ms();
    for (size_t i = 0; i < w->accounts.n; i++) {
        ms_account *a = w->accounts.items[i];
        if (a->seen && a->state == MS_TOKEN_OPEN && ms_pace_room(&a->pace, now) > 0)
            return 1;
    }
    return 0;
}

/* Steps 1 and 3 of a round in one transaction (one commit a round): the
 * outcomes of finished requests, then, when claimed is not NULL, the claim
 * of the next rows, acted on only once committed. On failure nothing
 * changed: the outcomes stay for the next round and nothing is claimed. */
static bz_status round_transaction(ms_worker *w, PGresult **claimed, bz_error *err)
{
    size_t n = w->done.n;
    if (claimed)
        *claimed = NULL;
    if (!n && (!claimed || !any_room(w)))
        return BZ_OK;
    outcome_arrays a = {0};
    bz_outbox_batch *batch = NULL;
    bz_status st = BZ_OK;
    if (n) {
        st = arrays_alloc(&a, n) == 0
                 ? bz_outbox_batch_new(&batch, err)
                 : bz_fail(err, BZ_ERR_NOMEM, "record Meta outcomes: out of memory");
        int64_t now = bz_wall_ms();
        for (size_t i = 0; st == BZ_OK && i < n; i++)
            st = plan_outcome(w, w->done.items[i], &a, batch, now, err);
    }
    if (st == BZ_OK)
        st = bz_pg_begin(w->conn, err);
    if (st == BZ_OK && n)
        st = exec_outcomes(w, &a, err);
    if (st == BZ_OK && n)
        st = bz_outbox_batch_write(w->conn, batch, err);
    if (st == BZ_OK && claimed)
        st = claim_rows(w, claimed, err);
    if (st == BZ_OK)
        st = bz_pg_commit(w->conn, err);
    else
        bz_pg_rollback(w->conn);
    bz_outbox_batch_free(batch);
    arrays_free(&a);
    if (st != BZ_OK) {
        if (claimed) {
            PQclear(*claimed);
            *claimed = NULL;
        }
        return st;
    }
    count_outcomes(w);
    if (!n)
        return BZ_OK;
    for (size_t i = 0; i < n; i++)
        job_free(w->done.items[i]);
    memmove(w->done.items, w->done.items + n, (w->done.n - n) * sizeof(ms_job *));
    w->done.n -= n;
    return BZ_OK;
}

static bz_status write_outcomes(ms_worker *w, bz_error *err)
{
    return round_transaction(w, NULL, err);
}

/* A request finished: classify it, give the account its slot back, apply
 * what the verdict means for the account. */
static void finish_job(ms_worker *w, ms_job *j, CURLcode rc)
{
    long status = 0;
    curl_off_t sent = 0;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(j->easy, CURLINFO_REQUEST_SIZE, &sent);
    int transport = rc == CURLE_OK ? 0 : sent > 0 ? 2 : 1;
    ms_graph_classify(transport, status, j->resp, j->resp_len, &j->outcome);
    int64_t now = bz_wall_ms();
    bz_histogram_observe(w->m->request_seconds, (double)(now - j->started_ms) / 1000.0);
    ms_pace_finished(&j->acc->pace);
    if (j->outcome.verdict == MS_THROTTLED)
        ms_pace_throttled(&j->acc->pace, bz_monotonic_ms());
    if (j->outcome.verdict == MS_TOKEN_INVALID && j->acc->state == MS_TOKEN_OPEN) {
        bz_error err;
        bz_error_clear(&err);
        bz_warn("meta account %" PRId64 ": Meta refused its access token (%s): its sends wait "
                "for a new one (blazzctl meta token)",
                j->acc->id, j->outcome.message);
        /* Without a connection the lock is gone too: whoever takes it next
         * meets the same refusal and records it. */
        if (w->conn && ms_account_mark_invalid(w->conn, j->acc, "token_invalid", &err) != BZ_OK)
            bz_error_log("meta account %" PRId64 ": %s", j->acc->id, err.msg);
    }
    if (j->outcome.verdict != MS_SENT)
        bz_log(BZ_LOG_DEBUG, "send %s: %s %s", j->row.key, ms_verdict_name(j->outcome.verdict),
               j->outcome.code);
}

static void collect_finished(ms_worker *w)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(w->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        ms_job *j = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        CURLcode rc = msg->data.result;
        curl_multi_remove_handle(w->multi, msg->easy_handle);
        unlink_running(w, j);
        finish_job(w, j, rc);
        if (list_push(&w->done, j) != 0) {
            bz_error_log("send %s: out of memory keeping its outcome: it stays in_flight",
                         j->row.key);
            job_free(j);
        }
    }
    bz_gauge_set(w->m->in_flight, (double)w->running);
}

/* ---- claiming ---------------------------------------------------------------------- */

static bz_status decode_row(const PGresult *res, int row, ms_job *j, bz_error *err)
{
    const char *hex = PQgetvalue(res, row, 5);
    size_t cap = strlen(hex) / 2 + 1, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return bz_fail(err, BZ_ERR_NOMEM, "claim: out of memory");
    if (ms_unhex(hex, buf, cap, &len) == 0)
        j->row.m = blazz__v1__send_message__unpack(NULL, len, buf);
    free(buf);
    j->row.id = bz_pg_get_int64(res, row, 0);
    j->row.account_id = bz_pg_get_int64(res, row, 1);
    j->row.workspace_id = bz_pg_get_int64(res, row, 2);
    j->row.key = strdup(PQgetvalue(res, row, 3));
    j->row.msg_key = strdup(PQgetvalue(res, row, 4));
    j->row.attempts = (int)bz_pg_get_int64(res, row, 6);
    j->row.ambiguous_resends = (int)bz_pg_get_int64(res, row, 7);
    if (!j->row.key || !j->row.msg_key)
        return bz_fail(err, BZ_ERR_NOMEM, "claim: out of memory");
    if (!j->row.m)
        return bz_reject(err, "decode_error", "send %s: stored payload is not a SendMessage",
                         j->row.key);
    if (j->row.m->envelope)
        j->row.accepted_ms = j->row.m->envelope->occurred_at_ms;
    return BZ_OK;
}

/* The job ends now without a request (bad payload, settled by a webhook). */
static void finish_without_request(ms_worker *w, ms_job *j, ms_verdict v, const char *code,
                                   const char *message, const char *wam_id)
{
    memset(&j->outcome, 0, sizeof j->outcome);
    j->outcome.verdict = v;
    snprintf(j->outcome.code, sizeof j->outcome.code, "%s", code);
    snprintf(j->outcome.message, sizeof j->outcome.message, "%s", message);
    snprintf(j->outcome.wam_id, sizeof j->outcome.wam_id, "%s", wam_id ? wam_id : "");
    if (j->acc)
        ms_pace_finished(&j->acc->pace);
    if (list_push(&w->done, j) != 0) {
        bz_error_log("send %s: out of memory keeping its outcome: it stays in_flight", j->row.key);
        job_free(j);
    }
}

static void start_job(ms_worker *w, ms_job *j)
{
    bz_error err;
    bz_error_clear(&err);
    bz_status st = ms_graph_body(j->row.m, &j->body, &err);
    if (st == BZ_OK)
        st = job_prepare(w, j, &err);
    if (st != BZ_OK) {
        bz_warn("send %s: %s", j->row.key, err.msg);
        finish_without_request(w, j, MS_FAILED, err.reason ? err.reason : "invalid_send", err.msg,
                               NULL);
        return;
    }
    j->started_ms = bz_wall_ms();
    if (j->row.accepted_ms > 0)
        bz_histogram_observe(w->m->accepted_to_request_seconds,
                             (double)(j->started_ms - j->row.accepted_ms) / 1000.0);
    if (curl_multi_add_handle(w->multi, j->easy) != CURLM_OK) {
        finish_without_request(w, j, MS_RETRY, "transport_not_sent", "libcurl refused it", NULL);
        return;
    }
    link_running(w, j);
}

/* Rows that were possibly sent before: the wamid a status webhook brought
 * for their client reference, "" when none came. */
static bz_status look_for_settled(ms_worker *w, ms_job **jobs, size_t n, char **wams,
                                  bz_error *err)
{
    const char **refs = calloc(n ? n : 1, sizeof *refs);
    if (!refs)
        return bz_fail(err, BZ_ERR_NOMEM, "check ambiguous sends: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *ref = jobs[i]->row.m->client_reference;
        if (jobs[i]->row.ambiguous_resends > 0 && ref && bz_uuid_is_valid(ref))
            refs[k++] = ref;
    }
    bz_status st = BZ_OK;
    if (k) {
        char *arr = bz_pg_text_array(refs, k);
        PGresult *res = NULL;
        const char *params[] = {arr};
        st = arr ? bz_pg_exec_params(w->conn, "check ambiguous sends", SQL_SETTLED, 1, params,
                                     &res, err)
                 : bz_fail(err, BZ_ERR_NOMEM, "check ambiguous sends: out of memory");
        for (int row = 0; st == BZ_OK && row < PQntuples(res); row++)
            for (size_t i = 0; i < n; i++)
                if (!wams[i] && jobs[i]->row.m->client_reference &&
                    strcmp(jobs[i]->row.m->client_reference, PQgetvalue(res, row, 0)) == 0 &&
                    *PQgetvalue(res, row, 1))
                    wams[i] = strdup(PQgetvalue(res, row, 1));
        PQclear(res);
        free(arr);
    }
    free(refs);
    return st;
}

static void start_claimed(ms_worker *w, ms_job **jobs, size_t n)
{
    char **wams = calloc(n ? n : 1, sizeof *wams);
    bz_error err;
    bz_error_clear(&err);
    if (!wams || look_for_settled(w, jobs, n, wams, &err) != BZ_OK)
        bz_warn("checking ambiguous sends for status webhooks failed (%s): they are sent again",
                wams ? err.msg : "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (wams && wams[i]) {
            bz_info("send %s: a status webhook shows it reached Meta (%s): not sent again",
                    jobs[i]->row.key, wams[i]);
            bz_counter_inc(w->m->settled_by_webhook);
            finish_without_request(w, jobs[i], MS_SENT, "", "", wams[i]);
        } else {
            if (jobs[i]->row.ambiguous_resends > 0)
                bz_counter_inc(w->m->ambiguous_resends);
            start_job(w, jobs[i]);
        }
        if (wams)
            free(wams[i]);
    }
    free(wams);
}

typedef struct room_arrays {
    int64_t *accs, *rooms;
    size_t n;
} room_arrays;

static size_t rooms_of(ms_worker *w, room_arrays *r, int64_t now)
{
    size_t total = 0;
    for (size_t i = 0; i < w->accounts.n; i++) {
        ms_account *a = w->accounts.items[i];
        if (a->state != MS_TOKEN_OPEN || !a->seen)
            continue;
        int room = ms_pace_room(&a->pace, now);
        if (room <= 0)
            continue;
        if ((size_t)room > (size_t)w->s->claim_max)
            room = w->s->claim_max;
        r->accs[r->n] = a->id;
        r->rooms[r->n++] = room;
        total += (size_t)room;
    }
    return total;
}

/* Step 3 of a round, inside round_transaction: the due rows each account
 * has room for, set in_flight. *claimed stays NULL when no account has
 * room. */
static bz_status claim_rows(ms_worker *w, PGresult **claimed, bz_error *err)
{
    room_arrays r = {calloc(w->accounts.n + 1, sizeof *r.accs),
                     calloc(w->accounts.n + 1, sizeof *r.rooms), 0};
    bz_status st = BZ_OK;
    if (!r.accs || !r.rooms)
        st = bz_fail(err, BZ_ERR_NOMEM, "claim Meta sends: out of memory");
    else if (rooms_of(w, &r, bz_monotonic_ms())) {
        char *p0 = bz_pg_int64_array(r.accs, r.n), *p1 = bz_pg_int64_array(r.rooms, r.n);
        const char *params[] = {p0, p1};
        st = p0 && p1 ? bz_pg_exec_params(w->conn, "claim Meta sends", SQL_CLAIM, 2, params,
                                          claimed, err)
                      : bz_fail(err, BZ_ERR_NOMEM, "claim Meta sends: out of memory");
        free(p0);
        free(p1);
    }
    free(r.accs);
    free(r.rooms);
    return st;
}

/* The committed claim: a job per row, started (or settled) now. */
static void start_claimed_rows(ms_worker *w, PGresult *res)
{
    int n = res ? PQntuples(res) : 0;
    ms_job **jobs = calloc((size_t)n + 1, sizeof(ms_job *));
    size_t k = 0;
    int64_t now = bz_monotonic_ms();
    for (int row = 0; jobs && row < n; row++) {
        ms_job *j = calloc(1, sizeof *j);
        if (!j)
            break;
        j->acc = ms_accounts_find(&w->accounts, bz_pg_get_int64(res, row, 1));
        if (j->acc)
            ms_pace_started(&j->acc->pace, now);
        bz_error derr;
        bz_error_clear(&derr);
        if (decode_row(res, row, j, &derr) != BZ_OK) {
            bz_error_log("%s", derr.msg);
            finish_without_request(w, j, MS_FAILED, "decode_error", derr.msg, NULL);
            continue;
        }
        jobs[k++] = j;
    }
    if (jobs)
        start_claimed(w, jobs, k);
    else if (n)
        bz_error_log("meta sender: out of memory starting %d claimed sends: they stay in_flight "
                     "until the next takeover",
                     n);
    free(jobs);
}

/* ---- the connection, the lock, the loop ---------------------------------------------- */

static void drop_connection(ms_worker *w, const char *why)
{
    if (w->conn) {
        bz_warn("meta sender: database connection dropped (%s)%s", why,
                w->locked ? "; the sender lock is released with it" : "");
        PQfinish(w->conn);
    }
    w->conn = NULL;
    w->locked = 0;
    atomic_store(&w->active, 0);
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
    st = write_outcomes(w, err);
    if (st == BZ_OK)
        st = recover_in_flight(w, err);
    if (st == BZ_OK) {
        w->locked = 1;
        atomic_store(&w->active, 1);
        w->next_refresh_ms = 0;
        bz_info("meta sender: active (sender lock taken)");
    }
    return st;
}

static void read_notifications(ms_worker *w)
{
    if (!w->conn || !PQconsumeInput(w->conn))
        return;
    PGnotify *n;
    while ((n = PQnotifies(w->conn))) {
        w->notified = 1;
        PQfreemem(n);
    }
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
    collect_finished(w);
    read_notifications(w);
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
        w->next_refresh_ms = now + REFRESH_MS;
        w->last_refresh_ms = now;
        st = ms_accounts_refresh(w->conn, &w->accounts, w->s, now, err);
    }
    w->notified = 0;
    PGresult *claimed = NULL;
    if (st == BZ_OK)
        st = round_transaction(w, atomic_load(&w->stop) ? NULL : &claimed, err);
    if (st == BZ_OK)
        start_claimed_rows(w, claimed);
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
    if (w->conn && w->locked && write_outcomes(w, &err) != BZ_OK)
        bz_error_log("meta sender: outcomes at shutdown: %s (their rows stay in_flight)", err.msg);
    return NULL;
}

int ms_worker_active(const ms_worker *w)
{
    return w && atomic_load(&w->active);
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
        job_free(w->done.items[i]);
    free(w->done.items);
    /* Requests still running past the deadline: their rows stay in_flight. */
    if (w->running)
        bz_warn("meta sender: %zu requests still running at exit: their rows stay in_flight",
                w->running);
    for (ms_job *j = w->running_head, *next; j; j = next) {
        next = j->next;
        curl_multi_remove_handle(w->multi, j->easy);
        job_free(j);
    }
    w->running_head = NULL;
    w->running = 0;
    curl_multi_cleanup(w->multi);
    ms_accounts_free(&w->accounts);
    if (w->conn)
        PQfinish(w->conn);
    free(w);
}
