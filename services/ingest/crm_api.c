/*
 * crm_api.c - the CRM's endpoints (see crm_api.h).
 *
 * On the event loop, a complete request becomes a job (its body and the two
 * headers that matter copied), its connection is suspended and the job
 * queued. A worker takes it: key (api_keys.c) -> the workspace's rate -> body
 * (crm_json.c) -> what the body names, looked up in the key's workspace on a
 * pooled connection (pg_pool.c, one per worker), with Meta's limits when the
 * send's account is known to be Meta's (libs/wa/meta_limits.h) -> the
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
#include "core/uuid.h"
#include "crm_json.h"
#include "kafka/producer.h"
#include "pg/chat_lookup.h"
#include "wa/crm_template.h"
#include "pg_pool.h"
#include "rate_table.h"
#include "wa/crm_command.h"
#include "wa/meta_limits.h"

#define PATH "crm"
#define POOL_WAIT_MS 2000
#define WORKSPACES_MAX 100000

#define SQL_CONTACT_BY_ID                                                                        \
    "SELECT id, phone, coalesce(metadata->>'jid', '') FROM contacts WHERE workspace_id = $1 "    \
    "AND id = $2 AND deleted_at IS NULL"
#define SQL_CONTACT_BY_KEY                                                                       \
    "SELECT id, phone, coalesce(metadata->>'jid', '') FROM contacts WHERE workspace_id = $1 "    \
    "AND phone = $2 AND deleted_at IS NULL"
#define SQL_GROUP_BY_ID                                                                          \
    "SELECT id, group_jid FROM whatsapp_groups WHERE workspace_id = $1 AND id = $2"
#define SQL_GROUP_BY_JID                                                                         \
    "SELECT id, group_jid FROM whatsapp_groups WHERE workspace_id = $1 AND group_jid = $2"
#define SQL_ACCOUNT                                                                              \
    "SELECT id FROM whatsapp_accounts WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL"
#define SQL_USER                                                                                 \
    "SELECT u.id FROM users u JOIN workspace_users m ON m.user_id = u.id "                        \
    "WHERE u.id = $2 AND m.workspace_id = $1 AND u.deleted_at IS NULL"
/* The provider of the account a send names, else of the conversation's
 * newest message ($3 contact, $4 group): the account known at the API. */
#define SQL_KNOWN_PROVIDER                                                                       \
    "SELECT provider_type FROM whatsapp_accounts WHERE workspace_id = $1 AND id = $2 "          \
    "UNION ALL (SELECT a.provider_type FROM chats c JOIN whatsapp_accounts a ON a.id = "        \
    "c.whatsapp_account_id WHERE $2::bigint = 0 AND c.workspace_id = $1 AND "                    \
    "((c.contact_id = $3 AND $3::bigint > 0) OR (c.group_id = $4 AND $4::bigint > 0)) "          \
    "ORDER BY c.created_at DESC LIMIT 1) LIMIT 1"

#define ANSWER_OOM "{\"error\":\"out_of_memory\",\"field\":\"\",\"message\":\"try again\"}\n"

struct ing_crm_job {
    ing_crm_job *next;
    struct MHD_Connection *conn;
    int route;
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
    atomic_int done;
};

typedef struct worker {
    ing_crm_api *crm;
    pthread_t thread;
    int started;
    bz_producer *producer;
} worker;

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
    worker *workers;
};

/* The recipient fields of either command, pointed at. */
typedef struct party {
    int64_t *contact_id, *group_id;
    char **contact_phone, **contact_jid, **group_jid;
} party;

/* One request on a worker. */
typedef struct crm_request {
    ing_crm_api *crm;
    worker *w;
    ing_crm_job *job;
    int64_t workspace_id;
    PGconn *pg;
} crm_request;

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
static void answer(crm_request *rq, unsigned status, char *body, const char *header,
                   const char *value)
{
    ing_crm_job *job = rq->job;
    job->status = status;
    free(job->answer);
    job->answer = body;
    job->header = header;
    snprintf(job->header_value, sizeof job->header_value, "%s", header ? value : "");
}

