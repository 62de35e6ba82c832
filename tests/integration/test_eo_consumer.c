/*
 * test_eo_consumer.c - the exactly-once consumer survives SIGKILL and two
 * instances owning the same partitions at once without losing or
 * repeating a single record, and dead-letters what it cannot apply, and
 * nothing else. (PostgreSQL and Kafka restarts and the database turning
 * read-only are test_eo_consumer_outages.)
 *
 * Each test publishes Envelope records (plus undecodable and "poison"
 * records) to a topic of its own, runs eo_counter_consumer as a separate
 * process, disturbs it, waits until the stored offsets cover every record,
 * and then checks the effects (support/eo_itest.c): one row per valid
 * record, no event_id twice, the counter equal to the number of valid
 * records, and every bad record on the dead-letter topic with its original
 * bytes and the reason. A bad record near the record limit, which a dead
 * letter cannot wrap whole, is dead-lettered cut, with its size and
 * SHA-256, and the records after it are applied.
 *
 * Double ownership is forced honestly: a second process joins another Kafka
 * group (so the broker gives it every partition too) but keeps its offsets
 * under the first one's name in kafka_offsets (EO_COUNTER_OFFSETS_GROUP).
 * Both prefetch and race on the same compare-and-set; a trigger on
 * kafka_offsets records every committed update that moved an offset
 * backwards.
 *
 * A consumer whose group never sends it an assignment (a Java leader that
 * withholds it, WithholdingGroupLeader.java) still stops cleanly on
 * SIGTERM, where librdkafka 2.0.2 would abort destroying it.
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

#include "blazz/v1/dead_letter.pb-c.h"
#include "eo_itest.h"
#include "itest.h"
#include "kafka/limits.h"

static void test_survives_repeated_sigkill(void **state)
{
    (void)state;
    eo_run r;
    eo_run_setup(&r, 100000, 50, 20);
    eo_run_start_consumer(&r);
    int kills = 0;
    while (kills < 5) {
        /* Let it make some progress, then kill it at a random moment. */
        eo_run_wait_for_counter_above(&r, eo_run_counter(&r) + itest_random(1000, 8000));
        itest_sleep_ms(itest_random(0, 50));
        assert_true(eo_run_stored_offsets(&r) < r.valid);
        kill(r.consumer, SIGKILL);
        assert_int_equal(itest_wait(r.consumer), 128 + SIGKILL);
        kills++;
        eo_run_start_consumer(&r);
    }
    eo_run_wait_until_all_consumed(&r);
    eo_run_stop_gracefully(&r);
    eo_run_assert_applied_exactly_once(&r);
    eo_run_assert_dead_letters(&r);
    eo_run_teardown(&r);
}

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
    eo_run_setup(&r, 60000, 10, 5);
    watch_offset_regressions(&r);
    eo_run_start_consumer(&r);
    start_rival(&r);
    eo_run_wait_until_all_consumed(&r);
    eo_run_stop_gracefully(&r);
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
    assert_int_equal(eo_run_stored_offsets(&r), r.valid + r.malformed + r.poison);
    assert_int_equal(offset_regressions(&r), 0);
    eo_run_assert_applied_exactly_once(&r);
    eo_run_assert_dead_letters(&r);
    unwatch_offset_regressions(&r);
    eo_run_teardown(&r);
}

