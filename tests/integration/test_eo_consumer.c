/*
 * test_eo_consumer.c - the exactly-once consumer survives SIGKILL, a
 * PostgreSQL restart, a Kafka broker restart, the database turning
 * read-only (as a demoted primary does) and two instances owning the same
 * partitions at once without losing or repeating a single record, and
 * dead-letters what it cannot apply, and nothing else.
 *
 * Each test publishes Envelope records (plus undecodable and "poison"
 * records) to a topic of its own, runs eo_counter_consumer as a separate
 * process, disturbs it, waits until the stored offsets cover every record,
 * and then checks the effects: one row per valid record, no event_id twice,
 * the counter equal to the number of valid records, and every bad record on
 * the dead-letter topic with its original bytes and the reason. A bad
 * record near the record limit, which a dead letter cannot wrap whole, is
 * dead-lettered cut, with its size and SHA-256, and the records after it
 * are applied.
 *
 * Double ownership is forced honestly: a second process joins another Kafka
 * group (so the broker gives it every partition too) but keeps its offsets
 * under the first one's name in kafka_offsets (EO_COUNTER_OFFSETS_GROUP).
 * Both prefetch and race on the same compare-and-set; a trigger on
 * kafka_offsets records every committed update that moved an offset
 * backwards.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "blazz/v1/common.pb-c.h"
#include "blazz/v1/dead_letter.pb-c.h"
#include "counter_handler.h"
#include "itest.h"
#include "kafka/limits.h"

#define MALFORMED_MARK "\xff\xffMALFORMED-"
#define WAIT_LIMIT_MS (240 * 1000)

typedef struct eo_run {
    char prefix[64];
    char topic[128];
    char dlq[128];
    char group[64];
    char table[64];
    char log_path[256];
    int valid, malformed, poison;
    PGconn *conn;
    pid_t consumer;
    pid_t rival; /* 0, or a second owner of the same partitions */
    char rival_log_path[272];
} eo_run;

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

static void produce_envelope(bz_producer *p, const char *topic, const char *event_id, int i)
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
        produce_envelope(p, r->topic, event_id, i);
        if (i % 2000 == 1000 && malformed < r->malformed) {
            char bad[64];
            int len = snprintf(bad, sizeof bad, MALFORMED_MARK "%d", malformed++);
            bz_error err;
            if (bz_producer_send(p, r->topic, RD_KAFKA_PARTITION_UA, "bad", 3, bad, (size_t)len,
                                 NULL, 0, NULL, &err) != BZ_OK)
                fail_msg("produce malformed: %s", err.msg);
        }
        if (i % 5000 == 2500 && poison < r->poison) {
            char event_id_poison[128];
            snprintf(event_id_poison, sizeof event_id_poison, "poison-%s-%d", r->table, poison++);
            produce_envelope(p, r->topic, event_id_poison, i);
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

static void setup_run(eo_run *r, int valid, int malformed, int poison)
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

static void start_consumer(eo_run *r)
{
    char *argv[] = {(char *)itest_program("eo_counter_consumer"), r->group, r->topic, r->dlq,
                    r->table, NULL};
    r->consumer = itest_spawn(argv, r->log_path);
}

static int64_t stored_offsets_total(eo_run *r)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets WHERE group_id = '%s'",
             r->group);
    return itest_pg_int64(r->conn, sql);
}

static int64_t counter_value(eo_run *r)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT n FROM %s_counter", r->table);
    return itest_pg_int64(r->conn, sql);
}

static void assert_consumer_alive(eo_run *r)
{
    int status;
    if (waitpid(r->consumer, &status, WNOHANG) == r->consumer)
        fail_msg("consumer exited unexpectedly (status %d); see %s", status, r->log_path);
    if (r->rival > 0 && waitpid(r->rival, &status, WNOHANG) == r->rival)
        fail_msg("rival consumer exited unexpectedly (status %d); see %s", status,
                 r->rival_log_path);
}

static void wait_for_counter_above(eo_run *r, int64_t target)
{
    for (int waited = 0; counter_value(r) <= target; waited += 50) {
        assert_consumer_alive(r);
        if (waited > WAIT_LIMIT_MS)
            fail_msg("no progress past %lld; see %s", (long long)target, r->log_path);
        itest_sleep_ms(50);
    }
}

