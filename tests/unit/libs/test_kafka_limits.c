/*
 * test_kafka_limits.c - record sizes are measured as librdkafka checks them
 * against message.max.bytes (a record this code calls fitting is one the
 * client accepts), and produce errors are split into "this record can never
 * be written" (dead-letter it) and "try again" (broker or topic away), and
 * a delivery report counts as delivered only with the broker's offset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kafka/limits.h"
#include "kafka/producer.h"

/* librdkafka 2.0.2: 36 bytes of worst-case record varints, 10 per header. */
static void size_counts_framing_key_value_and_headers(void **state)
{
    (void)state;
    assert_int_equal(bz_kafka_record_size(0, 0, NULL, 0), 36);
    bz_kafka_header h[] = {{"event_id", "0123", 4}, {"trace_id", "", 0}};
    assert_int_equal(bz_kafka_record_size(5, 100, h, 2), 36 + 5 + 100 + (10 + 8 + 4) + (10 + 8));
    assert_true(bz_kafka_record_fits(0, BZ_KAFKA_RECORD_MAX_BYTES - 36, NULL, 0));
    assert_false(bz_kafka_record_fits(0, BZ_KAFKA_RECORD_MAX_BYTES - 35, NULL, 0));
}

/* What the fitting check accepts, a real (unconnected) producer queues.
 * The measure takes 5 bytes for each header length varint where the client
 * counts the varint's real size (1 byte for short ones): 8 bytes of slack
 * per header, and not one byte more is accepted. The refusal is
 * MSG_SIZE_TOO_LARGE, a permanent error. */
static void the_client_agrees_with_the_measure(void **state)
{
    (void)state;
    /* No broker answers: no credentials needed, and none in the environment. */
    static const bz_kafka_security plain = {.protocol = "plaintext"};
    bz_kafka_settings settings = {.brokers = "127.0.0.1:1", .client_id = "unit-limits",
                                  .security = &plain};
    bz_producer *p;
    bz_error err;
    assert_int_equal(bz_producer_new(&settings, &p, &err), BZ_OK);
    bz_kafka_header h[] = {{"event_id", "e", 1}};
    size_t fits = BZ_KAFKA_RECORD_MAX_BYTES - bz_kafka_record_size(3, 0, h, 1);
    uint8_t *value = calloc(1, fits + 9);
    assert_true(bz_kafka_record_fits(3, fits, h, 1));
    assert_int_equal(bz_producer_send(p, "unit.limits", 0, "key", 3, value, fits, h, 1, NULL, &err),
                     BZ_OK);
    assert_false(bz_kafka_record_fits(3, fits + 1, h, 1));
    assert_int_equal(
        bz_producer_send(p, "unit.limits", 0, "key", 3, value, fits + 9, h, 1, NULL, &err),
        BZ_ERR_INVALID);
    assert_string_equal(err.reason, "message_too_large");
    free(value);
    bz_producer_free(p, 0);
}

static void permanent_errors_are_the_record_s_own(void **state)
{
    (void)state;
    const rd_kafka_resp_err_t permanent[] = {
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
        RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION, RD_KAFKA_RESP_ERR_INVALID_RECORD};
    const rd_kafka_resp_err_t transient[] = {
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,          RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,       RD_KAFKA_RESP_ERR__QUEUE_FULL,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,   RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR__PURGE_QUEUE,
        RD_KAFKA_RESP_ERR__PURGE_INFLIGHT,         RD_KAFKA_RESP_ERR__FATAL,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR__STATE};
    for (size_t i = 0; i < sizeof permanent / sizeof permanent[0]; i++)
        assert_true(bz_kafka_error_is_permanent(permanent[i]));
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
        assert_false(bz_kafka_error_is_permanent(transient[i]));
    assert_string_equal(bz_kafka_refusal_reason(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE),
                        "message_too_large");
    assert_string_equal(bz_kafka_refusal_reason(RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION),
                        "invalid_topic");
    assert_string_equal(bz_kafka_refusal_reason(RD_KAFKA_RESP_ERR_INVALID_RECORD),
                        "produce_refused");
}

/* The derived limits keep their promises. */
static void derived_limits_leave_room_for_two_wrappings(void **state)
{
    (void)state;
    assert_true(BZ_KAFKA_TOPIC_MAX_MESSAGE_BYTES >= BZ_KAFKA_RECORD_MAX_BYTES + 61);
    assert_true(BZ_INBOUND_EVENT_MAX_BYTES + 2 * BZ_KAFKA_WRAP_HEADROOM_BYTES <=
                BZ_KAFKA_RECORD_MAX_BYTES);
    assert_true(BZ_INBOUND_BODY_MAX_BYTES < 1000001);
    assert_string_equal(BZ_LIMIT_TEXT(BZ_KAFKA_RECORD_MAX_BYTES), "1000000");
    assert_int_equal(strtol(BZ_LIMIT_TEXT(BZ_KAFKA_TOPIC_MAX_MESSAGE_BYTES), NULL, 10),
                     BZ_KAFKA_TOPIC_MAX_MESSAGE_BYTES);
}

/* librdkafka's implicit ack reports a record delivered without an offset
 * when a later request to its partition succeeded; the broker may never
 * have stored it (a chaos run lost accepted messages that way: the broker's
 * log of wa.inbound.raw began the restarted ingest's producer at sequence 3,
 * while records 0-2 had been reported delivered). Only an offset proves it. */
static void a_delivery_without_the_broker_s_offset_is_not_proven(void **state)
{
    (void)state;
    rd_kafka_message_t stored = {.err = RD_KAFKA_RESP_ERR_NO_ERROR, .offset = 42};
    rd_kafka_message_t implicit = {.err = RD_KAFKA_RESP_ERR_NO_ERROR,
                                   .offset = RD_KAFKA_OFFSET_INVALID};
    rd_kafka_message_t timed_out = {.err = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
                                    .offset = RD_KAFKA_OFFSET_INVALID};
    assert_int_equal(bz_kafka_delivery_error(&stored), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_not_equal(bz_kafka_delivery_error(&implicit), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_false(bz_kafka_error_is_permanent(bz_kafka_delivery_error(&implicit)));
    assert_int_equal(bz_kafka_delivery_error(&timed_out), RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(size_counts_framing_key_value_and_headers),
        cmocka_unit_test(the_client_agrees_with_the_measure),
        cmocka_unit_test(permanent_errors_are_the_record_s_own),
        cmocka_unit_test(derived_limits_leave_room_for_two_wrappings),
        cmocka_unit_test(a_delivery_without_the_broker_s_offset_is_not_proven),
    };
    return cmocka_run_group_tests_name("kafka limits", tests, NULL, NULL);
}
