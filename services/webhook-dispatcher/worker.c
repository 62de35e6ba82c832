/*
 * worker.c - claim, send, record (see worker.h).
 *
 * One thread, one loop:
 *   1. write buffered outcomes (batched UPDATE ... FROM unnest)
 *   2. claim due rows when woken by NOTIFY, by the poll timer or by a retry
 *      this worker scheduled, if there is room
 *   3. start attempts for endpoints with queued jobs, within their
 *      concurrency, rate and circuit limits
 *   4. wait in curl_multi_poll for network activity or the LISTEN socket
 *   5. classify finished attempts and buffer their outcomes
 * Every few seconds it also refreshes the queue-depth gauges and disables
 * endpoints that have been failing for too long.
 *
 * Terms: retry_count counts failed attempts; a row may be attempted
 * max_retries + 1 times. A job is one claimed row held in memory.
 */
#include "worker.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "classify.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/token_bucket.h"
#include "core/utf8.h"
#include "fanout.h"
#include "kafka/topics.h"
#include "pg/pg.h"
#include "wa/signature.h"

#define FLUSH_MAX 512
#define FLUSH_AGE_MS 10
#define HOUSEKEEPING_MS 5000
#define MAX_SECRETS 4
#define LOOP_WAIT_MAX_MS 100

/* One index-ordered branch per open status (the partial index on
 * (status, next_retry_at) serves each), merged oldest-due first; a single
 * ORDER BY over both statuses would sort every due row on each claim. On
 * equal due times retries go first: a deferred backlog shares one due time,
 * and first attempts winning every tie starved the retries of a flaky
 * endpoint after its circuit closed (found by the chaos test).
 *
 * The claimed rows are updated through the primary key (id = ANY of the due
 * ids) and only then joined to their endpoints. Written as one join, the
 * plan depended on statistics: when they lagged a burst of deliveries (the
 * table looked empty at the last ANALYZE), it scanned every row of the
 * endpoint, or the whole table, on each claim, and throughput fell from
 * thousands to a few hundred deliveries a second.
 *
 * Not a prepared statement: it is planned at every execution, for the
 * table as it is then. A generic plan made while the queue was nearly
 * empty (PostgreSQL switches to one after five executions) kept sequential
 * scans and a nested loop over the due rows once it held 20,000 rows: 92 ms
 * per claim instead of a few, 3,700 deliveries/s instead of 6,000+. */
static const char claim_sql[] =
    "WITH due AS ("
    "  SELECT id, next_retry_at, 1 AS first_attempt FROM ("
    "    SELECT q.id, q.next_retry_at FROM webhook_retry_queue q"
    "    WHERE q.status = 'pending' AND q.next_retry_at <= now()"
    "      AND q.endpoint_id <> ALL ($2::bigint[])"
    "    ORDER BY q.next_retry_at LIMIT $1 FOR UPDATE SKIP LOCKED) p"
    "  UNION ALL"
    "  SELECT id, next_retry_at, 0 AS first_attempt FROM ("
    "    SELECT q.id, q.next_retry_at FROM webhook_retry_queue q"
    "    WHERE q.status = 'retrying' AND q.next_retry_at <= now()"
    "      AND q.endpoint_id <> ALL ($2::bigint[])"
    "    ORDER BY q.next_retry_at LIMIT $1 FOR UPDATE SKIP LOCKED) r"
    "  ORDER BY next_retry_at, first_attempt LIMIT $1), "
    "claimed AS ("
    "  UPDATE webhook_retry_queue q "
    "  SET next_retry_at = now() + $3::bigint * interval '1 millisecond' "
    "  WHERE q.id = ANY (ARRAY(SELECT id FROM due)) "
    "  RETURNING q.id, q.event_id, q.endpoint_id, q.workspace_id, q.event_type, q.payload, "
    "    q.retry_count, q.max_retries, q.created_at) "
    "SELECT c.id, c.event_id, c.endpoint_id, c.workspace_id, c.event_type, c.payload, "
    "  c.retry_count, c.max_retries, (extract(epoch FROM c.created_at) * 1000)::bigint, e.url, "
    "  encode(e.secret_ciphertext, 'hex'), encode(e.secret_nonce, 'hex'), e.signature_scheme, "
    "  e.rate_limit_per_sec, e.max_concurrency, e.timeout_ms, "
    "  e.enabled AND e.deleted_at IS NULL, coalesce(e.disabled_reason, '') "
    "FROM claimed c JOIN webhook_endpoints e ON e.id = c.endpoint_id "
    "JOIN due d ON d.id = c.id ORDER BY d.next_retry_at, d.first_attempt";

/* An open circuit's backlog waits out the open period in the table, so
 * claims never scan past it. Only ever moves rows later. */
static const char defer_sql[] =
    "UPDATE webhook_retry_queue SET next_retry_at = now() + $2::bigint * interval '1 millisecond' "
    "WHERE endpoint_id = $1::bigint AND status IN ('pending', 'retrying') "
    "  AND next_retry_at < now() + $2::bigint * interval '1 millisecond'";

/* 'keep' leaves the status alone: a claim handed back unattempted. Final
 * rows are excluded with NOT IN, which no index can serve, so each outcome
 * is found through the primary key; with "status IN (open)" a planner
 * misled by stale statistics read every open row through the due index
 * for each flush. */
static const char outcome_sql[] =
    "UPDATE webhook_retry_queue q SET "
    "  status = CASE WHEN u.status = 'keep' THEN q.status ELSE u.status END, "
    "  retry_count = q.retry_count + u.failed, "
    "  next_retry_at = CASE WHEN u.status IN ('success', 'failed') THEN q.next_retry_at "
    "    ELSE now() + u.delay_ms * interval '1 millisecond' END, "
    "  last_error = CASE WHEN u.status = 'keep' THEN q.last_error ELSE nullif(u.error, '') END, "
    "  last_status_code = CASE WHEN u.status = 'keep' THEN q.last_status_code "
    "    ELSE nullif(u.code, 0) END, "
    "  delivered_at = CASE WHEN u.status = 'success' THEN now() ELSE q.delivered_at END "
    "FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::int[]) "
    "  AS u(id, status, failed, delay_ms, error, code) "
    "WHERE q.id = u.id AND q.status NOT IN ('success', 'failed')";

static const char endpoint_stats_sql[] =
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
    "  disabled_at = CASE WHEN u.disable <> '' THEN now() ELSE e.disabled_at END "
    "FROM unnest($1::bigint[], $2::int[], $3::bool[], $4::int[], $5::text[], $6::text[]) "
    "  AS u(id, tail, any_success, code, error, disable) "
    "WHERE e.id = u.id";

static const char auto_disable_sql[] =
    "UPDATE webhook_endpoints SET enabled = false, disabled_at = now(), "
    "  disabled_reason = 'auto-disabled: failing continuously since ' || failing_since "
    "WHERE enabled AND deleted_at IS NULL "
    "  AND failing_since < now() - $1::bigint * interval '1 millisecond' RETURNING id";

static const char depth_sql[] =
    "SELECT status, count(*) FROM webhook_retry_queue "
    "WHERE status IN ('pending', 'retrying') GROUP BY status";

typedef struct wh_endpoint wh_endpoint;

