/*
 * fanout.h - the exactly-once consumer handler: events in, deliveries out.
 *
 * For every consumed event the handler inserts one webhook_retry_queue row
 * (status pending, due now, body rendered once) per enabled, non-deleted
 * endpoint of the event's workspace whose event-type filter matches, in the
 * consumer's transaction, so the rows and the consumed offsets commit
 * together. UNIQUE (event_id, endpoint_id) makes a repeated event harmless.
 * The transaction also NOTIFYs blazz_webhook, which wakes the delivery
 * worker at commit.
 *
 * A replayed webhook.dlq record (header webhook-endpoint-id, payload.h)
 * re-queues that one delivery: a failed row goes back to pending with its
 * attempts reset, a missing row is inserted again; webhook-id and body stay
 * the same.
 */
#ifndef WH_FANOUT_H
#define WH_FANOUT_H

#include "core/metrics.h"
#include "kafka/eo_consumer.h"
#include "payload.h"

#define WH_NOTIFY_CHANNEL "blazz_webhook"

typedef struct wh_fanout {
    /* Full topic names, to tell the source of a record. */
    const char *chat_topic;
    const char *session_topic;
    const char *campaign_topic;
    int max_retries;               /* stored on new rows: schedule length - 1 */
    bz_histogram *produced_to_enqueued; /* optional */
    bz_counter *enqueued;               /* optional: rows inserted */
} wh_fanout;

extern const bz_eo_handler wh_fanout_handler;

#endif
