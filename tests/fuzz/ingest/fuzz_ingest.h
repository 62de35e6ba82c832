/*
 * fuzz_ingest.h - the property checks shared by the ingest fuzz targets
 * (fuzz_ingest_{json,meta,proto}.c, built as tests/fuzz/fuzz_target.h says).
 *
 * Every input must have a defined outcome through the same entry points the
 * service uses: parse (gateway JSON, Meta notification, or protobuf
 * InboundEvent), assign the event_id, normalize. A rejection is
 * BZ_ERR_INVALID with a reason and a message naming a field. An accepted
 * event has a conversation key and is a fixed point: packing, unpacking and
 * normalizing it again yields the same bytes and key (the HTTP path
 * publishes normalized events that the Kafka path normalizes again).
 */
#ifndef FUZZ_INGEST_H
#define FUZZ_INGEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events/event_id.h"
#include "events/event_tree.h"
#include "events/normalize.h"
#include "fuzz_target.h"
#include "gateway/gateway_json.h"
#include "meta/meta_webhook.h"

/* A fixed clock keeps outcomes reproducible: 2027-01-15. */
#define FUZZ_NOW_MS 1800000000000LL

static inline void fuzz_check_rejection(const bz_error *err)
{
    char field[ING_FIELD_MAX];
    BZ_FUZZ_CHECK(err->code == BZ_ERR_INVALID || err->code == BZ_ERR_NOMEM);
    if (err->code != BZ_ERR_INVALID)
        return;
    BZ_FUZZ_CHECK(err->reason != NULL && err->reason[0] != '\0');
    ing_error_field(err, field);
    BZ_FUZZ_CHECK(field[0] != '\0');
}

static inline uint8_t *fuzz_pack(const Blazz__V1__InboundEvent *ev, size_t *len)
{
    *len = blazz__v1__inbound_event__get_packed_size(ev);
    uint8_t *buf = malloc(*len ? *len : 1);
    BZ_FUZZ_CHECK(buf != NULL);
    blazz__v1__inbound_event__pack(ev, buf);
    return buf;
}

/* Validate ev (consumed), read at a gateway's edge or at Meta's
 * (meta_edge), and check the fixed-point property. */
static inline int fuzz_check_event(Blazz__V1__InboundEvent *ev, int meta_edge)
{
    bz_error err;
    char conversation[ING_CONVERSATION_MAX], again_conversation[ING_CONVERSATION_MAX];
    ing_norm_opts opts = {.default_cc = "62", .now_ms = FUZZ_NOW_MS,
                                .max_future_ms = 86400000, .meta_edge = meta_edge};
    bz_status st = ing_event_id_assign(ev, &err);
    if (st == BZ_OK)
        st = ing_normalize(ev, &opts, conversation, &err);
    if (st != BZ_OK) {
        fuzz_check_rejection(&err);
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
        return BZ_FUZZ_REJECTED;
    }
    BZ_FUZZ_CHECK(conversation[0] != '\0');
    size_t len, again_len;
    uint8_t *bytes = fuzz_pack(ev, &len);
    Blazz__V1__InboundEvent *again = blazz__v1__inbound_event__unpack(NULL, len, bytes);
    BZ_FUZZ_CHECK(again != NULL);
    BZ_FUZZ_CHECK(ing_event_id_assign(again, &err) == BZ_OK);
    BZ_FUZZ_CHECK(ing_normalize(again, &opts, again_conversation, &err) == BZ_OK);
    BZ_FUZZ_CHECK(strcmp(conversation, again_conversation) == 0);
    uint8_t *again_bytes = fuzz_pack(again, &again_len);
    BZ_FUZZ_CHECK(len == again_len && memcmp(bytes, again_bytes, len) == 0);
    free(bytes);
    free(again_bytes);
    blazz__v1__inbound_event__free_unpacked(again, NULL);
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
    return BZ_FUZZ_ACCEPTED;
}

static inline int fuzz_ingest_json(const uint8_t *data, size_t size)
{
    Blazz__V1__InboundEvent *ev;
    bz_error err;
    if (ing_gateway_json_parse((const char *)data, size, FUZZ_NOW_MS, &ev, &err) != BZ_OK) {
        fuzz_check_rejection(&err);
        return BZ_FUZZ_REJECTED;
    }
    return fuzz_check_event(ev, 0);
}

/* Accepted when the notification parsed; its events are each checked. */
static inline int fuzz_ingest_meta(const uint8_t *data, size_t size)
{
    ing_events events = {0};
    ing_meta_unhandled unhandled = {0};
    bz_error err;
    bz_status st = ing_meta_parse((const char *)data, size, &events, &unhandled, &err);
    for (size_t i = 0; st == BZ_OK && i < unhandled.count; i++)
        BZ_FUZZ_CHECK(unhandled.items[i].field && unhandled.items[i].waba_id &&
                      unhandled.items[i].change && unhandled.items[i].change[0]);
    ing_meta_unhandled_free(&unhandled);
    if (st != BZ_OK) {
        fuzz_check_rejection(&err);
        ing_events_free(&events);
        return BZ_FUZZ_REJECTED;
    }
    for (size_t i = 0; i < events.count; i++) {
        Blazz__V1__InboundEvent *ev = events.items[i];
        events.items[i] = NULL;
        BZ_FUZZ_CHECK(ev->envelope && ev->envelope->provider == BLAZZ__V1__PROVIDER__PROVIDER_META);
        fuzz_check_event(ev, 1);
    }
    events.count = 0;
    ing_events_free(&events);
    return BZ_FUZZ_ACCEPTED;
}

static inline int fuzz_ingest_proto(const uint8_t *data, size_t size)
{
    Blazz__V1__InboundEvent *ev = blazz__v1__inbound_event__unpack(NULL, size, data);
    if (!ev)
        return BZ_FUZZ_REJECTED;
    return fuzz_check_event(ev, 0);
}

#endif
