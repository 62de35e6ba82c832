/*
 * crm_api.c - the CRM's endpoints (see crm_api.h).
 *
 * A request goes: method -> key (api_keys.c) -> the workspace's rate ->
 * body (crm_json.c) -> what the body names, looked up in the key's
 * workspace on a pooled connection (pg_pool.c) -> the contract check the
 * consumer will apply too (libs/wa/crm_command.h) -> one CrmCommand on
 * crm.commands, keyed "<workspace_id>:<conversation>" like chat.sync, so a
 * conversation's sends, reads, messages and receipts reach chat-sync in the
 * order they were accepted -> 202 once the broker acknowledged it.
 *
 * Nothing is half-stored: a refused request produced nothing, and an
 * accepted one is one record, which chat-sync applies whole or
 * dead-letters whole.
 */
#include "crm_api.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_keys.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/token_bucket.h"
#include "core/uuid.h"
#include "crm_json.h"
#include "http_api.h"
#include "pg/chat_lookup.h"
#include "pg/crm_template.h"
#include "pg_pool.h"
#include "wa/crm_command.h"

#define PATH "crm"
#define POOL_WAIT_MS 2000
#define RATE_BUCKETS 256

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
#define SQL_USER "SELECT id FROM users WHERE id = $2 AND deleted_at IS NULL AND $1::bigint > 0"

/* One workspace's request rate (per instance). */
typedef struct rate_slot {
    struct rate_slot *next;
    int64_t workspace_id;
    bz_token_bucket bucket;
} rate_slot;

struct bz_crm_api {
    bz_crm_api_config cfg;
    bz_pg_pool *pool;
    bz_api_keys *keys;
    pthread_mutex_t rate_mu;
    rate_slot *rates[RATE_BUCKETS];
};

/* The recipient fields of either command, pointed at. */
typedef struct party {
    int64_t *contact_id, *group_id;
    char **contact_phone, **contact_jid, **group_jid;
} party;

typedef struct crm_request {
    bz_crm_api *crm;
    bz_http_api *http;
    struct MHD_Connection *conn;
    int64_t workspace_id;
    PGconn *pg;
} crm_request;

/* ---- answers -------------------------------------------------------------------------- */

/* An error answer naming the field of err's "field <name>: ..." message. */
static enum MHD_Result refuse_with(crm_request *rq, unsigned status, const bz_error *err,
                                   const char *header, const char *value)
{
    char field[128] = "";
    if (strncmp(err->msg, "field ", 6) == 0) {
        size_t len = strcspn(err->msg + 6, ":");
        snprintf(field, sizeof field, "%.*s", (int)len, err->msg + 6);
    }
    const char *reason = err->reason ? err->reason : status == 503 ? "unavailable" : "invalid";
    return bz_http_api_error(rq->http, rq->conn, status, PATH, reason, field, err->msg, header,
                             value);
}

