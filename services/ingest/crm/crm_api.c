/*
 * crm_api.c - the CRM's endpoints (see crm_api.h): the queue and the
 * workers.
 *
 * On the event loop, a complete request becomes a job (its body and the two
 * headers that matter copied, with the handler the route table named:
 * crm_routes.c), its connection is suspended and the job queued. A worker
 * takes it: key (api_keys.c) -> the workspace's rate -> a pooled connection
 * (pg_pool.c, one per worker) -> the handler (crm_messages.c,
 * crm_sessions.c, or a media task), which reads the body, looks up what it
 * names in the key's workspace and answers through crm_request.c: a
 * refusal, or one CrmCommand on crm.commands with the worker's producer,
 * 202 once the broker acknowledged it. The answer is stored in the job and
 * the connection resumed; the event loop sends it. This file knows no
 * endpoint: a handler is a function the job carries.
 *
 * Nothing is half-stored: a refused request produced nothing, an accepted
 * one is one record, which chat-sync applies or dead-letters whole.
 */
#include "crm/crm_api.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/log.h"
#include "crm/api_keys.h"
#include "crm/crm_request.h"
#include "crm/pg_pool.h"
#include "kafka/producer.h"
#include "pg/pg.h"
#include "rate_table.h"

#define POOL_WAIT_MS 2000
/* More than a URL can carry within libmicrohttpd's connection memory: a
 * ceiling bz_bytes asks for, never met. */
#define ARGS_MAX (1024 * 1024)
#define WORKSPACES_MAX 100000

#define ANSWER_OOM "{\"error\":\"out_of_memory\",\"field\":\"\",\"message\":\"try again\"}\n"

struct ing_crm_job {
    ing_crm_job *next;
    struct MHD_Connection *conn;
    ing_crm_handler_fn handler; /* an endpoint's job (ing_crm_api_submit) */
    int reads_only;             /* the handler only reads: the replica may answer it */
    char *url;
    char *body;
    size_t len;
    char *authorization, *idempotency_key; /* the headers' copies; NULL when absent */
    bz_bytes args;                         /* the query's arguments (crm_request.h) */
    char arg_with_nul[64];                 /* the first argument holding a NUL; "" for none */
    uint8_t client[ING_CLIENT_KEY_LEN];    /* who sent it (client_address.h) */
    ing_crm_answer answer;                 /* filled by the worker */
    ing_crm_authenticated_fn authenticated;
    void *authenticated_ctx;
    ing_crm_task_fn task;       /* a task job (ing_crm_api_submit_task) */
    void *task_ctx;
    int task_authenticates;     /* check the key before the task */
    int64_t workspace_id;       /* the key's, once verified */
    atomic_int done;
};

typedef struct ing_crm_worker {
    ing_crm_api *crm;
    pthread_t thread;
    int started;
    bz_producer *producer;
} ing_crm_worker;

struct ing_crm_api {
    ing_crm_api_config cfg;
    ing_pg_pool *pool;
    ing_pg_pool *read_pool; /* crm.read_dsn's, NULL without one */
    ing_api_keys *keys;
    ing_rate_table *rates; /* per workspace */
    pthread_mutex_t mu; /* the queue */
    pthread_cond_t wake;
    ing_crm_job *head, *tail;
    int busy;    /* submitted, not yet resumed */
    int closing; /* no more jobs: ingest is stopping */
    int stopping;
    ing_crm_worker *workers;
};

/* ---- answers on the event loop ---------------------------------------- */

/* Queue resp (NULL: none could be made) with status and an optional extra
 * header. */
static enum MHD_Result queue_response(struct MHD_Connection *conn, unsigned status,
                                      struct MHD_Response *resp, const char *header,
                                      const char *value)
{
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (header)
        MHD_add_response_header(resp, header, value);
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Queue status with body (NULL: the out-of-memory 503), copied, and an
 * optional extra header. */
static enum MHD_Result queue_answer(struct MHD_Connection *conn, unsigned status,
                                    const char *body, const char *header, const char *value)
{
    if (!body) {
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        body = ANSWER_OOM;
        header = NULL;
    }
    return queue_response(
        conn, status,
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY),
        header, value);
}

