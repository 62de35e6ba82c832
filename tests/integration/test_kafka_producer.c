/*
 * test_kafka_producer.c - libs/kafka's producer against the real broker of
 * the test stack.
 *
 *  - bz_kafka_learn_topic succeeds for a topic the broker has, and a record
 *    produced to it afterwards is delivered;
 *  - it fails with BZ_ERR_NOT_FOUND, naming the topic, for one the broker
 *    does not have (the test stack never creates topics on first use);
 *  - bz_producer_send waiting for room in a full local queue (a one-record
 *    queue, and a broker address on loopback where nothing listens, so the
 *    queue never drains) gives up with a clear transient error when a
 *    shutdown signal arrives, and after the bound the caller set. The
 *    shutdown case runs in a child process so that a send that never
 *    returns fails the test instead of hanging it;
 *  - a producer whose handle hit a fatal error that nobody polled for (the
 *    outbox relay sends, then polls only for what it sent: a send refused
 *    as fatal leaves it nothing to poll for) is rebuilt by the next send,
 *    rather than refusing every send with "Local: Fatal error" forever
 *    (seen in make compose-test: a relay started while the broker still
 *    refused its principal never published again).
 *
 * What learning a topic is for (the first record not waiting for
 * librdkafka's one-second topic scan) is a matter of time, measured by
 * bench_ingest's warm-up line rather than asserted here.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/signals.h"
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

/* A fresh prefix (named after tag) with the topic catalogue created; the
 * name of its chat.sync in topic. */
static void chat_sync_topic_for_test(const char *tag, int partitions, char *topic, size_t cap)
{
    char prefix[64];
    itest_unique(tag, prefix, sizeof prefix);
    strcat(prefix, ".");
    itest_topics_create(prefix, partitions);
    snprintf(topic, cap, "%schat.sync", prefix);
}

static void test_learning_an_existing_topic_lets_records_through(void **state)
{
    (void)state;
    char topic[128];
    chat_sync_topic_for_test("learn-", 2, topic, sizeof topic);
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

#define CHILD_SEND_RETURNED_TRANSIENT 0
#define CHILD_SEND_WRONG_RESULT 3
#define CHILD_SETUP_FAILED 4

/* A producer whose one-record queue can never drain: its broker address is
 * a loopback port where nothing listens. */
static bz_producer *producer_with_stuck_queue(const char *brokers)
{
    static const char *const tiny_queue[] = {"queue.buffering.max.messages", "1", NULL};
    bz_kafka_settings settings = {.brokers = brokers, .client_id = "test-kafka-producer",
                                  .extra = tiny_queue};
    bz_producer *p = NULL;
    bz_error err;
    if (bz_producer_new(&settings, &p, &err) != BZ_OK)
        return NULL;
    if (bz_producer_send(p, "stuck", RD_KAFKA_PARTITION_UA, "k", 1, "first", 5, NULL, 0, NULL,
                         &err) != BZ_OK) {
        bz_producer_free(p, 0);
        return NULL;
    }
    return p;
}

/* The child: fill the queue, tell the parent, then send into the full
 * queue until a SIGTERM makes the call give up. */
static int send_into_full_queue_until_sigterm(const char *brokers, int ready_fd)
{
    bz_signals_install_shutdown();
    bz_producer *p = producer_with_stuck_queue(brokers);
    if (!p)
        return CHILD_SETUP_FAILED;
    if (write(ready_fd, "r", 1) != 1)
        return CHILD_SETUP_FAILED;
    bz_error err;
    bz_status st = bz_producer_send(p, "stuck", RD_KAFKA_PARTITION_UA, "k", 1, "second", 6, NULL,
                                    0, NULL, &err);
    int ok = st == BZ_ERR_TRANSIENT && strstr(err.msg, "queue full") &&
             strstr(err.msg, "shutdown");
    if (!ok)
        fprintf(stderr, "send into a full queue: status %d: %s\n", st,
                st == BZ_OK ? "(ok)" : err.msg);
    bz_producer_free(p, 0);
    return ok ? CHILD_SEND_RETURNED_TRANSIENT : CHILD_SEND_WRONG_RESULT;
}

static void test_a_send_into_a_full_queue_gives_up_at_shutdown(void **state)
{
    (void)state;
    char brokers[32];
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", itest_free_port());
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    fflush(NULL);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(ready[0]);
        _exit(send_into_full_queue_until_sigterm(brokers, ready[1]));
    }
    close(ready[1]);
    char byte;
    ssize_t got = read(ready[0], &byte, 1);
    close(ready[0]);
    if (got != 1) {
        itest_wait(child);
        fail_msg("the child could not fill the producer's queue");
    }
    /* Give the send time to reach the full queue, then ask for shutdown. */
    itest_sleep_ms(500);
    kill(child, SIGTERM);
    /* Generous: the send should return within one poll interval. */
    int status = 0;
    for (int waited = 0; waitpid(child, &status, WNOHANG) != child; waited += 100) {
        if (waited >= 30000) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            fail_msg("bz_producer_send into a full queue still waiting 30 s after SIGTERM");
        }
        itest_sleep_ms(100);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), CHILD_SEND_RETURNED_TRANSIENT);
}

static void test_a_send_into_a_full_queue_gives_up_after_the_callers_bound(void **state)
{
    (void)state;
    char brokers[32];
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", itest_free_port());
    bz_producer *p = producer_with_stuck_queue(brokers);
    assert_non_null(p);
    bz_producer_set_queue_wait(p, 200);
    bz_error err;
    assert_int_equal(bz_producer_send(p, "stuck", RD_KAFKA_PARTITION_UA, "k", 1, "second", 6,
                                      NULL, 0, NULL, &err),
                     BZ_ERR_TRANSIENT);
    assert_non_null(strstr(err.msg, "produce to stuck: local queue full"));
    assert_non_null(strstr(err.msg, "the limit"));
    bz_producer_free(p, 0);
}

static void test_a_fatal_error_nobody_polled_for_is_recovered_by_the_next_send(void **state)
{
    (void)state;
    char topic[128];
    chat_sync_topic_for_test("fatal-", 1, topic, sizeof topic);
    bz_producer *p = producer_for_test();
    assert_int_equal(rd_kafka_test_fatal_error(bz_producer_handle(p),
                                               RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                               "fabricated by the test"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    bz_error err;
    bz_status st = bz_producer_send(p, topic, RD_KAFKA_PARTITION_UA, "k", 1, "v", 1, NULL, 0,
                                    NULL, &err);
    if (st != BZ_OK)
        fail_msg("send after an unpolled fatal error: %s", err.msg);
    assert_int_equal(bz_producer_flush(p, 10000, &err), BZ_OK);
    assert_int_equal(bz_producer_delivered(p), 1);
    bz_producer_free(p, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learning_an_existing_topic_lets_records_through),
        cmocka_unit_test(test_learning_a_missing_topic_names_it),
        cmocka_unit_test(test_a_send_into_a_full_queue_gives_up_after_the_callers_bound),
        cmocka_unit_test(test_a_send_into_a_full_queue_gives_up_at_shutdown),
        cmocka_unit_test(test_a_fatal_error_nobody_polled_for_is_recovered_by_the_next_send),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
