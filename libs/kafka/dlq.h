/*
 * dlq.h - dead-letter records (ARCHITECTURE.md §2, §3.4).
 *
 * A dead letter keeps the original record byte-exact (topic, partition,
 * offset, key, value, headers) plus why and by whom it was given up on, as a
 * blazz.v1.DeadLetter value. The Kafka headers repeat the facts under the
 * established names (dlt-original-topic, dlt-original-partition,
 * dlt-original-offset, dlt-exception-message, dlt-error-code, dlt-service,
 * plus event_id/trace_id when known) so tools can filter without decoding.
 * The DLQ record is keyed like the original.
 *
 * A dead letter always fits in BZ_KAFKA_RECORD_MAX_BYTES (limits.h), or it
 * could never be written and the record behind it would be retried for
 * ever. When wrapping the original whole would not fit, the original value
 * is cut to what fits and the dead letter records its full size and its
 * SHA-256 (original_value_size, original_value_sha256); such a dead letter
 * is kept for the record and is not replayable. Should the original's
 * headers or key alone leave no room (a foreign writer's record), the
 * headers are dropped and then the key is cut as well, and the error
 * message says so.
 */
#ifndef BZ_KAFKA_DLQ_H
#define BZ_KAFKA_DLQ_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "core/status.h"
#include "kafka/producer.h"

/* Original headers kept in a dead letter; more are dropped. */
#define BZ_DLQ_ORIGINAL_HEADERS_MAX 16

typedef struct bz_dead_letter_info {
    const char *error_code;    /* stable reason, e.g. "decode_error" */
    const char *error_message; /* human detail */
    const char *service;
    const char *event_id;      /* may be NULL when the record was undecodable */
    int attempts;
    int64_t first_failed_at_ms;
    int64_t last_failed_at_ms;
} bz_dead_letter_info;

/* The record a dead letter is about. Pointers are borrowed. */
typedef struct bz_dlq_original {
    const char *topic;    /* full name, prefix included */
    int32_t partition;    /* -1 when it never was on Kafka (an outbox row) */
    int64_t offset;       /* -1 likewise */
    const void *key;      /* may be NULL */
    size_t key_len;
    const void *value;
    size_t value_len;
    const bz_kafka_header *headers;
    size_t nheaders;
} bz_dlq_original;

/* A dead-letter record ready to produce: Kafka key, DeadLetter value and
 * headers, together within the record limit. The headers point into the
 * struct itself and into the original and info it was built from: use it
 * in place, while those live, and release it with bz_dlq_record_free. */
typedef struct bz_dlq_record {
    const void *key;
    size_t key_len;
    uint8_t *value; /* heap */
    size_t value_len;
    int value_cut;  /* 1 when the original value was truncated */
    bz_kafka_header headers[7];
    size_t nheaders;
    char partition_text[16];
    char offset_text[24];
    char message[BZ_ERROR_MSG_MAX + 256];
} bz_dlq_record;

/* Build the dead letter for orig (fitted as described above). */
bz_status bz_dlq_build(const bz_dlq_original *orig, const bz_dead_letter_info *info,
                       bz_dlq_record *out, bz_error *err);

void bz_dlq_record_free(bz_dlq_record *rec);

/* Produce the dead letter for orig to dlq_topic and wait until the broker
 * acknowledged it (at most timeout_ms). Only then may the caller advance the
 * input offset. BZ_ERR_TRANSIENT when the write was not acknowledged. */
bz_status bz_dlq_send_sync(bz_producer *p, const char *dlq_topic, const rd_kafka_message_t *orig,
                           const bz_dead_letter_info *info, int timeout_ms, bz_error *err);

/* Same, but only queues the record (for transactional producers, where the
 * transaction commit is the acknowledgement). delivery may be NULL. */
bz_status bz_dlq_send(bz_producer *p, const char *dlq_topic, const rd_kafka_message_t *orig,
                      const bz_dead_letter_info *info, bz_delivery *delivery, bz_error *err);

/* bz_dlq_send_sync for a record that is not a consumed Kafka message. */
bz_status bz_dlq_send_original_sync(bz_producer *p, const char *dlq_topic,
                                    const bz_dlq_original *orig, const bz_dead_letter_info *info,
                                    int timeout_ms, bz_error *err);

#endif
