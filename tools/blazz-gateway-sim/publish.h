/*
 * publish.h - one interface, two ways to hand an event to the backbone:
 *   kafka  produce to <prefix>wa.inbound.raw, key session_id, headers
 *          event_id and trace_id, idempotent producer (publish_kafka.c);
 *   http   POST the protobuf to ingest's /v1/events, signed with
 *          X-WhatsApp-Signature, over reused connections (publish_http.c).
 * Both are asynchronous: bz_sim_publish queues the event (copying what it
 * needs) and counts it as sent; the outcome (accepted, with its latency, or
 * rejected) is counted in the stats when it is known, during later calls.
 * A publisher belongs to one thread.
 */
#ifndef BZ_SIM_PUBLISH_H
#define BZ_SIM_PUBLISH_H

#include "core/status.h"
#include "event.h"
#include "report.h"
#include "sim.h"

typedef struct bz_sim_publisher bz_sim_publisher;

typedef struct bz_sim_publisher_ops {
    bz_status (*publish)(bz_sim_publisher *p, const bz_sim_event *ev, bz_error *err);
    /* Make progress on queued events for up to timeout_ms. */
    void (*poll)(bz_sim_publisher *p, int timeout_ms);
    /* Wait until every queued event has an outcome, at most timeout_ms;
     * BZ_ERR_TRANSIENT if some are still open. */
    bz_status (*drain)(bz_sim_publisher *p, int timeout_ms, bz_error *err);
    void (*free)(bz_sim_publisher *p);
} bz_sim_publisher_ops;

struct bz_sim_publisher {
    const bz_sim_publisher_ops *ops;
};

/* Constructors. o and stats must outlive the publisher. */
bz_status bz_sim_publisher_new_kafka(const bz_sim_options *o, bz_sim_stats *stats,
                                     bz_sim_publisher **out, bz_error *err);
bz_status bz_sim_publisher_new_http(const bz_sim_options *o, bz_sim_stats *stats,
                                    bz_sim_publisher **out, bz_error *err);

static inline bz_status bz_sim_publish(bz_sim_publisher *p, const bz_sim_event *ev, bz_error *err)
{
    return p->ops->publish(p, ev, err);
}

static inline void bz_sim_publisher_poll(bz_sim_publisher *p, int timeout_ms)
{
    p->ops->poll(p, timeout_ms);
}

static inline bz_status bz_sim_publisher_drain(bz_sim_publisher *p, int timeout_ms, bz_error *err)
{
    return p->ops->drain(p, timeout_ms, err);
}

/* NULL is fine. */
static inline void bz_sim_publisher_free(bz_sim_publisher *p)
{
    if (p)
        p->ops->free(p);
}

#endif
