/*
 * test_outbox_relay.c - the outbox relay never loses a row: 100,000 rows
 * written in transactions while the relay is SIGKILLed again and again all
 * arrive on the topic (at least once, with their event_id) and the table
 * ends empty. A row the broker can never take (over the record limit, or
 * routed to a gateway whose topic does not exist) is dead-lettered to
 * outbox.dlq, and the rows after it are published all the same. A relay
 * whose broker is gone stops promptly on SIGTERM, its rows kept.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "itest.h"
#include "kafka/limits.h"
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

/* The row index of a record whose event_id header event_id_for made for
 * run, or -1 (no such header, another run, another shape). */
static int row_index(const rd_kafka_message_t *m, unsigned run)
{
    rd_kafka_headers_t *hdrs;
    const void *value;
    size_t size;
    char id[40];
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, "event_id", &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        size >= sizeof id)
        return -1;
    memcpy(id, value, size);
    id[size] = '\0';
    char *end;
    if ((unsigned)strtoul(id, &end, 16) != run || strncmp(end, "-0000-4000-8000-", 16) != 0)
        return -1;
    int index = (int)strtol(end + 16, &end, 10);
    return *end == '\0' ? index : -1;
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
    int index = row_index(m, a->run);
    if (index < 0 || index >= TOTAL_ROWS) {
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

/* The broker gone (its port refuses connections): a round in flight waits
 * for acknowledgements that never come. SIGTERM 2 s into it, and the
 * relay must be gone within 10 s, its share of a service's 30 s grace
 * period (the consumer's leaving a group whose broker is gone takes its
 * 10 s deadline), every row still in the table for the next relay. The
 * round waited out its 30 s delivery timeout first, whatever the stop. */
static void test_relay_stops_with_its_broker_gone(void **state)
{
    (void)state;
    char token[32], prefix[64], log_path[256], sql[256], brokers[64];
    itest_unique("", token, sizeof token);
    snprintf(prefix, sizeof prefix, "itest-outbox-%s.", token);
    const char *state_dir = getenv("BLAZZ_STATE_DIR");
    snprintf(log_path, sizeof log_path, "%s/logs/outbox-relay-%s.log",
             state_dir ? state_dir : "/tmp", token);
    unsigned run = (unsigned)itest_random(1, 0x7fffffff);
    PGconn *conn = itest_pg_connect();
    write_transaction(conn, run, 0);

    snprintf(brokers, sizeof brokers, "BLAZZ_KAFKA_BROKERS=127.0.0.1:%d", itest_free_port());
    const char *extra[] = {brokers, NULL};
    char *argv[] = {(char *)itest_program("outbox_relay_runner"), prefix, NULL};
    pid_t relay = itest_spawn_env(argv, extra, log_path);
    itest_sleep_ms(2000);
    kill(relay, SIGTERM);
    int rc = itest_wait_within_grace(relay, 10000);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE event_id::text LIKE '%08x-%%'", run);
    int64_t kept = itest_pg_int64(conn, sql);
    print_message("relay with its broker gone: exit %d on SIGTERM (-1: still running 10 s "
                  "later, killed), %lld of %d rows kept\n",
                  rc, (long long)kept, ROWS_PER_TX);
    snprintf(sql, sizeof sql, "DELETE FROM outbox WHERE event_id::text LIKE '%08x-%%'", run);
    itest_pg_exec(conn, sql);
    PQfinish(conn);
    assert_int_equal(rc, 0);
    assert_int_equal(kept, ROWS_PER_TX);
}

#define BATCH_ROWS 3000

typedef struct batch_arrivals {
    unsigned run;
    int seen[BATCH_ROWS];
    int wrong;
} batch_arrivals;

/* Row i: key "k<i>" for even i, no key for odd i; a payload of every byte
 * value rotated by i, so hex round trips and NUL bytes are exercised. */
static size_t batch_payload(int i, uint8_t *out)
{
    for (int b = 0; b < 256; b++)
        out[b] = (uint8_t)(b + i);
    return 256;
}

static void on_batch_row(void *ctx, const rd_kafka_message_t *m)
{
    batch_arrivals *a = ctx;
    int i = row_index(m, a->run);
    rd_kafka_headers_t *hdrs;
    if (i < 0 || i >= BATCH_ROWS ||
        rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        a->wrong++;
        return;
    }
    uint8_t expected[256];
    size_t len = batch_payload(i, expected);
    char key[16];
    int key_len = snprintf(key, sizeof key, "k%d", i);
    int key_ok = i % 2 ? m->key == NULL
                       : m->key_len == (size_t)key_len && memcmp(m->key, key, m->key_len) == 0;
    const void *trace;
    size_t trace_len;
    int trace_ok = rd_kafka_header_get_last(hdrs, "trace_id", &trace, &trace_len) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR &&
                   trace_len == 5 && memcmp(trace, "trace", 5) == 0;
    if (m->len != len || memcmp(m->payload, expected, len) != 0 || !key_ok || !trace_ok)
        a->wrong++;
    else
        a->seen[i]++;
}

/* bz_outbox_batch writes many rows in one statement, byte-exact and in order. */
static void test_batch_writer_rows_arrive_byte_exact(void **state)
{
    (void)state;
    char token[32], prefix[64], topic[128], log_path[256], sql[256];
    itest_unique("", token, sizeof token);
    snprintf(prefix, sizeof prefix, "itest-outbatch-%s.", token);
    snprintf(topic, sizeof topic, "%schat.events", prefix);
    const char *state_dir = getenv("BLAZZ_STATE_DIR");
    snprintf(log_path, sizeof log_path, "%s/logs/outbox-batch-%s.log",
             state_dir ? state_dir : "/tmp", token);
    batch_arrivals *a = calloc(1, sizeof *a);
    a->run = (unsigned)itest_random(1, 0x7fffffff);
    itest_topics_create(prefix, 6);

    PGconn *conn = itest_pg_connect();
    bz_outbox_batch *batch;
    bz_error err;
    assert_int_equal(bz_outbox_batch_new(&batch, &err), BZ_OK);
    itest_pg_exec(conn, "BEGIN");
    for (int i = 0; i < BATCH_ROWS; i++) {
        char event_id[40], key[16];
        uint8_t payload[256];
        event_id_for(a->run, i, event_id, sizeof event_id);
        int key_len = snprintf(key, sizeof key, "k%d", i);
        size_t len = batch_payload(i, payload);
        assert_int_equal(bz_outbox_batch_add(batch, "chat.events", event_id,
                                             i % 2 ? NULL : key, (size_t)key_len, payload, len,
                                             "trace", &err),
                         BZ_OK);
    }
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE event_id::text LIKE '%08x-%%'", a->run);
    if (bz_outbox_batch_write(conn, batch, &err) != BZ_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(itest_pg_int64(conn, sql), BATCH_ROWS);
    /* the write emptied the batch: a second one inserts nothing */
    if (bz_outbox_batch_write(conn, batch, &err) != BZ_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(itest_pg_int64(conn, sql), BATCH_ROWS);
    itest_pg_exec(conn, "COMMIT");
    bz_outbox_batch_free(batch);

    pid_t relay = start_relay(prefix, log_path);
    for (int waited = 0; itest_pg_int64(conn, sql) > 0; waited += 100) {
        if (waited > 120000)
            fail_msg("outbox not drained; see %s", log_path);
        itest_sleep_ms(100);
    }
    kill(relay, SIGTERM);
    assert_int_equal(itest_wait(relay), 0);
    itest_consume_all(topic, on_batch_row, a);
    assert_int_equal(a->wrong, 0);
    for (int i = 0; i < BATCH_ROWS; i++)
        assert_int_equal(a->seen[i], 1);
    free(a);
    PQfinish(conn);
}

#define AROUND_ROWS 20
#define OVERSIZED_BYTES (3 * BZ_KAFKA_RECORD_MAX_BYTES / 2)

/* One row the relay must refuse, between AROUND_ROWS ordinary ones. */
typedef struct refused_run {
    unsigned run;
    int seen[AROUND_ROWS];
    int wrong;
    int dead_letters;
    const char *code;      /* the dead letter's error_code */
    const char *base;      /* the refused row's topic, without prefix */
    uint8_t *payload;      /* the refused row's payload */
    size_t payload_len;
    char event_id[40];
    char topic[128];       /* where the ordinary rows go */
    char refused_topic[128];
} refused_run;

static int refused_cleanup(void **state)
{
    refused_run *o = *state;
    if (!o)
        return 0;
    PGconn *conn = itest_pg_connect();
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM outbox WHERE event_id::text LIKE '%08x-%%'", o->run);
    itest_pg_exec(conn, sql);
    PQfinish(conn);
    free(o->payload);
    free(o);
    *state = NULL;
    return 0;
}

/* The relay publishes every row of the table under its prefix, rows other
 * tests left behind too: skip those. */
static void on_around_row(void *ctx, const rd_kafka_message_t *m)
{
    refused_run *o = ctx;
    int i = row_index(m, o->run);
    if (i >= AROUND_ROWS)
        o->wrong++;
    else if (i >= 0)
        o->seen[i]++;
}

static void on_outbox_dead_letter(void *ctx, const rd_kafka_message_t *m)
{
    refused_run *o = ctx;
    Blazz__V1__DeadLetter *dl = blazz__v1__dead_letter__unpack(NULL, m->len, m->payload);
    if (!dl || strcmp(dl->event_id, o->event_id) != 0) {
        blazz__v1__dead_letter__free_unpacked(dl, NULL);
        return;
    }
    o->dead_letters++;
    assert_string_equal(dl->error_code, o->code);
    assert_string_equal(dl->original_topic, o->refused_topic);
    assert_string_equal(dl->service, "outbox-relay-runner");
    assert_int_equal(dl->original_partition, -1);
    assert_int_equal(dl->original_offset, -1);
    assert_memory_equal(dl->original_key.data, "refused-key", 11);
    if (o->payload_len > BZ_KAFKA_RECORD_MAX_BYTES)
        itest_assert_value_cut(dl, o->payload, o->payload_len);
    else
        assert_memory_equal(dl->original_value.data, o->payload, o->payload_len);
    if (!strstr(dl->error_message, "outbox row"))
        fail_msg("dead letter message does not name the row: %s", dl->error_message);
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
}

/* 1 when the file at path contains text. */
static int log_mentions(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

static void add_row(PGconn *conn, unsigned run, int index, const char *topic, const char *key,
                    const void *payload, size_t len)
{
    char event_id[40];
    event_id_for(run, index, event_id, sizeof event_id);
    bz_error err;
    if (bz_outbox_add(conn, topic, event_id, key, strlen(key), payload, len, NULL, 0, &err) !=
        BZ_OK)
        fail_msg("%s", err.msg);
}

/* The refused row (written by hand) between ordinary ones: it is
 * dead-lettered with o->code, and every other row is published. */
static void relay_refuses_one_row(refused_run *o, const char *label)
{
    char token[32], prefix[64], dlq[128], log_path[256], sql[256];
    itest_unique("", token, sizeof token);
    snprintf(prefix, sizeof prefix, "itest-%s-%s.", label, token);
    snprintf(o->topic, sizeof o->topic, "%schat.events", prefix);
    snprintf(o->refused_topic, sizeof o->refused_topic, "%s%s", prefix, o->base);
    snprintf(dlq, sizeof dlq, "%soutbox.dlq", prefix);
    const char *state_dir = getenv("BLAZZ_STATE_DIR");
    snprintf(log_path, sizeof log_path, "%s/logs/outbox-%s-%s.log",
             state_dir ? state_dir : "/tmp", label, token);
    o->run = (unsigned)itest_random(1, 0x7fffffff);
    itest_topics_create(prefix, 6);

    PGconn *conn = itest_pg_connect();
    itest_pg_exec(conn, "BEGIN");
    for (int i = 0; i < AROUND_ROWS; i++) {
        char payload[32];
        int len = snprintf(payload, sizeof payload, "around-%d", i);
        add_row(conn, o->run, i, "chat.events", "same-key", payload, (size_t)len);
        if (i == AROUND_ROWS / 2)
            add_row(conn, o->run, AROUND_ROWS, o->base, "refused-key", o->payload,
                    o->payload_len);
    }
    itest_pg_exec(conn, "COMMIT");
    event_id_for(o->run, AROUND_ROWS, o->event_id, sizeof o->event_id);

    pid_t relay = start_relay(prefix, log_path);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE event_id::text LIKE '%08x-%%'", o->run);
    for (int waited = 0; itest_pg_int64(conn, sql) > 0; waited += 100) {
        if (waited > 90000) {
            kill(relay, SIGKILL);
            itest_wait(relay);
            fail_msg("outbox still holds %lld of the run's rows after 90 s; see %s",
                     (long long)itest_pg_int64(conn, sql), log_path);
        }
        itest_sleep_ms(100);
    }
    kill(relay, SIGTERM);
    assert_int_equal(itest_wait(relay), 0);
    PQfinish(conn);
    assert_true(log_mentions(log_path, "and dead-lettering 1\""));

    itest_consume_all(o->topic, on_around_row, o);
    assert_int_equal(o->wrong, 0);
    for (int i = 0; i < AROUND_ROWS; i++)
        assert_int_equal(o->seen[i], 1);
    itest_consume_all(dlq, on_outbox_dead_letter, o);
    assert_int_equal(o->dead_letters, 1);
}

/* Over the record limit (every writer caps its rows): dead-lettered with
 * its size and hash. */
static void test_oversized_row_is_dead_lettered_and_later_rows_publish(void **state)
{
    refused_run *o = calloc(1, sizeof *o);
    *state = o;
    o->code = "message_too_large";
    o->base = "chat.events";
    o->payload_len = OVERSIZED_BYTES;
    o->payload = malloc(OVERSIZED_BYTES);
    for (size_t b = 0; b < OVERSIZED_BYTES; b++)
        o->payload[b] = (uint8_t)(b * 7 + b / 251);
    relay_refuses_one_row(o, "outbig");
}

/* Routed to a gateway whose topics were never created (a gateway bound to
 * accounts before `blazzctl topics ensure --gateway`): dead-lettered once
 * librdkafka gives up on the topic, not retried every round. */
static void test_row_for_a_gateway_without_topics_is_dead_lettered(void **state)
{
    refused_run *o = calloc(1, sizeof *o);
    *state = o;
    o->code = "unknown_topic";
    o->base = "wa.outbound.gw.never-created";
    o->payload = (uint8_t *)strdup("a send for a gateway with no topic");
    o->payload_len = strlen((char *)o->payload);
    relay_refuses_one_row(o, "outgw");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_survives_repeated_sigkill),
        cmocka_unit_test(test_relay_stops_with_its_broker_gone),
        cmocka_unit_test(test_batch_writer_rows_arrive_byte_exact),
        cmocka_unit_test_teardown(test_oversized_row_is_dead_lettered_and_later_rows_publish,
                                  refused_cleanup),
        cmocka_unit_test_teardown(test_row_for_a_gateway_without_topics_is_dead_lettered,
                                  refused_cleanup),
    };
    return cmocka_run_group_tests_name("outbox relay", tests, NULL, NULL);
}
