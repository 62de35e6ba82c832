/*
 * producer.h - the idempotent Kafka producer every service uses.
 *
 * Each produced record may carry a bz_delivery: a small completion object
 * owned by the caller whose on_done callback runs (from bz_producer_poll or
 * flush, on the caller's thread) with the record's final outcome. Callers
 * mark source work done only there, never after rd_kafka_produce returns.
 *
 * enable.idempotence=true (hence acks=all) and message.max.bytes =
 * BZ_KAFKA_RECORD_MAX_BYTES (limits.h) are always set. A fatal producer
 * error (reported through error_cb) makes the wrapper purge, destroy and
 * recreate the librdkafka handle on the next poll; purged records complete
 * with an error, so their owners retry them.
 */
#ifndef BZ_KAFKA_PRODUCER_H
#define BZ_KAFKA_PRODUCER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "kafka/security.h"

typedef struct bz_delivery bz_delivery;
struct bz_delivery {
    /* Called once per record: err is RD_KAFKA_RESP_ERR_NO_ERROR on success. */
    void (*on_done)(bz_delivery *d, rd_kafka_resp_err_t err, int32_t partition, int64_t offset);
};

/* One bz_delivery for many records, for an owner that wants only the
 * counts: how many records the broker acknowledged, how many failed. */
typedef struct bz_delivery_tally {
    bz_delivery base; /* what goes with each record */
    uint64_t delivered, failed;
} bz_delivery_tally;

/* Count from zero. */
void bz_delivery_tally_init(bz_delivery_tally *t);

typedef struct bz_kafka_header {
    const char *name;
    const void *value;
    size_t len;
} bz_kafka_header;

typedef struct bz_producer bz_producer;

/* Settings shared by producers and consumers. extra is a NULL-terminated list
 * of librdkafka property name/value pairs applied last (may be NULL).
 * security names the principal the client authenticates as; NULL (the usual
 * case) means the process identity (security.h). It must outlive the
 * client. */
typedef struct bz_kafka_settings {
    const char *brokers;
    const char *client_id;
    const char *const *extra;
    const bz_kafka_security *security;
} bz_kafka_settings;

/* Build a librdkafka configuration: brokers, client id and the principal's
 * credentials (settings->security, else the process identity) from
 * settings, then the component's own defaults (NULL-terminated name/value
 * pairs, may be NULL), then settings->extra, so operators can override any
 * default. Logs are routed to the JSON logger. Returns a conf the caller
 * owns (pass it to rd_kafka_new or rd_kafka_conf_destroy it); fails with
 * BZ_ERR_CONFIG when no identity can be found (security.h). */
bz_status bz_kafka_conf_new(const bz_kafka_settings *settings, const char *const *defaults,
                            rd_kafka_conf_t **out, bz_error *err);

/* Set one property on conf, failing with the property named. */
bz_status bz_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                            bz_error *err);

/* librdkafka's topic scan period. */
/* A producer handle for an owner with its own delivery report and error
 * callbacks (bz_producer, ingest's HTTP producer): the configuration of
 * bz_kafka_conf_new with the owner's defaults, opaque passed to both
 * callbacks. *out is the caller's (bz_kafka_producer_handle_free). */
bz_status bz_kafka_producer_handle_new(const bz_kafka_settings *settings,
                                       const char *const *defaults, void *opaque,
                                       void (*on_delivery)(rd_kafka_t *, const rd_kafka_message_t *,
                                                           void *),
                                       void (*on_error)(rd_kafka_t *, int, const char *, void *),
                                       rd_kafka_t **out, bz_error *err);

/* Fail every record rk still holds back to its owner through the delivery
 * callback, then destroy rk. */
void bz_kafka_producer_handle_free(rd_kafka_t *rk);

#define BZ_KAFKA_TOPIC_SCAN_MS 1000

/* Ask the broker for one topic's metadata now, waiting at most timeout_ms.
 * librdkafka 2.0.2 learns a topic first named by a produce call only at its
 * next one-second topic scan and holds that record (and every later one to
 * the topic) until then: up to a second's delay for the first requests after
 * a start. Waiting longer than BZ_KAFKA_TOPIC_SCAN_MS gains nothing: the
 * scan would have learned the topic by then. */
bz_status bz_kafka_learn_topic(rd_kafka_t *rk, const char *topic, int timeout_ms, bz_error *err);

