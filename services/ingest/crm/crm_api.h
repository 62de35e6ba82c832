/*
 * crm_api.h - the CRM's endpoints on ingest's HTTP server (ARCHITECTURE.md
 * §11):
 *
 *   POST /v1/messages     an agent's message -> a SendChatMessage on crm.commands
 *   POST /v1/chats/read   the CRM read a conversation -> a MarkChatRead
 *   POST /v1/sessions     a new whatsapp-web.js session -> a SessionRequest
 *   POST /v1/sessions/{session_id}/restart|logout|primary -> a SessionRequest
 *
 * Every request carries "Authorization: Bearer bzk_<key_id>_<secret>"
 * (api_keys.h); the workspace is the key's, never a claim of the body. A
 * request is answered:
 *   202 {"status":"accepted","message_id"|"event_id": ...} once the broker
 *       acknowledged the command (idempotent producer, acks=all). A send's
 *       message_id is derived from (workspace, idempotency_key), so the
 *       same key always answers the same id and chat-sync stores (and
 *       campaign-sender releases) the message once, however often it is
 *       sent;
 *   400 {"error","field","message"} naming the bad field (JSON, contract,
 *       a template's parameter count);
 *   401 missing, unknown, wrong or revoked key;
 *   404 an unknown contact, group, account, user, template, message,
 *       session or gateway of the key's workspace (ingest reads PostgreSQL
 *       for this);
 *   409 a session id another workspace has, or restart/logout of a Meta
 *       account;
 *   405 not a POST; 413 a body over ingest.max_body_bytes;
 *   429 with Retry-After when the workspace's request rate
 *       (crm.rate_per_second, burst crm.rate_burst; per ingest instance) is
 *       exceeded;
 *   503 PostgreSQL or the broker did not answer in time: nothing was
 *       accepted, retry with the same idempotency key.
 *
 * Answering needs PostgreSQL and the broker's acknowledgement, both
 * blocking calls, and ingest's HTTP threads are event loops that must never
 * block (http_api.h): a complete request is handed to one of crm.workers
 * threads (each with a PostgreSQL connection of its own and a producer)
 * and its connection suspended; the worker resumes it with the answer
 * ready, and the event loop sends it. What the headers alone decide (405,
 * an Authorization without the shape of a key: 401, a declared body over
 * the limit: 413) is answered on the event loop, before the body is read.
 * The workers know no endpoint: the HTTP server asks the route table
 * (crm_routes.h) for the handler of a path and hands it over with the
 * request; the handlers answer through crm_request.h.
 */
#ifndef ING_CRM_API_H
#define ING_CRM_API_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "crm/crm_config.h"
#include "crm/crm_request.h"

typedef struct ing_crm_api ing_crm_api;
typedef struct ing_crm_job ing_crm_job;

/* Start the workers. The config's strings must outlive the API. Free with
 * ing_crm_api_free, after the HTTP server stopped. */
bz_status ing_crm_api_new(const ing_crm_api_config *cfg, ing_crm_api **out, bz_error *err);
void ing_crm_api_free(ing_crm_api *crm);

/* Answers the headers decide, on the event loop: 405 (not a POST), 401 (no
 * well-formed key: api_keys.h), 415 (a body not declared application/json)
 * and 413 (the body is over max_body_bytes). */
enum MHD_Result ing_crm_api_refuse_method(ing_crm_api *crm, struct MHD_Connection *conn,
                                          const char *allow);
enum MHD_Result ing_crm_api_refuse_key(ing_crm_api *crm, struct MHD_Connection *conn);
/* Whether content_type (a Content-Type header's value, NULL when absent)
 * is application/json, whatever its parameters (charset) and case. */
int ing_crm_api_is_json(const char *content_type);
enum MHD_Result ing_crm_api_refuse_content_type(ing_crm_api *crm, struct MHD_Connection *conn,
                                                const char *content_type);
enum MHD_Result ing_crm_api_refuse_size(ing_crm_api *crm, struct MHD_Connection *conn,
                                       size_t max_body_bytes);

/* Told by the worker, on its thread, once the request's key verified. */
typedef void (*ing_crm_authenticated_fn)(void *ctx);

/* A complete request (body copied) for a worker, which checks its key and
 * its workspace's rate and then hands it to handler (the endpoint's, from
 * the route table: crm_routes.h): conn is suspended and the worker resumes
 * it when the answer is ready (ing_crm_api_answer), after calling
 * authenticated(ctx) if its key verified; reads_only (the route only
 * reads: a GET of crm_routes.h) lets a replica's connection answer it. The
 * returned job belongs to the
 * request; NULL when memory ran out or the API is closing (conn is not
 * suspended then: answer 503 with err's reason and message). */
ing_crm_job *ing_crm_api_submit(ing_crm_api *crm, struct MHD_Connection *conn,
                              ing_crm_handler_fn handler, int reads_only, const char *url,
                              const char *body, size_t len,
                              ing_crm_authenticated_fn authenticated, void *ctx, bz_error *err);

/* Work for a worker that is not one of the endpoints above (media_api.h):
 * with authenticate set, the request's key is checked first (and the
 * workspace's rate), and the task runs in the key's workspace; without,
 * in workspace_id. task runs on the worker's pooled connection; a NULL
 * task is the key check alone. conn is suspended until the worker is
 * done. The task answers (ing_crm_reply, ing_crm_refuse) or leaves no
 * answer (ing_crm_job_answered 0), for the caller to make one. NULL, as
 * ing_crm_api_submit's, with err. */
typedef void (*ing_crm_task_fn)(ing_crm_request *rq, void *ctx);
ing_crm_job *ing_crm_api_submit_task(ing_crm_api *crm, struct MHD_Connection *conn,
                                   const char *url, int authenticate, int64_t workspace_id,
                                   ing_crm_task_fn task, void *ctx, bz_error *err);

/* Whether a finished job holds an answer; the workspace its key named. */
int ing_crm_job_answered(const ing_crm_job *job);
int64_t ing_crm_job_workspace(const ing_crm_job *job);

/* 1 once the job's worker has finished it (its connection was resumed). */
int ing_crm_job_done(const ing_crm_job *job);

/* On the resumed connection: queue the job's answer. The job is freed. */
enum MHD_Result ing_crm_api_answer(ing_crm_job *job, struct MHD_Connection *conn);

/* A finished job whose connection ended before its answer went out. */
void ing_crm_job_free(ing_crm_job *job);

/* Take no more jobs: from now on a submit is refused (503 unavailable,
 * "ingest is stopping"), so once ing_crm_api_busy is 0 no connection of
 * the API is suspended or will be. */
void ing_crm_api_close(ing_crm_api *crm);

/* Jobs queued or being worked on: the HTTP server stops only after they
 * are all finished (their connections resumed). */
int ing_crm_api_busy(ing_crm_api *crm);

#endif
