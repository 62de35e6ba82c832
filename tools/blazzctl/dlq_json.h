/*
 * dlq_json.h - one record of a dead-letter topic as JSON, and as the text
 * `blazzctl dlq tail` prints (bz_ctl_set_dead_letter, in blazzctl.h, is the
 * part a decoded DeadLetter contributes).
 *
 * Text fields from whoever wrote the dead letter are shown as JSON strings
 * when they are UTF-8, else as base64 under name + "_base64"; the payload
 * as the message of its original topic when it decodes so (or as JSON when
 * it is JSON), else as hex and base64.
 */
#ifndef BZ_CTL_DLQ_JSON_H
#define BZ_CTL_DLQ_JSON_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "blazz/v1/dead_letter.pb-c.h"

/* ms as an ISO-8601 JSON string; null when ms <= 0. */
json_t *bz_ctl_time_json(int64_t ms);

/* 1 when the dead letter keeps only the start of the original value. */
int bz_ctl_payload_is_cut(const Blazz__V1__DeadLetter *dl);

/* The DLQ record m as a new JSON object: its partition, offset and time,
 * then dl (NULL: m's value is not a DeadLetter, shown from its dlt-*
 * headers). NULL when out of memory. */
json_t *bz_ctl_dlq_record_json(const rd_kafka_message_t *m, const Blazz__V1__DeadLetter *dl);

/* Print a record made by bz_ctl_dlq_record_json for people, on stdout. */
void bz_ctl_print_dlq_record(const json_t *r);

/* Add one to the count under key in obj. */
void bz_ctl_count_in(json_t *obj, const char *key);

#endif
