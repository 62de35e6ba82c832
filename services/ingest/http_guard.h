/*
 * http_guard.h - the limits that keep ingest's public listener answering
 * gateways while other clients, signed or not, press on it:
 *
 *  - connections per client address (an IPv4 address, or an IPv6 /64: one
 *    host's share of addresses): a connection over its address's limit
 *    is shut down as soon as it is opened, before anything is read;
 *  - deadlines that trickled bytes cannot extend: a connection must start a
 *    request within idle_timeout_ms of being opened or of its last answer,
 *    and must deliver the whole request (headers and body) within
 *    request_deadline_ms of its request line; past either it is cut. Only
 *    a sender proven before its body (a media upload whose API key or
 *    signed statement verified) earns more: bytes / min_body_rate for the
 *    body it may send, so a large upload at a slow but honest rate
 *    finishes while nobody unauthenticated holds a connection longer;
 *  - buffered bytes: a request's body takes room as its bytes arrive (its
 *    buffer's growth), never as a header announces it; the bytes of
 *    requests not yet authenticated count against their address's share
 *    (max_buffered_per_address) as well as against the bound
 *    (max_buffered_bytes), so a few addresses cannot hold the bound; room
 *    that would pass either is refused (the caller answers 503 with
 *    Retry-After). A request whose sender proved who it is (signature or
 *    API key verified) leaves its address's share and counts as
 *    authenticated work;
 *  - saturation, for /readyz: open connections at 90% of the limit,
 *    authenticated work holding 90% of the buffered-bytes bound, or clients
 *    left waiting in the accept queue for a whole second. Bytes of
 *    unauthenticated requests never make the service unready: anyone can
 *    send them, and one client must not take every replica out of a load
 *    balancer.
 *
 * The HTTP server reports each connection's life to the guard (opened,
 * request line, whole request received, answered, closed) from its own
 * threads; a sweeper thread of the guard enforces the deadlines. Every
 * function is thread-safe.
 */
#ifndef ING_HTTP_GUARD_H
#define ING_HTTP_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/admin_http.h"
#include "core/status.h"
#include "ingest_metrics.h"

typedef struct ing_http_guard_config {
    int max_connections;     /* the listener's limit, for saturation */
    int max_per_address;
    int idle_timeout_ms;
    int request_deadline_ms;
    size_t min_body_rate;    /* bytes/s a proven sender's body must keep up */
    size_t max_buffered_bytes;
    size_t max_buffered_per_address; /* of requests not yet authenticated */
    ing_metrics *metrics; /* borrowed, may be NULL */
} ing_http_guard_config;

typedef struct ing_http_guard ing_http_guard;
typedef struct ing_http_conn ing_http_conn; /* one open connection */

/* Start the guard and its sweeper. Free with ing_http_guard_free. */
bz_status ing_http_guard_new(const ing_http_guard_config *cfg, ing_http_guard **out, bz_error *err);

/* Stop the sweeper and free the guard; every connection must be closed. */
void ing_http_guard_free(ing_http_guard *g);

/* The listening socket whose accept queue counts as waiting clients; -1
 * stops watching (before the socket is closed). */
void ing_http_guard_watch_listener(ing_http_guard *g, int listen_fd);

/* A connection on socket fd from addr was opened. Returns its tracker, or
 * NULL when it was refused (its address is at its limit, or memory ran
 * out): then its socket has been shut down and the server must not serve
 * it. The tracker lives until ing_http_guard_closed. */
ing_http_conn *ing_http_guard_opened(ing_http_guard *g, int fd, const struct sockaddr *addr);

/* The server is about to close c's socket (called before it does). */
void ing_http_guard_closed(ing_http_guard *g, ing_http_conn *c);

/* c's request line arrived: the request deadline starts. */
void ing_http_guard_request_started(ing_http_guard *g, ing_http_conn *c);

/* c's whole request arrived: no deadline applies while it is handled.
 * Returns 0 when c was cut meanwhile (do not act on the request). */
int ing_http_guard_request_received(ing_http_guard *g, ing_http_conn *c);

/* c's sender is proven before its body, which may be up to bytes long:
 * its request's deadline grows by bytes / min_body_rate (once: a second
 * call replaces the first's allowance). */
void ing_http_guard_allow_body(ing_http_guard *g, ing_http_conn *c, uint64_t bytes);

/* c's request was answered (or abandoned): c is idle again. */
void ing_http_guard_request_done(ing_http_guard *g, ing_http_conn *c);

/* Whether room was found: ING_HTTP_ROOM, or which limit refused it. */
typedef enum ing_http_room {
    ING_HTTP_ROOM,
    ING_HTTP_ROOM_ADDRESS_FULL, /* the address's share */
    ING_HTTP_ROOM_BOUND_FULL    /* the buffered-bytes bound */
} ing_http_room;

/* Whether bytes more would fit for c's request now. Takes nothing: it
 * judges a declared length before the body, so that a body that cannot fit
 * is refused before it is sent. A refusal is counted. */
ing_http_room ing_http_guard_room_for(ing_http_guard *g, ing_http_conn *c, size_t bytes);

/* Take bytes more for c's request, as its body arrives; nothing is taken
 * when either limit refuses (counted). */
ing_http_room ing_http_guard_take(ing_http_guard *g, ing_http_conn *c, size_t bytes);

/* c's request proved its sender: its bytes leave its address's share and
 * count as authenticated work. From any thread (a CRM worker). */
void ing_http_guard_authenticated(ing_http_guard *g, ing_http_conn *c);

/* Give back every byte c's request took (it was answered or abandoned). */
void ing_http_guard_give_back(ing_http_guard *g, ing_http_conn *c);

/* Connections whose whole request arrived and whose answer is not sent. */
int ing_http_guard_handling(ing_http_guard *g);

/* Whether the listener is saturated (see above), its figures into detail. */
int ing_http_guard_saturated(ing_http_guard *g, char *detail, size_t cap);

/* Add the "http" check to a /readyz report: ok unless saturated, with the
 * figures in its detail. */
void ing_http_guard_report(ing_http_guard *g, bz_readiness *report);

#endif