static void refuse_plain(crm_request *rq, unsigned status, const char *reason, const char *field,
                         const char *message, const char *header, const char *value)
{
    answer(rq, status, error_json(rq->crm, reason, field, message), header, value);
}

/* An error answer naming the field of err's "field <name>: ..." message. */
static void refuse_with(crm_request *rq, unsigned status, const bz_error *err, const char *header,
                        const char *value)
{
    char field[128] = "";
    if (strncmp(err->msg, "field ", 6) == 0) {
        size_t len = strcspn(err->msg + 6, ":");
        snprintf(field, sizeof field, "%.*s", (int)len, err->msg + 6);
    }
    const char *reason = err->reason ? err->reason : status == 503 ? "unavailable" : "invalid";
    refuse_plain(rq, status, reason, field, err->msg, header, value);
}

static void refuse(crm_request *rq, unsigned status, const bz_error *err)
{
    refuse_with(rq, status, err, NULL, NULL);
}

/* 429: come back in after_s seconds. */
static void refuse_for_now(crm_request *rq, const char *reason, const char *field,
                           const char *message, int64_t after_s)
{
    char after[24];
    snprintf(after, sizeof after, "%" PRId64, after_s);
    refuse_plain(rq, MHD_HTTP_TOO_MANY_REQUESTS, reason, field, message,
                 MHD_HTTP_HEADER_RETRY_AFTER, after);
}

/* The status a failed step answers with. */
static unsigned status_of(const bz_error *err)
{
    switch (err->code) {
    case BZ_ERR_NOT_FOUND: return MHD_HTTP_NOT_FOUND;
    case BZ_ERR_INVALID: return MHD_HTTP_BAD_REQUEST;
    default: return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
}

static bz_status not_found(bz_error *err, const char *reason, const char *field,
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

/* One row of sql with ($1 workspace, $2 value); *res NULL when none. */
static bz_status lookup(crm_request *rq, const char *what, const char *sql, const char *value,
                        PGresult **res, bz_error *err)
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

static bz_status resolve_contact(crm_request *rq, const party *p, bz_error *err)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, *p->contact_id);
    const char *key = **p->contact_phone ? *p->contact_phone : *p->contact_jid;
    PGresult *res = NULL;
    bz_status st = lookup(rq, "look up the contact", *p->contact_id ? SQL_CONTACT_BY_ID
                                                                     : SQL_CONTACT_BY_KEY,
                          *p->contact_id ? id : key, &res, err);
    if (st == BZ_OK && !res)
        return not_found(err, "unknown_contact",
                         *p->contact_id ? "contact_id"
                         : **p->contact_phone ? "contact_phone"
                                              : "contact_jid",
                         rq->workspace_id);
    if (st == BZ_OK) {
        const char *phone = PQgetvalue(res, 0, 1), *jid = PQgetvalue(res, 0, 2);
        *p->contact_id = bz_pg_get_int64(res, 0, 0);
        int e164 = phone[0] == '+';
        st = ing_crm_set_string(p->contact_phone, e164 ? phone : "", err);
        if (st == BZ_OK)
            st = ing_crm_set_string(p->contact_jid, e164 ? jid : phone, err);
    }
    PQclear(res);
    return st;
}

static bz_status resolve_group(crm_request *rq, const party *p, bz_error *err)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, *p->group_id);
    PGresult *res = NULL;
    bz_status st = lookup(rq, "look up the group", *p->group_id ? SQL_GROUP_BY_ID : SQL_GROUP_BY_JID,
                          *p->group_id ? id : *p->group_jid, &res, err);
    if (st == BZ_OK && !res)
        return not_found(err, "unknown_group", *p->group_id ? "group_id" : "group_jid",
                         rq->workspace_id);
    if (st == BZ_OK) {
        *p->group_id = bz_pg_get_int64(res, 0, 0);
        st = ing_crm_set_string(p->group_jid, PQgetvalue(res, 0, 1), err);
    }
    PQclear(res);
    return st;
}