static void wait_until_all_consumed(eo_run *r)
{
    int64_t total = r->valid + r->malformed + r->poison;
    for (int waited = 0; stored_offsets_total(r) < total; waited += 100) {
        assert_consumer_alive(r);
        if (waited > WAIT_LIMIT_MS)
            fail_msg("stored offsets cover %lld of %lld records; see %s",
                     (long long)stored_offsets_total(r), (long long)total, r->log_path);
        itest_sleep_ms(100);
    }
    assert_int_equal(stored_offsets_total(r), total);
}

static void stop_consumer_gracefully(eo_run *r)
{
    kill(r->consumer, SIGTERM);
    assert_int_equal(itest_wait(r->consumer), 0);
}

static void assert_applied_exactly_once(eo_run *r)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s_applied", r->table);
    assert_int_equal(itest_pg_int64(r->conn, sql), r->valid);
    snprintf(sql, sizeof sql, "SELECT count(DISTINCT event_id) FROM %s_applied", r->table);
    assert_int_equal(itest_pg_int64(r->conn, sql), r->valid);
    snprintf(sql, sizeof sql,
             "SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM %s_applied", r->table);
    assert_int_equal(itest_pg_int64(r->conn, sql), r->valid);
    assert_int_equal(counter_value(r), r->valid);
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
        size_t mark = strlen(MALFORMED_MARK);
        if (strcmp(dl->error_code, "decode_error") == 0 && dl->original_value.len > mark &&
            memcmp(dl->original_value.data, MALFORMED_MARK, mark) == 0)
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
static void assert_dead_letters(eo_run *r)
{
    dlq_seen seen = {.topic = r->topic, .stride = r->valid + r->malformed + r->poison};
    seen.by_offset = calloc((size_t)(6 * seen.stride), 1);
    itest_consume_all(r->dlq, on_dead_letter, &seen);
    free(seen.by_offset);
    assert_int_equal(seen.wrong, 0);
    assert_int_equal(seen.malformed, r->malformed);
    assert_int_equal(seen.poison, r->poison);
}

static void teardown_run(eo_run *r)
{
    drop_tables(r);
    PQfinish(r->conn);
}

static void test_survives_repeated_sigkill(void **state)
{
    (void)state;
    eo_run r;
    setup_run(&r, 100000, 50, 20);
    start_consumer(&r);
    int kills = 0;
    while (kills < 5) {
        /* Let it make some progress, then kill it at a random moment. */
        wait_for_counter_above(&r, counter_value(&r) + itest_random(1000, 8000));
        itest_sleep_ms(itest_random(0, 50));
        assert_true(stored_offsets_total(&r) < r.valid);
        kill(r.consumer, SIGKILL);
        assert_int_equal(itest_wait(r.consumer), 128 + SIGKILL);
        kills++;
        start_consumer(&r);
    }
    wait_until_all_consumed(&r);
    stop_consumer_gracefully(&r);
    assert_applied_exactly_once(&r);
    assert_dead_letters(&r);
    teardown_run(&r);
}

static void test_survives_postgres_restart(void **state)
{
    (void)state;
    eo_run r;
    setup_run(&r, 60000, 10, 5);
    start_consumer(&r);
    wait_for_counter_above(&r, 5000);
    itest_stack("stop-pg");
    itest_sleep_ms(2000);
    assert_consumer_alive(&r);
    itest_stack("start-pg");
    wait_until_all_consumed(&r);
    stop_consumer_gracefully(&r);
    assert_applied_exactly_once(&r);
    assert_dead_letters(&r);
    teardown_run(&r);
}

/* A second consumer in Kafka group <group>-rival whose offsets live under
 * <group> in kafka_offsets: it owns every partition the first one owns. */
static void start_rival(eo_run *r)
{
    char rival_group[96];
    snprintf(rival_group, sizeof rival_group, "%s-rival", r->group);
    snprintf(r->rival_log_path, sizeof r->rival_log_path, "%s.rival", r->log_path);
    char *argv[] = {(char *)itest_program("eo_counter_consumer"), rival_group, r->topic, r->dlq,
                    r->table, NULL};
    setenv("EO_COUNTER_OFFSETS_GROUP", r->group, 1);
    r->rival = itest_spawn(argv, r->rival_log_path);
    unsetenv("EO_COUNTER_OFFSETS_GROUP");
}

