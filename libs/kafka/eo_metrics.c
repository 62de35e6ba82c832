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
    if (!c->cfg.metrics)
        return BZ_OK;
    const char *const group[] = {"group", c->cfg.group_id, NULL};
    const bz_metric_decl decls[] = {
        {.def = {.name = "blazz_consumer_consumed_total",
                 .help = "Records taken from Kafka",
                 .const_labels = group},
         .counter = &c->m.consumed},
        {.def = {.name = "blazz_consumer_applied_total",
                 .help = "Records applied to PostgreSQL exactly once",
                 .const_labels = group},
         .counter = &c->m.applied},
        {.def = {.name = "blazz_consumer_retries_total",
                 .help = "Batches retried after a transient failure",
                 .const_labels = group},
         .counter = &c->m.retries},
        {.def = {.name = "blazz_consumer_offset_conflicts_total",
                 .help = "Batches dropped because another consumer moved the stored offset",
                 .const_labels = group},
         .counter = &c->m.conflicts},
        {.def = {.name = "blazz_consumer_dead_lettered_total",
                 .help = "Records sent to the dead-letter topic, by reason",
                 .const_labels = group,
                 .label_names = (const char *const[]){"reason", NULL}},
         .counters = &c->m.dead_lettered},
        {.def = {.name = "blazz_consumer_batch_seconds",
                 .help = "Time to apply and commit one batch",
                 .const_labels = group},
         .histogram = &c->m.batch_seconds},
        {.def = {.name = "blazz_consumer_record_age_seconds",
                 .help = "Record timestamp to its effects committed",
                 .const_labels = group},
         .histogram = &c->m.record_age_seconds},
        {.def = {.name = "blazz_consumer_assigned_partitions",
                 .help = "Partitions this instance owns",
                 .const_labels = group},
         .gauge = &c->m.assigned},
        {.def = {.name = "blazz_consumer_lag",
                 .help = "Records behind the high watermark, summed over owned partitions",
                 .const_labels = group},
         .gauge = &c->m.lag},
        {.def = {.name = "blazz_consumer_database_up",
                 .help = "1 when the last PostgreSQL operation succeeded",
                 .const_labels = group},
         .gauge = &c->m.db_up},
    };
    return BZ_METRICS_DECLARE(c->cfg.metrics, decls, err);
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
