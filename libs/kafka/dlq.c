/*
 * dlq.c - building and producing dead letters (see dlq.h).
 */
#include "kafka/dlq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/dead_letter.pb-c.h"

#define DLQ_MAX_HEADERS 16

/* Copy the original record's headers into DeadLetter.original_headers.
 * The Header structs point into orig, which outlives the encoding. */
static size_t collect_original_headers(const rd_kafka_message_t *orig, Blazz__V1__Header *store,
                                       Blazz__V1__Header **ptrs, size_t cap)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(orig, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
        return 0;
    size_t n = 0;
    const char *name;
    const void *value;
    size_t size;
    for (size_t idx = 0; n < cap && rd_kafka_header_get_all(hdrs, idx, &name, &value, &size) ==
                                        RD_KAFKA_RESP_ERR_NO_ERROR;
         idx++) {
        blazz__v1__header__init(&store[n]);
        store[n].key = (char *)name;
        store[n].value.data = (uint8_t *)value;
        store[n].value.len = value ? size : 0;
        ptrs[n] = &store[n];
        n++;
    }
    return n;
}

bz_status bz_dlq_encode(const rd_kafka_message_t *orig, const bz_dead_letter_info *info,
                        uint8_t **out, size_t *out_len, bz_error *err)
{
    Blazz__V1__DeadLetter dl = BLAZZ__V1__DEAD_LETTER__INIT;
    Blazz__V1__Header header_store[DLQ_MAX_HEADERS];
    Blazz__V1__Header *header_ptrs[DLQ_MAX_HEADERS];

    dl.original_topic = (char *)rd_kafka_topic_name(orig->rkt);
    dl.original_partition = orig->partition;
    dl.original_offset = orig->offset;
    dl.original_key.data = orig->key;
    dl.original_key.len = orig->key ? orig->key_len : 0;
    dl.original_value.data = orig->payload;
    dl.original_value.len = orig->payload ? orig->len : 0;
    dl.n_original_headers = collect_original_headers(orig, header_store, header_ptrs,
                                                     DLQ_MAX_HEADERS);
    dl.original_headers = header_ptrs;
    dl.error_code = (char *)(info->error_code ? info->error_code : "unknown");
    dl.error_message = (char *)(info->error_message ? info->error_message : "");
    dl.service = (char *)(info->service ? info->service : "");
    dl.event_id = (char *)(info->event_id ? info->event_id : "");
    dl.attempts = info->attempts;
    dl.first_failed_at_ms = info->first_failed_at_ms;
    dl.last_failed_at_ms = info->last_failed_at_ms;

    size_t len = blazz__v1__dead_letter__get_packed_size(&dl);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return bz_fail(err, BZ_ERR_NOMEM, "encode dead letter for %s[%" PRId32 "]@%" PRId64,
                       dl.original_topic, orig->partition, orig->offset);
    blazz__v1__dead_letter__pack(&dl, buf);
    *out = buf;
    *out_len = len;
    return BZ_OK;
}

static bz_status produce_dead_letter(bz_producer *p, const char *dlq_topic,
                                     const rd_kafka_message_t *orig,
                                     const bz_dead_letter_info *info, bz_delivery *delivery,
                                     int wait_ms, bz_error *err)
{
    uint8_t *value = NULL;
    size_t value_len = 0;
    bz_status st = bz_dlq_encode(orig, info, &value, &value_len, err);
    if (st != BZ_OK)
        return st;

    char partition[16], offset[24];
    snprintf(partition, sizeof partition, "%" PRId32, orig->partition);
    snprintf(offset, sizeof offset, "%" PRId64, orig->offset);
    const char *topic = rd_kafka_topic_name(orig->rkt);
    const char *message = info->error_message ? info->error_message : "";
    const char *code = info->error_code ? info->error_code : "unknown";
    const char *service = info->service ? info->service : "";
    bz_kafka_header headers[7] = {
        {"dlt-original-topic", topic, strlen(topic)},
        {"dlt-original-partition", partition, strlen(partition)},
        {"dlt-original-offset", offset, strlen(offset)},
        {"dlt-exception-message", message, strlen(message)},
        {"dlt-error-code", code, strlen(code)},
        {"dlt-service", service, strlen(service)},
    };
    size_t nheaders = 6;
    if (info->event_id && *info->event_id)
        headers[nheaders++] = (bz_kafka_header){"event_id", info->event_id, strlen(info->event_id)};

    if (wait_ms <= 0)
        st = bz_producer_send(p, dlq_topic, RD_KAFKA_PARTITION_UA, orig->key, orig->key_len, value,
                              value_len, headers, nheaders, delivery, err);
    else
        st = bz_producer_send_sync(p, dlq_topic, orig->key, orig->key_len, value, value_len,
                                   headers, nheaders, wait_ms, err);
    free(value);
    if (st != BZ_OK)
        return bz_wrap(err, "dead-letter %s[%" PRId32 "]@%" PRId64 " to %s", topic,
                       orig->partition, orig->offset, dlq_topic);
    return BZ_OK;
}

bz_status bz_dlq_send_sync(bz_producer *p, const char *dlq_topic, const rd_kafka_message_t *orig,
                           const bz_dead_letter_info *info, int timeout_ms, bz_error *err)
{
    return produce_dead_letter(p, dlq_topic, orig, info, NULL, timeout_ms, err);
}

bz_status bz_dlq_send(bz_producer *p, const char *dlq_topic, const rd_kafka_message_t *orig,
                      const bz_dead_letter_info *info, bz_delivery *delivery, bz_error *err)
{
    return produce_dead_letter(p, dlq_topic, orig, info, delivery, 0, err);
}
