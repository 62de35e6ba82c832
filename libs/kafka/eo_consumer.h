/*
 * eo_consumer.h - the exactly-once Kafka -> PostgreSQL consumer
 * (ARCHITECTURE.md §3.1, §3.4, §3.5).
 *
 * A service supplies a handler that decodes records and applies a batch of
 * them inside a PostgreSQL transaction. The consumer stores the partitions'
 * next offsets in kafka_offsets in that same transaction (compare-and-set
 * against the value it last saw), so a batch's effects and its offsets are
 * committed together or not at all. On assignment it seeks to the offsets in
 * the table; Kafka-side commits are made only for lag monitoring.
 *
 * Failures:
 *  - decode says INVALID, or apply says INVALID for one record (isolated by
 *    re-applying the batch one record at a time under savepoints): the record
 *    is dead-lettered, and the offset moves past it only in the transaction
 *    that commits after the DLQ write was acknowledged;
 *  - TRANSIENT (database or broker down, serialization failure): the batch
 *    is kept, consumption is paused and retried with exponential backoff,
 *    while polling continues so the group membership stays alive;
 *  - a lost compare-and-set (another instance owns the partition now) or a
 *    COMMIT whose outcome is unknown: the batch is dropped, nothing more is
 *    accepted (prefetched records included) until the consumer has re-read
 *    the offsets from the table and seeked there. A stored offset only ever
 *    moves forward.
 *  - a rejection by apply (INVALID) counts only if its transaction commits:
 *    when the batch is retried after a transient failure, every record is
 *    applied afresh.
 *
 * Records of one partition are always applied in offset order.
 */
#ifndef BZ_KAFKA_EO_CONSUMER_H
#define BZ_KAFKA_EO_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "core/admin_http.h"
#include "core/metrics.h"
#include "core/status.h"
#include "kafka/producer.h"
#include "pg/pg.h"

typedef struct bz_eo_record {
    rd_kafka_message_t *msg; /* owned by the consumer; valid during apply */
    void *decoded;           /* what decode produced */
} bz_eo_record;

typedef struct bz_eo_handler {
    /* Called once with the consumer's connection, to register prepared
     * statements (bz_pg_prepare re-prepares them after reconnects). May be
     * NULL. */
    bz_status (*init)(void *ctx, bz_pg *pg, bz_error *err);
    /* Decode and validate one record without touching the database.
     * BZ_OK with *decoded set (may stay NULL), or BZ_ERR_INVALID via
     * bz_reject (reason = the dead letter's error_code). */
    bz_status (*decode)(void *ctx, const rd_kafka_message_t *msg, void **decoded, bz_error *err);
    /* Apply records[0..n) inside the open transaction on conn. Must work for
     * any subset of a batch in order. BZ_OK, BZ_ERR_TRANSIENT (whole batch
     * retried later) or BZ_ERR_INVALID (the bad record is isolated and
     * dead-lettered). */
    bz_status (*apply)(void *ctx, PGconn *conn, bz_eo_record *records, size_t n, bz_error *err);
    /* Free what decode produced. May be NULL. */
    void (*release)(void *ctx, void *decoded);
    /* Called each time a transaction apply ran in ends: committed 1 after
     * its COMMIT succeeded (what apply wrote is durable and visible), 0
     * after it was rolled back or its outcome is unknown (what apply wrote
     * is gone, or will be re-read). For work that must follow the commit,
     * such as handing the rows just written to another thread. May be
     * NULL. */
    void (*finished)(void *ctx, int committed);
} bz_eo_handler;

typedef struct bz_eo_consumer_config {
    bz_kafka_settings kafka;   /* extra may override consumer defaults; the DLQ
                                  producer takes only brokers and client_id */
    const char *group_id;
    /* The group_id under which kafka_offsets keeps this consumer's offsets;
     * NULL: group_id. It exists for moving a service to a new Kafka group
     * name without re-reading from the start, and for tests that make two
     * Kafka groups own one partition at once (both read and compare-and-set
     * the same stored offsets). */
    const char *offsets_group_id;
    const char *const *topics; /* full topic names */
    size_t ntopics;
    const char *dlq_topic;     /* full name of the dead-letter topic */
    const char *service;       /* recorded in dead letters */
    const char *pg_dsn;
    int batch_max;             /* records per transaction (default 1000) */
    int batch_linger_ms;       /* how long a partial batch may wait (default 10) */
    /* >0: the broker holds a fetch this long to gather records rather than
     * answering it at the first one (librdkafka's default, 0 here): under a
     * trickle of records produced one by one (ingest's HTTP path) a fetch
     * every fetch_wait_ms instead of one per record or two, for up to that
     * much latency; an idle consumer then fetches every fetch_wait_ms
     * instead of every 500 ms. */
    int fetch_wait_ms;
    /* 1: run each batch transaction with SET LOCAL synchronous_commit = off
     * (default 0). Safe for exactly-once delivery because the offsets commit
     * with the effects: a database crash can only lose the last commits as a
     * whole, and the compare-and-set on kafka_offsets then fails, so the
     * consumer re-reads the offsets and re-consumes those records. What such
     * a lost commit had already made visible (outbox rows the relay
     * published) is repeated with the same event ids. */
    int async_commit;
    const bz_eo_handler *handler;
    void *handler_ctx;
    /* Optional: register blazz_consumer_* metrics (labelled group=...) here. */
    bz_metrics *metrics;
} bz_eo_consumer_config;

typedef struct bz_eo_stats {
    uint64_t consumed;
    uint64_t applied;
    uint64_t dead_lettered;
    uint64_t batches;
    uint64_t transient_retries;
    uint64_t offset_conflicts;
    int assigned_partitions;
    int db_up;
} bz_eo_stats;

typedef struct bz_eo_consumer bz_eo_consumer;

/* Create the consumer (subscribes, connects to PostgreSQL). The config's
 * strings and handler must outlive the consumer. Free with bz_eo_consumer_free. */
bz_status bz_eo_consumer_new(const bz_eo_consumer_config *cfg, bz_eo_consumer **out,
                             bz_error *err);

/* Consume until bz_eo_consumer_request_stop or a shutdown signal
 * (core/signals.h), then apply what is in flight, close the group
 * membership within a bounded time and return BZ_OK. Returns an error only
 * for unrecoverable failures. */
bz_status bz_eo_consumer_run(bz_eo_consumer *c, bz_error *err);

/* Ask run() to finish. Async-signal-safe. */
void bz_eo_consumer_request_stop(bz_eo_consumer *c);

/* A snapshot of the counters (thread-safe). */
void bz_eo_consumer_stats(const bz_eo_consumer *c, bz_eo_stats *out);

/* Add the consumer's part of a service's /readyz: "postgresql" (up, or no
 * batch yet to tell) and "partitions" (at least one assigned). */
void bz_eo_consumer_report_readiness(const bz_eo_consumer *c, bz_readiness *r);

/* Consumer-group liveness: session.timeout.ms, with heartbeats every
 * heartbeat_ms (0: a third of the session timeout), as the NULL-terminated
 * key/value list bz_kafka_settings.extra takes (it points into the
 * struct). */
typedef struct bz_eo_group_timing {
    char session_ms[24], heartbeat_ms[24];
    const char *extra[5];
} bz_eo_group_timing;

void bz_eo_group_timing_init(bz_eo_group_timing *t, int64_t session_timeout_ms,
                             int64_t heartbeat_ms);

void bz_eo_consumer_free(bz_eo_consumer *c);

#endif
