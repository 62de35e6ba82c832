/*
 * outbox.h - PostgreSQL -> Kafka without loss (ARCHITECTURE.md §3.2).
 *
 * Writers call bz_outbox_add inside the transaction that produces the
 * effect, so the record to publish commits (or not) with it. The relay
 * publishes committed rows in id order with the idempotent producer and
 * deletes each row only after its delivery report said "persisted". A crash
 * can therefore only repeat a publish, always with the same event_id.
 *
 * One relay is active per database: it holds a session advisory lock, and
 * other instances stand by until that lock is free, so rows of one key are
 * never published out of order by two relays racing. The relay wakes on
 * NOTIFY blazz_outbox (sent by a trigger at commit) and also polls, so a lost
 * notification only costs latency.
 *
 * A row that can never be published (over the record limit, kafka/limits.h;
 * a topic outside the catalogue and the gateways' own; any record the client or broker refuses
 * for good) must not hold up the rows behind it: the relay dead-letters it
 * to outbox.dlq (a DeadLetter with the row's topic, key, headers and value,
 * cut to fit with its size and SHA-256, partition and offset -1, the reason
 * and the row id), logs an error, counts it in
 * blazz_outbox_dead_lettered_total{reason} and deletes it once the dead
 * letter is acknowledged. Writers cap what they write (campaign templates,
 * inbound sizes), so this is a safety net; transient errors (broker or
 * topic away) are retried as ever.
 */
#ifndef BZ_KAFKA_OUTBOX_H
#define BZ_KAFKA_OUTBOX_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/status.h"
#include "kafka/producer.h"

/* A header to publish with the record (text values). */
typedef struct bz_outbox_header {
    const char *name;
    const char *value;
} bz_outbox_header;

/* Insert one outbox row in conn's open transaction. topic is the base name
 * (the relay applies the deployment prefix); event_id a UUID string. The
 * event_id (and trace_id, when given as a header) also travel as Kafka
 * headers; a header's name and value are each kept to 1 KiB of JSON (whole
 * characters, bytes that are not UTF-8 shown as '?'). */
bz_status bz_outbox_add(PGconn *conn, const char *topic, const char *event_id, const void *key,
                        size_t key_len, const void *payload, size_t payload_len,
                        const bz_outbox_header *headers, size_t nheaders, bz_error *err);

/* Many rows in one statement: add rows to a batch, then write them all with
 * one INSERT (in the order added) inside the caller's transaction. For
 * services that emit an event per applied record. */
typedef struct bz_outbox_batch bz_outbox_batch;

/* Returns an empty batch the caller frees with bz_outbox_batch_free. */
bz_status bz_outbox_batch_new(bz_outbox_batch **out, bz_error *err);

/* Queue one row (copied into the statement's array parameters, with no
 * allocation per row). key may be NULL; trace_id NULL or empty: no
 * trace_id header. */
bz_status bz_outbox_batch_add(bz_outbox_batch *batch, const char *topic, const char *event_id,
                              const void *key, size_t key_len, const void *payload,
                              size_t payload_len, const char *trace_id, bz_error *err);

/* Insert every queued row in conn's open transaction, then empty the batch
 * (also on failure: the transaction is doomed then anyway). */
bz_status bz_outbox_batch_write(PGconn *conn, bz_outbox_batch *batch, bz_error *err);

void bz_outbox_batch_free(bz_outbox_batch *batch);

typedef struct bz_outbox_relay_config {
    bz_kafka_settings kafka;
    const char *pg_dsn;
    const char *topic_prefix; /* "" or NULL for none */
    int batch_max;            /* rows per round (default 1000) */
    int idle_poll_ms;         /* poll interval without notifications (default 500) */
    bz_metrics *metrics;      /* optional: register blazz_outbox_* metrics here */
} bz_outbox_relay_config;

typedef struct bz_outbox_relay bz_outbox_relay;

/* Start the relay on its own thread. The config's strings must outlive it. */
bz_status bz_outbox_relay_start(const bz_outbox_relay_config *cfg, bz_outbox_relay **out,
                                bz_error *err);

/* The relay's keys as every service with an outbox offers them, for its
 * key table: outbox.relay_enabled, outbox.batch_max, outbox.idle_poll_ms. */
#define BZ_OUTBOX_RELAY_CONFIG_KEYS                                                               \
    {.name = "outbox.relay_enabled", .type = BZ_CFG_BOOL, .def = "true",                          \
     .help = "run the outbox relay thread in this process"},                                      \
    {.name = "outbox.batch_max", .type = BZ_CFG_INT, .def = "1000", .min = 1, .max = 100000,      \
     .help = "outbox rows published per relay round"},                                            \
    {.name = "outbox.idle_poll_ms", .type = BZ_CFG_INT, .def = "500", .min = 10, .max = 60000,    \
     .help = "relay poll interval when no notification arrives"}

/* Start the relay as a service's config says (the keys above plus the
 * common kafka.brokers, kafka.topic_prefix and pg.dsn); client_id names its
 * producer. *out stays NULL when outbox.relay_enabled is false: another
 * process relays. cfg must outlive the relay. */
bz_status bz_outbox_relay_start_configured(const bz_config *cfg, const char *client_id,
                                           bz_metrics *metrics, bz_outbox_relay **out,
                                           bz_error *err);

/* Stop the thread after its current round, flush, and free everything. */
void bz_outbox_relay_stop(bz_outbox_relay *relay);

#endif
