/*
 * crm_api.c - the CRM's endpoints (see crm_api.h).
 *
 * On the event loop, a complete request becomes a job (its body and the two
 * headers that matter copied), its connection is suspended and the job
 * queued. A worker takes it: key (api_keys.c) -> the workspace's rate -> body
 * (crm_json.c) -> what the body names, looked up in the key's workspace on a
 * pooled connection (pg_pool.c, one per worker), with Meta's limits when the
 * send's account is known to be Meta's (libs/wa/meta_limits.h; 422 outside
 * Meta's customer-service window, libs/wa/service_window.h) -> the
 * contract check the consumer will apply too (libs/wa/crm_command.h) -> one
 * CrmCommand on crm.commands with the worker's producer, keyed
 * "<workspace_id>:<conversation>" like chat.sync, so a conversation's sends,
 * reads, messages and receipts reach chat-sync in the order they were
 * accepted -> the answer (202 once the broker acknowledged it) is stored in
 * the job and the connection resumed; the event loop sends it.
 *
 * Nothing is half-stored: a refused request produced nothing, an accepted
 * one is one record, which chat-sync applies or dead-letters whole.
 */
#include "crm_api.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_keys.h"
#include "core/clock.h"
#include "core/log.h"
#include "crm_request.h"
#include "kafka/producer.h"
#include "pg/pg.h"
#include "pg_pool.h"
#include "rate_table.h"
#include "wa/crm_command.h"
#include "wa/service_window.h"

#define PATH "crm"
#define POOL_WAIT_MS 2000
#define WORKSPACES_MAX 100000

#define ANSWER_OOM "{\"error\":\"out_of_memory\",\"field\":\"\",\"message\":\"try again\"}\n"

struct ing_crm_job {
    ing_crm_job *next;
    struct MHD_Connection *conn;
    int route;
    char *url;
    char *body;
    size_t len;
    char *authorization, *idempotency_key; /* the headers' copies; NULL when absent */
    uint8_t client[ING_CLIENT_KEY_LEN];    /* who sent it (client_address.h) */
    unsigned status;                       /* the answer, filled by the worker */
    char *answer;                          /* JSON; NULL: out of memory (503) */
    const char *header;                    /* an extra header, or NULL */
    char header_value[32];
    ing_crm_authenticated_fn authenticated;
    void *authenticated_ctx;
    ing_crm_task_fn task;       /* a task job (ing_crm_api_submit_task) */
    void *task_ctx;
    int task_authenticates;     /* check the key before the task */
    int64_t workspace_id;       /* the key's, once verified */
    atomic_int done;
};

struct ing_crm_worker {
    ing_crm_api *crm;
    pthread_t thread;
    int started;
    bz_producer *producer;
};

struct ing_crm_api {
    ing_crm_api_config cfg;
    ing_pg_pool *pool;
    ing_api_keys *keys;
    ing_rate_table *rates; /* per workspace */
    pthread_mutex_t mu; /* the queue */
    pthread_cond_t wake;
    ing_crm_job *head, *tail;
    int busy; /* submitted, not yet resumed */
    int stopping;
    ing_crm_worker *workers;
};

/* ---- answers -------------------------------------------------------------------------- */

/* {"error": reason, "field": field, "message": message}, counted in
 * blazz_ingest_rejected_total{path="crm",reason}; heap, NULL when out of
 * memory. */
static char *error_json(const ing_crm_api *crm, const char *reason, const char *field,
                        const char *message)
{
    char esc_field[256], esc_msg[BZ_ERROR_MSG_MAX * 2];
    bz_json_escape(esc_field, sizeof esc_field, field);
    bz_json_escape(esc_msg, sizeof esc_msg, message);
    if (crm->cfg.metrics)
        bz_counter_inc(bz_counter_family_with(crm->cfg.metrics->rejected, PATH, reason));
    size_t cap = strlen(reason) + strlen(esc_field) + strlen(esc_msg) + 48;
    char *body = malloc(cap);
    if (body)
        snprintf(body, cap, "{\"error\":\"%s\",\"field\":\"%s\",\"message\":\"%s\"}\n", reason,
                 esc_field, esc_msg);
    return body;
}

