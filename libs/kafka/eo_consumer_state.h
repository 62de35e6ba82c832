/*
 * eo_consumer_state.h - what the files of the exactly-once consumer share,
 * and nothing outside libs/kafka sees (services include eo_consumer.h).
 *
 * One bz_eo_consumer is worked on by one thread: the poll loop
 * (eo_consumer.c) and the rebalance callback that runs inside its poll
 * (eo_rebalance.c). It holds the owned partitions and the batch of records
 * taken for them (eo_batch.c), the offsets stored in PostgreSQL
 * (eo_offsets.c), the batch's transaction (eo_flush.c) and its metrics
 * (eo_metrics.c). Nothing is locked: only the atomics are read by other
 * threads (stats, readiness, the stop request).
 *
 * Per owned partition we remember `db_next`, the next_offset value stored in
 * kafka_offsets (-1: no row yet), and `accept_from`, the lowest offset we
 * still accept into the batch; messages below it are stale prefetches after
 * a seek and are discarded.
 *
 * After a lost compare-and-set (or a COMMIT of unknown outcome) our db_next
 * is stale, so nothing is accepted until the offsets were re-read and the
 * partitions seeked there (`need_reload`): a prefetched record taken in
 * between would join a batch whose offsets start from the old position and
 * commit past or behind the other owner's. The stored offset itself only
 * ever moves forward (the update requires it), a second line of defence.
 */
#ifndef BZ_KAFKA_EO_CONSUMER_STATE_H
#define BZ_KAFKA_EO_CONSUMER_STATE_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"
#include "core/signals.h"
#include "core/status.h"
#include "kafka/eo_consumer.h"
#include "kafka/producer.h"
#include "pg/pg.h"

typedef struct bz_eo_partition_state {
    char *topic;
    int32_t partition;
    int64_t db_next;     /* next_offset in kafka_offsets, -1 when no row */
    int64_t accept_from; /* lowest offset accepted into the batch, -1: any */
    int64_t batch_next;  /* next offset after the batch's last record, -1: none */
    int lag_dirty;       /* db_next moved since Kafka last heard of it */
} bz_eo_partition_state;

typedef struct bz_eo_batch_entry {
    bz_eo_record rec;
    int decoded;       /* decode ran */
    bz_status verdict; /* BZ_OK, or BZ_ERR_INVALID: to be dead-lettered */
    int by_apply;      /* the verdict came from apply, inside a transaction */
    const char *reason;
    char *why;         /* heap copy of the rejection message */
} bz_eo_batch_entry;

/* Prometheus view of the consumer; all NULL when no registry was given. */
typedef struct bz_eo_consumer_metrics {
    bz_counter *consumed, *applied, *retries, *conflicts;
    bz_counter_family *dead_lettered; /* by reason */
    bz_histogram *batch_seconds;      /* apply + offsets + commit */
    bz_histogram *record_age_seconds; /* record timestamp -> committed */
    bz_gauge *assigned, *lag, *db_up;
} bz_eo_consumer_metrics;

struct bz_eo_consumer {
    bz_eo_consumer_config cfg;
    bz_eo_consumer_metrics m;
    int64_t lag_sampled_ms;
    rd_kafka_t *rk;
    bz_producer *dlq;
    bz_pg *pg;

    bz_eo_partition_state *parts;
    size_t nparts, capparts;

    bz_eo_batch_entry *batch;
    size_t nbatch, capbatch;
    int64_t batch_started_ms;
    int64_t lag_committed_ms; /* when offsets were last committed to Kafka */

    int backoff_ms;
    int64_t retry_at_ms;
    int paused;
    int need_reload;
    int ever_assigned; /* an assignment callback has run (see close_group_membership
                          in eo_consumer.c) */
    int close_timed_out; /* it did not leave its group in time: destroyed without closing */
    int membership_closed; /* close_group_membership ran (its close left or timed out) */
    int64_t first_assignment_wait_ms;

