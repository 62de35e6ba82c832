/*
 * test_proto_unknown_fields.c - bz_proto_drop_unknown_fields clears unknown
 * fields at every depth (top level, a singular sub-message, the set oneof
 * member, repeated sub-messages inside it), frees them (ASan's leak check),
 * and leaves the known fields; the field numbered 0 that protobuf-c cannot
 * re-read is among them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "blazz/v1/inbound.pb-c.h"
#include "proto/unknown_fields.h"

/* InboundEvent{99: 1, envelope{50: 5, 0: fixed64}, history_sync{chats: 2 x
 * {messages: [{1000: "hi"}], 20: fixed32}}}: known fields are only the
 * nesting, so with the unknown ones gone it packs as the bytes of `known`.
 * (1000: far above InboundMessage's numbers, which grow; 30 became
 * contact_bsuid.) */
static const uint8_t with_unknown[] = {
    0x98, 0x06, 0x01,
    0x0a, 0x0d, 0x90, 0x03, 0x05, 0x81, 0x00, 1, 2, 3, 4, 5, 6, 7, 8,
    0x6a, 0x1e,
    0x2a, 0x0d, 0x62, 0x05, 0xc2, 0x3e, 0x02, 'h', 'i', 0xa5, 0x01, 1, 2, 3, 4,
    0x2a, 0x0d, 0x62, 0x05, 0xc2, 0x3e, 0x02, 'h', 'i', 0xa5, 0x01, 1, 2, 3, 4,
};
static const uint8_t known[] = {0x0a, 0x00, 0x6a, 0x08, 0x2a, 0x02, 0x62, 0x00, 0x2a, 0x02, 0x62, 0x00};

static void unknown_fields_are_dropped_at_every_depth(void **state)
{
    (void)state;
    Blazz__V1__InboundEvent *ev =
        blazz__v1__inbound_event__unpack(NULL, sizeof with_unknown, with_unknown);
    assert_non_null(ev);
    assert_int_equal(ev->payload_case, BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC);
    assert_int_equal(ev->base.n_unknown_fields, 1);
    assert_int_equal(ev->envelope->base.n_unknown_fields, 2);
    assert_int_equal(ev->history_sync->n_chats, 2);
    assert_int_equal(ev->history_sync->chats[1]->base.n_unknown_fields, 1);
    assert_int_equal(ev->history_sync->chats[1]->messages[0]->base.n_unknown_fields, 1);

    bz_proto_drop_unknown_fields(&ev->base);
    assert_int_equal(ev->base.n_unknown_fields, 0);
    assert_null(ev->base.unknown_fields);
    assert_int_equal(ev->envelope->base.n_unknown_fields, 0);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(ev->history_sync->chats[i]->base.n_unknown_fields, 0);
        assert_int_equal(ev->history_sync->chats[i]->messages[0]->base.n_unknown_fields, 0);
    }
    uint8_t out[sizeof with_unknown];
    assert_int_equal(blazz__v1__inbound_event__get_packed_size(ev), sizeof known);
    blazz__v1__inbound_event__pack(ev, out);
    assert_memory_equal(out, known, sizeof known);
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

static void a_message_without_unknown_fields_is_unchanged(void **state)
{
    (void)state;
    Blazz__V1__InboundEvent *ev = blazz__v1__inbound_event__unpack(NULL, sizeof known, known);
    assert_non_null(ev);
    bz_proto_drop_unknown_fields(&ev->base);
    bz_proto_drop_unknown_fields(NULL);
    uint8_t out[sizeof known];
    assert_int_equal(blazz__v1__inbound_event__pack(ev, out), sizeof known);
    assert_memory_equal(out, known, sizeof known);
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_fields_are_dropped_at_every_depth),
        cmocka_unit_test(a_message_without_unknown_fields_is_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