static bz_status resolve_party(crm_request *rq, const party *p, bz_error *err)
{
    if (*p->contact_id < 0 || *p->group_id < 0)
        return bz_reject(err, "invalid_field", "field contact_id: ids are positive");
    int group = *p->group_id || **p->group_jid;
    int contact = *p->contact_id || **p->contact_phone || **p->contact_jid;
    if (group == contact) /* none or both: the contract check names it */
        return BZ_OK;
    return group ? resolve_group(rq, p, err) : resolve_contact(rq, p, err);
}

/* An id the body names must exist (account in the workspace, live user). */
static bz_status check_exists(crm_request *rq, const char *what, const char *sql, int64_t id,
                              const char *reason, const char *field, bz_error *err)
{
    if (id <= 0)
        return BZ_OK;
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, id);
    PGresult *res = NULL;
    bz_status st = lookup(rq, what, sql, text, &res, err);
    PQclear(res);
    if (st == BZ_OK && !res)
        return not_found(err, reason, field, rq->workspace_id);
    return st;
}

/* A message the body names (wam_id) must be in the conversation. */
static bz_status check_message(crm_request *rq, int64_t contact_id, int64_t group_id,
                               const char *wam_id, const char *field, bz_error *err)
{
    if (!*wam_id || (!contact_id && !group_id))
        return BZ_OK;
    int64_t ms;
    int found = 0;
    bz_status st = bz_chat_message_time(rq->pg, rq->workspace_id, contact_id, group_id, wam_id,
                                        &ms, &found, err);
    if (st == BZ_OK && !found)
        st = not_found(err, "unknown_message", field, rq->workspace_id);
    return st;
}

/* A send its known account (named, else the conversation's) would take
 * through Meta must keep to Meta's limits (wa/meta_limits.h): else 400
 * naming the field. Meta's limits are checked first, so the account is
 * looked up only for a send that breaks them. */
static bz_status check_meta_limits(crm_request *rq, const Blazz__V1__SendChatMessage *s,
                                   bz_error *err)
{
    Blazz__V1__SendMessage m = BLAZZ__V1__SEND_MESSAGE__INIT;
    bz_crm_send_content(s, *s->body ? s->body : s->media ? s->media->caption : "", &m);
    bz_error refusal;
    if (bz_wa_meta_check(&m, &refusal) == BZ_OK)
        return BZ_OK;
    char ws[24], account[24], contact[24], group[24];
    snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
    snprintf(account, sizeof account, "%" PRId64, s->whatsapp_account_id);
    snprintf(contact, sizeof contact, "%" PRId64, s->contact_id);
    snprintf(group, sizeof group, "%" PRId64, s->group_id);
    const char *params[] = {ws, account, contact, group};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(rq->pg, "look up the send's account", SQL_KNOWN_PROVIDER, 4,
                                     params, &res, err);
    int meta = st == BZ_OK && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "meta") == 0;
    PQclear(res);
    if (meta)
        *err = refusal;
    return st == BZ_OK && meta ? BZ_ERR_INVALID : st;
}

/* ---- the commands ----------------------------------------------------------------------- */

static bz_status resolve_send(crm_request *rq, Blazz__V1__SendChatMessage *s, bz_error *err)
{
    party p = {&s->contact_id, &s->group_id, &s->contact_phone, &s->contact_jid, &s->group_jid};
    bz_status st = resolve_party(rq, &p, err);
    if (st == BZ_OK)
        st = check_exists(rq, "look up the account", SQL_ACCOUNT, s->whatsapp_account_id,
                          "unknown_account", "whatsapp_account_id", err);
    if (st == BZ_OK)
        st = check_exists(rq, "look up the user", SQL_USER, s->user_id, "unknown_user",
                          "user_id", err);
    if (st == BZ_OK)
        st = check_message(rq, s->contact_id, s->group_id, s->target_wam_id, "target_wam_id",
                           err);
    if (st == BZ_OK)
        st = check_meta_limits(rq, s, err);
    if (st == BZ_OK && s->template_ && *s->template_->name) {
        bz_crm_template_fill fill;
        st = bz_crm_template_render(rq->pg, rq->workspace_id, s->template_, &fill, err);
        if (st == BZ_ERR_NOT_FOUND)
            err->reason = "unknown_template";
        free(fill.rendered);
    }
    return st;
}