typedef struct wh_job {
    bz_wh_transfer t;
    int64_t id, endpoint_id, workspace_id, created_ms;
    char event_id[40];
    char type[32];
    char *body;
    size_t body_len;
    int retry_count, max_retries;
    wh_endpoint *ep;
    struct wh_job *next;
    struct wh_job *fl_prev, *fl_next; /* the worker's in-flight list */
} wh_job;

struct wh_endpoint {
    int64_t id, workspace_id;
    char *url, *cipher_hex, *nonce_hex;
    char *secrets[MAX_SECRETS];
    size_t nsecrets;
    char secret_error[BZ_ERROR_MSG_MAX + 32];
    bool whatsapp_hmac;
    int rate, concurrency, timeout_ms;
    bool enabled;
    char disabled_reason[256];
    bz_token_bucket bucket;
    bz_wh_circuit circuit;
    wh_job *q_head, *q_tail;
    int queued, in_flight;
    bool ready_listed;
    wh_endpoint *next_ready;
    bz_gauge *circuit_gauge;
    /* outcomes since the last endpoint-stats write */
    bool stat_listed, stat_any_success;
    int stat_tail;
    long stat_code;
    char stat_error[BZ_WH_ERROR_MAX + BZ_WH_SNIPPET_MAX + 32];
    char stat_disable[256];
    wh_endpoint *next_stat;
};

typedef struct outcome_buf {
    int64_t ids[FLUSH_MAX];
    const char *status[FLUSH_MAX];
    int64_t failed[FLUSH_MAX];
    int64_t delay_ms[FLUSH_MAX];
    char *error[FLUSH_MAX];
    int64_t code[FLUSH_MAX];
    size_t n;
    int64_t oldest_ms;
} outcome_buf;

/* A dead letter waiting for the broker's acknowledgement. */
typedef struct dlq_wait {
    bz_delivery delivery; /* first: the callback gets this pointer */
    struct bz_wh_worker *w;
    int64_t id;
    long code;
    const char *error_code; /* static text: webhook_exhausted, invalid_payload */
    char *error;
    int failed_attempts;
    int state; /* 0 waiting, 1 acked, -1 failed: send again */
    uint8_t *value;
    size_t value_len;
    char key[48];
    char event_id[40];
    char endpoint[24];
    struct dlq_wait *next;
} dlq_wait;

typedef struct worker_metrics {
    bz_counter_family *deliveries; /* outcome, status_class */
    bz_counter *attempts;
    bz_counter *dead_lettered;
    bz_gauge_family *depth;        /* status */
    bz_gauge_family *circuit;      /* endpoint */
    bz_gauge *in_flight;
    bz_histogram *to_first_attempt;
    bz_histogram *to_success;
} worker_metrics;

struct bz_wh_worker {
    bz_wh_worker_config cfg;
    pthread_t thread;
    atomic_bool stop;
    atomic_int db_up;
    bz_pg *pg;
    bz_pg *listen;
    PGconn *listening_on;
    PGconn *tuned; /* the worker connection synchronous_commit was relaxed on */
    bz_wh_delivery *http;
    bz_producer *producer;
    worker_metrics m;
    bool have_metrics;

    wh_endpoint **table; /* open addressing by id */
    size_t table_cap, table_used;
    wh_endpoint *ready_head, *ready_tail;
    wh_endpoint *stat_head;
    int local_jobs;
    wh_job *in_flight;
    outcome_buf out;
    dlq_wait *dlq_head;
    int64_t next_claim_ms, next_housekeeping_ms;
    bool claim_now;
    bool more_due; /* the last claim came back full: more rows are due */
    char source_topics[3][BZ_TOPIC_NAME_MAX];
};

/* ---- the worker's connection ------------------------------------------- */

/* Ensure the worker's connection. Its writes (claims, outcomes) need not
 * wait for the WAL flush: if the database loses the last few of them in a
 * crash, the rows fall due again and are re-delivered with the same
 * webhook-id, which at-least-once delivery allows. Fan-out, on the
 * consumer's connection, stays fully durable. */
static bz_status worker_conn(bz_wh_worker *w, bz_error *err)
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

/* ---- endpoints ---------------------------------------------------------- */

static size_t slot_of(const bz_wh_worker *w, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 20) & (w->table_cap - 1);
}

static wh_endpoint *find_endpoint(const bz_wh_worker *w, int64_t id)
{
    for (size_t i = slot_of(w, id);; i = (i + 1) & (w->table_cap - 1)) {
        if (!w->table[i])
            return NULL;
        if (w->table[i]->id == id)
            return w->table[i];
    }
}

static void place(wh_endpoint **table, size_t cap, wh_endpoint *ep)
{
    uint64_t h = (uint64_t)ep->id * 0x9E3779B97F4A7C15ULL;
    for (size_t i = (size_t)(h >> 20) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!table[i]) {
            table[i] = ep;
            return;
        }
}

static bz_status insert_endpoint(bz_wh_worker *w, wh_endpoint *ep, bz_error *err)
{
    if (2 * (w->table_used + 1) > w->table_cap) {
        size_t cap = w->table_cap * 2;
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): slots are pointers, sized as such */
        wh_endpoint **t = calloc(cap, sizeof *t);
        if (!t)
            return bz_fail(err, BZ_ERR_NOMEM, "endpoint table: out of memory");
        for (size_t i = 0; i < w->table_cap; i++)
            if (w->table[i])
                place(t, cap, w->table[i]);
        free(w->table);
        w->table = t;
        w->table_cap = cap;
    }
    place(w->table, w->table_cap, ep);
    w->table_used++;
    return BZ_OK;
}

static void wipe_secrets(wh_endpoint *ep)
{
    for (size_t i = 0; i < ep->nsecrets; i++) {
        OPENSSL_cleanse(ep->secrets[i], strlen(ep->secrets[i]));
        free(ep->secrets[i]);
        ep->secrets[i] = NULL;
    }
    ep->nsecrets = 0;
}

static void free_endpoint(wh_endpoint *ep)
{
    wipe_secrets(ep);
    free(ep->url);
    free(ep->cipher_hex);
    free(ep->nonce_hex);
    free(ep);
}

static int hex_to_bytes(const char *hex, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    bz_error err;
    return bz_hex_decode(hex, n, out, cap, len, &err) == BZ_OK;
}

/* Decrypt the endpoint's secret(s): one, or several separated by spaces
 * while a secret is being rotated. Failures are kept as the endpoint's
 * secret_error and fail its deliveries with that reason. */
