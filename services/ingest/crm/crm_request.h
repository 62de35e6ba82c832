/*
 * crm_request.h - one CRM request on a worker (crm_api.h): what the
 * endpoints' handlers (crm_messages.c, crm_sessions.c, the media tasks)
 * are given, and the answers they make of it (crm_request.c). crm_api.c
 * owns the queue, the workers and the key check and fills in a request
 * for each job; the route table (crm_routes.c) names the handler of each
 * path. Neither a handler nor this file knows the workers: the request
 * carries what a handler needs (the settings, the worker's producer and
 * connection, the slot its answer goes to).
 *
 * A handler reads its request, looks up what it names in the key's
 * workspace (ing_crm_lookup, on the worker's pooled connection) and either
 * refuses it (ing_crm_refuse: 400, 404, 409, 422 or 503 by the error) or
 * publishes one CrmCommand (ing_crm_publish: 202 once the broker
 * acknowledged it). Exactly one answer is left in the request's slot.
 */
#ifndef ING_CRM_REQUEST_H
#define ING_CRM_REQUEST_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "blazz/v1/crm.pb-c.h"
#include "core/status.h"
#include "crm/api_keys.h"
#include "crm/crm_config.h"
#include "kafka/producer.h"

/* A request's answer, sent by the event loop once the worker is done. */
typedef struct ing_crm_answer {
    unsigned status;       /* 0 until answered */
    char *body;            /* JSON, heap; NULL with a status: out of memory (503) */
    int secret;            /* body holds a secret: wiped wherever it is freed */
    const char *header;    /* an extra header, or NULL */
    char header_value[32];
} ing_crm_answer;

/* Free a's body (wiped first when it holds a secret); a keeps its status. */
void ing_crm_answer_release(ing_crm_answer *a);
/* Wipe the NUL-terminated text p and free it (a body that held a secret,
 * handed to libmicrohttpd, which frees it through this). */
void ing_crm_free_wiped(void *p);

typedef struct ing_crm_request {
    const ing_crm_api_config *cfg;
    bz_producer *producer;       /* the worker's */
    const char *url;
    const char *idempotency_key; /* the header's; NULL when absent */
    const char *args;            /* the query's arguments, decoded: "name\0value\0" each */
    size_t args_len;             /* their bytes; 0 for none */
    ing_crm_answer *answer;      /* the job's */
    int64_t workspace_id;        /* the key's */
    PGconn *pg;                  /* the worker's pooled connection */
    ing_api_keys *keys;          /* the API's key cache (a revocation marks it) */
} ing_crm_request;

/* An endpoint: answers rq, whose body is len bytes. */
typedef void (*ing_crm_handler_fn)(ing_crm_request *rq, const char *body, size_t len);

/* What the request carried: its path (the URL), its Idempotency-Key header
 * (NULL when absent), and the API's settings. */
const char *ing_crm_request_path(const ing_crm_request *rq);
const char *ing_crm_request_idempotency_key(const ing_crm_request *rq);
const ing_crm_api_config *ing_crm_request_config(const ing_crm_request *rq);

/* The value of the URL's query argument name ("" when given without "="),
 * NULL when absent; *times (when not NULL) how often the query gives it. */
const char *ing_crm_request_arg(const ing_crm_request *rq, const char *name, int *times);

/* The one path segment between prefix and suffix ("" for the path's end)
 * of url, *len its length; NULL unless url is prefix, one non-empty
 * segment, suffix. */
const char *ing_crm_path_segment(const char *url, const char *prefix, const char *suffix,
                                 size_t *len);

/* 1 when text is an id as the API names rows: a decimal 1..INT64_MAX,
 * nothing before or after it. */
int ing_crm_is_positive_id(const char *text);

/* {"error": reason, "field": field, "message": message}, counted in
 * blazz_ingest_rejected_total{path="crm",reason}; heap, NULL when out of
 * memory. */
char *ing_crm_error_json(const ing_crm_api_config *cfg, const char *reason, const char *field,
                         const char *message);

/* The status a failed step answers with: NOT_FOUND 404, CONFLICT 409,
 * INVALID 400 (422 with reason outside_service_window), anything else 503. */
unsigned ing_crm_status_of(const bz_error *err);
/* Answer the error: its reason, and the field its "field <name>: ..."
 * message names. */
void ing_crm_refuse(ing_crm_request *rq, const bz_error *err);
/* Answer err with status (403 for a link, 415 for media, ...). */
void ing_crm_refuse_as(ing_crm_request *rq, unsigned status, const bz_error *err);
/* As ing_crm_refuse_as, with an extra header (WWW-Authenticate, say). */
void ing_crm_refuse_with(ing_crm_request *rq, unsigned status, const bz_error *err,
                         const char *header, const char *value);
/* 429: come back in after_s seconds (Retry-After). */
void ing_crm_refuse_for_now(ing_crm_request *rq, const char *reason, const char *field,
                            const char *message, int64_t after_s);
/* Answer status with json (heap, taken over; NULL: out of memory, 503). */
void ing_crm_reply(ing_crm_request *rq, unsigned status, char *json);
/* The same for an answer that hands out a secret: its text is wiped where
 * it is freed, in this process and in libmicrohttpd's response. */
void ing_crm_reply_secret(ing_crm_request *rq, unsigned status, char *json);
/* The same with a document (taken over: released here; NULL, as when a
 * json_pack ran out of memory: 503). */
void ing_crm_reply_doc(ing_crm_request *rq, unsigned status, json_t *doc);
/* err as NOT_FOUND (404) with reason, naming field. */
bz_status ing_crm_not_found(bz_error *err, const char *reason, const char *field,
                            int64_t workspace_id);

/* One row of sql with ($1 workspace, $2 value) into *res (the caller
 * PQclears it); *res NULL when there is none. */
bz_status ing_crm_lookup(ing_crm_request *rq, const char *what, const char *sql,
                         const char *value, PGresult **res, bz_error *err);

/* Check cmd (its command and envelope set: ing_crm_address) as the
 * consumer will, publish it with the worker's producer and wait for the
 * broker; the 202 answer names id_name: the event id, then extra_json (a
 * JSON member list starting with a comma, or NULL). */
void ing_crm_publish(ing_crm_request *rq, Blazz__V1__CrmCommand *cmd, const char *id_name,
                     const char *extra_json);

/* Give cmd env as its envelope: event_id, now, the key's workspace, the
 * conversation of its record key. */
void ing_crm_address(ing_crm_request *rq, Blazz__V1__CrmCommand *cmd, Blazz__V1__Envelope *env,
                     char *event_id, const char *conversation);

#endif
