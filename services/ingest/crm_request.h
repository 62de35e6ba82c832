/*
 * crm_request.h - one CRM request on a worker (crm_api.h): what the
 * endpoints' handlers share. crm_api.c owns the queue, the workers, the key
 * check and the answers; crm_messages.c handles POST /v1/messages and
 * /v1/chats/read, crm_sessions.c the session routes.
 *
 * A handler reads its request, looks up what it names in the key's
 * workspace (ing_crm_lookup, on the worker's pooled connection) and either
 * refuses it (ing_crm_refuse: 400, 404, 409, 422 or 503 by the error) or
 * publishes one CrmCommand (ing_crm_publish: 202 once the broker
 * acknowledged it). Exactly one answer is left in the job.
 */
#ifndef ING_CRM_REQUEST_H
#define ING_CRM_REQUEST_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "blazz/v1/crm.pb-c.h"
#include "core/status.h"
#include "crm_api.h"

typedef struct ing_crm_worker ing_crm_worker;

typedef struct ing_crm_request {
    ing_crm_api *crm;
    ing_crm_worker *w;
    ing_crm_job *job;
    int64_t workspace_id; /* the key's */
    PGconn *pg;           /* the worker's pooled connection */
} ing_crm_request;

/* What the request carried: its path (the URL), its body, its
 * Idempotency-Key header (NULL when absent), and the API's settings. */
const char *ing_crm_request_path(const ing_crm_request *rq);
const char *ing_crm_request_idempotency_key(const ing_crm_request *rq);
const ing_crm_api_config *ing_crm_request_config(const ing_crm_request *rq);

/* The status a failed step answers with: NOT_FOUND 404, CONFLICT 409,
 * INVALID 400 (422 with reason outside_service_window), anything else 503. */
unsigned ing_crm_status_of(const bz_error *err);
/* Answer the error: its reason, and the field its "field <name>: ..."
 * message names. */
void ing_crm_refuse(ing_crm_request *rq, const bz_error *err);
/* Answer err with status (403 for a link, 415 for media, ...). */
void ing_crm_refuse_as(ing_crm_request *rq, unsigned status, const bz_error *err);
/* Answer status with json (heap, taken over; NULL: out of memory, 503). */
void ing_crm_reply(ing_crm_request *rq, unsigned status, char *json);
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

/* The endpoints (crm_messages.c, crm_sessions.c): body of len bytes. */
void ing_crm_accept_send(ing_crm_request *rq, const char *body, size_t len);
void ing_crm_accept_read(ing_crm_request *rq, const char *body, size_t len);
void ing_crm_accept_session(ing_crm_request *rq, int route, const char *body, size_t len);

#endif