static void load_secrets(bz_wh_worker *w, wh_endpoint *ep)
{
    wipe_secrets(ep);
    ep->secret_error[0] = '\0';
    if (!w->cfg.have_secret_key) {
        snprintf(ep->secret_error, sizeof ep->secret_error,
                 "endpoint %" PRId64 ": no webhook.secret_key configured to decrypt its secret",
                 ep->id);
        return;
    }
    uint8_t sealed[1024], nonce[BZ_SECRETBOX_NONCE_LEN];
    size_t sealed_len, nonce_len;
    if (!hex_to_bytes(ep->cipher_hex, sealed, sizeof sealed, &sealed_len) ||
        !hex_to_bytes(ep->nonce_hex, nonce, sizeof nonce, &nonce_len) ||
        nonce_len != BZ_SECRETBOX_NONCE_LEN) {
        snprintf(ep->secret_error, sizeof ep->secret_error,
                 "endpoint %" PRId64 ": malformed secret_ciphertext or secret_nonce", ep->id);
        return;
    }
    char aad[24];
    int aad_len = snprintf(aad, sizeof aad, "%" PRId64, ep->workspace_id);
    char *plain;
    size_t plain_len;
    bz_error err;
    if (bz_secretbox_open(w->cfg.secret_key, sealed, sealed_len, nonce, aad, (size_t)aad_len,
                          &plain, &plain_len, &err) != BZ_OK) {
        snprintf(ep->secret_error, sizeof ep->secret_error, "endpoint %" PRId64 ": %s", ep->id,
                 err.msg);
        return;
    }
    char *save = NULL;
    for (char *tok = strtok_r(plain, " ", &save); tok && ep->nsecrets < MAX_SECRETS;
         tok = strtok_r(NULL, " ", &save))
        ep->secrets[ep->nsecrets++] = strdup(tok);
    OPENSSL_cleanse(plain, plain_len);
    free(plain);
    if (ep->nsecrets == 0)
        snprintf(ep->secret_error, sizeof ep->secret_error, "endpoint %" PRId64 ": empty secret",
                 ep->id);
}