static bz_status resolve_read(crm_request *rq, Blazz__V1__MarkChatRead *r, bz_error *err)
{
    party p = {&r->contact_id, &r->group_id, &r->contact_phone, &r->contact_jid, &r->group_jid};
    bz_status st = resolve_party(rq, &p, err);
    if (st == BZ_OK)
        st = check_exists(rq, "look up the user", SQL_USER, r->user_id, "unknown_user",
                          "user_id", err);
    if (st == BZ_OK)
        st = check_message(rq, r->contact_id, r->group_id, r->up_to_wam_id, "up_to_wam_id", err);
    return st;
}

/* Wrap cmd (its command set) in an envelope with event_id for the key's
 * workspace and conversation, check it as the consumer will, publish it
 * with the worker's producer and wait for the broker; the 202 answer names
 * id_name: event_id. */
static void publish(crm_request *rq, Blazz__V1__CrmCommand *cmd, char *event_id,
                    const char *conversation, const char *id_name)
{
    Blazz__V1__Envelope env;
    bz_crm_command_address(cmd, &env, event_id, rq->workspace_id, "ingest", conversation);
    bz_error err;
    if (bz_crm_command_check(cmd, &err) != BZ_OK) {
        refuse(rq, MHD_HTTP_BAD_REQUEST, &err);
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
    char *body = malloc(160);
    if (body)
        snprintf(body, 160, "{\"status\":\"accepted\",\"%s\":\"%s\"}\n", id_name, event_id);
    answer(rq, MHD_HTTP_ACCEPTED, body, NULL, NULL);
}

static void accept_send(crm_request *rq, const char *body, size_t len)
{
    Blazz__V1__SendChatMessage *s = NULL;
    bz_error err;
    bz_status st = ing_crm_json_send(body, len, rq->job->idempotency_key, rq->crm->cfg.default_cc,
                                    &s, &err);
    if (st != BZ_OK) {
        refuse(rq, status_of(&err), &err);
        return;
    }
    /* the message id is also the command's event id: a retried request
     * repeats both */
    char message_id[BZ_UUID_STR_SIZE];
    bz_crm_message_id(rq->workspace_id, s->idempotency_key, message_id);
    st = ing_crm_set_string(&s->message_id, message_id, &err);
    if (st == BZ_OK)
        st = resolve_send(rq, s, &err);
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_SEND;
    cmd.send = s;
    if (st != BZ_OK)
        refuse(rq, status_of(&err), &err);
    else
        publish(rq, &cmd, message_id,
                bz_crm_conversation(s->contact_phone, s->contact_jid, s->group_jid), "message_id");
    blazz__v1__send_chat_message__free_unpacked(s, NULL);
}

static void accept_read(crm_request *rq, const char *body, size_t len)
{
    Blazz__V1__MarkChatRead *mr = NULL;
    bz_error err;
    bz_status st = ing_crm_json_read(body, len, rq->crm->cfg.default_cc, &mr, &err);
    if (st != BZ_OK) {
        refuse(rq, status_of(&err), &err);
        return;
    }
    char event_id[BZ_UUID_STR_SIZE];
    st = resolve_read(rq, mr, &err);
    if (st == BZ_OK)
        st = bz_uuid_v4(event_id, &err);
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_MARK_READ;
    cmd.mark_read = mr;
    if (st != BZ_OK)
        refuse(rq, status_of(&err), &err);
    else
        publish(rq, &cmd, event_id,
                bz_crm_conversation(mr->contact_phone, mr->contact_jid, mr->group_jid), "event_id");
    blazz__v1__mark_chat_read__free_unpacked(mr, NULL);
}

/* ---- one job, on a worker ---------------------------------------------------------------- */

/* 1 when the key names a workspace (rq->workspace_id); else 0, refused. */
static int authenticate(crm_request *rq)
{
    bz_error err;
    bz_status st = ing_api_keys_verify(rq->crm->keys, rq->job->authorization, rq->job->client,
                                      bz_wall_ms(), &rq->workspace_id, &err);
    if (st == BZ_OK) {
        rq->job->authenticated(rq->job->authenticated_ctx);
        return 1;
    }
    if (err.reason && strcmp(err.reason, ING_API_KEY_TOO_MANY_UNKNOWN) == 0)
        refuse_for_now(rq, err.reason, "Authorization", err.msg, ING_API_KEY_RETRY_AFTER_S);
    else if (st == BZ_ERR_INVALID)
        refuse_with(rq, MHD_HTTP_UNAUTHORIZED, &err, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    else
        refuse(rq, MHD_HTTP_SERVICE_UNAVAILABLE, &err);
    return 0;
}

static void handle_job(worker *w, ing_crm_job *job)
{
    ing_crm_api *crm = w->crm;
    crm_request rq = {.crm = crm, .w = w, .job = job};
    if (!authenticate(&rq))
        return;
    int64_t wait_s = rate_wait_s(crm, rq.workspace_id);
    if (wait_s > 0) {
        char message[128];
        snprintf(message, sizeof message, "workspace %" PRId64 " exceeds %.0f requests/s",
                 rq.workspace_id, crm->cfg.rate_per_second);
        refuse_for_now(&rq, "rate_limited", "", message, wait_s);
        return;
    }
    bz_pg *pg;
    bz_error err;
    if (ing_pg_pool_acquire(crm->pool, POOL_WAIT_MS, &pg, &err) != BZ_OK) {
        refuse(&rq, MHD_HTTP_SERVICE_UNAVAILABLE, &err);
        return;
    }
    rq.pg = bz_pg_conn(pg);
    if (job->route == ING_CRM_ROUTE_SEND)
        accept_send(&rq, job->body, job->len);
    else
        accept_read(&rq, job->body, job->len);
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
    worker *w = arg;
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
    return ING_CRM_ROUTE_NONE;
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

ing_crm_job *ing_crm_api_submit(ing_crm_api *crm, struct MHD_Connection *conn, int route,
                              const char *body, size_t len, ing_crm_authenticated_fn authenticated,
                              void *ctx)
{
    ing_crm_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    int oom = 0;
    job->conn = conn;
    job->route = route;
    job->authenticated = authenticated;
    job->authenticated_ctx = ctx;
    job->len = len;
    job->body = malloc(len + 1);
    const union MHD_ConnectionInfo *peer =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    ing_client_address_key(peer ? peer->client_addr : NULL, job->client);
    job->authorization = header_copy(conn, MHD_HTTP_HEADER_AUTHORIZATION, &oom);
    job->idempotency_key = header_copy(conn, "Idempotency-Key", &oom);
    if (oom || !job->body) {
        ing_crm_job_free(job);
        return NULL;
    }
    memcpy(job->body, body, len);
    job->body[len] = '\0';
    MHD_suspend_connection(conn);
    pthread_mutex_lock(&crm->mu);
    if (crm->tail)
        crm->tail->next = job;
    else
        crm->head = job;
    crm->tail = job;
    crm->busy++;
    pthread_cond_signal(&crm->wake);
    pthread_mutex_unlock(&crm->mu);
    return job;
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
    free(job->authorization);
    free(job->idempotency_key);
    free(job->answer);
    free(job);
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
        worker *w = &crm->workers[i];
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