/* A worker's answer a. A body holding a secret is handed over rather than
 * copied (a->body NULL after), so that libmicrohttpd frees it wiped. */
static enum MHD_Result queue_job_answer(struct MHD_Connection *conn, ing_crm_answer *a)
{
    if (!a->secret || !a->body)
        return queue_answer(conn, a->status, a->body, a->header, a->header_value);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(
        strlen(a->body), a->body, ing_crm_free_wiped);
    if (resp)
        a->body = NULL;
    return queue_response(conn, a->status, resp, a->header, a->header_value);
}

/* ---- rate ------------------------------------------------------------------------------- */

/* 0 when the workspace may make a request now; else the seconds to wait. */
static int64_t rate_wait_s(ing_crm_api *crm, int64_t workspace_id)
{
    if (!crm->rates)
        return 0;
    int64_t wait = ing_rate_table_take(crm->rates, &workspace_id, sizeof workspace_id,
                                       bz_monotonic_ms());
    return (wait + 999) / 1000;
}

/* ---- one job, on a worker ---------------------------------------------------------------- */

/* What the job's handler is given: the settings, the worker's producer, the
 * job's request and the slot of its answer; the connection comes later. */
static ing_crm_request request_of(ing_crm_worker *w, ing_crm_job *job)
{
    return (ing_crm_request){.cfg = &w->crm->cfg,
                             .producer = w->producer,
                             .url = job->url,
                             .idempotency_key = job->idempotency_key,
                             .args = job->args.data,
                             .args_len = job->args.len,
                             .answer = &job->answer,
                             .workspace_id = job->workspace_id,
                             .keys = w->crm->keys};
}

/* 1 when the job's key names a workspace (rq->workspace_id); else 0,
 * refused. */
static int authenticate(ing_crm_api *crm, ing_crm_job *job, ing_crm_request *rq)
{
    bz_error err;
    bz_status st = ing_api_keys_verify(crm->keys, job->authorization, job->client, bz_wall_ms(),
                                      &rq->workspace_id, &err);
    if (st == BZ_OK) {
        job->workspace_id = rq->workspace_id;
        if (job->authenticated)
            job->authenticated(job->authenticated_ctx);
        return 1;
    }
    if (err.reason && strcmp(err.reason, ING_API_KEY_TOO_MANY_UNKNOWN) == 0)
        ing_crm_refuse_for_now(rq, err.reason, "Authorization", err.msg, ING_API_KEY_RETRY_AFTER_S);
    else if (st == BZ_ERR_INVALID)
        ing_crm_refuse_with(rq, MHD_HTTP_UNAUTHORIZED, &err, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                            "Bearer");
    else
        ing_crm_refuse_as(rq, MHD_HTTP_SERVICE_UNAVAILABLE, &err);
    return 0;
}

/* 1 when the workspace may make a request now; else 0, refused (429). */
static int within_rate(ing_crm_api *crm, ing_crm_request *rq)
{
    int64_t wait_s = rate_wait_s(crm, rq->workspace_id);
    if (wait_s <= 0)
        return 1;
    char message[128];
    snprintf(message, sizeof message, "workspace %" PRId64 " exceeds %.0f requests/s",
             rq->workspace_id, crm->cfg.rate_per_second);
    ing_crm_refuse_for_now(rq, "rate_limited", "", message, wait_s);
    return 0;
}

/* A task job: the key (when it asks for it) and the rate, then the task on
 * a pooled connection; a task without a function is the key check alone. */
