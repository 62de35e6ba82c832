/*
 * eo_itest.c - one run of the exactly-once consumer under test (see
 * eo_itest.h).
 */
#include "eo_itest.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "blazz/v1/common.pb-c.h"
#include "blazz/v1/dead_letter.pb-c.h"
#include "counter_handler.h"
#include "itest.h"

static void create_tables(eo_run *r)
{
    assert_true(counter_tables_create(r->conn, r->table));
}

static void drop_tables(eo_run *r)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP TABLE %s_applied; DROP TABLE %s_counter;", r->table, r->table);
    itest_pg_exec(r->conn, sql);
}

void eo_run_produce_envelope(bz_producer *p, const char *topic, const char *event_id, int i)
{
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = (char *)event_id;
    env.source = "itest";
    env.workspace_id = i % 7;
    uint8_t buf[256];
    size_t len = blazz__v1__envelope__pack(&env, buf);
    char key[32];
    snprintf(key, sizeof key, "conversation-%d", i % 997);
    bz_kafka_header hdr = {"event_id", event_id, strlen(event_id)};
    bz_error err;
    if (bz_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len, &hdr, 1,
                         NULL, &err) != BZ_OK)
        fail_msg("produce: %s", err.msg);
}

/* Publish `valid` good records with every 2000th slot also followed by a
 * malformed record and every 5000th by a poison one, until the requested
 * numbers of bad records are out. */
static void publish_workload(eo_run *r)
{
    bz_producer *p = itest_producer();
    int malformed = 0, poison = 0;
    for (int i = 0; i < r->valid; i++) {
        char event_id[128];
        snprintf(event_id, sizeof event_id, "%s-%d", r->table, i);
        eo_run_produce_envelope(p, r->topic, event_id, i);
        if (i % 2000 == 1000 && malformed < r->malformed) {
            char bad[64];
            int len = snprintf(bad, sizeof bad, EO_RUN_MALFORMED_MARK "%d", malformed++);
            bz_error err;
            if (bz_producer_send(p, r->topic, RD_KAFKA_PARTITION_UA, "bad", 3, bad, (size_t)len,
                                 NULL, 0, NULL, &err) != BZ_OK)
                fail_msg("produce malformed: %s", err.msg);
        }
        if (i % 5000 == 2500 && poison < r->poison) {
            char event_id_poison[128];
            snprintf(event_id_poison, sizeof event_id_poison, "poison-%s-%d", r->table, poison++);
            eo_run_produce_envelope(p, r->topic, event_id_poison, i);
        }
        if (i % 10000 == 0)
            bz_producer_poll(p, 0);
    }
    assert_int_equal(malformed, r->malformed);
    assert_int_equal(poison, r->poison);
    bz_error err;
    if (bz_producer_flush(p, 60000, &err) != BZ_OK)
        fail_msg("flush workload: %s", err.msg);
    assert_int_equal(bz_producer_failed(p), 0);
    bz_producer_free(p, 1000);
}

void eo_run_setup(eo_run *r, int valid, int malformed, int poison)
{
    memset(r, 0, sizeof *r);
    char token[32];
    itest_unique("", token, sizeof token);
    snprintf(r->prefix, sizeof r->prefix, "itest-eo-%s.", token);
    snprintf(r->topic, sizeof r->topic, "%schat.sync", r->prefix);
    snprintf(r->dlq, sizeof r->dlq, "%schat.sync.dlq", r->prefix);
    snprintf(r->group, sizeof r->group, "itest-eo-%s", token);
    snprintf(r->table, sizeof r->table, "itest_eo_%s", token);
    const char *state = getenv("BLAZZ_STATE_DIR");
    snprintf(r->log_path, sizeof r->log_path, "%s/logs/%s.log", state ? state : "/tmp", r->group);
    r->valid = valid;
    r->malformed = malformed;
    r->poison = poison;
    r->conn = itest_pg_connect();
    create_tables(r);
    itest_topics_create(r->prefix, 6);
    publish_workload(r);
}

void eo_run_start_consumer(eo_run *r)
{
    char *argv[] = {(char *)itest_program("eo_counter_consumer"), r->group, r->topic, r->dlq,
                    r->table, NULL};
    r->consumer = itest_spawn(argv, r->log_path);
}

int64_t eo_run_stored_offsets(eo_run *r)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets WHERE group_id = '%s'",
             r->group);
    return itest_pg_int64(r->conn, sql);
}

