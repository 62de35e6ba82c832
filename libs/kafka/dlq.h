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
 */
#ifndef BZ_KAFKA_DLQ_H
#define BZ_KAFKA_DLQ_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "core/status.h"
#include "kafka/producer.h"

typedef struct bz_dead_letter_info {
    const char *error_code;    /* stable reason, e.g. "decode_error" */
    const char *error_message; /* human detail */
    const char *service;
    const char *event_id;      /* may be NULL when the record was undecodable */
    int attempts;
    int64_t first_failed_at_ms;
    int64_t last_failed_at_ms;
} bz_dead_letter_info;

/* Encode the DeadLetter value for orig. Returns a heap buffer the caller
 * frees in *out (length *out_len). */
bz_status bz_dlq_encode(const rd_kafka_message_t *orig, const bz_dead_letter_info *info,
                        uint8_t **out, size_t *out_len, bz_error *err);

/* Produce the dead letter for orig to dlq_topic and wait until the broker
 * acknowledged it (at most timeout_ms). Only then may the caller advance the
 * input offset. BZ_ERR_TRANSIENT when the write was not acknowledged. */
bz_status bz_dlq_send_sync(bz_producer *p, const char *dlq_topic, const rd_kafka_message_t *orig,
                           const bz_dead_letter_info *info, int timeout_ms, bz_error *err);

/* Same, but only queues the record (for transactional producers, where the
 * transaction commit is the acknowledgement). delivery may be NULL. */
bz_status bz_dlq_send(bz_producer *p, const char *dlq_topic, const rd_kafka_message_t *orig,
                      const bz_dead_letter_info *info, bz_delivery *delivery, bz_error *err);

#endif