bz_status bz_producer_new(const bz_kafka_settings *settings, bz_producer **out, bz_error *err);

/* Flush for at most timeout_ms, then destroy. Records still undelivered are
 * logged (and their owners told through on_done with an error). */
void bz_producer_free(bz_producer *p, int timeout_ms);

/* Queue one record. key/value/headers are copied. delivery may be NULL for
 * fire-and-forget. While the local queue is full (the broker is away, or
 * slower than the caller) it waits, polling, until there is room; it gives
 * up with BZ_ERR_TRANSIENT ("local queue full") once a shutdown is
 * requested (core/signals.h) or after the bound set with
 * bz_producer_set_queue_wait, so the caller keeps its record for later. A
 * record that can never be written (bz_kafka_error_is_permanent: too large,
 * say) fails with BZ_ERR_INVALID and err->reason set
 * (bz_kafka_refusal_reason); anything else that stops it is
 * BZ_ERR_TRANSIENT, with err->reason "unknown_topic" when the cluster has
 * no such topic (it may yet be created: the caller decides). The first
 * record to each topic first waits for the topic's metadata (one round
 * trip, at most BZ_KAFKA_TOPIC_SCAN_MS), so that it is not held until
 * librdkafka's next topic scan. */
bz_status bz_producer_send(bz_producer *p, const char *topic, int32_t partition,
                           const void *key, size_t key_len, const void *value, size_t value_len,
                           const bz_kafka_header *headers, size_t nheaders,
                           bz_delivery *delivery, bz_error *err);

/* The longest one bz_producer_send waits for room in a full local queue,
 * in milliseconds; -1 (the default) waits until shutdown is requested. */
void bz_producer_set_queue_wait(bz_producer *p, int max_ms);

/* Serve delivery reports and errors for up to timeout_ms. */
void bz_producer_poll(bz_producer *p, int timeout_ms);

/* Wait until everything queued so far is delivered or failed, at most
 * timeout_ms. BZ_ERR_TRANSIENT if records remain. */
bz_status bz_producer_flush(bz_producer *p, int timeout_ms, bz_error *err);

/* Send one record and wait for its delivery report (at most timeout_ms). On
 * timeout every record queued on this producer is failed back to its owner
 * (the waiting record must not outlive this call), so use it on producers
 * whose records are all retried by their owners, like the DLQ producer. */
bz_status bz_producer_send_sync(bz_producer *p, const char *topic, const void *key,
                                size_t key_len, const void *value, size_t value_len,
                                const bz_kafka_header *headers, size_t nheaders, int timeout_ms,
                                bz_error *err);

/* What a delivery report says of its record: librdkafka's error, or
 * RD_KAFKA_RESP_ERR__INCONSISTENT for a "success" that carries no offset.
 * The idempotent producer reports success without an offset for records
 * it never saw acknowledged (librdkafka's implicit ack: a request timed
 * out, a later one to the same partition succeeded, so librdkafka assumes
 * the broker kept the first too). The broker breaks that assumption for a
 * producer id it has no state for on the partition (a producer's first
 * records there): it takes the later batch as the first, and the timed-out
 * records are lost while reported delivered. Only a broker's offset proves
 * a record stored; the rest are failures the owner retries (a duplicate at
 * worst, which event ids absorb). Logs the unproven ones. */
rd_kafka_resp_err_t bz_kafka_delivery_error(const rd_kafka_message_t *msg);

/* 1 when a produce error (from a produce call or a delivery report) means
 * the record itself can never be written: over the size limit, an invalid
 * topic name, a record the broker calls invalid. Its owner must dead-letter
 * it. Every other error (broker or topic away, timeouts, purges, fatal
 * producer states) is transient: retry. */
int bz_kafka_error_is_permanent(rd_kafka_resp_err_t e);

/* A stable reason for a permanent error, for dead letters and metrics:
 * "message_too_large", "invalid_topic" or "produce_refused". */
const char *bz_kafka_refusal_reason(rd_kafka_resp_err_t e);

/* The librdkafka handle, for metadata queries. Valid until the next poll. */
rd_kafka_t *bz_producer_handle(bz_producer *p);

/* Records delivered / failed since creation (for metrics and tests). */
uint64_t bz_producer_delivered(const bz_producer *p);
uint64_t bz_producer_failed(const bz_producer *p);

#endif
