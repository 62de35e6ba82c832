/*
 * worker.c - claim, send, record (see worker.h).
 *
 * One thread, one loop:
 *   1. write buffered outcomes (outcomes.h), then publish the dead letters
 *      whose claims those writes confirmed
 *   2. claim due rows when woken by NOTIFY, by the poll timer, by a retry
 *      this worker scheduled or by an endpoint with more rows due than its
 *      share let the last claim take, if there is room
 *   3. start attempts for endpoints with queued jobs, within their
 *      concurrency, rate and circuit limits
 *   4. wait in curl_multi_poll for network activity or the LISTEN socket
 *   5. classify finished attempts and buffer their outcomes
 * Every few seconds it also refreshes the queue-depth gauges and disables
 * endpoints that have been failing for too long; every second it renews
 * its heartbeat among the live instances, whose count divides every
 * endpoint's rate limit (peers.h), and claims nothing before its peers
 * have counted it.
 *
 * Terms: retry_count counts failed attempts; a row may be attempted
 * max_retries + 1 times. A job is one claimed row held in memory. An
 * endpoint's load is its jobs queued and in flight.
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

#include "classify.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/token_bucket.h"
#include "core/utf8.h"
#include "deadletters.h"
#include "fairness.h"
#include "fanout.h"
#include "kafka/topics.h"
#include "outcomes.h"
#include "peers.h"
#include "pg/pg.h"
#include "wa/signature.h"

#define FLUSH_MAX 512 /* outcomes buffered before a write is due regardless of age */
#define FLUSH_AGE_MS 10
#define HOUSEKEEPING_MS 5000
#define MAX_SECRETS 4
#define LOOP_WAIT_MAX_MS 100
#define OPEN_SHARE_MARGIN_MS 100

/* Claims go endpoint by endpoint: a skip scan over the per-endpoint due
 * index finds the endpoints with open rows (one index descent each), and
 * each endpoint that may take rows gets at most its room, oldest due first
 * (ties: older rows, so retries before new first attempts of a deferred
 * backlog). Room: what its share leaves ($4/$5, endpoints this worker
 * holds), or twice its concurrency for one it holds nothing of yet
 * (fairness.h); endpoints without room or with an open circuit are
 * skipped: open here ($2), or open in any instance (circuit_open_until,
 * written with the endpoint stats). Of all candidates the oldest $1 are
 * claimed; `scanned` tells the caller whether there were more.
 *
 * The claim used to walk one due index (status, next_retry_at) in time
 * order, skipping the rows of endpoints it could not take: endpoints that
 * stopped answering (or a slow one with a large backlog) put tens of
 * thousands of rows in front of everyone else's, and every claim walked
 * them. Now its cost follows the number of endpoints with open rows, not
 * the rows.
 *
 * The claimed rows are updated through the primary key (id = ANY of the
 * chosen ids) and only then joined to their endpoints for what sending
 * needs: written as one join, the plan depended on statistics, and when
 * they lagged a burst of deliveries it scanned far more than it claimed.
 * The claim increments the row's claim number.
 *
 * Not a prepared statement: it is planned at every execution, for the
 * table as it is then. A generic plan made while the queue was nearly
 * empty (PostgreSQL switches to one after five executions) kept sequential
 * scans and a nested loop over the due rows once it held 20,000 rows: 92 ms
 * per claim instead of a few, 3,700 deliveries/s instead of 6,000+. */
