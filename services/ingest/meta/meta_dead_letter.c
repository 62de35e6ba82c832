/*
 * meta_dead_letter.c - Meta's unmapped changes as dead letters (see
 * meta_dead_letter.h).
 */
#include "meta/meta_dead_letter.h"

#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "gateway/gateway_auth.h"
#include "kafka/dlq.h"

#define RAW_KEY_MAX 96

static void count_unhandled(ing_metrics *m, const char *field)
{
    if (!m)
        return;
    bz_counter_inc(bz_counter_family_with(m->dead_lettered, "unhandled_field"));
    bz_counter_inc(bz_counter_family_with(m->meta_unhandled_fields, ing_meta_field_label(field)));
}

static void dead_letter_change(const ing_meta_dead_letters *d, const ing_meta_unhandled_change *c,
                               ing_http_acks *acks)
{
    bz_error why, err;
    (void)bz_reject(&why, "unhandled_field",
              "field %s: Meta's webhook field (or this shape of it) is not mapped by this build; the change is kept "
              "as Meta sent it", *c->field ? c->field : "(none)");
    char key[RAW_KEY_MAX];
    snprintf(key, sizeof key, "waba:%s", c->waba_id);
    bz_kafka_header gateway = {ING_GATEWAY_HEADER, d->gateway, strlen(d->gateway)};
    bz_dlq_original orig = {.topic = d->raw_topic, .partition = -1, .offset = -1, .key = key,
                            .key_len = strlen(key), .value = c->change,
                            .value_len = strlen(c->change), .headers = &gateway, .nheaders = 1};
    int64_t now = bz_wall_ms();
    bz_dead_letter_info info = {.error_code = why.reason, .error_message = why.msg,
                                .service = "ingest", .attempts = 1, .first_failed_at_ms = now,
                                .last_failed_at_ms = now};
    bz_dlq_record rec;
    ing_http_acks_expect(d->producer, acks);
    if (bz_dlq_build(&orig, &info, &rec, &err) != BZ_OK) {
        bz_warn("dead-letter Meta field %s of WABA %s: %s", c->field, c->waba_id, err.msg);
        ing_http_acks_settle(d->producer, acks, ING_HTTP_NOT_ROUTED);
        return;
    }
    ing_http_record out = {.topic = d->dlq_topic, .key = rec.key, .key_len = rec.key_len,
                           .value = rec.value, .len = rec.value_len, .headers = rec.headers,
                           .nheaders = rec.nheaders};
    ing_http_producer_send(d->producer, &out, acks);
    bz_dlq_record_free(&rec);
    bz_warn("dead-lettered a change of Meta's WABA %s: %s: %s", c->waba_id, why.reason, why.msg);
    count_unhandled(d->metrics, c->field);
}

void ing_meta_dead_letter_unhandled(const ing_meta_dead_letters *d, const ing_meta_unhandled *u,
                                    ing_http_acks *acks)
{
    for (size_t i = 0; i < u->count; i++)
        dead_letter_change(d, &u->items[i], acks);
}
