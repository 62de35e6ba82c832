/*
 * test_outbox_relay.c - the outbox relay never loses a row: 100,000 rows
 * written in transactions while the relay is SIGKILLed again and again all
 * arrive on the topic (at least once, with their event_id) and the table
 * ends empty.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"
#include "kafka/outbox.h"

#define ROWS_PER_TX 1000
#define TRANSACTIONS 100
#define TOTAL_ROWS (ROWS_PER_TX * TRANSACTIONS)

typedef struct arrivals {
    unsigned run;      /* first UUID group identifies this run */
    char *seen;        /* per row index */
    int distinct;
    int foreign;
} arrivals;

static void event_id_for(unsigned run, int index, char *out, size_t cap)
{
    snprintf(out, cap, "%08x-0000-4000-8000-%012d", run, index);
}

static void write_transaction(PGconn *conn, unsigned run, int first)
{
    bz_error err;
    itest_pg_exec(conn, "BEGIN");
    for (int i = first; i < first + ROWS_PER_TX; i++) {
        char event_id[40], key[32], payload[64];
        event_id_for(run, i, event_id, sizeof event_id);
        snprintf(key, sizeof key, "conversation-%d", i % 101);
        int len = snprintf(payload, sizeof payload, "payload-%d", i);
        bz_outbox_header trace = {"trace_id", "itest-trace"};
        if (bz_outbox_add(conn, "chat.events", event_id, key, strlen(key), payload, (size_t)len,
                          &trace, 1, &err) != BZ_OK)
            fail_msg("%s", err.msg);
    }
    itest_pg_exec(conn, "COMMIT");
}

static pid_t start_relay(const char *prefix, const char *log_path)
{
    char *argv[] = {(char *)itest_program("outbox_relay_runner"), (char *)prefix, NULL};
    return itest_spawn(argv, log_path);
}

static void on_published(void *ctx, const rd_kafka_message_t *m)
{
    arrivals *a = ctx;
    rd_kafka_headers_t *hdrs;
    const void *value;
    size_t size;
    unsigned run;
    int index;
    char id[40];
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, "event_id", &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        size >= sizeof id) {
        a->foreign++;
        return;
    }
    memcpy(id, value, size);
    id[size] = '\0';
    char *end;
    run = (unsigned)strtoul(id, &end, 16);
    if (strncmp(end, "-0000-4000-8000-", 16) == 0)
        index = (int)strtol(end + 16, &end, 10);
    else
        index = -1;
    if (*end != '\0' || run != a->run || index < 0 || index >= TOTAL_ROWS) {
        a->foreign++;
        return;
    }
    char expected[64];
    int len = snprintf(expected, sizeof expected, "payload-%d", index);
    if (m->len != (size_t)len || memcmp(m->payload, expected, m->len) != 0) {
        a->foreign++;
        return;
    }
    if (!a->seen[index]) {
        a->seen[index] = 1;
        a->distinct++;
    }
}

static void test_relay_survives_repeated_sigkill(void **state)
{
    (void)state;
    char token[32], prefix[64], topic[128], log_path[256], sql[256];
    itest_unique("", token, sizeof token);
    snprintf(prefix, sizeof prefix, "itest-outbox-%s.", token);
    snprintf(topic, sizeof topic, "%schat.events", prefix);
    const char *state_dir = getenv("BLAZZ_STATE_DIR");
    snprintf(log_path, sizeof log_path, "%s/logs/outbox-relay-%s.log",
             state_dir ? state_dir : "/tmp", token);
    unsigned run = (unsigned)itest_random(1, 0x7fffffff);
    itest_topics_create(prefix, 6);

    PGconn *conn = itest_pg_connect();
    pid_t relay = start_relay(prefix, log_path);
    int kills = 0;
    for (int tx = 0; tx < TRANSACTIONS; tx++) {
        write_transaction(conn, run, tx * ROWS_PER_TX);
        if (tx % 16 == 8) {
            itest_sleep_ms(itest_random(0, 400));
            kill(relay, SIGKILL);
            assert_int_equal(itest_wait(relay), 128 + SIGKILL);
            kills++;
            relay = start_relay(prefix, log_path);
        }
    }
    assert_true(kills >= 5);

    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE event_id::text LIKE '%08x-%%'", run);
    for (int waited = 0; itest_pg_int64(conn, sql) > 0; waited += 100) {
        if (waited > 300000)
            fail_msg("outbox still holds %lld rows; see %s", (long long)itest_pg_int64(conn, sql),
                     log_path);
        itest_sleep_ms(100);
    }
    kill(relay, SIGTERM);
    assert_int_equal(itest_wait(relay), 0);

    arrivals a = {.run = run, .seen = calloc(TOTAL_ROWS, 1)};
    itest_consume_all(topic, on_published, &a);
    free(a.seen);
    assert_int_equal(a.foreign, 0);
    assert_int_equal(a.distinct, TOTAL_ROWS);
    assert_int_equal(itest_pg_int64(conn, sql), 0);
    PQfinish(conn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_survives_repeated_sigkill),
    };
    return cmocka_run_group_tests_name("outbox relay", tests, NULL, NULL);
}
