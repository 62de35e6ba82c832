/*
 * fanout.h - the exactly-once consumer handler: events in, deliveries out.
 *
 * For every consumed event the handler inserts one webhook_retry_queue row
 * (status pending, due now, body rendered once) per enabled, non-deleted
 * endpoint of the event's workspace whose event-type filter matches, in the
 * consumer's transaction, so the rows and the consumed offsets commit
 * together. UNIQUE (event_id, endpoint_id) makes a repeated event harmless.
 * The rows are inserted leased to this process's delivery worker, as a
 * claim would lease them, and once the transaction has committed they go
 * to it in memory (wh_worker_hand_over), which starts their first attempts
 * with no claim (ARCHITECTURE.md §3.7). The transaction also NOTIFYs
 * blazz_webhook: with the worker's instance id, which the other instances'
 * workers need not claim for, or empty after a replay, whose rows are due
 * now for any worker.
 *
 * A replayed webhook.dlq record (header webhook-endpoint-id, payload.h)
 * re-queues that one delivery: a failed row goes back to pending with its
 * attempts reset, a missing row is inserted again; webhook-id and body stay
 * the same.
 */
#ifndef WH_FANOUT_H
#define WH_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"
#include "kafka/eo_consumer.h"
#include "payload.h"
#include "worker.h"

/* One statement's rows leased to the worker, and when (monotonic ms,
 * taken before the statement) their lease began at the latest. */
typedef struct wh_leased_rows {
    PGresult *rows;
    int64_t leased_at_ms;
} wh_leased_rows;

typedef struct wh_fanout {
    /* Full topic names, to tell the source of a record. */
    const char *chat_topic;
    const char *session_topic;
    const char *campaign_topic;
    int max_retries;               /* stored on new rows: schedule length - 1 */
    bz_histogram *produced_to_enqueued; /* optional */
    bz_counter *enqueued;               /* optional: rows inserted */
    wh_worker *worker;     /* the rows are leased to it; NULL: due now, for the claims */
    const char *instance_id; /* the worker's: the payload of the fan-out's NOTIFY */
    int64_t lease_ms;      /* the claims' lease (webhook.claim_lease_ms) */
    wh_leased_rows *leased; /* the open transaction's rows leased to the worker, owned */
    size_t nleased, capleased;
} wh_fanout;

extern const bz_eo_handler wh_fanout_handler;

/* Free what f holds between transactions. */
void wh_fanout_clear(wh_fanout *f);

#endif