static void handle_task(ing_crm_worker *w, ing_crm_job *job)
{
    ing_crm_request rq = request_of(w, job);
    if (job->task_authenticates &&
        (!authenticate(w->crm, job, &rq) || !within_rate(w->crm, &rq)))
        return;
    if (!job->task)
        return;
    bz_pg *pg;
    bz_error err;
    if (ing_pg_pool_acquire(w->crm->pool, POOL_WAIT_MS, &pg, &err) != BZ_OK) {
        ing_crm_refuse_as(&rq, MHD_HTTP_SERVICE_UNAVAILABLE, &err);
        return;
    }
    rq.pg = bz_pg_conn(pg);
    job->task(&rq, job->task_ctx);
    ing_pg_pool_release(w->crm->pool, pg, 0);
}

static void handle_job(ing_crm_worker *w, ing_crm_job *job)
{
    ing_crm_api *crm = w->crm;
    ing_crm_request rq = request_of(w, job);
    if (job->task || job->task_authenticates) {
        handle_task(w, job);
        return;
    }
    if (!authenticate(crm, job, &rq))
        return;
    if (!within_rate(crm, &rq))
        return;
    bz_error err;
    if (job->arg_with_nul[0]) {
        bz_reject(&err, "invalid_field", "field %s: holds a NUL byte (%%00)", job->arg_with_nul);
        ing_crm_refuse(&rq, &err);
        return;
    }
    ing_pg_pool *pool = job->reads_only && crm->read_pool ? crm->read_pool : crm->pool;
    bz_pg *pg;
    if (ing_pg_pool_acquire(pool, POOL_WAIT_MS, &pg, &err) != BZ_OK) {
        ing_crm_refuse_as(&rq, MHD_HTTP_SERVICE_UNAVAILABLE, &err);
        return;
    }
    rq.pg = bz_pg_conn(pg);
    job->handler(&rq, job->body, job->len);
    ing_pg_pool_release(pool, pg, 0);
}

/* The next job; NULL once stopping and the queue is empty. */
static ing_crm_job *next_job(ing_crm_api *crm)
{
    pthread_mutex_lock(&crm->mu);
    while (!crm->head && !crm->stopping)
        pthread_cond_wait(&crm->wake, &crm->mu);
    ing_crm_job *job = crm->head;
    if (job) {
        crm->head = job->next;
        if (!crm->head)
            crm->tail = NULL;
    }
    pthread_mutex_unlock(&crm->mu);
    return job;
}

static void *work(void *arg)
{
    ing_crm_worker *w = arg;
    ing_crm_api *crm = w->crm;
    bz_error err;
    /* a produce to a topic librdkafka has not seen yet waits for its next
     * topic scan (up to a second): learn it before the first request */
    if (bz_kafka_learn_topic(bz_producer_handle(w->producer), crm->cfg.crm_topic, 1000, &err) !=
        BZ_OK)
        bz_warn("crm api: %s", err.msg);
    ing_crm_job *job;
    while ((job = next_job(crm)) != NULL) {
        if (crm->cfg.metrics)
            bz_counter_inc(bz_counter_family_with(crm->cfg.metrics->received, ING_CRM_METRICS_PATH));
        handle_job(w, job);
        struct MHD_Connection *conn = job->conn;
        atomic_store(&job->done, 1);
        /* the job belongs to the event loop from here on */
        MHD_resume_connection(conn);
        pthread_mutex_lock(&crm->mu);
        crm->busy--;
        pthread_mutex_unlock(&crm->mu);
    }
    return NULL;
}

/* ---- the event loop's side ------------------------------------------------------------ */

enum MHD_Result ing_crm_api_refuse_method(ing_crm_api *crm, struct MHD_Connection *conn,
                                          const char *allow)
{
    char message[64];
    snprintf(message, sizeof message, "this path takes %s only", allow);
    char *body = ing_crm_error_json(&crm->cfg, "method_not_allowed", "", message);
    enum MHD_Result r = queue_answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, body, "Allow", allow);
    free(body);
    return r;
}