    atomic_int stop;
    _Atomic uint64_t consumed, applied, dead_lettered, batches, retries, conflicts;
    atomic_int assigned, db_up;
};

/* 1 once bz_eo_consumer_request_stop or a shutdown signal asked the loop to end. */
static inline int bz_eo_should_stop(const bz_eo_consumer *c)
{
    return atomic_load(&c->stop) || bz_shutdown_requested();
}

/* ---- eo_metrics.c: blazz_consumer_*{group} ------------------------------ */

/* Register the consumer's metrics in cfg.metrics; BZ_OK without one. */
bz_status bz_eo_register_metrics(bz_eo_consumer *c, bz_error *err);

/* Add n to counter / set g to v; a NULL metric (no registry) is a no-op. */
void bz_eo_add_to_counter(bz_counter *counter, uint64_t n);
void bz_eo_set_gauge(bz_gauge *g, double v);

/* Update the lag gauge from librdkafka's watermarks, at most once a second. */
void bz_eo_sample_lag(bz_eo_consumer *c, int64_t now);

/* ---- eo_batch.c: owned partitions and the batch ------------------------- */

/* The state of topic[partition], added with no stored offset if it is not
 * owned yet; NULL when out of memory. */
bz_eo_partition_state *bz_eo_add_partition(bz_eo_consumer *c, const char *topic,
                                           int32_t partition);

/* Forget topic[partition] (no-op when not owned); its batch entries stay
 * until bz_eo_drop_unowned_entries. */
void bz_eo_remove_partition(bz_eo_consumer *c, const char *topic, int32_t partition);

/* Release every batch entry and start each partition's acceptance again
 * at its stored offset. */
void bz_eo_clear_batch(bz_eo_consumer *c);

/* Release the batch entries of partitions no longer owned. */
void bz_eo_drop_unowned_entries(bz_eo_consumer *c);

/* Take ownership of msg: append it to the batch, or destroy it when its
 * partition is not owned, a reload is pending or it is a stale prefetch. */
void bz_eo_accept_message(bz_eo_consumer *c, rd_kafka_message_t *msg);

/* ---- eo_offsets.c: kafka_offsets ---------------------------------------- */

/* Prepare the offset statements on c->pg, then run the handler's init. */
bz_status bz_eo_prepare_offset_statements(bz_eo_consumer *c, bz_error *err);

/* *next = the stored next offset of topic[partition], -1 when no row. */
bz_status bz_eo_load_offset(bz_eo_consumer *c, const char *topic, int32_t partition,
                            int64_t *next, bz_error *err);

/* In the open transaction, compare-and-set the stored offset of every
 * partition the batch read (batch_next >= 0) from db_next to batch_next,
 * forward only; BZ_ERR_CONFLICT when any did not move. */
bz_status bz_eo_store_offsets(bz_eo_consumer *c, bz_error *err);

/* Drop the batch, re-read every owned partition's stored offset and seek
 * there; clears need_reload on success. */
bz_status bz_eo_reload_offsets_and_seek(bz_eo_consumer *c, bz_error *err);

/* ---- eo_flush.c: the batch's transaction -------------------------------- */

/* Apply the batch: BZ_OK (applied, or dropped for a reload), or
 * BZ_ERR_TRANSIENT (kept; retry later). */
bz_status bz_eo_flush_batch(bz_eo_consumer *c, bz_error *err);

/* Tell Kafka the stored offsets that moved since it last heard, for lag
 * monitoring only (kafka_offsets is the truth): when force, or when
 * BZ_EO_LAG_COMMIT_MS passed since the last time. */
void bz_eo_commit_lag_offsets(bz_eo_consumer *c, int force);

/* ---- eo_rebalance.c: partitions assigned and revoked -------------------- */

/* librdkafka's rebalance callback (opaque = the consumer); also fed the
 * rebalance events of the closing consumer queue. */
void bz_eo_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *parts, void *opaque);

#endif
