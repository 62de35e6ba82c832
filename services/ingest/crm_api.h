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
 */
#ifndef BZ_INGEST_CRM_API_H
#define BZ_INGEST_CRM_API_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "ingest_metrics.h"

typedef struct bz_http_api bz_http_api;

typedef struct bz_crm_api_config {
    const char *pg_dsn;
    const char *crm_topic;       /* full name of crm.commands */
    const char *default_cc;      /* for national phone numbers */
    int64_t key_cache_ms;        /* crm.api_key_cache_s */
    double rate_per_second;      /* per workspace; 0: no limit */
    double rate_burst;
    int pg_connections;
    bz_ingest_metrics *metrics;  /* borrowed, may be NULL */
} bz_crm_api_config;

typedef struct bz_crm_api bz_crm_api;

/* The config's strings must outlive the API. Free with bz_crm_api_free. */
bz_status bz_crm_api_new(const bz_crm_api_config *cfg, bz_crm_api **out, bz_error *err);
void bz_crm_api_free(bz_crm_api *crm);

/* 1 when url is one of the CRM's endpoints. */
int bz_crm_api_routes(const char *url);

/* Answer one complete request to one of them (http publishes and replies). */
enum MHD_Result bz_crm_api_handle(bz_crm_api *crm, bz_http_api *http,
                                  struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *body, size_t len,
                                  int too_large, size_t max_body_bytes);

#endif