enum MHD_Result ing_crm_api_refuse_key(ing_crm_api *crm, struct MHD_Connection *conn)
{
    char *body = ing_crm_error_json(&crm->cfg, "unauthorized", "Authorization", ING_API_KEY_SHAPE_MESSAGE);
    enum MHD_Result r = queue_answer(conn, MHD_HTTP_UNAUTHORIZED, body,
                                     MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    free(body);
    return r;
}

int ing_crm_api_is_json(const char *content_type)
{
    static const char json[] = "application/json";
    size_t len = content_type ? strcspn(content_type, "; \t") : 0;
    return len == sizeof json - 1 && strncasecmp(content_type, json, len) == 0;
}

enum MHD_Result ing_crm_api_refuse_content_type(ing_crm_api *crm, struct MHD_Connection *conn,
                                                const char *content_type)
{
    char message[160];
    snprintf(message, sizeof message,
             "field Content-Type: this path's body is JSON, sent as application/json, not %.64s",
             content_type && *content_type ? content_type : "(none)");
    char *body = ing_crm_error_json(&crm->cfg, "unsupported_content_type", "Content-Type", message);
    enum MHD_Result r = queue_answer(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, body, NULL, NULL);
    free(body);
    return r;
}

enum MHD_Result ing_crm_api_refuse_size(ing_crm_api *crm, struct MHD_Connection *conn,
                                       size_t max_body_bytes)
{
    char message[96];
    snprintf(message, sizeof message, "body exceeds %zu bytes", max_body_bytes);
    char *body = ing_crm_error_json(&crm->cfg, "too_large", "body", message);
    enum MHD_Result r = queue_answer(conn, MHD_HTTP_CONTENT_TOO_LARGE, body, NULL, NULL);
    free(body);
    return r;
}

static char *header_copy(struct MHD_Connection *conn, const char *name, int *oom)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    char *copy = v ? strdup(v) : NULL;
    *oom |= v && !copy;
    return copy;
}

/* The query arguments being copied, and whether memory ran out. */
typedef struct args_copy {
    bz_bytes *args;
    char *arg_with_nul; /* the job's */
    size_t arg_with_nul_size;
    int oom;
} args_copy;

/* One query argument appended: "name\0value\0" (a value given without
 * "=" as ""); MHD_NO, ending the walk, when memory ran out. A name or
 * value holding a NUL (%00) would be cut short at it, so the first such
 * argument is named, to be refused (issue 49: text is checked at the
 * edge, never truncated). */
static enum MHD_Result copy_arg(void *cls, enum MHD_ValueKind kind, const char *name,
                                size_t name_size, const char *value, size_t value_size)
{
    (void)kind;
    args_copy *copy = cls;
    bz_error err;
    if (!value)
        value = "";
    else if (strlen(value) != value_size && !copy->arg_with_nul[0])
        snprintf(copy->arg_with_nul, copy->arg_with_nul_size, "%s", name);
    if (strlen(name) != name_size && !copy->arg_with_nul[0])
        snprintf(copy->arg_with_nul, copy->arg_with_nul_size, "%s", name[0] ? name : "(name)");
    copy->oom = bz_bytes_append(copy->args, name, strlen(name) + 1, ARGS_MAX, &err) != BZ_OK ||
                bz_bytes_append(copy->args, value, strlen(value) + 1, ARGS_MAX, &err) != BZ_OK;
    return copy->oom ? MHD_NO : MHD_YES;
}

/* Every query argument of conn into the job's args; 0 when memory ran out. */
static int copy_args(struct MHD_Connection *conn, ing_crm_job *job)
{
    args_copy copy = {&job->args, job->arg_with_nul, sizeof job->arg_with_nul, 0};
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, copy_arg, &copy);
    return !copy.oom;
}

/* A job for conn with its client address, Authorization and query
 * arguments copied; NULL when memory ran out. */
static ing_crm_job *job_new(struct MHD_Connection *conn, const char *url)
{
    ing_crm_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    int oom = 0;
    job->conn = conn;
    const union MHD_ConnectionInfo *peer =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    ing_client_address_key(peer ? peer->client_addr : NULL, job->client);
    job->authorization = header_copy(conn, MHD_HTTP_HEADER_AUTHORIZATION, &oom);
    job->idempotency_key = header_copy(conn, "Idempotency-Key", &oom);
    job->url = strdup(url);
    if (oom || !job->url || !copy_args(conn, job)) {
        ing_crm_job_free(job);
        return NULL;
    }
    return job;
}