/* Queue status with body (NULL: the out-of-memory 503) and an optional
 * extra header. */
static enum MHD_Result queue_answer(struct MHD_Connection *conn, unsigned status,
                                    const char *body, const char *header, const char *value)
{
    if (!body) {
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        body = ANSWER_OOM;
        header = NULL;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
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

/* The job's answer: status, body (heap, taken over), an optional header. */
static void answer(ing_crm_request *rq, unsigned status, char *body, const char *header,
                   const char *value)
{
    ing_crm_job *job = rq->job;
    job->status = status;
    free(job->answer);
    job->answer = body;
    job->header = header;
    snprintf(job->header_value, sizeof job->header_value, "%s", header ? value : "");
}

static void refuse_plain(ing_crm_request *rq, unsigned status, const char *reason, const char *field,
                         const char *message, const char *header, const char *value)
{
    answer(rq, status, error_json(rq->crm, reason, field, message), header, value);
}

/* Whether err is the server's failure rather than the request's: a
 * database that refused a statement (its text names tables and
 * constraints), or anything answered 5xx. */
static int server_failure(unsigned status, const bz_error *err)
{
    return status >= 500 || (err->reason && strcmp(err->reason, BZ_PG_REJECTED_REASON) == 0);
}

/* A failure of the server's, answered without its text (logged here with
 * the request's context): 503 unavailable when a retry can fix it, 500
 * internal_error when it cannot (a statement the database refused). */
static void refuse_server_failure(ing_crm_request *rq, unsigned status, const bz_error *err)
{
    int lasting = err->reason && strcmp(err->reason, BZ_PG_REJECTED_REASON) == 0;
    bz_warn("crm %s in workspace %" PRId64 ": %s: answered %u", ing_crm_request_path(rq),
            rq->workspace_id, err->msg, lasting ? MHD_HTTP_INTERNAL_SERVER_ERROR : status);
    if (lasting)
        refuse_plain(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", "",
                     "the request could not be carried out and was logged; nothing was done",
                     NULL, NULL);
    else
        refuse_plain(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "",
                     "a service this request needs is unavailable now; nothing was done, retry",
                     NULL, NULL);
}

/* An error answer naming the field of err's "field <name>: ..." message. */
static void refuse_with(ing_crm_request *rq, unsigned status, const bz_error *err, const char *header,
                        const char *value)
{
    if (server_failure(status, err)) {
        refuse_server_failure(rq, status, err);
        return;
    }
    char field[128] = "";
    if (strncmp(err->msg, "field ", 6) == 0) {
        size_t len = strcspn(err->msg + 6, ":");
        snprintf(field, sizeof field, "%.*s", (int)len, err->msg + 6);
    }
    refuse_plain(rq, status, err->reason ? err->reason : "invalid", field, err->msg, header, value);
}

void ing_crm_refuse(ing_crm_request *rq, const bz_error *err)
{
    refuse_with(rq, ing_crm_status_of(err), err, NULL, NULL);
}

void ing_crm_refuse_as(ing_crm_request *rq, unsigned status, const bz_error *err)
{
    refuse_with(rq, status, err, NULL, NULL);
}

void ing_crm_reply(ing_crm_request *rq, unsigned status, char *json)
{
    answer(rq, status, json, NULL, NULL);
}

/* 429: come back in after_s seconds. */
static void refuse_for_now(ing_crm_request *rq, const char *reason, const char *field,
                           const char *message, int64_t after_s)
{
    char after[24];
    snprintf(after, sizeof after, "%" PRId64, after_s);
    refuse_plain(rq, MHD_HTTP_TOO_MANY_REQUESTS, reason, field, message,
                 MHD_HTTP_HEADER_RETRY_AFTER, after);
}

unsigned ing_crm_status_of(const bz_error *err)
{
    /* a valid message the account may not send now (Meta's window): the
     * request is well formed, a template would pass */
    if (err->code == BZ_ERR_INVALID && err->reason &&
        strcmp(err->reason, BZ_WA_SERVICE_WINDOW_REASON) == 0)
        return MHD_HTTP_UNPROCESSABLE_CONTENT;
    switch (err->code) {
    case BZ_ERR_NOT_FOUND: return MHD_HTTP_NOT_FOUND;
    case BZ_ERR_CONFLICT: return MHD_HTTP_CONFLICT;
    case BZ_ERR_INVALID: return MHD_HTTP_BAD_REQUEST;
    default: return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
}

bz_status ing_crm_not_found(bz_error *err, const char *reason, const char *field,
                            int64_t workspace_id)
{
    bz_fail(err, BZ_ERR_NOT_FOUND, "field %s: not found in workspace %" PRId64, field,
            workspace_id);
    err->reason = reason;
    return BZ_ERR_NOT_FOUND;
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

/* ---- lookups ---------------------------------------------------------------------------- */

bz_status ing_crm_lookup(ing_crm_request *rq, const char *what, const char *sql,
                         const char *value, PGresult **res, bz_error *err)
{
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
    const char *params[] = {ws, value};
    bz_status st = bz_pg_exec_params(rq->pg, what, sql, 2, params, res, err);
    if (st == BZ_OK && PQntuples(*res) == 0) {
        PQclear(*res);
        *res = NULL;
    }
    return st;
}

void ing_crm_publish(ing_crm_request *rq, Blazz__V1__CrmCommand *cmd, const char *id_name,
                     const char *extra_json)
{
    char *event_id = cmd->envelope->event_id;
    bz_error err;
    if (bz_crm_command_check(cmd, &err) != BZ_OK) {
        refuse_with(rq, MHD_HTTP_BAD_REQUEST, &err, NULL, NULL);
        return;
    }
    char key[320];
    snprintf(key, sizeof key, "%" PRId64 ":%s", rq->workspace_id, cmd->conversation);
    size_t len = blazz__v1__crm_command__get_packed_size(cmd);
    uint8_t *buf = malloc(len ? len : 1);
    bz_status st = buf ? BZ_OK : bz_fail(&err, BZ_ERR_NOMEM, "publish: out of memory");
    if (st == BZ_OK) {
        blazz__v1__crm_command__pack(cmd, buf);
        bz_kafka_header headers[] = {{"event_id", event_id, strlen(event_id)},
                                     {"trace_id", event_id, strlen(event_id)}};
        st = bz_producer_send_sync(rq->w->producer, rq->crm->cfg.crm_topic, key, strlen(key), buf,
                                   len, headers, 2, rq->crm->cfg.produce_timeout_ms, &err);
    }
    free(buf);
    if (st != BZ_OK) {
        bz_log_event(BZ_LOG_WARN, event_id, event_id, "crm command not acknowledged: %s: 503",
                     err.msg);
        refuse_plain(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "",
                     "the broker did not acknowledge the command; nothing was accepted, retry",
                     NULL, NULL);
        return;
    }
    if (rq->crm->cfg.metrics)
        bz_counter_inc(bz_counter_family_with(rq->crm->cfg.metrics->accepted, PATH));
    size_t cap = 160 + (extra_json ? strlen(extra_json) : 0);
    char *body = malloc(cap);
    if (body)
        snprintf(body, cap, "{\"status\":\"accepted\",\"%s\":\"%s\"%s}\n", id_name, event_id,
                 extra_json ? extra_json : "");
    answer(rq, MHD_HTTP_ACCEPTED, body, NULL, NULL);
}

/* ---- one job, on a worker ---------------------------------------------------------------- */

/* 1 when the key names a workspace (rq->workspace_id); else 0, refused. */
static int authenticate(ing_crm_request *rq)
{
    bz_error err;
    bz_status st = ing_api_keys_verify(rq->crm->keys, rq->job->authorization, rq->job->client,
                                      bz_wall_ms(), &rq->workspace_id, &err);
    if (st == BZ_OK) {
        rq->job->workspace_id = rq->workspace_id;
        if (rq->job->authenticated)
            rq->job->authenticated(rq->job->authenticated_ctx);
        return 1;
    }
    if (err.reason && strcmp(err.reason, ING_API_KEY_TOO_MANY_UNKNOWN) == 0)
        refuse_for_now(rq, err.reason, "Authorization", err.msg, ING_API_KEY_RETRY_AFTER_S);
    else if (st == BZ_ERR_INVALID)
        refuse_with(rq, MHD_HTTP_UNAUTHORIZED, &err, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    else
        refuse_with(rq, MHD_HTTP_SERVICE_UNAVAILABLE, &err, NULL, NULL);
    return 0;
}

/* 1 when the workspace may make a request now; else 0, refused (429). */
static int within_rate(ing_crm_request *rq)
{
    int64_t wait_s = rate_wait_s(rq->crm, rq->workspace_id);
    if (wait_s <= 0)
        return 1;
    char message[128];
    snprintf(message, sizeof message, "workspace %" PRId64 " exceeds %.0f requests/s",
             rq->workspace_id, rq->crm->cfg.rate_per_second);
    refuse_for_now(rq, "rate_limited", "", message, wait_s);
    return 0;
}

/* A task job: the key (when it asks for it) and the rate, then the task on
 * a pooled connection; a task without a function is the key check alone. */
static void handle_task(ing_crm_worker *w, ing_crm_job *job)
{
    ing_crm_request rq = {.crm = w->crm, .w = w, .job = job, .workspace_id = job->workspace_id};
    if (job->task_authenticates && (!authenticate(&rq) || !within_rate(&rq)))
        return;
    if (!job->task)
        return;
    bz_pg *pg;
    bz_error err;
    if (ing_pg_pool_acquire(w->crm->pool, POOL_WAIT_MS, &pg, &err) != BZ_OK) {
        refuse_with(&rq, MHD_HTTP_SERVICE_UNAVAILABLE, &err, NULL, NULL);
        return;
    }
    rq.pg = bz_pg_conn(pg);
    job->task(&rq, job->task_ctx);
    ing_pg_pool_release(w->crm->pool, pg, PQstatus(rq.pg) != CONNECTION_OK);
}

static void handle_job(ing_crm_worker *w, ing_crm_job *job)
{
    ing_crm_api *crm = w->crm;
    ing_crm_request rq = {.crm = crm, .w = w, .job = job};
    if (job->task || job->task_authenticates) {
        handle_task(w, job);
        return;
    }
    if (!authenticate(&rq))
        return;
    if (!within_rate(&rq))
        return;
    bz_pg *pg;
    bz_error err;
    if (ing_pg_pool_acquire(crm->pool, POOL_WAIT_MS, &pg, &err) != BZ_OK) {
        refuse_with(&rq, MHD_HTTP_SERVICE_UNAVAILABLE, &err, NULL, NULL);
        return;
    }
    rq.pg = bz_pg_conn(pg);
    if (job->route == ING_CRM_ROUTE_SEND)
        ing_crm_accept_send(&rq, job->body, job->len);
    else if (job->route == ING_CRM_ROUTE_READ)
        ing_crm_accept_read(&rq, job->body, job->len);
    else
        ing_crm_accept_session(&rq, job->route, job->body, job->len);
    ing_pg_pool_release(crm->pool, pg, PQstatus(rq.pg) != CONNECTION_OK);
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
            bz_counter_inc(bz_counter_family_with(crm->cfg.metrics->received, PATH));
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

int ing_crm_api_route(const char *url)
{
    if (strcmp(url, "/v1/messages") == 0)
        return ING_CRM_ROUTE_SEND;
    if (strcmp(url, "/v1/chats/read") == 0)
        return ING_CRM_ROUTE_READ;
    return ing_crm_session_route(url, NULL, 0);
}

enum MHD_Result ing_crm_api_refuse_method(ing_crm_api *crm, struct MHD_Connection *conn)
{
    char *body = error_json(crm, "method_not_allowed", "", "POST only");
    enum MHD_Result r = queue_answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, body, "Allow", "POST");
    free(body);
    return r;
}

enum MHD_Result ing_crm_api_refuse_key(ing_crm_api *crm, struct MHD_Connection *conn)
{
    char *body = error_json(crm, "unauthorized", "Authorization", ING_API_KEY_SHAPE_MESSAGE);
    enum MHD_Result r = queue_answer(conn, MHD_HTTP_UNAUTHORIZED, body,
                                     MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    free(body);
    return r;
}

enum MHD_Result ing_crm_api_refuse_size(ing_crm_api *crm, struct MHD_Connection *conn,
                                       size_t max_body_bytes)
{
    char message[96];
    snprintf(message, sizeof message, "body exceeds %zu bytes", max_body_bytes);
    char *body = error_json(crm, "too_large", "body", message);
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

/* A job for conn with its client address and Authorization copied;
 * NULL when memory ran out. */
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
    if (oom || !job->url) {
        ing_crm_job_free(job);
        return NULL;
    }
    return job;
}

/* Suspend the job's connection and queue the job for a worker. */
static void enqueue(ing_crm_api *crm, ing_crm_job *job)
{
    MHD_suspend_connection(job->conn);
    pthread_mutex_lock(&crm->mu);
    if (crm->tail)
        crm->tail->next = job;
    else
        crm->head = job;
    crm->tail = job;
    crm->busy++;
    pthread_cond_signal(&crm->wake);
    pthread_mutex_unlock(&crm->mu);
}

ing_crm_job *ing_crm_api_submit(ing_crm_api *crm, struct MHD_Connection *conn, int route,
                              const char *url, const char *body, size_t len,
                              ing_crm_authenticated_fn authenticated, void *ctx)
{
    ing_crm_job *job = job_new(conn, url);
    if (!job)
        return NULL;
    job->route = route;
    job->authenticated = authenticated;
    job->authenticated_ctx = ctx;
    job->len = len;
    job->body = malloc(len + 1);
    if (!job->body) {
        ing_crm_job_free(job);
        return NULL;
    }
    memcpy(job->body, body, len);
    job->body[len] = '\0';
    enqueue(crm, job);
    return job;
}

ing_crm_job *ing_crm_api_submit_task(ing_crm_api *crm, struct MHD_Connection *conn,
                                   const char *url, int authenticate, int64_t workspace_id,
                                   ing_crm_task_fn task, void *ctx)
{
    ing_crm_job *job = job_new(conn, url);
    if (!job)
        return NULL;
    job->task = task;
    job->task_ctx = ctx;
    job->task_authenticates = authenticate;
    job->workspace_id = workspace_id;
    enqueue(crm, job);
    return job;
}

int ing_crm_job_answered(const ing_crm_job *job)
{
    return job->status != 0 || job->answer != NULL;
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
    enum MHD_Result r = queue_answer(conn, job->status, job->answer, job->header,
                                     job->header_value);
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
    free(job->answer);
    free(job);
}

void ing_crm_address(ing_crm_request *rq, Blazz__V1__CrmCommand *cmd, Blazz__V1__Envelope *env,
                     char *event_id, const char *conversation)
{
    bz_crm_command_address(cmd, env, event_id, rq->workspace_id, "ingest", conversation);
}

const char *ing_crm_request_path(const ing_crm_request *rq)
{
    return rq->job->url;
}

const char *ing_crm_request_idempotency_key(const ing_crm_request *rq)
{
    return rq->job->idempotency_key;
}

const ing_crm_api_config *ing_crm_request_config(const ing_crm_request *rq)
{
    return &rq->crm->cfg;
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
    ing_rate_table_free(crm->rates);
    pthread_cond_destroy(&crm->wake);
    pthread_mutex_destroy(&crm->mu);
    free(crm);
}
