/*
 * meta_dead_letter.h - the changes of a Meta notification that ingest
 * does not map (meta_webhook.h: a field other than messages and the
 * template and account fields) dead-lettered to wa.inbound.dlq, so none
 * is dropped without a trace while Meta gets its 200.
 *
 * Each becomes one dead letter with reason unhandled_field, whose message
 * names the field and whose original value is the change as Meta sent it
 * (JSON: `blazzctl dlq tail` shows it decoded), keyed "waba:<entry.id>"
 * like the WABA's notices, said to come from wa.inbound.raw at offset -1
 * (it never was there). Replaying one is pointless until a build maps its
 * field: the Kafka path reads InboundEvents and would dead-letter the JSON
 * again (decode_error). Counted in blazz_ingest_dead_lettered_total
 * {reason="unhandled_field"} and blazz_ingest_meta_unhandled_fields_total
 * {field} (ing_meta_field_label).
 */
#ifndef ING_META_DEAD_LETTER_H
#define ING_META_DEAD_LETTER_H

#include "http_producer.h"
#include "ingest_metrics.h"
#include "meta/meta_webhook.h"

typedef struct ing_meta_dead_letters {
    ing_http_producer *producer; /* borrowed, as every field */
    const char *dlq_topic;       /* full names */
    const char *raw_topic;
    const char *gateway;         /* Meta's gateway: the dead letter's signer */
    ing_metrics *metrics;        /* may be NULL */
} ing_meta_dead_letters;

/* Send one dead letter per change of u as one more record of acks each
 * (settled by the broker's report, or as not acknowledged when one cannot
 * be built: the request is answered 503 and Meta redelivers). */
void ing_meta_dead_letter_unhandled(const ing_meta_dead_letters *d, const ing_meta_unhandled *u,
                                    ing_http_acks *acks);

#endif