/* Record every committed kafka_offsets update of r's group that moves
 * next_offset backwards in <table>_regressions (the trigger's insert rolls
 * back with a transaction that rolls back). */
static void watch_offset_regressions(eo_run *r)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "CREATE TABLE %s_regressions (kafka_partition int, old_next bigint, "
             "new_next bigint);"
             "CREATE FUNCTION %s_watch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
             "IF NEW.next_offset < OLD.next_offset THEN INSERT INTO %s_regressions VALUES "
             "(NEW.partition, OLD.next_offset, NEW.next_offset); END IF; RETURN NEW; END $$;"
             "CREATE TRIGGER %s_watch BEFORE UPDATE ON kafka_offsets FOR EACH ROW "
             "WHEN (NEW.group_id = '%s') EXECUTE FUNCTION %s_watch();",
             r->table, r->table, r->table, r->table, r->group, r->table);
    itest_pg_exec(r->conn, sql);
}

static int64_t offset_regressions(eo_run *r)
{
    return itest_pg_int64f(r->conn, "SELECT count(*) FROM %s_regressions", r->table);
}

static void unwatch_offset_regressions(eo_run *r)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "DROP TRIGGER %s_watch ON kafka_offsets; DROP FUNCTION %s_watch(); "
             "DROP TABLE %s_regressions;",
             r->table, r->table, r->table);
    itest_pg_exec(r->conn, sql);
}

static void test_two_owners_of_one_partition_apply_each_record_once(void **state)
{
    (void)state;
    eo_run r;
    setup_run(&r, 60000, 10, 5);
    watch_offset_regressions(&r);
    start_consumer(&r);
    start_rival(&r);
    wait_until_all_consumed(&r);
    stop_consumer_gracefully(&r);
    kill(r.rival, SIGTERM);
    assert_int_equal(itest_wait(r.rival), 0);
    /* The race really happened: someone lost a compare-and-set. */
    assert_true(itest_file_contains(r.log_path, "another consumer moved it") ||
                itest_file_contains(r.rival_log_path, "another consumer moved it"));
    printf("two owners: %lld rows applied (%lld distinct) for %d records, %lld offset "
           "regressions\n",
           (long long)itest_pg_int64f(r.conn, "SELECT count(*) FROM %s_applied", r.table),
           (long long)itest_pg_int64f(r.conn, "SELECT count(DISTINCT event_id) FROM %s_applied",
                                      r.table),
           r.valid, (long long)offset_regressions(&r));
    assert_int_equal(stored_offsets_total(&r), r.valid + r.malformed + r.poison);
    assert_int_equal(offset_regressions(&r), 0);
    assert_applied_exactly_once(&r);
    assert_dead_letters(&r);
    unwatch_offset_regressions(&r);
    teardown_run(&r);
}

/* Make every session's next transaction read-only (or writable again), as
 * a primary demoted under a running service would. The caller's own
 * session keeps writing: its session-level setting outranks the file. */
static void set_server_read_only(PGconn *conn, int on)
{
    itest_pg_exec(conn, "SET default_transaction_read_only = off");
    itest_pg_exec(conn, on ? "ALTER SYSTEM SET default_transaction_read_only = on"
                           : "ALTER SYSTEM RESET default_transaction_read_only");
    itest_pg_exec(conn, "SELECT pg_reload_conf()");
}

/* Teardown: later tests need a writable server even if this one failed. */
static int restore_writable_server(void **state)
{
    (void)state;
    PGconn *conn = itest_pg_connect();
    set_server_read_only(conn, 0);
    PQfinish(conn);
    return 0;
}

static void wait_for_log(eo_run *r, const char *text)
{
    for (int waited = 0; !itest_file_contains(r->log_path, text); waited += 50) {
        assert_consumer_alive(r);
        if (waited > WAIT_LIMIT_MS)
            fail_msg("the consumer never logged '%s'; see %s", text, r->log_path);
        itest_sleep_ms(50);
    }
}

