/*
 * delivery.h - HTTP POSTs over libcurl's multi interface.
 *
 * One delivery object runs many transfers concurrently on the caller's
 * thread: start() adds a transfer, poll() waits for network activity (or for
 * one extra file descriptor, the worker's LISTEN connection) and drives all
 * transfers, next_done() hands back finished ones. Connections live in the
 * multi handle's pool and are reused across transfers to the same host
 * (keep-alive); easy handles are pooled too.
 *
 * Every transfer: POST only, no redirects followed, http/https only, no
 * proxy from the environment, connect and total timeouts, the response body
 * read but capped (the first bytes are kept for error messages), and the SSRF
 * guard (ssrf.h) applied to the address curl is about to connect to, after
 * DNS resolution: a refused address is never connected to. When a name
 * resolves to several addresses curl goes on to the next one; only when
 * every address was refused does the transfer fail as WH_T_SSRF, with
 * the (last) refused address and its class in the error.
 */
#ifndef WH_DELIVERY_H
#define WH_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "classify.h"
#include "core/status.h"

typedef struct wh_delivery_config {
    int connect_timeout_ms;
    size_t max_response_bytes;
    bool allow_private_targets;
    int max_connections;     /* size of the connection pool */
    const char *user_agent;
    /* NULL, or curl --resolve entries ("host:port:addr[,addr...]") pinning
     * what names resolve to; the guard still checks every address. The
     * service leaves it NULL; tests give a name several addresses. */
    struct curl_slist *resolve;
} wh_delivery_config;

#define WH_SNIPPET_MAX 160
#define WH_ERROR_MAX 256

typedef struct wh_transfer wh_transfer;
struct wh_transfer {
    /* Set by the caller before start; must stay valid until the transfer is
     * handed back by next_done. */
    const char *url;
    const char *body;
    size_t body_len;
    struct curl_slist *headers; /* owned by the transfer from start() on */
    int timeout_ms;
    void *user;

    /* Results, valid once handed back. */
    wh_transport transport;
    long http_status;
    int64_t retry_after_ms;  /* -1: none */
    char error[WH_ERROR_MAX];
    /* The first bytes of the response body (up to a NUL) as valid UTF-8
     * text: bytes that are not, a character cut at the limit included,
     * become '?' (bz_utf8_scrub), so it can go into PostgreSQL text and
     * protobuf strings as it is. */
    char snippet[WH_SNIPPET_MAX];
    double seconds;

    /* Private. */
    CURL *easy;
    size_t received;
    size_t max_response_bytes;
    bool truncated;
    char ssrf_reason[WH_ERROR_MAX];
    bool ssrf_refused;    /* an address was refused ... */
    bool address_allowed; /* ... and whether another one was let through */
    bool allow_private;
    wh_transfer *next_done;
};

typedef struct wh_delivery wh_delivery;

bz_status wh_delivery_new(const wh_delivery_config *cfg, wh_delivery **out,
                             bz_error *err);

/* Free; cancel running transfers first (wh_delivery_cancel). */
void wh_delivery_free(wh_delivery *d);

/* Start t. On failure t->headers has been freed and t was not started. */
bz_status wh_delivery_start(wh_delivery *d, wh_transfer *t, bz_error *err);

/* Wait at most timeout_ms for activity on the transfers or on extra_fd
 * (-1 for none), then drive the transfers. *extra_ready tells whether
 * extra_fd became readable. */
void wh_delivery_poll(wh_delivery *d, int timeout_ms, int extra_fd, bool *extra_ready);

/* From any thread: end the poll d's owner is waiting in now, or its next
 * one, at once. */
void wh_delivery_wakeup(wh_delivery *d);

/* Stop a running transfer; it is never handed back. */
void wh_delivery_cancel(wh_delivery *d, wh_transfer *t);

/* A finished transfer, or NULL. Its easy handle has been returned to the pool. */
wh_transfer *wh_delivery_next_done(wh_delivery *d);

/* Transfers started and not yet handed back. */
int wh_delivery_running(const wh_delivery *d);

#endif