/* Suspend the job's connection and queue the job for a worker; once the
 * API is closing, refuse it instead (the connection is not suspended).
 * The check and the count are one step under the mutex, so that
 * ing_crm_api_close's caller, seeing busy at 0, knows no connection of
 * this API is suspended or will be. */
static bz_status enqueue(ing_crm_api *crm, ing_crm_job *job, bz_error *err)
{
    pthread_mutex_lock(&crm->mu);
    if (crm->closing) {
        pthread_mutex_unlock(&crm->mu);
        return bz_fail_because(err, BZ_ERR_TRANSIENT, "unavailable",
                               "ingest is stopping; nothing was done, retry");
    }
    MHD_suspend_connection(job->conn);
    if (crm->tail)
        crm->tail->next = job;
    else
        crm->head = job;
    crm->tail = job;
    crm->busy++;
    pthread_cond_signal(&crm->wake);
    pthread_mutex_unlock(&crm->mu);
    return BZ_OK;
}

/* The job, unless it could not be made (NULL) or queued (freed): NULL
 * with err then. */
static ing_crm_job *queued_or_null(ing_crm_api *crm, ing_crm_job *job, bz_error *err)
{
    if (!job) {
        bz_fail_because(err, BZ_ERR_NOMEM, "out_of_memory", "try again");
        return NULL;
    }
    if (enqueue(crm, job, err) != BZ_OK) {
        ing_crm_job_free(job);
        return NULL;
    }
    return job;
}

/* A NUL-terminated copy of the body (handlers parse it as a string), on
 * the job; 0 when out of memory. */
static int copy_body(ing_crm_job *job, const char *body, size_t len)
{
    job->body = malloc(len + 1);
    if (!job->body)
        return 0;
    memcpy(job->body, body, len);
    job->body[len] = '\0';
    job->len = len;
    return 1;
}

ing_crm_job *ing_crm_api_submit(ing_crm_api *crm, struct MHD_Connection *conn,
                              ing_crm_handler_fn handler, int reads_only, const char *url,
                              const char *body, size_t len,
                              ing_crm_authenticated_fn authenticated, void *ctx, bz_error *err)
{
    ing_crm_job *job = job_new(conn, url);
    if (job && !copy_body(job, body, len)) {
        ing_crm_job_free(job);
        job = NULL;
    }
    if (job) {
        job->handler = handler;
        job->reads_only = reads_only;
        job->authenticated = authenticated;
        job->authenticated_ctx = ctx;
    }
    return queued_or_null(crm, job, err);
}

ing_crm_job *ing_crm_api_submit_task(ing_crm_api *crm, struct MHD_Connection *conn,
                                   const char *url, int authenticate, int64_t workspace_id,
                                   ing_crm_task_fn task, void *ctx, bz_error *err)
{
    ing_crm_job *job = job_new(conn, url);
    if (job) {
        job->task = task;
        job->task_ctx = ctx;
        job->task_authenticates = authenticate;
        job->workspace_id = workspace_id;
    }
    return queued_or_null(crm, job, err);
}

int ing_crm_job_answered(const ing_crm_job *job)
{
    return job->answer.status != 0 || job->answer.body != NULL;
}

int64_t ing_crm_job_workspace(const ing_crm_job *job)
{
    return job->workspace_id;
}

int ing_crm_job_done(const ing_crm_job *job)
{
    return atomic_load(&job->done);
}

enum MHD_Result ing_crm_api_answer(ing_crm_job *job, struct MHD_Connection *conn)
{
    enum MHD_Result r = queue_job_answer(conn, &job->answer);
    ing_crm_job_free(job);
    return r;
}