static enum MHD_Result refuse(crm_request *rq, unsigned status, const bz_error *err)
{
    return refuse_with(rq, status, err, NULL, NULL);
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
static int64_t rate_wait_s(bz_crm_api *crm, int64_t workspace_id)
{
    if (crm->cfg.rate_per_second <= 0)
        return 0;
    int64_t now = bz_monotonic_ms();
    size_t b = (size_t)((uint64_t)workspace_id % RATE_BUCKETS);
    pthread_mutex_lock(&crm->rate_mu);
    rate_slot *r = crm->rates[b];
    while (r && r->workspace_id != workspace_id)
        r = r->next;
    if (!r && (r = calloc(1, sizeof *r))) {
        r->workspace_id = workspace_id;
        bz_token_bucket_init(&r->bucket, crm->cfg.rate_per_second, crm->cfg.rate_burst, now);
        r->next = crm->rates[b];
        crm->rates[b] = r;
    }
    int64_t wait = r && !bz_token_bucket_try_take(&r->bucket, now)
                       ? bz_token_bucket_wait_ms(&r->bucket, now)
                       : 0;
    pthread_mutex_unlock(&crm->rate_mu);
    return wait > 0 ? (wait + 999) / 1000 : 0;
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
        st = bz_crm_set_string(p->contact_phone, e164 ? phone : "", err);
        if (st == BZ_OK)
            st = bz_crm_set_string(p->contact_jid, e164 ? jid : phone, err);
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
        st = bz_crm_set_string(p->group_jid, PQgetvalue(res, 0, 1), err);
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
    if (st == BZ_OK && s->template_ && *s->template_->name) {
        char *rendered = NULL;
        st = bz_crm_template_render(rq->pg, rq->workspace_id, s->template_, &rendered, err);
        if (st == BZ_ERR_NOT_FOUND)
            err->reason = "unknown_template";
        free(rendered);
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
    if (st == BZ_OK && *r->up_to_wam_id && (r->contact_id || r->group_id)) {
        int64_t ms;
        int found = 0;
        st = bz_chat_message_time(rq->pg, rq->workspace_id, r->contact_id, r->group_id,
                                  r->up_to_wam_id, &ms, &found, err);
        if (st == BZ_OK && !found)
            st = not_found(err, "unknown_message", "up_to_wam_id", rq->workspace_id);
    }
    return st;
}

/* Wrap cmd (its command set) in an envelope with event_id for the key's
 * workspace and conversation, check it as the consumer will, publish it;
 * the 202 answer names id_name: event_id. */
static enum MHD_Result publish(crm_request *rq, Blazz__V1__CrmCommand *cmd, char *event_id,
                               const char *conversation, const char *id_name)
{
    Blazz__V1__Envelope env;
    bz_crm_command_address(cmd, &env, event_id, rq->workspace_id, "ingest", conversation);
    bz_error err;
    if (bz_crm_command_check(cmd, &err) != BZ_OK)
        return refuse(rq, MHD_HTTP_BAD_REQUEST, &err);
    char key[320];
    snprintf(key, sizeof key, "%" PRId64 ":%s", rq->workspace_id, cmd->conversation);
    size_t len = blazz__v1__crm_command__get_packed_size(cmd);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf)
        blazz__v1__crm_command__pack(cmd, buf);
    int ok = buf && bz_http_api_publish(rq->http, rq->crm->cfg.crm_topic, key, buf, len,
                                        event_id, event_id);
    free(buf);
    if (!ok) {
        bz_log_event(BZ_LOG_WARN, event_id, event_id,
                     "crm command not acknowledged by the broker: 503");
        return bz_http_api_error(rq->http, rq->conn, MHD_HTTP_SERVICE_UNAVAILABLE, PATH,
                                 "unavailable", "",
                                 "the broker did not acknowledge the command; nothing was "
                                 "accepted, retry",
                                 NULL, NULL);
    }
    if (rq->crm->cfg.metrics)
        bz_counter_inc(bz_counter_family_with(rq->crm->cfg.metrics->accepted, PATH));
    char body[160];
    snprintf(body, sizeof body, "{\"status\":\"accepted\",\"%s\":\"%s\"}\n", id_name, event_id);
    return bz_http_api_reply(rq->conn, MHD_HTTP_ACCEPTED, "application/json", body, NULL, NULL);
}

static enum MHD_Result accept_send(crm_request *rq, const char *body, size_t len)
{
    const char *idem = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Idempotency-Key");
    Blazz__V1__SendChatMessage *s = NULL;
    bz_error err;
    bz_status st = bz_crm_json_send(body, len, idem, rq->crm->cfg.default_cc, &s, &err);
    if (st != BZ_OK)
        return refuse(rq, status_of(&err), &err);
    /* the message id is also the command's event id: a retried request
     * repeats both */
    char message_id[BZ_UUID_STR_SIZE];
    bz_crm_message_id(rq->workspace_id, s->idempotency_key, message_id);
    st = bz_crm_set_string(&s->message_id, message_id, &err);
    if (st == BZ_OK)
        st = resolve_send(rq, s, &err);
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_SEND;
    cmd.send = s;
    enum MHD_Result r =
        st != BZ_OK ? refuse(rq, status_of(&err), &err)
                    : publish(rq, &cmd, message_id,
                              bz_crm_conversation(s->contact_phone, s->contact_jid, s->group_jid),
                              "message_id");
    blazz__v1__send_chat_message__free_unpacked(s, NULL);
    return r;
}

static enum MHD_Result accept_read(crm_request *rq, const char *body, size_t len)
{
    Blazz__V1__MarkChatRead *mr = NULL;
    bz_error err;
    bz_status st = bz_crm_json_read(body, len, rq->crm->cfg.default_cc, &mr, &err);
    if (st != BZ_OK)
        return refuse(rq, status_of(&err), &err);
    char event_id[BZ_UUID_STR_SIZE];
    st = resolve_read(rq, mr, &err);
    if (st == BZ_OK)
        st = bz_uuid_v4(event_id, &err);
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_MARK_READ;
    cmd.mark_read = mr;
    enum MHD_Result r =
        st != BZ_OK ? refuse(rq, status_of(&err), &err)
                    : publish(rq, &cmd, event_id,
                              bz_crm_conversation(mr->contact_phone, mr->contact_jid, mr->group_jid),
                              "event_id");
    blazz__v1__mark_chat_read__free_unpacked(mr, NULL);
    return r;
}

/* ---- the endpoint ---------------------------------------------------------------------- */

int bz_crm_api_routes(const char *url)
{
    return strcmp(url, "/v1/messages") == 0 || strcmp(url, "/v1/chats/read") == 0;
}

/* 1 when the key names a workspace (rq->workspace_id); else 0 with the
 * refusal queued in *answer. */
static int authenticate(crm_request *rq, enum MHD_Result *answer)
{
    const char *auth = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    bz_error err;
    bz_status st = bz_api_keys_verify(rq->crm->keys, auth, bz_wall_ms(), &rq->workspace_id, &err);
    if (st == BZ_OK)
        return 1;
    *answer = st == BZ_ERR_INVALID ? refuse_with(rq, MHD_HTTP_UNAUTHORIZED, &err,
                                                 MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer")
                                   : refuse(rq, MHD_HTTP_SERVICE_UNAVAILABLE, &err);
    return 0;
}

enum MHD_Result bz_crm_api_handle(bz_crm_api *crm, bz_http_api *http,
                                  struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *body, size_t len,
                                  int too_large, size_t max_body_bytes)
{
    crm_request rq = {.crm = crm, .http = http, .conn = conn};
    if (crm->cfg.metrics)
        bz_counter_inc(bz_counter_family_with(crm->cfg.metrics->received, PATH));
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return bz_http_api_error(http, conn, MHD_HTTP_METHOD_NOT_ALLOWED, PATH,
                                 "method_not_allowed", "", "POST only", "Allow", "POST");
    if (too_large) {
        char message[96];
        snprintf(message, sizeof message, "body exceeds %zu bytes", max_body_bytes);
        return bz_http_api_error(http, conn, MHD_HTTP_CONTENT_TOO_LARGE, PATH, "too_large",
                                 "body", message, NULL, NULL);
    }
    enum MHD_Result refused;
    if (!authenticate(&rq, &refused))
        return refused;
    int64_t wait_s = rate_wait_s(crm, rq.workspace_id);
    if (wait_s > 0) {
        char after[24], message[128];
        snprintf(after, sizeof after, "%" PRId64, wait_s);
        snprintf(message, sizeof message, "workspace %" PRId64 " exceeds %.0f requests/s",
                 rq.workspace_id, crm->cfg.rate_per_second);
        return bz_http_api_error(http, conn, MHD_HTTP_TOO_MANY_REQUESTS, PATH, "rate_limited",
                                 "", message, MHD_HTTP_HEADER_RETRY_AFTER, after);
    }
    bz_pg *pg;
    bz_error err;
    if (bz_pg_pool_acquire(crm->pool, POOL_WAIT_MS, &pg, &err) != BZ_OK)
        return refuse(&rq, MHD_HTTP_SERVICE_UNAVAILABLE, &err);
    rq.pg = bz_pg_conn(pg);
    enum MHD_Result r = strcmp(url, "/v1/messages") == 0 ? accept_send(&rq, body, len)
                                                          : accept_read(&rq, body, len);
    bz_pg_pool_release(crm->pool, pg, PQstatus(rq.pg) != CONNECTION_OK);
    return r;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

bz_status bz_crm_api_new(const bz_crm_api_config *cfg, bz_crm_api **out, bz_error *err)
{
    bz_crm_api *crm = calloc(1, sizeof *crm);
    if (!crm)
        return bz_fail(err, BZ_ERR_NOMEM, "crm api: out of memory");
    crm->cfg = *cfg;
    pthread_mutex_init(&crm->rate_mu, NULL);
    bz_status st = bz_pg_pool_new(cfg->pg_dsn, cfg->pg_connections, &crm->pool, err);
    if (st == BZ_OK)
        st = bz_api_keys_new(crm->pool, cfg->key_cache_ms, &crm->keys, err);
    if (st != BZ_OK) {
        bz_crm_api_free(crm);
        return st;
    }
    *out = crm;
    return BZ_OK;
}

void bz_crm_api_free(bz_crm_api *crm)
{
    if (!crm)
        return;
    bz_api_keys_free(crm->keys);
    bz_pg_pool_free(crm->pool);
    for (size_t i = 0; i < RATE_BUCKETS; i++)
        while (crm->rates[i]) {
            rate_slot *r = crm->rates[i];
            crm->rates[i] = r->next;
            free(r);
        }
    pthread_mutex_destroy(&crm->rate_mu);
    free(crm);
}
