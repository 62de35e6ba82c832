/*
 * eo_metrics.c - the exactly-once consumer's Prometheus view,
 * blazz_consumer_*{group} (ARCHITECTURE.md §3.1).
 *
 * The metrics are registered once, at creation, when the config names a
 * registry; without one every metric pointer stays NULL and the
 * NULL-tolerant helpers here make each update a no-op, so the other files
 * never ask whether metrics are on. The lag is taken from the watermarks
 * librdkafka already has, against the offsets stored in PostgreSQL, at
 * most once a second.
 */
#include <stdint.h>

#include "kafka/eo_consumer_state.h"

bz_status bz_eo_register_metrics(bz_eo_consumer *c, bz_error *err)
{
    bz_metrics *reg = c->cfg.metrics;
    if (!reg)
        return BZ_OK;
    const char *const group[] = {"group", c->cfg.group_id, NULL};
    const char *const reason[] = {"reason", NULL};
#define DEF(n, h) (&(bz_metric_def){.name = (n), .help = (h), .const_labels = group})
    bz_status st = bz_metrics_counter(reg, DEF("blazz_consumer_consumed_total",
                                               "Records taken from Kafka"), &c->m.consumed, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg, DEF("blazz_consumer_applied_total",
                                         "Records applied to PostgreSQL exactly once"),
                                &c->m.applied, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg, DEF("blazz_consumer_retries_total",
                                         "Batches retried after a transient failure"),
                                &c->m.retries, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg, DEF("blazz_consumer_offset_conflicts_total",
                                         "Batches dropped because another consumer moved the "
                                         "stored offset"),
                                &c->m.conflicts, err);
    if (st == BZ_OK)
        st = bz_metrics_counter_family(
            reg,
            &(bz_metric_def){.name = "blazz_consumer_dead_lettered_total",
                             .help = "Records sent to the dead-letter topic, by reason",
                             .const_labels = group, .label_names = reason},
            &c->m.dead_lettered, err);
    if (st == BZ_OK)
        st = bz_metrics_histogram(reg, DEF("blazz_consumer_batch_seconds",
                                           "Time to apply and commit one batch"),
                                  &c->m.batch_seconds, err);
    if (st == BZ_OK)
        st = bz_metrics_histogram(reg, DEF("blazz_consumer_record_age_seconds",
                                           "Record timestamp to its effects committed"),
                                  &c->m.record_age_seconds, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg, DEF("blazz_consumer_assigned_partitions",
                                       "Partitions this instance owns"), &c->m.assigned, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg, DEF("blazz_consumer_lag",
                                       "Records behind the high watermark, summed over owned "
                                       "partitions"),
                              &c->m.lag, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg, DEF("blazz_consumer_database_up",
                                       "1 when the last PostgreSQL operation succeeded"),
                              &c->m.db_up, err);
#undef DEF
    return st;
}

/* Metrics are optional: updates go through these NULL-tolerant helpers. */
void bz_eo_add_to_counter(bz_counter *counter, uint64_t n)
{
    if (counter)
        bz_counter_add(counter, n);
}

void bz_eo_set_gauge(bz_gauge *g, double v)
{
    if (g)
        bz_gauge_set(g, v);
}

/* Lag from the watermarks librdkafka already has (no broker round trip). */
void bz_eo_sample_lag(bz_eo_consumer *c, int64_t now)
{
    if (!c->m.lag || now - c->lag_sampled_ms < 1000)
        return;
    c->lag_sampled_ms = now;
    int64_t lag = 0;
    for (size_t i = 0; i < c->nparts; i++) {
        int64_t low, high;
        if (rd_kafka_get_watermark_offsets(c->rk, c->parts[i].topic, c->parts[i].partition, &low,
                                           &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            high < 0)
            continue;
        int64_t next = c->parts[i].db_next >= 0 ? c->parts[i].db_next : low;
        if (high > next)
            lag += high - next;
    }
    bz_gauge_set(c->m.lag, (double)lag);
}
