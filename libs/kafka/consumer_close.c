/*
 * consumer_close.c - a consumer leaving its group within a bounded time
 * (see consumer_close.h).
 */
#include "kafka/consumer_close.h"

#include "core/clock.h"
#include "core/log.h"

int bz_consumer_leave_group(rd_kafka_t *rk, int timeout_ms, bz_rebalance_fn on_rebalance,
                            void *opaque)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(rk, q);
    if (e) {
        bz_warn("close consumer: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rd_kafka_queue_destroy(q);
        return 0;
    }
    int64_t deadline = bz_monotonic_ms() + timeout_ms;
    while (!rd_kafka_consumer_closed(rk) && bz_monotonic_ms() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (ev && on_rebalance && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            on_rebalance(rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev),
                         opaque);
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    int left = rd_kafka_consumer_closed(rk);
    if (!left)
        bz_warn("close consumer: the group was not left within %d ms; destroyed without it",
                timeout_ms);
    rd_kafka_queue_destroy(q);
    return left;
}

void bz_consumer_destroy(rd_kafka_t *rk, int left)
{
    if (rk)
        rd_kafka_destroy_flags(rk, left ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}
