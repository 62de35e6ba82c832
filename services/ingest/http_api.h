/*
 * http_api.h - ingest's public HTTP endpoints (libmicrohttpd):
 *
 *   POST /v1/events         gateway event, JSON (gateway_json.h) or
 *                           protobuf InboundEvent (Content-Type
 *                           application/x-protobuf), signed with
 *                           X-WhatsApp-Signature = hex HMAC-SHA256(secret, body)
 *   GET  /v1/meta/webhook   Meta's verification handshake (hub.mode,
 *                           hub.verify_token, hub.challenge)
 *   POST /v1/meta/webhook   Meta Cloud API notification, signed with
 *                           X-Hub-Signature-256 = sha256=<hex HMAC(app secret)>
 *
 * An accepted gateway event is validated and normalized (normalize.h), then
 * published to wa.inbound.raw keyed by session_id, where the Kafka path
 * (txn_pipeline.h) resolves its session and turns it into chat.sync. The
 * answer comes only after the broker acknowledged the write (idempotent
 * producer, acks=all): 202 {"event_id": ...}; 503 when it was not
 * acknowledged within produce_timeout_ms (nothing was accepted, the
 * producer may retry; a retry carries the same event_id). 401 for a bad or
 * missing signature (nothing produced), 400 with {"error": reason,
 * "field": path, "message": ...} for invalid input, 413 over
 * max_body_bytes. Meta notifications answer 200 once every contained event
 * is acknowledged; events Meta got wrong are dead-lettered by the Kafka path.
 *
 * One thread per connection; the producer's delivery reports are served by a
 * poller thread that wakes the waiting request threads.
 *
 * The CRM's endpoints (POST /v1/messages, POST /v1/chats/read) are routed
 * to crm_api.h, which answers with the helpers at the end of this header
 * and publishes through the same producer.
 */
#ifndef BZ_INGEST_HTTP_API_H
#define BZ_INGEST_HTTP_API_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "ingest_metrics.h"

typedef struct bz_http_api_config {
    const char *listen;             /* "host:port"; port 0 picks one */
    const char *brokers;
    const char *raw_topic;          /* full name */
    const char *gateway_secret;     /* NULL or "": every gateway POST is refused */
    const char *meta_app_secret;    /* NULL or "": every Meta POST is refused */
    const char *meta_verify_token;  /* NULL or "": every handshake is refused */
    size_t max_body_bytes;
    int produce_timeout_ms;
    int max_connections;
    int linger_ms;
    const char *default_cc;
    int64_t max_future_ms;
    bz_ingest_metrics *metrics;     /* borrowed, may be NULL */
    struct bz_crm_api *crm;         /* borrowed, may be NULL: the CRM's endpoints answer 404 */
} bz_http_api_config;

typedef struct bz_http_api bz_http_api;

/* Start serving. The config's strings must outlive the server. Free with
 * bz_http_api_stop. */
bz_status bz_http_api_start(const bz_http_api_config *cfg, bz_http_api **out, bz_error *err);

/* Stop accepting, let in-flight requests finish (each waits at most
 * produce_timeout_ms), flush the producer and free everything. */
void bz_http_api_stop(bz_http_api *api);

uint16_t bz_http_api_port(const bz_http_api *api);

/* ---- for the server's other handlers (crm_api.c) ---------------------------- */

/* Produce one record to topic (key and value copied; headers event_id and
 * trace_id) and wait for the broker's acknowledgement, at most
 * produce_timeout_ms and a second: 1 when acknowledged. */
int bz_http_api_publish(bz_http_api *api, const char *topic, const char *key, const void *value,
                        size_t len, const char *event_id, const char *trace_id);

/* Queue a response with an optional extra header (header NULL: none). */
enum MHD_Result bz_http_api_reply(struct MHD_Connection *conn, unsigned status, const char *type,
                                  const char *body, const char *header, const char *value);

/* Queue {"error": reason, "field": field, "message": message}, counted in
 * blazz_ingest_rejected_total{path,reason}; an optional extra header. */
enum MHD_Result bz_http_api_error(bz_http_api *api, struct MHD_Connection *conn, unsigned status,
                                  const char *path, const char *reason, const char *field,
                                  const char *message, const char *header, const char *value);

#endif