static bool same_text(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static void replace_text(char **slot, const char *value)
{
    if (!same_text(*slot, value)) {
        free(*slot);
        *slot = strdup(value);
    }
}

/* Create or refresh the endpoint of a claimed row (columns 9..17). */
static wh_endpoint *endpoint_from_row(bz_wh_worker *w, PGresult *res, int r, int64_t id,
                                      int64_t workspace_id)
{
    wh_endpoint *ep = find_endpoint(w, id);
    int64_t now = bz_monotonic_ms();
    if (!ep) {
        ep = calloc(1, sizeof *ep);
        bz_error err;
        if (ep)
            ep->id = id; /* before inserting: the table places it by its id */
        if (!ep || insert_endpoint(w, ep, &err) != BZ_OK) {
            free(ep);
            return NULL;
        }
        bz_wh_circuit_init(&ep->circuit, &w->cfg.circuit);
        bz_token_bucket_init(&ep->bucket, 1, 1, now);
        if (w->have_metrics) {
            char label[24];
            snprintf(label, sizeof label, "%" PRId64, id);
            ep->circuit_gauge = bz_gauge_family_with(w->m.circuit, label);
        }
    }
    ep->workspace_id = workspace_id;
    bool secret_changed = !same_text(ep->cipher_hex, PQgetvalue(res, r, 10)) ||
                          !same_text(ep->nonce_hex, PQgetvalue(res, r, 11));
    replace_text(&ep->url, PQgetvalue(res, r, 9));
    replace_text(&ep->cipher_hex, PQgetvalue(res, r, 10));
    replace_text(&ep->nonce_hex, PQgetvalue(res, r, 11));
    if (!ep->url || !ep->cipher_hex || !ep->nonce_hex)
        return NULL;
    if (secret_changed)
        load_secrets(w, ep);
    ep->whatsapp_hmac = strcmp(PQgetvalue(res, r, 12), "whatsapp_hmac") == 0;
    int rate = (int)bz_pg_get_int64(res, r, 13);
    if (rate != ep->rate)
        bz_token_bucket_set_rate(&ep->bucket, rate, rate, now);
    ep->rate = rate;
    ep->concurrency = (int)bz_pg_get_int64(res, r, 14);
    ep->timeout_ms = (int)bz_pg_get_int64(res, r, 15);
    if (ep->timeout_ms > w->cfg.timeout_ms || ep->timeout_ms <= 0)
        ep->timeout_ms = w->cfg.timeout_ms;
    ep->enabled = PQgetvalue(res, r, 16)[0] == 't';
    snprintf(ep->disabled_reason, sizeof ep->disabled_reason, "%s", PQgetvalue(res, r, 17));
    return ep;
}

static void mark_ready(bz_wh_worker *w, wh_endpoint *ep)
{
    if (ep->ready_listed || !ep->q_head)
        return;
    ep->ready_listed = true;
    ep->next_ready = NULL;
    if (w->ready_tail)
        w->ready_tail->next_ready = ep;
    else
        w->ready_head = ep;
    w->ready_tail = ep;
}

static void enqueue_job(bz_wh_worker *w, wh_endpoint *ep, wh_job *job)
{
    job->next = NULL;
    if (ep->q_tail)
        ep->q_tail->next = job;
    else
        ep->q_head = job;
    ep->q_tail = job;
    ep->queued++;
    w->local_jobs++;
    mark_ready(w, ep);
}

static wh_job *dequeue_job(wh_endpoint *ep)
{
    wh_job *job = ep->q_head;
    if (job) {
        ep->q_head = job->next;
        if (!ep->q_head)
            ep->q_tail = NULL;
        ep->queued--;
    }
    return job;
}

static void free_job(bz_wh_worker *w, wh_job *job)
{
    w->local_jobs--;
    free(job->body);
    free(job);
}

/* ---- outcomes ----------------------------------------------------------- */

static bz_status flush_endpoint_stats(bz_wh_worker *w, bz_error *err);

static bz_status flush_outcomes(bz_wh_worker *w, bz_error *err)
{
    outcome_buf *o = &w->out;
    if (o->n == 0)
        return flush_endpoint_stats(w, err);
    if (worker_conn(w, err) != BZ_OK)
        return err->code;
    char *ids = bz_pg_int64_array(o->ids, o->n);
    char *status = bz_pg_text_array(o->status, o->n);
    char *failed = bz_pg_int64_array(o->failed, o->n);
    char *delay = bz_pg_int64_array(o->delay_ms, o->n);
    char *errors = bz_pg_text_array((const char *const *)o->error, o->n);
    char *codes = bz_pg_int64_array(o->code, o->n);
    bz_status st;
    if (!ids || !status || !failed || !delay || !errors || !codes) {
        st = bz_fail(err, BZ_ERR_NOMEM, "write outcomes: out of memory");
    } else {
        const char *params[] = {ids, status, failed, delay, errors, codes};
        st = bz_pg_exec_prepared(bz_pg_conn(w->pg), "wh_outcomes", 6, params, NULL, NULL, NULL,
                                 err);
    }
    free(ids);
    free(status);
    free(failed);
    free(delay);
    free(errors);
    free(codes);
    if (st != BZ_OK) {
        if (st == BZ_ERR_TRANSIENT)
            bz_pg_reset(w->pg);
        return bz_wrap(err, "write %zu delivery outcomes", o->n);
    }
    for (size_t i = 0; i < o->n; i++)
        free(o->error[i]);
    o->n = 0;
    return flush_endpoint_stats(w, err);
}

static void add_outcome(bz_wh_worker *w, int64_t id, const char *status, int failed,
                        int64_t delay_ms, const char *error, long code)
{
    outcome_buf *o = &w->out;
    if (o->n == FLUSH_MAX) {
        bz_error err;
        /* Full and the database is away: keep the newest outcomes waiting
         * by flushing synchronously until it answers or we are stopped. */
        while (flush_outcomes(w, &err) != BZ_OK && !atomic_load(&w->stop))
            bz_sleep_ms(200);
        if (o->n == FLUSH_MAX)
            return; /* stopping: the row's lease expires and it is retried */
    }
    if (o->n == 0)
        o->oldest_ms = bz_monotonic_ms();
    o->ids[o->n] = id;
    o->status[o->n] = status;
    o->failed[o->n] = failed;
    o->delay_ms[o->n] = delay_ms;
    o->error[o->n] = strdup(error ? error : "");
    o->code[o->n] = code;
    o->n++;
}

static void note_endpoint_result(bz_wh_worker *w, wh_endpoint *ep, bool success, long code,
                                 const char *error)
{
    if (!ep->stat_listed) {
        ep->stat_listed = true;
        ep->stat_any_success = false;
        ep->stat_tail = 0;
        ep->stat_disable[0] = '\0';
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
    snprintf(ep->stat_error, sizeof ep->stat_error, "%s", error ? error : "");
}

static bz_status flush_endpoint_stats(bz_wh_worker *w, bz_error *err)
{
    size_t n = 0;
    for (wh_endpoint *ep = w->stat_head; ep; ep = ep->next_stat)
        n++;
    if (n == 0)
        return BZ_OK;
    int64_t *ids = calloc(n, sizeof *ids), *tails = calloc(n, sizeof *tails);
    int64_t *codes = calloc(n, sizeof *codes);
    const char **succ = calloc(n, sizeof *succ), **errors = calloc(n, sizeof *errors);
    const char **disable = calloc(n, sizeof *disable);
    bz_status st = BZ_OK;
    if (!ids || !tails || !codes || !succ || !errors || !disable) {
        st = bz_fail(err, BZ_ERR_NOMEM, "write endpoint stats: out of memory");
    } else {
        size_t i = 0;
        for (wh_endpoint *ep = w->stat_head; ep; ep = ep->next_stat, i++) {
            ids[i] = ep->id;
            tails[i] = ep->stat_tail;
            codes[i] = ep->stat_code;
            succ[i] = ep->stat_any_success ? "t" : "f";
            errors[i] = ep->stat_error;
            disable[i] = ep->stat_disable;
        }
        char *a = bz_pg_int64_array(ids, n), *b = bz_pg_int64_array(tails, n);
        char *c = bz_pg_text_array(succ, n), *d = bz_pg_int64_array(codes, n);
        char *e = bz_pg_text_array(errors, n), *f = bz_pg_text_array(disable, n);
        if (!a || !b || !c || !d || !e || !f) {
            st = bz_fail(err, BZ_ERR_NOMEM, "write endpoint stats: out of memory");
        } else {
            const char *params[] = {a, b, c, d, e, f};
            st = bz_pg_exec_prepared(bz_pg_conn(w->pg), "wh_endpoint_stats", 6, params, NULL,
                                     NULL, NULL, err);
        }
        free(a), free(b), free(c), free(d), free(e), free(f);
    }
    free(ids), free(tails), free(codes), free(succ), free(errors), free(disable);
    if (st != BZ_OK) {
        if (st == BZ_ERR_TRANSIENT)
            bz_pg_reset(w->pg);
        return bz_wrap(err, "write stats of %zu endpoints", n);
    }
    for (wh_endpoint *ep = w->stat_head; ep;) {
        wh_endpoint *next = ep->next_stat;
        ep->stat_listed = false;
        ep->next_stat = NULL;
        ep = next;
    }
    w->stat_head = NULL;
    return BZ_OK;
}

/* ---- dead letters ------------------------------------------------------- */

static const char *source_topic_of(const bz_wh_worker *w, const char *type)
{
    if (strncmp(type, "session.", 8) == 0)
        return w->source_topics[1];
    if (strncmp(type, "campaign.", 9) == 0)
        return w->source_topics[2];
    return w->source_topics[0];
}

static void on_dead_letter_done(bz_delivery *d, rd_kafka_resp_err_t err, int32_t partition,
                                int64_t offset)
{
    (void)partition, (void)offset;
    dlq_wait *dw = (dlq_wait *)d;
    dw->state = err == RD_KAFKA_RESP_ERR_NO_ERROR ? 1 : -1;
}

static bz_status encode_dead_letter(bz_wh_worker *w, const wh_job *job, dlq_wait *dw,
                                    bz_error *err)
{
    Blazz__V1__DeadLetter dl = BLAZZ__V1__DEAD_LETTER__INIT;
    Blazz__V1__Header h[3], *hp[3];
    static const char *names[3] = {"webhook-endpoint-id", "event_id", "content-type"};
    const char *values[3] = {dw->endpoint, job->event_id, "application/json"};
    for (int i = 0; i < 3; i++) {
        blazz__v1__header__init(&h[i]);
        h[i].key = (char *)names[i];
        h[i].value.data = (uint8_t *)values[i];
        h[i].value.len = strlen(values[i]);
        hp[i] = &h[i];
    }
    dl.original_topic = (char *)source_topic_of(w, job->type);
    dl.original_partition = -1;
    dl.original_offset = -1;
    dl.original_key.data = (uint8_t *)dw->key;
    dl.original_key.len = strlen(dw->key);
    dl.original_value.data = (uint8_t *)job->body;
    dl.original_value.len = job->body_len;
    dl.n_original_headers = 3;
    dl.original_headers = hp;
    dl.error_code = (char *)dw->error_code;
    dl.error_message = dw->error;
    dl.service = (char *)w->cfg.service;
    dl.attempts = dw->failed_attempts;
    dl.first_failed_at_ms = job->created_ms;
    dl.last_failed_at_ms = bz_wall_ms();
    dl.event_id = (char *)job->event_id;
    dw->value_len = blazz__v1__dead_letter__get_packed_size(&dl);
    dw->value = malloc(dw->value_len);
    if (!dw->value)
        return bz_fail(err, BZ_ERR_NOMEM, "dead letter for %s: out of memory", job->event_id);
    blazz__v1__dead_letter__pack(&dl, dw->value);
    return BZ_OK;
}

static bz_status send_dead_letter(bz_wh_worker *w, dlq_wait *dw, bz_error *err)
{
    const char *msg = dw->error ? dw->error : "";
    bz_kafka_header headers[] = {
        {"dlt-exception-message", msg, strlen(msg)},
        {"dlt-error-code", dw->error_code, strlen(dw->error_code)},
        {"dlt-service", w->cfg.service, strlen(w->cfg.service)},
        {"event_id", dw->event_id, strlen(dw->event_id)},
        {"webhook-endpoint-id", dw->endpoint, strlen(dw->endpoint)},
    };
    dw->state = 0;
    return bz_producer_send(w->producer, w->cfg.dlq_topic, RD_KAFKA_PARTITION_UA, dw->key,
                            strlen(dw->key), dw->value, dw->value_len, headers,
                            sizeof headers / sizeof headers[0], &dw->delivery, err);
}

/* Undeliverable (exhausted, or a payload that cannot be sent): the dead
 * letter goes first; the row is marked failed once the broker has it
 * (drain_dead_letters), so a crash in between leaves the row due again
 * rather than failed without a dead letter. */
static void dead_letter(bz_wh_worker *w, const wh_job *job, const char *error_code,
                        const char *error, long code)
{
    dlq_wait *dw = calloc(1, sizeof *dw);
    bz_error err;
    if (!dw || !(dw->error = strdup(error ? error : ""))) {
        free(dw);
        bz_error_log("dead-letter delivery %" PRId64 ": out of memory; retried later", job->id);
        return;
    }
    dw->delivery.on_done = on_dead_letter_done;
    dw->w = w;
    dw->id = job->id;
    dw->code = code;
    dw->error_code = error_code;
    dw->failed_attempts = job->retry_count + 1;
    snprintf(dw->key, sizeof dw->key, "%" PRId64, job->workspace_id);
    snprintf(dw->event_id, sizeof dw->event_id, "%s", job->event_id);
    snprintf(dw->endpoint, sizeof dw->endpoint, "%" PRId64, job->endpoint_id);
    if (encode_dead_letter(w, job, dw, &err) != BZ_OK || send_dead_letter(w, dw, &err) != BZ_OK) {
        bz_log_event(BZ_LOG_WARN, job->event_id, NULL, "dead-letter delivery %" PRId64 ": %s",
                     job->id, err.msg);
        dw->state = -1;
    }
    dw->next = w->dlq_head;
    w->dlq_head = dw;
}

static void free_dlq_wait(dlq_wait *dw)
{
    free(dw->error);
    free(dw->value);
    free(dw);
}

static void drain_dead_letters(bz_wh_worker *w)
{
    if (!w->dlq_head)
        return;
    bz_producer_poll(w->producer, 0);
    dlq_wait **link = &w->dlq_head;
    while (*link) {
        dlq_wait *dw = *link;
        bz_error err;
        if (dw->state == -1 && dw->value && send_dead_letter(w, dw, &err) != BZ_OK)
            dw->state = -1;
        if (dw->state == -1 && !dw->value) {
            /* Could not even be encoded: the row's lease runs out and the
             * delivery is tried (and dead-lettered) again. */
            *link = dw->next;
            free_dlq_wait(dw);
        } else if (dw->state == 1) {
            add_outcome(w, dw->id, "failed", 1, 0, dw->error, dw->code);
            if (w->have_metrics)
                bz_counter_inc(w->m.dead_lettered);
            *link = dw->next;
            free_dlq_wait(dw);
        } else {
            link = &dw->next;
        }
    }
}

/* ---- attempts ----------------------------------------------------------- */

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

static void count_delivery(bz_wh_worker *w, const char *outcome, long status)
{
    if (w->have_metrics)
        bz_counter_inc(bz_counter_family_with(w->m.deliveries, outcome, bz_wh_status_class(status)));
}

static void set_circuit_gauge(wh_endpoint *ep)
{
    if (ep->circuit_gauge)
        bz_gauge_set(ep->circuit_gauge, (double)ep->circuit.state);
}

/* A failure after which the delivery may be tried again: schedule it, or
 * dead-letter it when its attempts are used up. */
static void retry_or_exhaust(bz_wh_worker *w, wh_job *job, const char *error, long code,
                             int64_t retry_after_ms)
{
    int failures = job->retry_count + 1;
    if (failures > job->max_retries) {
        count_delivery(w, "exhausted", code);
        char msg[BZ_WH_ERROR_MAX + 64];
        snprintf(msg, sizeof msg, "exhausted after %d attempts: %s", failures, error);
        dead_letter(w, job, "webhook_exhausted", msg, code);
        return;
    }
    int64_t delay = bz_wh_schedule_delay_ms(&w->cfg.schedule, failures, random01(),
                                            retry_after_ms);
    count_delivery(w, "retry", code);
    add_outcome(w, job->id, "retrying", 1, delay, error, code);
    int64_t due = bz_monotonic_ms() + delay;
    if (due < w->next_claim_ms)
        w->next_claim_ms = due;
}

/* Fail without an attempt (endpoint disabled or its secret unusable). */
static void settle_unattempted(bz_wh_worker *w, wh_job *job)
{
    wh_endpoint *ep = job->ep;
    if (!ep->enabled) {
        char msg[320];
        snprintf(msg, sizeof msg, "endpoint disabled: %s",
                 ep->disabled_reason[0] ? ep->disabled_reason : "by an operator");
        count_delivery(w, "failed", 0);
        add_outcome(w, job->id, "failed", 0, 0, msg, 0);
    } else {
        retry_or_exhaust(w, job, ep->secret_error, 0, -1);
    }
    free_job(w, job);
}

static void unlink_in_flight(bz_wh_worker *w, wh_job *job)
{
    if (job->fl_prev)
        job->fl_prev->fl_next = job->fl_next;
    else
        w->in_flight = job->fl_next;
    if (job->fl_next)
        job->fl_next->fl_prev = job->fl_prev;
    job->fl_prev = job->fl_next = NULL;
}

static void defer_backlog(bz_wh_worker *w, wh_endpoint *ep, int64_t delay_ms)
{
    char id[24], delay[24];
    snprintf(id, sizeof id, "%" PRId64, ep->id);
    snprintf(delay, sizeof delay, "%" PRId64, delay_ms > 0 ? delay_ms : 0);
    const char *params[] = {id, delay};
    bz_error err;
    bz_log(BZ_LOG_WARN, "endpoint %" PRId64 ": circuit open for %" PRId64 " ms (%d of the last "
           "%d attempts failed)", ep->id, delay_ms, bz_wh_circuit_failures(&ep->circuit),
           ep->circuit.recorded);
    if (bz_pg_ensure(w->pg, &err) != BZ_OK ||
        bz_pg_exec_prepared(bz_pg_conn(w->pg), "wh_defer", 2, params, NULL, NULL, NULL, &err) !=
            BZ_OK)
        bz_log(BZ_LOG_WARN, "defer the backlog of endpoint %" PRId64 ": %s (claims skip it "
               "instead)", ep->id, err.msg);
}

static void record_in_circuit(bz_wh_worker *w, wh_endpoint *ep, const bz_wh_transfer *t,
                              bool success, int64_t now)
{
    bz_wh_circuit_state before = ep->circuit.state;
    if (t->transport == BZ_WH_T_TIMEOUT)
        bz_wh_circuit_record_timeout(&ep->circuit, now);
    else
        bz_wh_circuit_record(&ep->circuit, success, now);
    if (ep->circuit.state == BZ_WH_CIRCUIT_OPEN && before != BZ_WH_CIRCUIT_OPEN) {
        defer_backlog(w, ep, ep->circuit.open_until_ms - now);
        /* claim when it half-opens, so the probe goes then, not a poll later */
        if (ep->circuit.open_until_ms < w->next_claim_ms)
            w->next_claim_ms = ep->circuit.open_until_ms;
    }
    set_circuit_gauge(ep);
}

static void handle_result(bz_wh_worker *w, wh_job *job)
{
    wh_endpoint *ep = job->ep;
    unlink_in_flight(w, job);
    bz_wh_transfer *t = &job->t;
    int64_t now = bz_monotonic_ms();
    ep->in_flight--;
    bz_wh_outcome o = bz_wh_classify(t->transport, t->http_status, t->retry_after_ms,
                                      w->cfg.retry_after_max_ms);
    char error[BZ_WH_ERROR_MAX + BZ_WH_SNIPPET_MAX + 32];
    if (t->transport == BZ_WH_T_RESPONSE)
        snprintf(error, sizeof error, "HTTP %ld%s%s", t->http_status, t->snippet[0] ? ": " : "",
                 t->snippet);
    else
        snprintf(error, sizeof error, "%s: %s", o.reason, t->error);
    long code = t->transport == BZ_WH_T_RESPONSE ? t->http_status : 0;
    bool success = o.verdict == BZ_WH_SUCCESS;
    record_in_circuit(w, ep, t, success, now);
    note_endpoint_result(w, ep, success, code, success ? "" : error);
    switch (o.verdict) {
    case BZ_WH_SUCCESS:
        count_delivery(w, "success", code);
        add_outcome(w, job->id, "success", 0, 0, "", code);
        if (w->have_metrics && job->created_ms > 0)
            bz_histogram_observe(w->m.to_success, (double)(bz_wall_ms() - job->created_ms) / 1000.0);
        break;
    case BZ_WH_RETRY:
        retry_or_exhaust(w, job, error, code, o.retry_after_ms);
        break;
    case BZ_WH_FAIL_DISABLE:
        snprintf(ep->stat_disable, sizeof ep->stat_disable, "HTTP 410 Gone from %s", ep->url);
        snprintf(ep->disabled_reason, sizeof ep->disabled_reason, "%s", ep->stat_disable);
        ep->enabled = false;
        bz_log(BZ_LOG_WARN, "endpoint %" PRId64 " answered 410 Gone: disabled", ep->id);
        /* fall through */
    case BZ_WH_FAIL:
        count_delivery(w, "failed", code);
        add_outcome(w, job->id, "failed", 1, 0, error, code);
        break;
    }
    free_job(w, job);
    mark_ready(w, ep);
}

static void start_attempt(bz_wh_worker *w, wh_endpoint *ep, wh_job *job)
{
    bz_error err;
    struct curl_slist *headers = NULL;
    if (build_headers(ep, job, &err, &headers) != BZ_OK) {
        retry_or_exhaust(w, job, err.msg, 0, -1);
        free_job(w, job);
        return;
    }
    job->t.url = ep->url;
    job->t.body = job->body;
    job->t.body_len = job->body_len;
    job->t.headers = headers;
    job->t.timeout_ms = ep->timeout_ms;
    job->t.user = job;
    if (bz_wh_delivery_start(w->http, &job->t, &err) != BZ_OK) {
        retry_or_exhaust(w, job, err.msg, 0, -1);
        free_job(w, job);
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

/* Start what the limits allow; returns ms until a rate-limited endpoint
 * has a token again (or LOOP_WAIT_MAX_MS). */
static int64_t dispatch(bz_wh_worker *w)
{
    int64_t wait = LOOP_WAIT_MAX_MS, now = bz_monotonic_ms();
    wh_endpoint *ep = w->ready_head, *keep_head = NULL, *keep_tail = NULL;
    w->ready_head = w->ready_tail = NULL;
    while (ep) {
        wh_endpoint *next = ep->next_ready;
        ep->ready_listed = false;
        while (ep->q_head && (!ep->enabled || ep->nsecrets == 0))
            settle_unattempted(w, dequeue_job(ep));
        while (ep->q_head && ep->in_flight < ep->concurrency) {
            if (!bz_wh_circuit_allow(&ep->circuit, now))
                break;
            if (!bz_token_bucket_try_take(&ep->bucket, now)) {
                /* the probe, if one was handed out, goes with the next token */
                if (ep->circuit.state == BZ_WH_CIRCUIT_HALF_OPEN)
                    ep->circuit.probe_in_flight = false;
                int64_t t = bz_token_bucket_wait_ms(&ep->bucket, now);
                if (t < wait)
                    wait = t;
                break;
            }
            start_attempt(w, ep, dequeue_job(ep));
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
static void hand_back_blocked(bz_wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    for (wh_endpoint *ep = w->ready_head; ep; ep = ep->next_ready) {
        if (ep->circuit.state != BZ_WH_CIRCUIT_OPEN || !ep->q_head)
            continue;
        int64_t delay = ep->circuit.open_until_ms - now;
        while (ep->q_head) {
            wh_job *job = dequeue_job(ep);
            add_outcome(w, job->id, "keep", 0, delay > 0 ? delay : 0, "", 0);
            free_job(w, job);
        }
    }
}

/* ---- claiming ----------------------------------------------------------- */

/* Endpoints not to claim for: circuit open, or enough queued already. */
static char *excluded_endpoints(bz_wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    size_t n = 0, cap = 16;
    int64_t *ids = malloc(cap * sizeof *ids);
    for (size_t i = 0; ids && i < w->table_cap; i++) {
        wh_endpoint *ep = w->table[i];
        if (!ep || !ep->enabled)
            continue;
        bool blocked = !bz_wh_circuit_would_allow(&ep->circuit, now) ||
                       ep->queued >= 8 * (ep->concurrency > 0 ? ep->concurrency : 1) + ep->rate;
        if (!blocked)
            continue;
        if (n == cap) {
            int64_t *more = realloc(ids, 2 * cap * sizeof *ids);
            if (!more)
                break;
            ids = more;
            cap *= 2;
        }
        ids[n++] = ep->id;
    }
    char *text = ids ? bz_pg_int64_array(ids, n) : NULL;
    free(ids);
    return text;
}

/* The stored payload arrives as bytea (hex text): decoding it ourselves
 * rather than converting in SQL keeps one malformed row from failing the
 * whole claim. */
static bool copy_payload(wh_job *job, PGresult *res, int r)
{
    size_t len = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, r, 5), &len);
    if (!raw)
        return false;
    job->body = malloc(len + 1);
    if (job->body) {
        memcpy(job->body, raw, len);
        job->body[len] = '\0';
        job->body_len = len;
    }
    PQfreemem(raw);
    return job->body != NULL;
}

/* Returns a new job (not yet counted in local_jobs) that the caller owns,
 * or NULL when out of memory. */
static wh_job *job_from_row(PGresult *res, int r)
{
    wh_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
    snprintf(job->event_id, sizeof job->event_id, "%s", PQgetvalue(res, r, 1));
    job->endpoint_id = strtoll(PQgetvalue(res, r, 2), NULL, 10);
    job->workspace_id = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    snprintf(job->type, sizeof job->type, "%s", PQgetvalue(res, r, 4));
    if (!copy_payload(job, res, r)) {
        free(job);
        return NULL;
    }
    job->retry_count = (int)bz_pg_get_int64(res, r, 6);
    job->max_retries = (int)bz_pg_get_int64(res, r, 7);
    job->created_ms = strtoll(PQgetvalue(res, r, 8), NULL, 10);
    return job;
}

/* A body we would send as JSON text must be UTF-8 without NUL. Rows are
 * written by our own fan-out, so a bad one was put there by hand or by a
 * bug: it goes to the dead-letter topic instead of being tried forever. */
static bool reject_unsendable_payload(bz_wh_worker *w, wh_job *job)
{
    if (bz_utf8_valid(job->body, job->body_len))
        return false;
    char msg[160];
    snprintf(msg, sizeof msg, "stored payload (%zu bytes) is not UTF-8 text; not sendable",
             job->body_len);
    bz_log_event(BZ_LOG_WARN, job->event_id, NULL, "delivery %" PRId64 ": %s", job->id, msg);
    count_delivery(w, "invalid", 0);
    dead_letter(w, job, "invalid_payload", msg, 0);
    return true;
}

/* Claim up to the free local capacity. Returns the number of rows claimed,
 * or -1 when the database is unavailable. */
static int claim(bz_wh_worker *w)
{
    int room = w->cfg.max_local_jobs - w->local_jobs;
    if (room <= 0)
        return 0;
    if (room > w->cfg.claim_batch)
        room = w->cfg.claim_batch;
    bz_error err;
    if (worker_conn(w, &err) != BZ_OK) {
        atomic_store(&w->db_up, 0);
        return -1;
    }
    char limit[16], lease[24];
    snprintf(limit, sizeof limit, "%d", room);
    snprintf(lease, sizeof lease, "%" PRId64, w->cfg.claim_lease_ms);
    char *excluded = excluded_endpoints(w);
    if (!excluded)
        return 0;
    const char *params[] = {limit, excluded, lease};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(bz_pg_conn(w->pg), "claim due deliveries", claim_sql, 3,
                                     params, &res, &err);
    free(excluded);
    if (st != BZ_OK) {
        bz_log(BZ_LOG_WARN, "%s", err.msg);
        if (st == BZ_ERR_TRANSIENT) {
            bz_pg_reset(w->pg);
            atomic_store(&w->db_up, 0);
        }
        return -1;
    }
    atomic_store(&w->db_up, 1);
    int n = PQntuples(res);
    for (int r = 0; r < n; r++) {
        wh_job *job = job_from_row(res, r);
        wh_endpoint *ep = job && !reject_unsendable_payload(w, job)
                              ? endpoint_from_row(w, res, r, job->endpoint_id, job->workspace_id)
                              : NULL;
        if (!ep) {
            /* rejected, or out of memory: then the lease runs out and the
             * row is claimed again */
            if (job) {
                free(job->body);
                free(job);
            }
            continue;
        }
        job->ep = ep;
        enqueue_job(w, ep, job);
    }
    PQclear(res);
    return n;
}

/* ---- LISTEN and housekeeping -------------------------------------------- */

/* The LISTEN connection's socket, (re)subscribing after a reconnect; -1
 * while the database is away (the poll timer covers that time). */
static int listen_socket(bz_wh_worker *w)
{
    bz_error err;
    if (bz_pg_ensure(w->listen, &err) != BZ_OK)
        return -1;
    PGconn *conn = bz_pg_conn(w->listen);
    if (conn != w->listening_on) {
        if (bz_pg_exec(conn, "LISTEN " BZ_WH_NOTIFY_CHANNEL, &err) != BZ_OK) {
            bz_pg_reset(w->listen);
            return -1;
        }
        w->listening_on = conn;
        w->claim_now = true; /* notifications may have been missed meanwhile */
    }
    return PQsocket(conn);
}

static void read_notifications(bz_wh_worker *w)
{
    PGconn *conn = bz_pg_conn(w->listen);
    if (!conn)
        return;
    if (!PQconsumeInput(conn)) {
        bz_pg_reset(w->listen);
        w->listening_on = NULL;
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(conn))) {
        w->claim_now = true;
        PQfreemem(n);
    }
}

static void refresh_depth(bz_wh_worker *w)
{
    PGresult *res = NULL;
    bz_error err;
    if (bz_pg_exec_prepared(bz_pg_conn(w->pg), "wh_depth", 0, NULL, NULL, NULL, &res, &err) !=
        BZ_OK)
        return;
    double pending = 0, retrying = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        double v = strtod(PQgetvalue(res, r, 1), NULL);
        if (strcmp(PQgetvalue(res, r, 0), "pending") == 0)
            pending = v;
        else
            retrying = v;
    }
    PQclear(res);
    bz_gauge_set(bz_gauge_family_with(w->m.depth, "pending"), pending);
    bz_gauge_set(bz_gauge_family_with(w->m.depth, "retrying"), retrying);
}

static void auto_disable(bz_wh_worker *w)
{
    char after[24];
    snprintf(after, sizeof after, "%" PRId64, w->cfg.auto_disable_after_ms);
    const char *params[] = {after};
    PGresult *res = NULL;
    bz_error err;
    if (bz_pg_exec_prepared(bz_pg_conn(w->pg), "wh_auto_disable", 1, params, NULL, NULL, &res,
                            &err) != BZ_OK)
        return;
    for (int r = 0; r < PQntuples(res); r++) {
        int64_t id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        wh_endpoint *ep = find_endpoint(w, id);
        if (ep) {
            ep->enabled = false;
            snprintf(ep->disabled_reason, sizeof ep->disabled_reason,
                     "auto-disabled: failing continuously");
        }
        bz_log(BZ_LOG_WARN, "endpoint %" PRId64 " auto-disabled: failing for more than %" PRId64
               " ms", id, w->cfg.auto_disable_after_ms);
    }
    PQclear(res);
}

static void housekeeping(bz_wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    if (now < w->next_housekeeping_ms || bz_pg_ensure(w->pg, NULL) != BZ_OK)
        return;
    w->next_housekeeping_ms = now + HOUSEKEEPING_MS;
    if (w->have_metrics) {
        refresh_depth(w);
        bz_gauge_set(w->m.in_flight, (double)bz_wh_delivery_running(w->http));
    }
    if (w->cfg.auto_disable_after_ms > 0)
        auto_disable(w);
}

/* ---- the loop ----------------------------------------------------------- */

static void collect_results(bz_wh_worker *w)
{
    bz_wh_transfer *t;
    while ((t = bz_wh_delivery_next_done(w->http)))
        handle_result(w, t->user);
}

static void flush_if_due(bz_wh_worker *w, bool force)
{
    if (w->out.n == 0 && !w->stat_head)
        return;
    if (!force && w->out.n < FLUSH_MAX / 2 &&
        bz_monotonic_ms() - w->out.oldest_ms < FLUSH_AGE_MS)
        return;
    bz_error err;
    if (flush_outcomes(w, &err) != BZ_OK) {
        atomic_store(&w->db_up, 0);
        bz_log(BZ_LOG_WARN, "%s (kept, retrying)", err.msg);
    }
}

static void maybe_claim(bz_wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    /* a backlog is drained without waiting for the timer: claim again once
     * half of what is held locally has been worked off */
    bool low = w->more_due && w->local_jobs <= w->cfg.max_local_jobs / 2;
    if (!w->claim_now && !low && now < w->next_claim_ms)
        return;
    w->claim_now = false;
    flush_if_due(w, true); /* outcomes first, so rows just retried are not re-claimed early */
    int room = w->cfg.max_local_jobs - w->local_jobs;
    int asked = room < w->cfg.claim_batch ? room : w->cfg.claim_batch;
    int n = claim(w);
    w->more_due = asked > 0 && n >= asked;
    if (w->more_due && w->local_jobs <= w->cfg.max_local_jobs / 2)
        w->claim_now = true;
    w->next_claim_ms = now + (n < 0 ? 1000 : w->cfg.poll_ms);
}

static void run_loop(bz_wh_worker *w)
{
    while (!atomic_load(&w->stop)) {
        flush_if_due(w, false);
        drain_dead_letters(w);
        maybe_claim(w);
        int64_t wait = dispatch(w);
        hand_back_blocked(w);
        int64_t until_claim = w->next_claim_ms - bz_monotonic_ms();
        if (until_claim < wait)
            wait = until_claim < 0 ? 0 : until_claim;
        if (w->out.n > 0 && wait > FLUSH_AGE_MS)
            wait = FLUSH_AGE_MS;
        if (w->dlq_head && wait > 50)
            wait = 50;
        bool notified = false;
        bz_wh_delivery_poll(w->http, (int)wait, listen_socket(w), &notified);
        if (notified)
            read_notifications(w);
        collect_results(w);
        housekeeping(w);
    }
}

/* Finish in-flight attempts (each is bounded by its timeout), hand back
 * what was claimed but not started, write every outcome. */
static void wind_down(bz_wh_worker *w)
{
    int64_t deadline = bz_monotonic_ms() + w->cfg.timeout_ms + 2000;
    while (bz_wh_delivery_running(w->http) > 0 && bz_monotonic_ms() < deadline) {
        bz_wh_delivery_poll(w->http, 50, -1, NULL);
        collect_results(w);
    }
    while (w->in_flight) {
        wh_job *job = w->in_flight;
        unlink_in_flight(w, job);
        bz_wh_delivery_cancel(w->http, &job->t);
        add_outcome(w, job->id, "keep", 0, 0, "", 0);
        free_job(w, job);
    }
    for (size_t i = 0; i < w->table_cap; i++) {
        wh_endpoint *ep = w->table[i];
        while (ep && ep->q_head) {
            wh_job *job = dequeue_job(ep);
            add_outcome(w, job->id, "keep", 0, 0, "", 0);
            free_job(w, job);
        }
    }
    int64_t dlq_deadline = bz_monotonic_ms() + 5000;
    while (w->dlq_head && bz_monotonic_ms() < dlq_deadline) {
        bz_producer_poll(w->producer, 50);
        drain_dead_letters(w);
    }
    bz_error err;
    for (int tries = 0; (w->out.n > 0 || w->stat_head) && tries < 10; tries++)
        if (flush_outcomes(w, &err) != BZ_OK) {
            bz_log(BZ_LOG_WARN, "final write of outcomes: %s", err.msg);
            bz_sleep_ms(200);
        }
}

static void *worker_main(void *arg)
{
    bz_wh_worker *w = arg;
    run_loop(w);
    wind_down(w);
    return NULL;
}

/* ---- start / stop ------------------------------------------------------- */

static bz_status register_metrics(bz_wh_worker *w, bz_error *err)
{
    bz_metrics *reg = w->cfg.metrics;
    worker_metrics *m = &w->m;
    static const double latency[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                     0.5,   1,      2.5,   5,    10,    30,   60,  300,
                                     1800,  7200,   36000};
    if (bz_metrics_counter_family(
            reg,
            &(bz_metric_def){.name = "blazz_webhook_dispatcher_deliveries_total",
                             .help = "Delivery attempts by outcome (success, retry, failed, "
                                     "exhausted) and HTTP status class.",
                             .label_names = (const char *[]){"outcome", "status_class", NULL}},
            &m->deliveries, err) != BZ_OK ||
        bz_metrics_counter(reg, BZ_METRIC("blazz_webhook_dispatcher_attempts_total",
                                          "HTTP attempts started."),
                           &m->attempts, err) != BZ_OK ||
        bz_metrics_counter(reg, BZ_METRIC("blazz_webhook_dispatcher_dead_lettered_total",
                                          "Exhausted deliveries written to webhook.dlq."),
                           &m->dead_lettered, err) != BZ_OK ||
        bz_metrics_gauge_family(
            reg,
            &(bz_metric_def){.name = "blazz_webhook_dispatcher_queue_depth",
                             .help = "Open rows of webhook_retry_queue by status.",
                             .label_names = (const char *[]){"status", NULL}},
            &m->depth, err) != BZ_OK ||
        bz_metrics_gauge_family(
            reg,
            &(bz_metric_def){.name = "blazz_webhook_dispatcher_circuit_state",
                             .help = "Circuit breaker per endpoint: 0 closed, 1 open, 2 half-open.",
                             .label_names = (const char *[]){"endpoint", NULL},
                             .max_children = 1024},
            &m->circuit, err) != BZ_OK ||
        bz_metrics_gauge(reg, BZ_METRIC("blazz_webhook_dispatcher_in_flight",
                                        "HTTP attempts in flight."),
                         &m->in_flight, err) != BZ_OK ||
        bz_metrics_histogram(
            reg,
            &(bz_metric_def){.name = "blazz_webhook_dispatcher_enqueue_to_first_attempt_seconds",
                             .help = "From fan-out (row created) to the first attempt.",
                             .buckets = latency, .n_buckets = sizeof latency / sizeof *latency},
            &m->to_first_attempt, err) != BZ_OK ||
        bz_metrics_histogram(
            reg,
            &(bz_metric_def){.name = "blazz_webhook_dispatcher_first_attempt_to_success_seconds",
                             .help = "From the first attempt (due at fan-out) to success, "
                                     "retries included.",
                             .buckets = latency, .n_buckets = sizeof latency / sizeof *latency},
            &m->to_success, err) != BZ_OK)
        return err->code;
    w->have_metrics = true;
    return BZ_OK;
}

static bz_status prepare_statements(bz_wh_worker *w, bz_error *err)
{
    if (bz_pg_prepare(w->pg, "wh_outcomes", outcome_sql, err) != BZ_OK ||
        bz_pg_prepare(w->pg, "wh_endpoint_stats", endpoint_stats_sql, err) != BZ_OK ||
        bz_pg_prepare(w->pg, "wh_auto_disable", auto_disable_sql, err) != BZ_OK ||
        bz_pg_prepare(w->pg, "wh_depth", depth_sql, err) != BZ_OK ||
        bz_pg_prepare(w->pg, "wh_defer", defer_sql, err) != BZ_OK)
        return err->code;
    return BZ_OK;
}

static void free_worker(bz_wh_worker *w)
{
    for (size_t i = 0; i < w->table_cap; i++)
        if (w->table[i])
            free_endpoint(w->table[i]);
    free(w->table);
    while (w->dlq_head) {
        dlq_wait *next = w->dlq_head->next;
        free_dlq_wait(w->dlq_head);
        w->dlq_head = next;
    }
    for (size_t i = 0; i < w->out.n; i++)
        free(w->out.error[i]);
    bz_wh_delivery_free(w->http);
    if (w->producer)
        bz_producer_free(w->producer, 5000);
    bz_pg_close(w->listen);
    bz_pg_close(w->pg);
    OPENSSL_cleanse(w->cfg.secret_key, sizeof w->cfg.secret_key);
    free(w);
}

bz_status bz_wh_worker_start(const bz_wh_worker_config *cfg, bz_wh_worker **out, bz_error *err)
{
    bz_wh_worker *w = calloc(1, sizeof *w);
    if (!w)
        return bz_fail(err, BZ_ERR_NOMEM, "webhook worker: out of memory");
    w->cfg = *cfg;
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
        st = bz_pg_open(cfg->pg_dsn, &w->pg, err);
    if (st == BZ_OK)
        st = prepare_statements(w, err);
    if (st == BZ_OK)
        st = bz_pg_open(cfg->pg_dsn, &w->listen, err);
    if (st == BZ_OK)
        st = bz_wh_delivery_new(&cfg->delivery, &w->http, err);
    if (st == BZ_OK)
        st = bz_producer_new(&cfg->kafka, &w->producer, err);
    if (st == BZ_OK) {
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

void bz_wh_worker_stop(bz_wh_worker *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    free_worker(w);
}

int bz_wh_worker_db_up(const bz_wh_worker *w)
{
    return atomic_load(&w->db_up);
}