static const char claim_sql[] =
    "WITH RECURSIVE eps(endpoint_id) AS ("
    "  (SELECT q.endpoint_id FROM webhook_retry_queue q"
    "   WHERE q.status IN ('pending', 'retrying') ORDER BY q.endpoint_id LIMIT 1)"
    "  UNION ALL"
    "  SELECT (SELECT q.endpoint_id FROM webhook_retry_queue q"
    "          WHERE q.status IN ('pending', 'retrying') AND q.endpoint_id > e.endpoint_id"
    "          ORDER BY q.endpoint_id LIMIT 1)"
    "  FROM eps e WHERE e.endpoint_id IS NOT NULL), "
    "wanted AS ("
    "  SELECT e.endpoint_id, coalesce(k.room, 2 * ep.max_concurrency) AS room"
    "  FROM eps e JOIN webhook_endpoints ep ON ep.id = e.endpoint_id"
    "  LEFT JOIN unnest($4::bigint[], $5::int[]) AS k(endpoint_id, room)"
    "    ON k.endpoint_id = e.endpoint_id"
    "  WHERE e.endpoint_id <> ALL ($2::bigint[])"
    "    AND (ep.circuit_open_until IS NULL OR ep.circuit_open_until <= now())), "
    "cand AS ("
    "  SELECT c.id, c.next_retry_at FROM wanted w CROSS JOIN LATERAL ("
    "    SELECT q.id, q.next_retry_at FROM webhook_retry_queue q"
    "    WHERE q.endpoint_id = w.endpoint_id AND q.status IN ('pending', 'retrying')"
    "      AND q.next_retry_at <= now()"
    "    ORDER BY q.next_retry_at, q.id LIMIT w.room FOR UPDATE SKIP LOCKED) c), "
    "chosen AS (SELECT id, next_retry_at FROM cand ORDER BY next_retry_at, id LIMIT $1), "
    "claimed AS ("
    "  UPDATE webhook_retry_queue q "
    "  SET next_retry_at = now() + $3::bigint * interval '1 millisecond', claims = q.claims + 1 "
    "  WHERE q.id = ANY (ARRAY(SELECT id FROM chosen)) "
    "  RETURNING q.id, q.event_id, q.endpoint_id, q.workspace_id, q.event_type, q.payload, "
    "    q.retry_count, q.max_retries, q.created_at, q.claims, q.last_error, "
    "    q.last_status_code) "
    "SELECT c.id, c.event_id, c.endpoint_id, c.workspace_id, c.event_type, c.payload, "
    "  c.retry_count, c.max_retries, (extract(epoch FROM c.created_at) * 1000)::bigint, e.url, "
    "  encode(e.secret_ciphertext, 'hex'), coalesce(encode(e.secret_nonce, 'hex'), ''), "
    "  e.signature_scheme, "
    "  e.rate_limit_per_sec, e.max_concurrency, e.timeout_ms, "
    "  e.enabled AND e.deleted_at IS NULL, coalesce(e.disabled_reason, ''), c.claims, "
    "  coalesce(c.last_error, ''), coalesce(c.last_status_code, 0), "
    "  (SELECT count(*) FROM cand) "
    "FROM claimed c JOIN webhook_endpoints e ON e.id = c.endpoint_id "
    "JOIN chosen d ON d.id = c.id ORDER BY d.next_retry_at, d.id";

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
    "  disabled_at = CASE WHEN u.disable <> '' THEN now() ELSE e.disabled_at END, "
    "  circuit_open_until = CASE WHEN u.open_ms > 0 "
    "    THEN now() + u.open_ms * interval '1 millisecond' ELSE e.circuit_open_until END "
    "FROM unnest($1::bigint[], $2::int[], $3::bool[], $4::int[], $5::text[], $6::text[], "
    "  $7::bigint[]) AS u(id, tail, any_success, code, error, disable, open_ms) "
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
    int64_t claims;         /* the claim this worker holds the row on */
    int64_t lease_until_ms; /* monotonic: when the row falls due for others */
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
    bz_wh_meter finished;   /* attempts finished per second: its share */
    int claim_room, claimed; /* what the last claim could give it, and gave */
    bool more_due;          /* the last claim gave it all its room */
    bool ready_listed;
    wh_endpoint *next_ready;
    bz_gauge *circuit_gauge;
    /* outcomes since the last endpoint-stats write */
    bool stat_listed, stat_any_success;
    int stat_tail;
    long stat_code;
    char stat_error[BZ_WH_ERROR_MAX + BZ_WH_SNIPPET_MAX + 32];
    char stat_disable[256];
    int64_t stat_open_ms; /* the circuit opened for this long */
    wh_endpoint *next_stat;
};

