/*
 * crm_api.h - the CRM's endpoints on ingest's HTTP server (ARCHITECTURE.md
 * §11):
 *
 *   POST /v1/messages     an agent's message -> a SendChatMessage on crm.commands
 *   POST /v1/chats/read   the CRM read a conversation -> a MarkChatRead
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
 *   404 an unknown contact, group, account, user, template or message of
 *       the key's workspace (ingest reads PostgreSQL for this);
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
 * a declared body over the limit: 413) is answered on the event loop.
 */
#ifndef BZ_INGEST_CRM_API_H
#define BZ_INGEST_CRM_API_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "ingest_metrics.h"

typedef struct bz_crm_api_config {
    const char *pg_dsn;
    const char *brokers;
    const char *crm_topic;       /* full name of crm.commands */
    const char *default_cc;      /* for national phone numbers */
    int64_t key_cache_ms;        /* crm.api_key_cache_s */
    double rate_per_second;      /* per workspace; 0: no limit */
    double rate_burst;
    int workers;                 /* crm.workers */
    int produce_timeout_ms;
    bz_ingest_metrics *metrics;  /* borrowed, may be NULL */
} bz_crm_api_config;

typedef struct bz_crm_api bz_crm_api;
typedef struct bz_crm_job bz_crm_job;

enum { BZ_CRM_ROUTE_NONE, BZ_CRM_ROUTE_SEND, BZ_CRM_ROUTE_READ };

/* Start the workers. The config's strings must outlive the API. Free with
 * bz_crm_api_free, after the HTTP server stopped. */
bz_status bz_crm_api_new(const bz_crm_api_config *cfg, bz_crm_api **out, bz_error *err);
void bz_crm_api_free(bz_crm_api *crm);

/* Which CRM endpoint url is (BZ_CRM_ROUTE_NONE: not one). */
int bz_crm_api_route(const char *url);

/* Answers the headers decide, on the event loop: 405 (not a POST) and 413
 * (the body is over max_body_bytes). */
enum MHD_Result bz_crm_api_refuse_method(bz_crm_api *crm, struct MHD_Connection *conn);
enum MHD_Result bz_crm_api_refuse_size(bz_crm_api *crm, struct MHD_Connection *conn,
                                       size_t max_body_bytes);

/* A complete request (body copied) for a worker: conn is suspended and the
 * worker resumes it when the answer is ready (bz_crm_api_answer). The
 * returned job belongs to the request; NULL when memory ran out (conn is
 * not suspended then: answer 503). */
bz_crm_job *bz_crm_api_submit(bz_crm_api *crm, struct MHD_Connection *conn, int route,
                              const char *body, size_t len);

/* 1 once the job's worker has finished it (its connection was resumed). */
int bz_crm_job_done(const bz_crm_job *job);

/* On the resumed connection: queue the job's answer. The job is freed. */
enum MHD_Result bz_crm_api_answer(bz_crm_job *job, struct MHD_Connection *conn);

/* A finished job whose connection ended before its answer went out. */
void bz_crm_job_free(bz_crm_job *job);

/* Jobs queued or being worked on: the HTTP server stops only after they
 * are all finished (their connections resumed). */
int bz_crm_api_busy(bz_crm_api *crm);

#endif