void ing_crm_job_free(ing_crm_job *job)
{
    if (!job)
        return;
    free(job->body);
    free(job->url);
    free(job->authorization);
    free(job->idempotency_key);
    bz_bytes_free(&job->args);
    ing_crm_answer_release(&job->answer);
    free(job);
}

void ing_crm_api_close(ing_crm_api *crm)
{
    pthread_mutex_lock(&crm->mu);
    crm->closing = 1;
    pthread_mutex_unlock(&crm->mu);
}

int ing_crm_api_busy(ing_crm_api *crm)
{
    pthread_mutex_lock(&crm->mu);
    int busy = crm->busy;
    pthread_mutex_unlock(&crm->mu);
    return busy;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static bz_status start_workers(ing_crm_api *crm, bz_error *err)
{
    crm->workers = calloc((size_t)crm->cfg.workers, sizeof *crm->workers);
    if (!crm->workers)
        return bz_fail(err, BZ_ERR_NOMEM, "crm api: out of memory");
    static const char *const extra[] = {"linger.ms", "0", NULL};
    bz_kafka_settings ks = {.brokers = crm->cfg.brokers, .client_id = "blazz-ingest-crm",
                            .extra = extra};
    for (int i = 0; i < crm->cfg.workers; i++) {
        ing_crm_worker *w = &crm->workers[i];
        w->crm = crm;
        bz_status st = bz_producer_new(&ks, &w->producer, err);
        if (st != BZ_OK)
            return st;
        if (pthread_create(&w->thread, NULL, work, w) != 0)
            return bz_fail(err, BZ_ERR_INTERNAL, "crm api: cannot start worker %d", i);
        w->started = 1;
    }
    return BZ_OK;
}

bz_status ing_crm_api_new(const ing_crm_api_config *cfg, ing_crm_api **out, bz_error *err)
{
    ing_crm_api *crm = calloc(1, sizeof *crm);
    if (!crm)
        return bz_fail(err, BZ_ERR_NOMEM, "crm api: out of memory");
    crm->cfg = *cfg;
    if (crm->cfg.workers < 1)
        crm->cfg.workers = 1;
    pthread_mutex_init(&crm->mu, NULL);
    pthread_cond_init(&crm->wake, NULL);
    bz_status st = cfg->rate_per_second <= 0 ? BZ_OK
                   : ing_rate_table_new(cfg->rate_per_second, cfg->rate_burst, WORKSPACES_MAX,
                                        &crm->rates, err);
    if (st == BZ_OK)
        st = ing_pg_pool_new(cfg->pg_dsn, crm->cfg.workers, &crm->pool, err);
    if (st == BZ_OK && cfg->read_dsn && *cfg->read_dsn)
        st = ing_pg_pool_new(cfg->read_dsn, crm->cfg.workers, &crm->read_pool, err);
    if (st == BZ_OK)
        st = ing_api_keys_new(crm->pool, cfg->key_cache_ms, &crm->keys, err);
    if (st == BZ_OK)
        st = start_workers(crm, err);
    if (st != BZ_OK) {
        ing_crm_api_free(crm);
        return st;
    }
    *out = crm;
    return BZ_OK;
}

void ing_crm_api_free(ing_crm_api *crm)
{
    if (!crm)
        return;
    pthread_mutex_lock(&crm->mu);
    crm->stopping = 1;
    pthread_cond_broadcast(&crm->wake);
    pthread_mutex_unlock(&crm->mu);
    for (int i = 0; crm->workers && i < crm->cfg.workers; i++) {
        if (crm->workers[i].started)
            pthread_join(crm->workers[i].thread, NULL);
        bz_producer_free(crm->workers[i].producer, crm->cfg.produce_timeout_ms);
    }
    free(crm->workers);
    ing_api_keys_free(crm->keys);
    ing_pg_pool_free(crm->pool);
    ing_pg_pool_free(crm->read_pool);
    ing_rate_table_free(crm->rates);
    pthread_cond_destroy(&crm->wake);
    pthread_mutex_destroy(&crm->mu);
    free(crm);
}