typedef struct worker_metrics {
    bz_counter_family *deliveries; /* outcome, status_class */
    bz_counter *attempts;
    bz_counter *dead_lettered;
    bz_gauge *dead_letters_pending;
    bz_counter *dead_letters_deferred;
    bz_counter *stale_outcomes;
    bz_counter *dropped_outcomes;
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
    PGconn *depth_on; /* the LISTEN connection while a depth count runs on it */
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
    bz_wh_outcomes out;
    bz_wh_dead_letters dl;
    int64_t next_claim_ms, next_housekeeping_ms;
    bz_wh_peers peers;
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
 * while a secret is being rotated. The ciphertext carries the id of the key
 * that sealed it and is bound to its row (core/keyring.h); rows in the older
 * form (a nonce column of their own) open with any loaded key. Failures are
 * kept as the endpoint's secret_error and fail its deliveries with that
 * reason. */
static void load_secrets(bz_wh_worker *w, wh_endpoint *ep)
{
    wipe_secrets(ep);
    ep->secret_error[0] = '\0';
    if (!w->cfg.keyring || w->cfg.keyring->count == 0) {
        snprintf(ep->secret_error, sizeof ep->secret_error,
                 "endpoint %" PRId64 ": no secrets.keys configured to decrypt its secret",
                 ep->id);
        return;
    }
    uint8_t sealed[1024], nonce[BZ_SECRETBOX_NONCE_LEN];
    size_t sealed_len, nonce_len = 0;
    int legacy = ep->nonce_hex[0] != '\0';
    if (!hex_to_bytes(ep->cipher_hex, sealed, sizeof sealed, &sealed_len) ||
        (legacy && (!hex_to_bytes(ep->nonce_hex, nonce, sizeof nonce, &nonce_len) ||
                    nonce_len != BZ_SECRETBOX_NONCE_LEN))) {
        snprintf(ep->secret_error, sizeof ep->secret_error,
                 "endpoint %" PRId64 ": malformed secret_ciphertext or secret_nonce", ep->id);
        return;
    }
    char id[24], workspace[24];
    snprintf(id, sizeof id, "%" PRId64, ep->id);
    snprintf(workspace, sizeof workspace, "%" PRId64, ep->workspace_id);
    char *plain;
    size_t plain_len;
    bz_error err;
    if (bz_keyring_open_row(w->cfg.keyring, "webhook_endpoints", id, workspace, sealed,
                            sealed_len, legacy ? nonce : NULL, &plain, &plain_len,
                            &err) != BZ_OK) {
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
    bool created = !ep;
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
    if (rate != ep->rate) {
        double share = bz_wh_peers_share(&w->peers, rate);
        bz_token_bucket_set_rate(&ep->bucket, share, share, now);
    }
    ep->rate = rate;
    ep->concurrency = (int)bz_pg_get_int64(res, r, 14);
    if (created)
        ep->claim_room = 2 * ep->concurrency; /* what the claim gave an unknown endpoint */
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

/* Buffer an outcome of the row claimed as `claims`; then (a dead letter, or
 * NULL) is published only if the outcome finds the row on that claim. Out
 * of memory, the outcome is lost: the lease runs out and the row is claimed
 * again. */
static void add_outcome(bz_wh_worker *w, int64_t id, int64_t claims, const char *status,
                        int failed, int64_t delay_ms, const char *error, long code, void *then)
{
    bz_wh_outcome_row row = {.id = id,
                             .claims = claims,
                             .status = status,
                             .failed = failed,
                             .delay_ms = delay_ms,
                             .code = code,
                             .then = then};
    bz_error err;
    if (bz_wh_outcomes_add(&w->out, &row, error, &err) != BZ_OK) {
        bz_error_log("%s; the delivery is tried again when its lease runs out", err.msg);
        if (then)
            bz_wh_dead_letters_confirmed(then, false);
    }
}

static void on_outcome_written(void *ctx, void *then, bool applied)
{
    (void)ctx;
    bz_wh_dead_letters_confirmed(then, applied);
}

static bz_status flush_endpoint_stats(bz_wh_worker *w, bz_error *err);

/* Write the buffered outcomes, then the endpoint stats. Stats refused for
 * their data are dropped (logged): they are a summary, the next outcomes
 * write them again. */
static bz_status flush_outcomes(bz_wh_worker *w, bz_error *err)
{
    if (w->out.n > 0) {
        if (worker_conn(w, err) != BZ_OK)
            return err->code;
        size_t stale = 0, dropped = 0;
        bz_status st = bz_wh_outcomes_flush(&w->out, bz_pg_conn(w->pg), on_outcome_written, w,
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
static void set_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
    bz_utf8_scrub(dst);
}

static void note_endpoint_result(bz_wh_worker *w, wh_endpoint *ep, bool success, long code,
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
    set_text(ep->stat_error, sizeof ep->stat_error, error ? error : "");
}

static bz_status flush_endpoint_stats(bz_wh_worker *w, bz_error *err)
{
    size_t n = 0;
    for (wh_endpoint *ep = w->stat_head; ep; ep = ep->next_stat)
        n++;
    if (n == 0)
        return BZ_OK;
    int64_t *ids = calloc(n, sizeof *ids), *tails = calloc(n, sizeof *tails);
    int64_t *codes = calloc(n, sizeof *codes), *opens = calloc(n, sizeof *opens);
    const char **succ = calloc(n, sizeof *succ), **errors = calloc(n, sizeof *errors);
    const char **disable = calloc(n, sizeof *disable);
    char *text[7] = {NULL};
    bz_status st = BZ_OK;
    if (ids && tails && codes && opens && succ && errors && disable) {
        size_t i = 0;
        for (wh_endpoint *ep = w->stat_head; ep; ep = ep->next_stat, i++) {
            ids[i] = ep->id;
            tails[i] = ep->stat_tail;
            codes[i] = ep->stat_code;
            succ[i] = ep->stat_any_success ? "t" : "f";
            errors[i] = ep->stat_error;
            disable[i] = ep->stat_disable;
            opens[i] = ep->stat_open_ms;
        }
        text[0] = bz_pg_int64_array(ids, n);
        text[1] = bz_pg_int64_array(tails, n);
        text[2] = bz_pg_text_array(succ, n);
        text[3] = bz_pg_int64_array(codes, n);
        text[4] = bz_pg_text_array(errors, n);
        text[5] = bz_pg_text_array(disable, n);
        text[6] = bz_pg_int64_array(opens, n);
    }
    bool built = true;
    for (int i = 0; i < 7; i++)
        built = built && text[i];
    if (!built)
        st = bz_fail(err, BZ_ERR_NOMEM, "write endpoint stats: out of memory");
    else
        st = bz_pg_exec_prepared(bz_pg_conn(w->pg), "wh_endpoint_stats", 7,
                                 (const char *const *)text, NULL, NULL, NULL, err);
    for (int i = 0; i < 7; i++)
        free(text[i]);
    free(ids), free(tails), free(codes), free(opens), free(succ), free(errors), free(disable);
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

/* ---- dead letters ------------------------------------------------------- */

static const char *source_topic_of(const bz_wh_worker *w, const char *type)
{
    if (strncmp(type, "session.", 8) == 0)
        return w->source_topics[1];
    if (strncmp(type, "campaign.", 9) == 0)
        return w->source_topics[2];
    return w->source_topics[0];
}

/* Undeliverable (exhausted, or a payload that cannot be sent): add the
 * dead letter (deadletters.h) and buffer the outcome that confirms this
 * worker's claim on the row. That outcome keeps the row leased and, after
 * an attempt (attempt_error not NULL), counts it: retry_count passes
 * max_retries, so no claim attempts the row again. The dead letter is
 * published once the outcome found the row on our claim, and the row is
 * marked failed once the broker has it (dead_letter_acked). A crash in
 * between leaves the row due again after its lease: claimed with
 * retry_count past max_retries, it is dead-lettered again without an
 * attempt. Returns false, having buffered nothing, when the dead letter
 * could not be added (enough wait already): the caller leaves the row to
 * its lease. */
static bool dead_letter(bz_wh_worker *w, const wh_job *job, const char *error_code,
                        const char *message, long code, const char *attempt_error)
{
    bz_wh_dead_letter_source src = {.id = job->id,
                                    .claims = job->claims,
                                    .endpoint_id = job->endpoint_id,
                                    .workspace_id = job->workspace_id,
                                    .created_ms = job->created_ms,
                                    .event_id = job->event_id,
                                    .original_topic = source_topic_of(w, job->type),
                                    .body = job->body,
                                    .body_len = job->body_len,
                                    .attempts = job->retry_count + (attempt_error ? 1 : 0),
                                    .code = code,
                                    .error_code = error_code,
                                    .message = message};
    bz_wh_dead_letter *dl = bz_wh_dead_letters_add(&w->dl, &src);
    if (!dl)
        return false;
    if (attempt_error)
        add_outcome(w, job->id, job->claims, "retrying", 1, w->cfg.claim_lease_ms, attempt_error,
                    code, dl);
    else
        add_outcome(w, job->id, job->claims, "keep", 0, w->cfg.claim_lease_ms, "", 0, dl);
    return true;
}

/* No room for another dead letter: the row waits in the table, leased,
 * and is claimed again when the lease runs out (and dead-lettered then,
 * without another attempt). An attempt that exhausted it is counted now. */
static void leave_to_lease(bz_wh_worker *w, const wh_job *job, const char *attempt_error,
                           long code)
{
    if (attempt_error)
        add_outcome(w, job->id, job->claims, "retrying", 1, w->cfg.claim_lease_ms, attempt_error,
                    code, NULL);
    else
        add_outcome(w, job->id, job->claims, "keep", 0, w->cfg.claim_lease_ms, "", 0, NULL);
    if (w->have_metrics)
        bz_counter_inc(w->m.dead_letters_deferred);
}

static void dead_letter_acked(void *ctx, int64_t id, int64_t claims, const char *error,
                              long code)
{
    bz_wh_worker *w = ctx;
    add_outcome(w, id, claims, "failed", 0, 0, error, code, NULL);
}

static void drain_dead_letters(bz_wh_worker *w)
{
    size_t acked = bz_wh_dead_letters_drain(&w->dl, dead_letter_acked, w);
    if (w->have_metrics) {
        bz_counter_add(w->m.dead_lettered, acked);
        bz_gauge_set(w->m.dead_letters_pending, (double)w->dl.count);
    }
}

static void renew_dead_letter_leases(bz_wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    bz_error err;
    if (bz_wh_dead_letters_renewal_due(&w->dl, now) && worker_conn(w, &err) == BZ_OK)
        bz_wh_dead_letters_renew(&w->dl, bz_pg_conn(w->pg), now);
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
        char msg[BZ_WH_ERROR_MAX + BZ_WH_SNIPPET_MAX + 96];
        snprintf(msg, sizeof msg, "exhausted after %d attempts: %s", failures, error);
        if (!dead_letter(w, job, "webhook_exhausted", msg, code, error))
            leave_to_lease(w, job, error, code);
        return;
    }
    int64_t delay = bz_wh_schedule_delay_ms(&w->cfg.schedule, failures, random01(),
                                            retry_after_ms);
    count_delivery(w, "retry", code);
    add_outcome(w, job->id, job->claims, "retrying", 1, delay, error, code, NULL);
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
        add_outcome(w, job->id, job->claims, "failed", 0, 0, msg, 0, NULL);
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

/* An open circuit is shared through webhook_endpoints.circuit_open_until
 * (written with the endpoint's stats): every instance's claims skip the
 * endpoint until then, not only this one's. */
static void share_open_circuit(wh_endpoint *ep, int64_t open_ms)
{
    bz_log(BZ_LOG_WARN, "endpoint %" PRId64 ": circuit open for %" PRId64 " ms (%d of the last "
           "%d attempts failed, %d timed out in a row)", ep->id, open_ms,
           bz_wh_circuit_failures(&ep->circuit), ep->circuit.recorded,
           ep->circuit.consecutive_timeouts);
    ep->stat_open_ms = open_ms > 0 ? open_ms : 1;
}

/* This instance's part of an endpoint's rate limit, whole (at least 1). */
static int rate_share(const bz_wh_worker *w, const wh_endpoint *ep)
{
    double share = bz_wh_peers_share(&w->peers, ep->rate);
    return share < 1 ? 1 : (int)(share + 0.5);
}

/* An endpoint's share of the worker now (fairness.h). */
static int endpoint_cap(const bz_wh_worker *w, wh_endpoint *ep, int64_t now)
{
    return bz_wh_endpoint_cap(ep->concurrency, rate_share(w, ep),
                              bz_wh_meter_rate(&ep->finished, now), w->cfg.max_local_jobs);
}

/* An endpoint that had more rows due than its share let the last claim
 * take asks for a claim once half its share is free. */
static void claim_more_if_due(bz_wh_worker *w, wh_endpoint *ep, int64_t now)
{
    if (ep->more_due && 2 * (ep->queued + ep->in_flight) <= endpoint_cap(w, ep, now)) {
        ep->more_due = false;
        w->claim_now = true;
    }
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
    bz_wh_meter_add(&ep->finished, now);
    note_endpoint_result(w, ep, success, code, success ? "" : error);
    record_in_circuit(w, ep, t, success, now); /* after: it may add to the stats */
    switch (o.verdict) {
    case BZ_WH_SUCCESS:
        count_delivery(w, "success", code);
        add_outcome(w, job->id, job->claims, "success", 0, 0, "", code, NULL);
        if (w->have_metrics && job->created_ms > 0)
            bz_histogram_observe(w->m.to_success, (double)(bz_wall_ms() - job->created_ms) / 1000.0);
        break;
    case BZ_WH_RETRY:
        retry_or_exhaust(w, job, error, code, o.retry_after_ms);
        break;
    case BZ_WH_FAIL_DISABLE: {
        char reason[BZ_WH_ERROR_MAX];
        snprintf(reason, sizeof reason, "HTTP 410 Gone from %s", ep->url);
        set_text(ep->stat_disable, sizeof ep->stat_disable, reason);
        set_text(ep->disabled_reason, sizeof ep->disabled_reason, reason);
        ep->enabled = false;
        bz_log(BZ_LOG_WARN, "endpoint %" PRId64 " answered 410 Gone: disabled", ep->id);
    }
        /* fall through */
    case BZ_WH_FAIL:
        count_delivery(w, "failed", code);
        add_outcome(w, job->id, job->claims, "failed", 1, 0, error, code, NULL);
        break;
    }
    free_job(w, job);
    claim_more_if_due(w, ep, now);
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

/* A job whose attempt could outlast its lease is handed back rather than
 * sent: by then another claim may have the row, and both would send it.
 * It falls due at once and is claimed again, with a fresh lease. */
static bool hand_back_if_lease_short(bz_wh_worker *w, wh_endpoint *ep, int64_t now)
{
    wh_job *job = ep->q_head;
    if (now + ep->timeout_ms <= job->lease_until_ms)
        return false;
    dequeue_job(ep);
    bz_log_event(BZ_LOG_DEBUG, job->event_id, NULL, "delivery %" PRId64 ": its lease ends "
                 "before an attempt could time out; handed back", job->id);
    add_outcome(w, job->id, job->claims, "keep", 0, 0, "", 0, NULL);
    free_job(w, job);
    return true;
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
            if (hand_back_if_lease_short(w, ep, now))
                continue;
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
            add_outcome(w, job->id, job->claims, "keep", 0, delay > 0 ? delay : 0, "", 0, NULL);
            free_job(w, job);
        }
    }
}

/* ---- claiming ----------------------------------------------------------- */

/* What a claim may take per endpoint, as array literals: the endpoints to
 * leave out (circuit open, or their share full) and the room of the others
 * this worker knows (fairness.h); unknown endpoints get twice their
 * concurrency in SQL. A disabled endpoint's rows are only settled as
 * failed, so its room is a whole claim. Each endpoint keeps the room it
 * was given, to tell afterwards whether it got all of it. */
typedef struct claim_filter {
    char *excluded, *ids, *rooms;
} claim_filter;

static void free_claim_filter(claim_filter *f)
{
    free(f->excluded), free(f->ids), free(f->rooms);
}

static bool build_claim_filter(bz_wh_worker *w, claim_filter *f)
{
    int64_t now = bz_monotonic_ms();
    size_t cap = w->table_used + 1, nx = 0, nr = 0;
    int64_t *excluded = malloc(cap * sizeof *excluded), *ids = malloc(cap * sizeof *ids);
    int64_t *rooms = malloc(cap * sizeof *rooms);
    for (size_t i = 0; excluded && ids && rooms && i < w->table_cap; i++) {
        wh_endpoint *ep = w->table[i];
        if (!ep)
            continue;
        ep->claim_room = ep->enabled ? endpoint_cap(w, ep, now) - ep->queued - ep->in_flight
                                     : w->cfg.claim_batch;
        ep->claimed = 0;
        if (ep->claim_room <= 0) {
            /* it may have rows due: claim for it again once half its share is free */
            ep->more_due = true;
            excluded[nx++] = ep->id;
        } else if (ep->enabled && !bz_wh_circuit_would_allow(&ep->circuit, now)) {
            excluded[nx++] = ep->id;
        } else {
            ids[nr] = ep->id;
            rooms[nr++] = ep->claim_room;
        }
    }
    f->excluded = excluded ? bz_pg_int64_array(excluded, nx) : NULL;
    f->ids = ids ? bz_pg_int64_array(ids, nr) : NULL;
    f->rooms = rooms ? bz_pg_int64_array(rooms, nr) : NULL;
    free(excluded), free(ids), free(rooms);
    if (f->excluded && f->ids && f->rooms)
        return true;
    free_claim_filter(f);
    return false;
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
    job->claims = bz_pg_get_int64(res, r, 18);
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
    if (!dead_letter(w, job, "invalid_payload", msg, 0, NULL))
        leave_to_lease(w, job, NULL, 0);
    return true;
}

/* A row claimed after its last attempt (retry_count past max_retries): its
 * dead letter was never acknowledged (the broker was away, or the instance
 * holding it died). Dead-letter it without another attempt. */
static bool dead_letter_if_exhausted(bz_wh_worker *w, wh_job *job, PGresult *res, int r)
{
    if (job->retry_count <= job->max_retries)
        return false;
    char msg[BZ_WH_ERROR_MAX + BZ_WH_SNIPPET_MAX + 96];
    snprintf(msg, sizeof msg, "exhausted after %d attempts: %s", job->retry_count,
             PQgetvalue(res, r, 19));
    if (!dead_letter(w, job, "webhook_exhausted", msg, (long)bz_pg_get_int64(res, r, 20), NULL))
        leave_to_lease(w, job, NULL, 0);
    return true;
}

/* Claimed work held in memory: jobs, outcomes not yet written and dead
 * letters not yet acknowledged all count against max_local_jobs. */
static int claim_room(const bz_wh_worker *w)
{
    int held = w->local_jobs + (int)w->out.n + w->dl.count;
    int room = w->cfg.max_local_jobs - held;
    return room < w->cfg.claim_batch ? room : w->cfg.claim_batch;
}

/* Take the rows of one claim result into jobs, dead letters or nothing.
 * Returns how many candidates the claim had. */
static int64_t take_claimed(bz_wh_worker *w, PGresult *res)
{
    int n = PQntuples(res);
    int64_t lease_until = bz_monotonic_ms() + w->cfg.claim_lease_ms;
    for (int r = 0; r < n; r++) {
        wh_job *job = job_from_row(res, r);
        wh_endpoint *ep = job && !dead_letter_if_exhausted(w, job, res, r) &&
                                  !reject_unsendable_payload(w, job)
                              ? endpoint_from_row(w, res, r, job->endpoint_id, job->workspace_id)
                              : NULL;
        if (!ep) {
            /* dead-lettered, or out of memory: then the lease runs out and
             * the row is claimed again */
            if (job) {
                free(job->body);
                free(job);
            }
            continue;
        }
        job->ep = ep;
        job->lease_until_ms = lease_until;
        ep->claimed++;
        enqueue_job(w, ep, job);
    }
    for (size_t i = 0; i < w->table_cap; i++) {
        wh_endpoint *ep = w->table[i];
        if (ep && ep->claimed > 0 && ep->claimed >= ep->claim_room)
            ep->more_due = true;
    }
    return n > 0 ? bz_pg_get_int64(res, 0, 21) : 0;
}

/* Claim up to the free room. Returns the number of rows claimed, or -1
 * when the database is unavailable; *full tells whether there were more
 * candidates than room. */
static int claim(bz_wh_worker *w, bool *full)
{
    *full = false;
    int room = claim_room(w);
    if (room <= 0)
        return 0;
    bz_error err;
    if (worker_conn(w, &err) != BZ_OK) {
        atomic_store(&w->db_up, 0);
        return -1;
    }
    char limit[16], lease[24];
    snprintf(limit, sizeof limit, "%d", room);
    snprintf(lease, sizeof lease, "%" PRId64, w->cfg.claim_lease_ms);
    claim_filter f;
    if (!build_claim_filter(w, &f))
        return 0;
    const char *params[] = {limit, f.excluded, lease, f.ids, f.rooms};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(bz_pg_conn(w->pg), "claim due deliveries", claim_sql, 5,
                                     params, &res, &err);
    free_claim_filter(&f);
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
    *full = take_claimed(w, res) > n;
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
        w->depth_on = NULL;
        w->claim_now = true; /* notifications may have been missed meanwhile */
    }
    return PQsocket(conn);
}

/* The queue-depth gauges count every open row, which took 200 ms beside a
 * large backlog: the count runs on the LISTEN connection, sent by
 * housekeeping and collected on a later turn of the loop, so deliveries
 * never wait for it. */
static void send_depth_query(bz_wh_worker *w)
{
    PGconn *conn = bz_pg_conn(w->listen);
    if (w->depth_on || !conn || conn != w->listening_on)
        return;
    if (PQsendQueryPrepared(conn, "wh_depth", 0, NULL, NULL, NULL, 0))
        w->depth_on = conn;
}

static void collect_depth(bz_wh_worker *w, PGconn *conn)
{
    if (!w->depth_on || conn != w->depth_on || PQisBusy(conn))
        return;
    w->depth_on = NULL;
    PGresult *res;
    while ((res = PQgetResult(conn))) {
        double pending = 0, retrying = 0;
        for (int r = 0; PQresultStatus(res) == PGRES_TUPLES_OK && r < PQntuples(res); r++) {
            double v = strtod(PQgetvalue(res, r, 1), NULL);
            if (strcmp(PQgetvalue(res, r, 0), "pending") == 0)
                pending = v;
            else
                retrying = v;
        }
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            bz_gauge_set(bz_gauge_family_with(w->m.depth, "pending"), pending);
            bz_gauge_set(bz_gauge_family_with(w->m.depth, "retrying"), retrying);
        }
        PQclear(res);
    }
}

static void read_notifications(bz_wh_worker *w)
{
    PGconn *conn = bz_pg_conn(w->listen);
    if (!conn)
        return;
    if (!PQconsumeInput(conn)) {
        bz_pg_reset(w->listen);
        w->listening_on = w->depth_on = NULL;
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(conn))) {
        w->claim_now = true;
        PQfreemem(n);
    }
    collect_depth(w, conn);
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

/* Renew the heartbeat when due; when the number of live instances changed,
 * give every endpoint's bucket this instance's new share of its rate. */
static void heartbeat(bz_wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    if (now < w->peers.next_beat_ms || bz_pg_ensure(w->pg, NULL) != BZ_OK)
        return;
    bz_error err;
    bz_error_clear(&err);
    if (!bz_wh_peers_beat(&w->peers, bz_pg_conn(w->pg), now, &err)) {
        if (err.msg[0])
            bz_log(BZ_LOG_WARN, "webhook dispatchers: heartbeat: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < w->table_cap; i++) {
        wh_endpoint *ep = w->table[i];
        if (ep && ep->rate > 0) {
            double share = bz_wh_peers_share(&w->peers, ep->rate);
            bz_token_bucket_set_rate(&ep->bucket, share, share, now);
        }
    }
}

static void housekeeping(bz_wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    if (now < w->next_housekeeping_ms || bz_pg_ensure(w->pg, NULL) != BZ_OK)
        return;
    w->next_housekeeping_ms = now + HOUSEKEEPING_MS;
    if (w->have_metrics) {
        send_depth_query(w);
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
    bz_status st = flush_outcomes(w, &err);
    if (st != BZ_OK) {
        /* only an unreachable database is "down": refused data was dealt
         * with by the writer and says nothing about PostgreSQL */
        if (st == BZ_ERR_TRANSIENT)
            atomic_store(&w->db_up, 0);
        bz_log(BZ_LOG_WARN, "%s (kept, retrying)", err.msg);
    }
}

static void maybe_claim(bz_wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    if (!bz_wh_peers_settled(&w->peers, now)) {
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
    int n = claim(w, &full);
    w->more_due = n > 0 && full;
    if (w->more_due && w->local_jobs <= w->cfg.max_local_jobs / 2)
        w->claim_now = true;
    w->next_claim_ms = now + (n < 0 ? 1000 : w->cfg.poll_ms);
}

static void run_loop(bz_wh_worker *w)
{
    while (!atomic_load(&w->stop)) {
        heartbeat(w);
        flush_if_due(w, false);
        drain_dead_letters(w);
        renew_dead_letter_leases(w);
        maybe_claim(w);
        int64_t wait = dispatch(w);
        hand_back_blocked(w);
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
        bz_wh_delivery_poll(w->http, (int)wait, listen_socket(w), &notified);
        if (notified)
            read_notifications(w);
        collect_results(w);
        housekeeping(w);
    }
}

/* Finish in-flight attempts (each is bounded by its timeout), hand back
 * what was claimed but not started, publish the dead letters whose claims
 * are confirmed (bounded wait), write every outcome. A dead letter left
 * waiting leaves its row leased: it is claimed and dead-lettered again
 * after the lease. */
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
        add_outcome(w, job->id, job->claims, "keep", 0, 0, "", 0, NULL);
        free_job(w, job);
    }
    for (size_t i = 0; i < w->table_cap; i++) {
        wh_endpoint *ep = w->table[i];
        while (ep && ep->q_head) {
            wh_job *job = dequeue_job(ep);
            add_outcome(w, job->id, job->claims, "keep", 0, 0, "", 0, NULL);
            free_job(w, job);
        }
    }
    bz_error err;
    int64_t dlq_deadline = bz_monotonic_ms() + 5000;
    while (w->dl.head && bz_monotonic_ms() < dlq_deadline) {
        if (w->out.n > 0 && flush_outcomes(w, &err) != BZ_OK)
            bz_log(BZ_LOG_WARN, "write outcomes while stopping: %s", err.msg);
        drain_dead_letters(w);
        bz_producer_poll(w->producer, 50);
    }
    for (int tries = 0; (w->out.n > 0 || w->stat_head) && tries < 10; tries++)
        if (flush_outcomes(w, &err) != BZ_OK) {
            bz_log(BZ_LOG_WARN, "final write of outcomes: %s", err.msg);
            bz_sleep_ms(200);
        }
    if (bz_pg_ensure(w->pg, NULL) == BZ_OK)
        bz_wh_peers_leave(&w->peers, bz_pg_conn(w->pg));
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
        bz_metrics_gauge(reg, BZ_METRIC("blazz_webhook_dispatcher_dead_letters_pending",
                                        "Dead letters held in memory until the broker "
                                        "acknowledges them (at most "
                                        "webhook.max_pending_dead_letters)."),
                         &m->dead_letters_pending, err) != BZ_OK ||
        bz_metrics_counter(reg, BZ_METRIC("blazz_webhook_dispatcher_dead_letters_deferred_total",
                                          "Undeliverable deliveries left in the table for a "
                                          "lease because enough dead letters were pending."),
                           &m->dead_letters_deferred, err) != BZ_OK ||
        bz_metrics_counter(reg, BZ_METRIC("blazz_webhook_dispatcher_stale_outcomes_total",
                                          "Outcomes ignored: the row was on another claim "
                                          "(this one's lease had run out) or already final."),
                           &m->stale_outcomes, err) != BZ_OK ||
        bz_metrics_counter(reg, BZ_METRIC("blazz_webhook_dispatcher_dropped_outcomes_total",
                                          "Outcomes PostgreSQL refused even without their "
                                          "error text (the delivery is tried again)."),
                           &m->dropped_outcomes, err) != BZ_OK ||
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
    if (bz_wh_outcomes_prepare(w->pg, err) != BZ_OK ||
        bz_wh_dead_letters_prepare(w->pg, err) != BZ_OK ||
        bz_pg_prepare(w->pg, "wh_endpoint_stats", endpoint_stats_sql, err) != BZ_OK ||
        bz_pg_prepare(w->pg, "wh_auto_disable", auto_disable_sql, err) != BZ_OK ||
        bz_pg_prepare(w->pg, BZ_WH_PEERS_BEAT_STMT, bz_wh_peers_beat_sql, err) != BZ_OK ||
        bz_pg_prepare(w->pg, BZ_WH_PEERS_LEAVE_STMT, bz_wh_peers_leave_sql, err) != BZ_OK ||
        bz_pg_prepare(w->listen, "wh_depth", depth_sql, err) != BZ_OK)
        return err->code;
    return BZ_OK;
}

static void free_worker(bz_wh_worker *w)
{
    for (size_t i = 0; i < w->table_cap; i++)
        if (w->table[i])
            free_endpoint(w->table[i]);
    free(w->table);
    /* the producer first: freeing it reports on the dead letters it still
     * holds, whose memory the dead-letter set owns */
    if (w->producer)
        bz_producer_free(w->producer, 5000);
    bz_wh_dead_letters_free(&w->dl);
    bz_wh_outcomes_free(&w->out);
    bz_wh_delivery_free(w->http);
    bz_pg_close(w->listen);
    bz_pg_close(w->pg);
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
        st = bz_wh_peers_init(&w->peers, err);
    if (st == BZ_OK)
        st = bz_pg_open(cfg->pg_dsn, &w->pg, err);
    if (st == BZ_OK)
        st = bz_pg_open(cfg->pg_dsn, &w->listen, err);
    if (st == BZ_OK)
        st = prepare_statements(w, err);
    if (st == BZ_OK)
        st = bz_wh_delivery_new(&cfg->delivery, &w->http, err);
    if (st == BZ_OK)
        st = bz_producer_new(&cfg->kafka, &w->producer, err);
    if (st == BZ_OK) {
        w->dl = (bz_wh_dead_letters){.producer = w->producer,
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
