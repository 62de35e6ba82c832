/*
 * http_api.h - ingest's public HTTP endpoints (libmicrohttpd):
 *
 *   POST /v1/events         gateway event, JSON (gateway_json.h) or
 *                           protobuf InboundEvent (Content-Type
 *                           application/x-protobuf), from the gateway named
 *                           by X-Blazz-Gateway (or the unnamed gateway),
 *                           signed with one of its keys in the timestamped
 *                           or the plain mode (gateway_auth.h)
 *   GET  /v1/meta/webhook   Meta's verification handshake (hub.mode,
 *                           hub.verify_token, hub.challenge)
 *   POST /v1/meta/webhook   Meta Cloud API notification, signed with
 *                           X-Hub-Signature-256 = sha256=<hex HMAC(app secret)>,
 *                           the app secret being a key of the meta gateway
 *
 * An event for a session another gateway serves is refused (401
 * session_not_owned). An accepted gateway event is validated and
 * normalized (normalize.h), then routed by the router (http_router.h): its
 * session resolved to the owner's workspace and account, and its
 * SyncCommand published straight to chat.sync (idempotent producer,
 * acks=all), or, when the owner's checks refuse it (a session nobody
 * has), its dead letter to wa.inbound.dlq. The answer comes only after the
 * broker acknowledged the write: 202 {"event_id": ...}; 503 when it was
 * not acknowledged within produce_timeout_ms, or PostgreSQL could not
 * name an uncached session's owner (nothing was accepted, the producer
 * may retry; a retry carries the same event_id, and so does a 503 when
 * the gateways' keys or sessions could not be read). 401 for a bad or
 * missing signature or gateway (nothing produced), 400 with {"error":
 * reason, "field": path, "message": ...} for invalid input, 413 over
 * max_body_bytes, 429 with Retry-After past the gateway's request rate
 * (gateway_rate.h; never for Meta). Meta notifications answer 200 once
 * every contained event is acknowledged; events Meta got wrong are
 * dead-lettered by the router. Every 503 carries Retry-After.
 *
 * What the headers decide is answered before the body is read: credentials
 * without their public shape (401), a declared body over max_body_bytes
 * (413), and a declared body that would not fit now in its address's share
 * or in max_buffered_bytes, the bound on request bodies held at once (503
 * "busy"); a body takes room only as its bytes arrive. Connections are
 * limited per client address (IPv4, IPv6 /64: refused over
 * max_connections_per_address), must start a request within
 * idle_timeout_s and deliver it whole within request_deadline_s of its
 * request line (cut otherwise, however slowly the bytes trickle); a media
 * upload whose sender is proven before its body gets its length's worth
 * of time at min_upload_rate more; see http_guard.h.
 *
 * A few event-loop threads serve every connection; a request waiting for the
 * broker holds no thread (http_producer.h).
 *
 * With a CRM API configured, POST /v1/messages and POST /v1/chats/read are
 * the CRM's (crm_api.h): API keys instead of signatures, the same body and
 * connection bounds, answered by its worker threads.
 */
#ifndef ING_HTTP_API_H
#define ING_HTTP_API_H

#include <stddef.h>
#include <stdint.h>

#include "core/admin_http.h"
#include "core/status.h"
#include "events/sessions.h"
#include "gateway/gateway_auth.h"
#include "ingest_metrics.h"

typedef struct ing_http_api_config {
    const char *listen;             /* "host:port"; port 0 picks one */
    const char *brokers;
    const char *raw_topic;          /* full names: where dead letters say events came from, */
    const char *sync_topic;         /* where they go, */
    const char *dlq_topic;          /* and where refused ones go */
    ing_sessions_config sessions;   /* the router's session cache */
    ing_gateway_auth *gateways;      /* borrowed: keys and session owners */
    const char *meta_gateway;       /* the gateway id Meta's notifications come from */
    const char *meta_verify_token;  /* NULL or "": every handshake is refused */
    size_t max_body_bytes;
    int produce_timeout_ms;
    int max_connections;
    int max_connections_per_address;
    int idle_timeout_s;             /* before a request starts */
    int request_deadline_s;         /* request line to whole request */
    size_t min_upload_rate;         /* bytes/s: a proven media upload's time (http_guard.h) */
    size_t max_buffered_bytes;      /* request bodies held at once */
    size_t max_buffered_per_address; /* of unauthenticated bodies, per address (/64) */
    int threads;                    /* libmicrohttpd event-loop threads */
    int linger_ms;
    const char *default_cc;
    int64_t max_future_ms;
    ing_metrics *metrics;     /* borrowed, may be NULL */
    struct ing_crm_api *crm;         /* borrowed, may be NULL: the CRM's endpoints answer 404 */
    struct ing_media_api *media;     /* borrowed, may be NULL: the media endpoints (media_api.h) answer 404 */
    struct ing_gateway_rate *gateway_rate; /* borrowed, may be NULL: no limit (gateway_rate.h) */
} ing_http_api_config;

typedef struct ing_http_api ing_http_api;

/* Start serving. The config's strings must outlive the server. Free with
 * ing_http_api_stop. */
bz_status ing_http_api_start(const ing_http_api_config *cfg, ing_http_api **out, bz_error *err);

/* Stop accepting, let in-flight requests finish (each waits at most
 * produce_timeout_ms and a second), flush the producer and free everything. */
void ing_http_api_stop(ing_http_api *api);

uint16_t ing_http_api_port(const ing_http_api *api);

/* Add the "http" readiness check: not ready while the listener is
 * saturated (connections near their limit, the buffered-bytes bound hit,
 * clients left waiting to be accepted). */
void ing_http_api_report_readiness(ing_http_api *api, bz_readiness *report);

#endif
