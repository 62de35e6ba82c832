/*
 * limits.c - record sizes as librdkafka counts them (see limits.h).
 *
 * librdkafka 2.0.2 refuses a record in rd_kafka_msg_new when
 * RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD + key + value + serialized headers
 * exceeds message.max.bytes. The overhead is the record's worst-case varints
 * (length, timestamp delta, offset delta, key length, value length, header
 * count) plus its attributes byte; each header costs two length varints,
 * which librdkafka counts at their real size and this file at their worst
 * (5 bytes each). Counting the same or more means a record this file calls
 * fitting is one librdkafka accepts; at most 8 bytes per header are lost.
 */
#include "kafka/limits.h"

#include <string.h>

#define VARINT32_MAX 5
#define VARINT64_MAX 10
#define RECORD_OVERHEAD (VARINT32_MAX + 1 + VARINT64_MAX + 4 * VARINT32_MAX)
#define HEADER_OVERHEAD (2 * VARINT32_MAX)

size_t bz_kafka_record_size(size_t key_len, size_t value_len, const bz_kafka_header *headers,
                            size_t nheaders)
{
    size_t size = RECORD_OVERHEAD + key_len + value_len;
    for (size_t i = 0; i < nheaders; i++)
        size += HEADER_OVERHEAD + strlen(headers[i].name) + headers[i].len;
    return size;
}

int bz_kafka_record_fits(size_t key_len, size_t value_len, const bz_kafka_header *headers,
                         size_t nheaders)
{
    return bz_kafka_record_size(key_len, value_len, headers, nheaders) <=
           BZ_KAFKA_RECORD_MAX_BYTES;
}
