/*
 * crm_request.c - the answers of a CRM request, made on its worker (see
 * crm_request.h).
 *
 * An answer is left in the request's slot and sent by the event loop once
 * the worker resumed the connection. A refusal names its reason and the
 * field at fault; a failure of the server's (a database that refused a
 * statement, anything 5xx) is logged here and answered without its text,
 * which could name tables and constraints. An accepted command is one
 * record on crm.commands, keyed "<workspace_id>:<conversation>" like
 * chat.sync so that a conversation's commands reach chat-sync in the order
 * they were accepted, answered 202 once the broker acknowledged it.
 */
#include "crm/crm_request.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/log.h"
#include "pg/pg.h"
#include "wa/crm_command.h"
#include "wa/service_window.h"

/* ---- answers -------------------------------------------------------------------------- */

char *ing_crm_error_json(const ing_crm_api_config *cfg, const char *reason, const char *field,
                         const char *message)
{
    char esc_field[256], esc_msg[BZ_ERROR_MSG_MAX * 2];
    bz_json_escape(esc_field, sizeof esc_field, field);
    bz_json_escape(esc_msg, sizeof esc_msg, message);
    if (cfg->metrics)
        bz_counter_inc(
            bz_counter_family_with(cfg->metrics->rejected, ING_CRM_METRICS_PATH, reason));
    size_t cap = strlen(reason) + strlen(esc_field) + strlen(esc_msg) + 48;
    char *body = malloc(cap);
    if (body)
        snprintf(body, cap, "{\"error\":\"%s\",\"field\":\"%s\",\"message\":\"%s\"}\n", reason,
                 esc_field, esc_msg);
    return body;
}

void ing_crm_free_wiped(void *p)
{
    if (p)
        OPENSSL_cleanse(p, strlen(p));
    free(p);
}

void ing_crm_answer_release(ing_crm_answer *a)
{
    if (a->secret)
        ing_crm_free_wiped(a->body);
    else
        free(a->body);
    a->body = NULL;
    a->secret = 0;
}

/* The request's answer: status, body (heap, taken over), an optional header. */
static void answer(ing_crm_request *rq, unsigned status, char *body, const char *header,
                   const char *value)
{
    ing_crm_answer *a = rq->answer;
    a->status = status;
    ing_crm_answer_release(a);
    a->body = body;
    a->header = header;
    snprintf(a->header_value, sizeof a->header_value, "%s", header ? value : "");
}

static void refuse_plain(ing_crm_request *rq, unsigned status, const char *reason, const char *field,
                         const char *message, const char *header, const char *value)
{
    answer(rq, status, ing_crm_error_json(rq->cfg, reason, field, message), header, value);
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
void ing_crm_refuse_with(ing_crm_request *rq, unsigned status, const bz_error *err,
                         const char *header, const char *value)
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
    ing_crm_refuse_with(rq, ing_crm_status_of(err), err, NULL, NULL);
}

void ing_crm_refuse_as(ing_crm_request *rq, unsigned status, const bz_error *err)
{
    ing_crm_refuse_with(rq, status, err, NULL, NULL);
}

void ing_crm_reply(ing_crm_request *rq, unsigned status, char *json)
{
    answer(rq, status, json, NULL, NULL);
}

void ing_crm_reply_secret(ing_crm_request *rq, unsigned status, char *json)
{
    answer(rq, status, json, NULL, NULL);
    rq->answer->secret = 1;
}

void ing_crm_reply_doc(ing_crm_request *rq, unsigned status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    answer(rq, status, text, NULL, NULL);
}

void ing_crm_refuse_for_now(ing_crm_request *rq, const char *reason, const char *field,
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
        ing_crm_refuse_with(rq, MHD_HTTP_BAD_REQUEST, &err, NULL, NULL);
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
        st = bz_producer_send_sync(rq->producer, rq->cfg->crm_topic, key, strlen(key), buf, len,
                                   headers, 2, rq->cfg->produce_timeout_ms, &err);
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
    if (rq->cfg->metrics)
        bz_counter_inc(bz_counter_family_with(rq->cfg->metrics->accepted, ING_CRM_METRICS_PATH));
    size_t cap = 160 + (extra_json ? strlen(extra_json) : 0);
    char *body = malloc(cap);
    if (body)
        snprintf(body, cap, "{\"status\":\"accepted\",\"%s\":\"%s\"%s}\n", id_name, event_id,
                 extra_json ? extra_json : "");
    answer(rq, MHD_HTTP_ACCEPTED, body, NULL, NULL);
}

void ing_crm_address(ing_crm_request *rq, Blazz__V1__CrmCommand *cmd, Blazz__V1__Envelope *env,
                     char *event_id, const char *conversation)
{
    bz_crm_command_address(cmd, env, event_id, rq->workspace_id, "ingest", conversation);
}

/* ---- what the request carried ------------------------------------------------------------ */

const char *ing_crm_request_path(const ing_crm_request *rq)
{
    return rq->url;
}

const char *ing_crm_request_idempotency_key(const ing_crm_request *rq)
{
    return rq->idempotency_key;
}

const ing_crm_api_config *ing_crm_request_config(const ing_crm_request *rq)
{
    return rq->cfg;
}

const char *ing_crm_request_arg(const ing_crm_request *rq, const char *name, int *times)
{
    const char *found = NULL;
    int n = 0;
    for (size_t at = 0; at < rq->args_len;) {
        const char *key = rq->args + at, *value = key + strlen(key) + 1;
        if (strcmp(key, name) == 0 && n++ == 0)
            found = value;
        at = (size_t)(value - rq->args) + strlen(value) + 1;
    }
    if (times)
        *times = n;
    return found;
}

int ing_crm_is_positive_id(const char *text)
{
    char *end = NULL;
    errno = 0;
    long long id = text[0] >= '1' && text[0] <= '9' ? strtoll(text, &end, 10) : 0;
    return id > 0 && end && !*end && errno == 0;
}

const char *ing_crm_path_segment(const char *url, const char *prefix, const char *suffix,
                                 size_t *len)
{
    size_t n = strlen(prefix);
    if (strncmp(url, prefix, n) != 0)
        return NULL;
    const char *segment = url + n, *end = strchr(segment, '/');
    size_t seg_len = end ? (size_t)(end - segment) : strlen(segment);
    if (seg_len == 0 || strcmp(segment + seg_len, suffix) != 0)
        return NULL;
    *len = seg_len;
    return segment;
}