int64_t eo_run_counter(eo_run *r)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT n FROM %s_counter", r->table);
    return itest_pg_int64(r->conn, sql);
}

void eo_run_assert_alive(eo_run *r)
{
    int status;
    if (waitpid(r->consumer, &status, WNOHANG) == r->consumer)
        fail_msg("consumer exited unexpectedly (status %d); see %s", status, r->log_path);
    if (r->rival > 0 && waitpid(r->rival, &status, WNOHANG) == r->rival)
        fail_msg("rival consumer exited unexpectedly (status %d); see %s", status,
                 r->rival_log_path);
}

void eo_run_wait_for_counter_above(eo_run *r, int64_t target)
{
    for (int waited = 0; eo_run_counter(r) <= target; waited += 50) {
        eo_run_assert_alive(r);
        if (waited > EO_RUN_WAIT_LIMIT_MS)
            fail_msg("no progress past %lld; see %s", (long long)target, r->log_path);
        itest_sleep_ms(50);
    }
}

void eo_run_wait_until_all_consumed(eo_run *r)
{
    int64_t total = r->valid + r->malformed + r->poison;
    for (int waited = 0; eo_run_stored_offsets(r) < total; waited += 100) {
        eo_run_assert_alive(r);
        if (waited > EO_RUN_WAIT_LIMIT_MS)
            fail_msg("stored offsets cover %lld of %lld records; see %s",
                     (long long)eo_run_stored_offsets(r), (long long)total, r->log_path);
        itest_sleep_ms(100);
    }
    assert_int_equal(eo_run_stored_offsets(r), total);
}

void eo_run_stop_gracefully(eo_run *r)
{
    kill(r->consumer, SIGTERM);
    assert_int_equal(itest_wait(r->consumer), 0);
}

void eo_run_assert_applied_exactly_once(eo_run *r)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s_applied", r->table);
    assert_int_equal(itest_pg_int64(r->conn, sql), r->valid);
    snprintf(sql, sizeof sql, "SELECT count(DISTINCT event_id) FROM %s_applied", r->table);
    assert_int_equal(itest_pg_int64(r->conn, sql), r->valid);
    snprintf(sql, sizeof sql,
             "SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM %s_applied", r->table);
    assert_int_equal(itest_pg_int64(r->conn, sql), r->valid);
    assert_int_equal(eo_run_counter(r), r->valid);
}

typedef struct dlq_seen {
    const char *topic;
    char *by_offset;  /* per original (partition, offset) slot: reason letter */
    int64_t stride;
    int malformed, poison, wrong;
} dlq_seen;

static void on_dead_letter(void *ctx, const rd_kafka_message_t *m)
{
    dlq_seen *seen = ctx;
    Blazz__V1__DeadLetter *dl = blazz__v1__dead_letter__unpack(NULL, m->len, m->payload);
    if (!dl || strcmp(dl->original_topic, seen->topic) != 0 ||
        strcmp(dl->service, "eo-counter") != 0 || dl->original_offset >= seen->stride) {
        seen->wrong++;
        blazz__v1__dead_letter__free_unpacked(dl, NULL);
        return;
    }
    char *slot = &seen->by_offset[dl->original_partition * seen->stride + dl->original_offset];
    if (*slot == 0) {
        size_t mark = strlen(EO_RUN_MALFORMED_MARK);
        if (strcmp(dl->error_code, "decode_error") == 0 && dl->original_value.len > mark &&
            memcmp(dl->original_value.data, EO_RUN_MALFORMED_MARK, mark) == 0)
            seen->malformed++;
        else if (strcmp(dl->error_code, "poison") == 0 && strstr(dl->error_message, "poison"))
            seen->poison++;
        else
            seen->wrong++;
        *slot = 1;
    }
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
}

/* Duplicates on the DLQ are allowed (a crash after the DLQ ack and before
 * the offset commit repeats it); missing or wrong dead letters are not. */
void eo_run_assert_dead_letters(eo_run *r)
{
    dlq_seen seen = {.topic = r->topic, .stride = r->valid + r->malformed + r->poison};
    seen.by_offset = calloc((size_t)(6 * seen.stride), 1);
    itest_consume_all(r->dlq, on_dead_letter, &seen);
    free(seen.by_offset);
    assert_int_equal(seen.wrong, 0);
    assert_int_equal(seen.malformed, r->malformed);
    assert_int_equal(seen.poison, r->poison);
}

void eo_run_teardown(eo_run *r)
{
    drop_tables(r);
    PQfinish(r->conn);
}
