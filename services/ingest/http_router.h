/*
 * http_router.h - the HTTP path's route to chat.sync (ARCHITECTURE.md
 * §3.3, §8): the events a request brought, once verified, are routed to
 * their owner (sync_route.h) and produced straight to chat.sync by the
 * HTTP producer, so the request's 202 means the SyncCommand is stored;
 * what the owner's checks refuse is dead-lettered to wa.inbound.dlq as
 * the raw record it would have been, and answered 202 all the same (the
 * sender's retry would be refused again).
 *
 * One thread owns a session cache of its own (PostgreSQL on a miss, so
 * never on the event loops): the event loops hand it each event with the
 * request's acks, and it settles every one, in the order they were handed
 * over, so one sender's events keep the order of its requests. When
 * PostgreSQL cannot answer for an event whose owner is not cached, the
 * event's request is answered 503 and its sender retries.
 */
#ifndef ING_HTTP_ROUTER_H
#define ING_HTTP_ROUTER_H

#include <stdint.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "events/sessions.h"
#include "gateway/gateway_auth.h"
#include "http_producer.h"
#include "ingest_metrics.h"

typedef struct ing_http_router_config {
    ing_sessions_config sessions; /* the router's own cache */
    const char *sync_topic;       /* full names, prefix applied */
    const char *dlq_topic;
    const char *raw_topic;        /* where a dead letter says its event came from */
    const char *default_cc;
    int64_t max_future_ms;
    ing_http_producer *producer;  /* borrowed */
    ing_metrics *metrics;         /* borrowed, may be NULL */
} ing_http_router_config;

typedef struct ing_http_router ing_http_router;

/* Start the router's thread. The config's strings must outlive it. Free
 * with ing_http_router_stop. */
bz_status ing_http_router_start(const ing_http_router_config *cfg, ing_http_router **out,
                               bz_error *err);

/* Route ev (taken: the router frees it), signed by gateway, for path
 * ("http", "meta": its metrics' label). conversation is ing_normalize's
 * for a gateway's event, normalized at its edge, or NULL for one of
 * Meta's, which the router normalizes as Meta's (ing_norm_opts.meta_edge)
 * and dead-letters when invalid. One record of acks is expected here
 * and settled by the router. */
void ing_http_router_route(ing_http_router *r, Blazz__V1__InboundEvent *ev, const char *gateway,
                          const char *conversation, const char *path, ing_http_acks *acks);

/* Route what was handed over, then stop the thread and free. */
void ing_http_router_stop(ing_http_router *r);

/* An event the router accepts must leave room to wrap it twice (limits.h:
 * as its raw record in a dead letter, the way dead_letter builds it): a
 * larger one is refused for good (too_large: 413), never "retry". */
bz_status ing_http_router_check_size(const Blazz__V1__InboundEvent *ev, bz_error *err);

#endif
