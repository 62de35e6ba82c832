/*
 * test_outbox_wakeup.c - a row committed while the relay is publishing an
 * earlier one goes out at once, not after the idle poll.
 *
 * The NOTIFY of such a commit reaches the relay's connection during its
 * round and libpq reads it together with the round's results, so the socket
 * stays quiet afterwards; a relay that only polled the socket slept until
 * the idle poll (500 ms by default) although a row was waiting. That wait
 * sat on every path through the outbox (agents' messages: ARCHITECTURE.md
 * §11). Here the idle poll is a minute, so only a notification can wake the
 * relay: every pair of back-to-back commits must be published while the
 * test waits (a deadline of 15 s, far above the milliseconds it takes, far
 * below the minute a missed wake-up costs).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "itest.h"
#include "itest_http.h"
#include "kafka/outbox.h"

#define PAIRS 20
#define IDLE_POLL_MS 60000
#define DEADLINE_MS 15000

static void commit_row(PGconn *conn, unsigned run, int index)
{
    char event_id[40], payload[32];
    snprintf(event_id, sizeof event_id, "%08x-0000-4000-8000-%012d", run, index);
    int len = snprintf(payload, sizeof payload, "wakeup-%d", index);
    bz_error err;
    itest_pg_exec(conn, "BEGIN");
    if (bz_outbox_add(conn, "chat.events", event_id, "k", 1, payload, (size_t)len, NULL, 0,
                      &err) != BZ_OK)
        fail_msg("%s", err.msg);
    itest_pg_exec(conn, "COMMIT");
}

static void *stop_relay(void *relay)
{
    bz_outbox_relay_stop(relay);
    return NULL;
}

/* The relay sleeps up to its idle poll before it sees the stop: wake it. */
static void stop_sleeping_relay(bz_outbox_relay *relay, PGconn *conn)
{
    pthread_t t;
    pthread_create(&t, NULL, stop_relay, relay);
    itest_sleep_ms(100);
    itest_pg_exec(conn, "NOTIFY blazz_outbox");
    pthread_join(t, NULL);
}

static void test_commit_during_a_round_is_published_at_once(void **state)
{
    (void)state;
    char token[32], prefix[64], sql[160];
    itest_unique("", token, sizeof token);
    snprintf(prefix, sizeof prefix, "itest-wakeup-%s.", token);
    itest_topics_create(prefix, 1);
    unsigned run = (unsigned)itest_random(1, 0x7fffffff);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM outbox WHERE event_id::text LIKE '%08x-%%'",
             run);

    bz_outbox_relay_config cfg = {
        .kafka = {.brokers = itest_env("BLAZZ_KAFKA_BROKERS"), .client_id = "itest-wakeup"},
        .pg_dsn = itest_env("BLAZZ_PG_DSN"),
        .topic_prefix = prefix,
        .idle_poll_ms = IDLE_POLL_MS,
    };
    bz_outbox_relay *relay;
    bz_error err;
    if (bz_metrics_new(&cfg.metrics, &err) != BZ_OK)
        fail_msg("%s", err.msg);
    if (bz_outbox_relay_start(&cfg, &relay, &err) != BZ_OK)
        fail_msg("%s", err.msg);
    for (int i = 0; i < 200 && itest_registry_metric(cfg.metrics, "blazz_outbox_relay_active") != 1;
         i++)
        itest_sleep_ms(50);
    assert_true(itest_registry_metric(cfg.metrics, "blazz_outbox_relay_active") == 1);

    PGconn *conn = itest_pg_connect();
    int64_t first = 0, worst = 0; /* the first pair also waits for the topic's metadata */
    for (int pair = 0; pair < PAIRS; pair++) {
        /* the first commit wakes the relay; the second lands while it
         * publishes the first (a Kafka round trip takes milliseconds) */
        commit_row(conn, run, 2 * pair);
        itest_sleep_ms(1 + pair % 4);
        int64_t committed = bz_monotonic_ms();
        commit_row(conn, run, 2 * pair + 1);
        while (itest_pg_int64(conn, sql) > 0) {
            if (bz_monotonic_ms() - committed > DEADLINE_MS)
                fail_msg("pair %d: a row waited more than %d ms in the outbox (idle poll %d ms)",
                         pair, DEADLINE_MS, IDLE_POLL_MS);
            itest_sleep_ms(5);
        }
        int64_t took = bz_monotonic_ms() - committed;
        if (pair == 0)
            first = took;
        else
            worst = took > worst ? took : worst;
    }
    printf("  %d pairs published: the first %lld ms after its commit, the slowest after it %lld ms\n",
           PAIRS, (long long)first, (long long)worst);
    /* the relay counts a round after it deleted the round's rows */
    for (int i = 0; i < 200 && itest_registry_metric(cfg.metrics,
                                                     "blazz_outbox_published_total") < 2 * PAIRS;
         i++)
        itest_sleep_ms(10);
    assert_true(itest_registry_metric(cfg.metrics, "blazz_outbox_published_total") == 2 * PAIRS);
    stop_sleeping_relay(relay, conn);
    bz_metrics_free(cfg.metrics);
    PQfinish(conn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_during_a_round_is_published_at_once),
    };
    return cmocka_run_group_tests_name("outbox relay wake-up", tests, NULL, NULL);
}