/* Make every session's next transaction read-only (or writable again), as
 * a primary demoted under a running service would. The caller's own
 * session keeps writing: its session-level setting outranks the file. */

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
    eo_run_setup(&r, 1000, 0, 0);
    /* As large as a producer may write: a dead letter adds a few hundred bytes. */
    size_t len = BZ_KAFKA_RECORD_MAX_BYTES - 100;
    uint8_t *big = malloc(len);
    memcpy(big, EO_RUN_MALFORMED_MARK, strlen(EO_RUN_MALFORMED_MARK));
    for (size_t i = strlen(EO_RUN_MALFORMED_MARK); i < len; i++)
        big[i] = (uint8_t)(i % 253);
    bz_producer *p = itest_producer();
    bz_error err;
    if (bz_producer_send(p, r.topic, 0, "big", 3, big, len, NULL, 0, NULL, &err) != BZ_OK)
        fail_msg("produce the big record: %s", err.msg);
    for (int i = 0; i < 500; i++) {
        char event_id[128];
        snprintf(event_id, sizeof event_id, "%s-after-%d", r.table, i);
        eo_run_produce_envelope(p, r.topic, event_id, i);
    }
    if (bz_producer_flush(p, 60000, &err) != BZ_OK)
        fail_msg("flush: %s", err.msg);
    bz_producer_free(p, 1000);
    r.valid += 500;
    r.malformed = 1;

    eo_run_start_consumer(&r);
    eo_run_wait_until_all_consumed(&r);
    eo_run_stop_gracefully(&r);
    eo_run_assert_applied_exactly_once(&r);
    eo_run_assert_dead_letters(&r);
    big_seen b = {.value = big, .len = len};
    itest_consume_all(r.dlq, on_big_dead_letter, &b);
    assert_true(b.found >= 1);
    free(big);
    eo_run_teardown(&r);
}

/* A Java consumer in the run's group, as its leader, that never sends the
 * assignment once another member joins (WithholdingGroupLeader.java). */
static pid_t start_withholding_leader(const eo_run *r, const char *log_path)
{
    char classpath[512], source[512];
    snprintf(classpath, sizeof classpath, "%s/*", itest_env("BLAZZ_KAFKA_LIBS"));
    snprintf(source, sizeof source, "%s/tests/integration/WithholdingGroupLeader.java",
             itest_repo_dir("tests/integration/WithholdingGroupLeader.java"));
    char *argv[] = {"/usr/bin/env", "java", "-Xmx256m", "-cp", classpath, source,
                    (char *)r->group, (char *)r->topic, NULL};
    return itest_spawn(argv, log_path);
}

static void wait_for_line(const char *path, const char *text, pid_t writer)
{
    if (!itest_file_contains_within(path, text, writer, 120000)) {
        itest_print_file(path);
        fail_msg("no \"%s\" in %s", text, path);
    }
}

/* librdkafka 2.0.2 aborts in rd_kafka_destroy when a cooperative-sticky
 * consumer has its JoinGroup answer and never a SyncGroup one (#4312): a
 * dispatcher stopped while the broker was down died so in CI. Here the
 * group's leader withholds the assignment, so the consumer stays in that
 * state for as long as the test wants; SIGTERM must still end it cleanly
 * (exit 0, nothing leaked). */
static void test_stops_cleanly_while_its_first_assignment_is_withheld(void **state)
{
    (void)state;
    eo_run r;
    eo_run_setup(&r, 10, 0, 0);
    char leader_log[300];
    snprintf(leader_log, sizeof leader_log, "%s.leader", r.log_path);
    pid_t leader = start_withholding_leader(&r, leader_log);
    wait_for_line(leader_log, "leading", leader);
    eo_run_start_consumer(&r);
    wait_for_line(leader_log, "withholding the assignment of 2 members", leader);
    kill(r.consumer, SIGTERM);
    int rc = itest_wait(r.consumer);
    kill(leader, SIGKILL);
    itest_wait(leader);
    assert_int_equal(rc, 0);
    assert_true(itest_file_contains(r.log_path, "never assigned partitions"));
    assert_int_equal(eo_run_counter(&r), 0);
    eo_run_teardown(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_near_the_limit_is_dead_lettered_cut),
        cmocka_unit_test(test_survives_repeated_sigkill),
        cmocka_unit_test(test_two_owners_of_one_partition_apply_each_record_once),
        cmocka_unit_test(test_stops_cleanly_while_its_first_assignment_is_withheld),
    };
    return cmocka_run_group_tests_name("exactly-once consumer", tests, NULL, NULL);
}