static void test_survives_the_database_turning_read_only(void **state)
{
    (void)state;
    eo_run r;
    setup_run(&r, 60000, 10, 5);
    start_consumer(&r);
    wait_for_counter_above(&r, 5000);
    set_server_read_only(r.conn, 1);
    wait_for_log(&r, "[25006]");
    /* Let it retry against the read-only server for a while. */
    itest_sleep_ms(3000);
    assert_consumer_alive(&r);
    set_server_read_only(r.conn, 0);
    wait_until_all_consumed(&r);
    stop_consumer_gracefully(&r);
    assert_applied_exactly_once(&r);
    assert_dead_letters(&r);
    /* It left the read-only session, and the new one was refused. */
    assert_true(itest_file_contains(r.log_path, "session is read-only"));
    teardown_run(&r);
}

static void test_survives_kafka_restart(void **state)
{
    (void)state;
    eo_run r;
    setup_run(&r, 60000, 10, 5);
    start_consumer(&r);
    wait_for_counter_above(&r, 5000);
    itest_stack("restart-kafka");
    wait_until_all_consumed(&r);
    stop_consumer_gracefully(&r);
    assert_applied_exactly_once(&r);
    assert_dead_letters(&r);
    teardown_run(&r);
}

typedef struct big_seen {
    const uint8_t *value;
    size_t len;
    int found;
} big_seen;

static void on_big_dead_letter(void *ctx, const rd_kafka_message_t *m)
{
    big_seen *b = ctx;
    Blazz__V1__DeadLetter *dl = blazz__v1__dead_letter__unpack(NULL, m->len, m->payload);
    assert_non_null(dl);
    if (dl->original_value_size == (int64_t)b->len) {
        b->found++;
        assert_string_equal(dl->error_code, "decode_error");
        itest_assert_value_cut(dl, b->value, b->len);
        assert_true(m->len <= BZ_KAFKA_RECORD_MAX_BYTES);
    }
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
}

/* An undecodable record so close to the record limit that its dead letter
 * cannot hold it whole: the dead letter keeps its start, size and hash, and
 * the valid records published after it are applied. */
static void test_record_near_the_limit_is_dead_lettered_cut(void **state)
{
    (void)state;
    eo_run r;
    setup_run(&r, 1000, 0, 0);
    /* As large as a producer may write: a dead letter adds a few hundred bytes. */
    size_t len = BZ_KAFKA_RECORD_MAX_BYTES - 100;
    uint8_t *big = malloc(len);
    memcpy(big, MALFORMED_MARK, strlen(MALFORMED_MARK));
    for (size_t i = strlen(MALFORMED_MARK); i < len; i++)
        big[i] = (uint8_t)(i % 253);
    bz_producer *p = itest_producer();
    bz_error err;
    if (bz_producer_send(p, r.topic, 0, "big", 3, big, len, NULL, 0, NULL, &err) != BZ_OK)
        fail_msg("produce the big record: %s", err.msg);
    for (int i = 0; i < 500; i++) {
        char event_id[128];
        snprintf(event_id, sizeof event_id, "%s-after-%d", r.table, i);
        produce_envelope(p, r.topic, event_id, i);
    }
    if (bz_producer_flush(p, 60000, &err) != BZ_OK)
        fail_msg("flush: %s", err.msg);
    bz_producer_free(p, 1000);
    r.valid += 500;
    r.malformed = 1;

    start_consumer(&r);
    wait_until_all_consumed(&r);
    stop_consumer_gracefully(&r);
    assert_applied_exactly_once(&r);
    assert_dead_letters(&r);
    big_seen b = {.value = big, .len = len};
    itest_consume_all(r.dlq, on_big_dead_letter, &b);
    assert_true(b.found >= 1);
    free(big);
    teardown_run(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_near_the_limit_is_dead_lettered_cut),
        cmocka_unit_test(test_survives_repeated_sigkill),
        cmocka_unit_test(test_survives_postgres_restart),
        cmocka_unit_test(test_survives_kafka_restart),
        cmocka_unit_test(test_two_owners_of_one_partition_apply_each_record_once),
        cmocka_unit_test_teardown(test_survives_the_database_turning_read_only,
                                  restore_writable_server),
    };
    return cmocka_run_group_tests_name("exactly-once consumer", tests, NULL, NULL);
}
