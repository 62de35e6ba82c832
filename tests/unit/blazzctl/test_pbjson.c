/*
 * test_pbjson.c - protobuf messages as JSON through their descriptors:
 * nested messages, oneofs, enums by name, bytes as base64, defaults left
 * out; undecodable bytes refused; topics mapped to their message types,
 * with or without a deployment prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "blazz/v1/sync.pb-c.h"
#include "pbjson.h"

static void sync_command_becomes_readable_json(void **state)
{
    (void)state;
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = "e-1";
    env.workspace_id = 7;
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_META;
    Blazz__V1__MessageAck ack = BLAZZ__V1__MESSAGE_ACK__INIT;
    ack.wam_id = "wamid.X";
    ack.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ;
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.envelope = &env;
    cmd.conversation = "7:+15550001111";
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT;
    cmd.receipt = &ack;
    uint8_t buf[256];
    size_t len = blazz__v1__sync_command__pack(&cmd, buf);

    json_t *j = bz_ctl_pb_decode_json(bz_ctl_topic_message_type("chat.sync"), buf, len);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "conversation")), "7:+15550001111");
    json_t *e = json_object_get(j, "envelope");
    assert_string_equal(json_string_value(json_object_get(e, "event_id")), "e-1");
    assert_int_equal(json_integer_value(json_object_get(e, "workspace_id")), 7);
    assert_string_equal(json_string_value(json_object_get(e, "provider")), "PROVIDER_META");
    assert_null(json_object_get(e, "session_id")); /* default left out */
    json_t *r = json_object_get(j, "receipt");
    assert_string_equal(json_string_value(json_object_get(r, "status")), "DELIVERY_STATUS_READ");
    assert_null(json_object_get(j, "message")); /* unset oneof members absent */
    json_decref(j);
}

static void bytes_and_repeated_fields_are_kept(void **state)
{
    (void)state;
    Blazz__V1__Header h = BLAZZ__V1__HEADER__INIT;
    h.key = "event_id";
    h.value.data = (uint8_t *)"abc";
    h.value.len = 3;
    Blazz__V1__Header *hs[] = {&h, &h};
    Blazz__V1__DeadLetter dl = BLAZZ__V1__DEAD_LETTER__INIT;
    dl.original_topic = "x.chat.sync";
    dl.original_value.data = (uint8_t *)"\xff\x00\x01";
    dl.original_value.len = 3;
    dl.n_original_headers = 2;
    dl.original_headers = hs;
    dl.attempts = 3;
    uint8_t buf[256];
    size_t len = blazz__v1__dead_letter__pack(&dl, buf);
    json_t *j = bz_ctl_pb_decode_json(&blazz__v1__dead_letter__descriptor, buf, len);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "original_value")), "/wAB");
    json_t *arr = json_object_get(j, "original_headers");
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "value")),
                        "YWJj");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 3);
    json_decref(j);
}

static void garbage_is_not_decoded(void **state)
{
    (void)state;
    const uint8_t bad[] = "\xff\xffMALFORMED-1";
    assert_null(bz_ctl_pb_decode_json(bz_ctl_topic_message_type("chat.sync"), bad, sizeof bad - 1));
}

static void topics_map_to_message_types_behind_any_prefix(void **state)
{
    (void)state;
    assert_ptr_equal(bz_ctl_topic_message_type("wa.inbound.raw"), &blazz__v1__inbound_event__descriptor);
    assert_ptr_equal(bz_ctl_topic_message_type("chat.sync.dlq"), &blazz__v1__dead_letter__descriptor);
    assert_null(bz_ctl_topic_message_type("nope"));
    assert_string_equal(bz_ctl_topic_base_of("staging.chat.sync"), "chat.sync");
    assert_string_equal(bz_ctl_topic_base_of("staging.chat.sync.dlq"), "chat.sync.dlq");
    assert_string_equal(bz_ctl_topic_base_of("campaign.events"), "campaign.events");
    assert_null(bz_ctl_topic_base_of("chat.sync.extra"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sync_command_becomes_readable_json),
        cmocka_unit_test(bytes_and_repeated_fields_are_kept),
        cmocka_unit_test(garbage_is_not_decoded),
        cmocka_unit_test(topics_map_to_message_types_behind_any_prefix),
    };
    return cmocka_run_group_tests_name("pbjson", tests, NULL, NULL);
}
