/*
 * test_kafka_producer.c - libs/kafka's producer against the real broker of
 * the test stack.
 *
 *  - bz_kafka_learn_topic succeeds for a topic the broker has, and a record
 *    produced to it afterwards is delivered;
 *  - it fails with BZ_ERR_NOT_FOUND, naming the topic, for one the broker
 *    does not have (the test stack never creates topics on first use).
 *
 * What learning a topic is for (the first record not waiting for
 * librdkafka's one-second topic scan) is a matter of time, measured by
 * bench_ingest's warm-up line rather than asserted here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"
#include "kafka/producer.h"

static bz_producer *producer_for_test(void)
{
    bz_kafka_settings settings = {.brokers = itest_env("BLAZZ_KAFKA_BROKERS"),
                                  .client_id = "test-kafka-producer"};
    bz_producer *p = NULL;
    bz_error err;
    assert_int_equal(bz_producer_new(&settings, &p, &err), BZ_OK);
    return p;
}

static void test_learning_an_existing_topic_lets_records_through(void **state)
{
    (void)state;
    char prefix[64], topic[128];
    itest_unique("learn-", prefix, sizeof prefix);
    strcat(prefix, ".");
    itest_topics_create(prefix, 2);
    snprintf(topic, sizeof topic, "%schat.sync", prefix);
    bz_producer *p = producer_for_test();
    bz_error err;
    assert_int_equal(bz_kafka_learn_topic(bz_producer_handle(p), topic, 10000, &err), BZ_OK);
    assert_int_equal(bz_producer_send_sync(p, topic, "k", 1, "v", 1, NULL, 0, 10000, &err), BZ_OK);
    assert_int_equal(bz_producer_delivered(p), 1);
    bz_producer_free(p, 1000);
}

static void test_learning_a_missing_topic_names_it(void **state)
{
    (void)state;
    char topic[128];
    itest_unique("learn-missing-", topic, sizeof topic);
    bz_producer *p = producer_for_test();
    bz_error err;
    assert_int_equal(bz_kafka_learn_topic(bz_producer_handle(p), topic, 10000, &err),
                     BZ_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, topic));
    bz_producer_free(p, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learning_an_existing_topic_lets_records_through),
        cmocka_unit_test(test_learning_a_missing_topic_names_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
