/*
 * test_backup.c - the local stack's backups (scripts/lib/pg_backup.sh,
 * ARCHITECTURE.md §6.5), with pgBackRest, on a PostgreSQL of the test's
 * own (its own state folder and port, started by scripts/stack.sh), so a
 * restore stops nobody else's server:
 *
 *  - restores_to_a_point_in_time: the migrated database backed up (the
 *    first backup enables WAL archiving and is full); a row written, the
 *    moment T noted, another row written; `stack.sh restore T` brings back
 *    the first row and not the second, and the server takes writes again;
 *  - verifies_a_backup_by_restoring_it: `stack.sh backup-verify` restores
 *    the newest backup into a scratch folder, starts it on a port of its
 *    own and reads its migrations; the scratch copy is gone afterwards;
 *  - backs_up_before_a_migration: with one migration pending, `stack.sh
 *    migrate` takes an incremental backup annotated "pre-migration" before
 *    it applies it; with none pending, no backup;
 *  - names_what_retention_took (the shared stack's Kafka, this program's
 *    database): a partition whose records before offset 5 were deleted, as
 *    retention deletes them, and a restored kafka_offsets row expecting
 *    offset 2: `stack.sh check-retention` (the restore's last step) exits
 *    3 naming the group, the partition and both offsets; expecting 7, it
 *    passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <unistd.h>

#include "itest.h"
#include "kafka/producer.h"

typedef struct backup_fx {
    char state[256], log[320], migrations[300];
    int port;
    PGconn *conn;
} backup_fx;

static backup_fx bx;

/* stack.sh ACTION [ARG] on the test's own PostgreSQL; its exit status. */
static int stack(const char *action, const char *arg)
{
    char state_env[300], port_env[64], migrations_env[340];
    snprintf(state_env, sizeof state_env, "BLAZZ_STATE_DIR=%s", bx.state);
    snprintf(port_env, sizeof port_env, "BLAZZ_PG_PORT=%d", bx.port);
    snprintf(migrations_env, sizeof migrations_env, "BLAZZ_MIGRATIONS_DIR=%s", bx.migrations);
    const char *env[] = {state_env, port_env, migrations_env, "BLAZZ_PG_STANDBY=0", NULL};
    char *argv[] = {(char *)itest_env("BLAZZ_STACK_SCRIPT"), (char *)action, (char *)arg, NULL};
    return itest_wait(itest_spawn_env(argv, env, bx.log));
}

static void stack_ok(const char *action, const char *arg)
{
    int rc = stack(action, arg);
    if (rc != 0)
        fail_msg("stack.sh %s %s exited %d (see %s)", action, arg ? arg : "", rc, bx.log);
}

static void connect_db(void)
{
    char dsn[160];
    snprintf(dsn, sizeof dsn, "postgresql://postgres@127.0.0.1:%d/blazz", bx.port);
    PQfinish(bx.conn);
    bx.conn = PQconnectdb(dsn);
    if (PQstatus(bx.conn) != CONNECTION_OK)
        fail_msg("connect %s: %s", dsn, PQerrorMessage(bx.conn));
}

/* How many times the log says text. */
static int log_count(const char *text)
{
    FILE *f = fopen(bx.log, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* db/migrations as links in a folder of the test's, for a test to add a
 * migration to. */
static void link_migrations(void)
{
    char source[600];
    snprintf(bx.migrations, sizeof bx.migrations, "%s/migrations", bx.state);
    snprintf(source, sizeof source, "%s/db/migrations", itest_repo_dir("db/migrations"));
    assert_int_equal(mkdir(bx.migrations, 0755), 0);
    DIR *d = opendir(source);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 4, ".sql") != 0)
            continue;
        char from[900], to[900];
        snprintf(from, sizeof from, "%s/%s", source, e->d_name);
        snprintf(to, sizeof to, "%s/%s", bx.migrations, e->d_name);
        assert_int_equal(symlink(from, to), 0);
    }
    closedir(d);
}

static int setup(void **state)
{
    (void)state;
    memset(&bx, 0, sizeof bx);
    itest_unique("/tmp/itest-backup", bx.state, sizeof bx.state);
    assert_int_equal(mkdir(bx.state, 0755), 0);
    snprintf(bx.log, sizeof bx.log, "%s/stack.log", bx.state);
    bx.port = itest_free_port();
    link_migrations();
    stack_ok("start-pg", NULL);
    stack_ok("migrate", NULL);
    stack_ok("backup", NULL);
    assert_int_equal(log_count("backups enabled"), 1);
    connect_db();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(bx.conn);
    bx.conn = NULL;
    stack("stop-pg", NULL);
    itest_remove_tree(bx.state);
    return 0;
}

static void restores_to_a_point_in_time(void **state)
{
    (void)state;
    itest_pg_exec(bx.conn, "INSERT INTO workspaces (name) VALUES ('before T')");
    itest_sleep_ms(1100);
    char *t = itest_pg_textf(bx.conn, "SELECT now()::text");
    itest_sleep_ms(1100);
    itest_pg_exec(bx.conn, "INSERT INTO workspaces (name) VALUES ('after T')");
    /* the segment holding the second row goes to the archive now */
    itest_pg_exec(bx.conn, "SELECT pg_switch_wal()");
    PQfinish(bx.conn);
    bx.conn = NULL;
    stack_ok("restore", t);
    assert_int_equal(log_count("restored to"), 1);
    connect_db();
    assert_int_equal(itest_pg_int64f(bx.conn, "SELECT count(*) FROM workspaces WHERE name = "
                                              "'before T'"),
                     1);
    assert_int_equal(itest_pg_int64f(bx.conn, "SELECT count(*) FROM workspaces WHERE name = "
                                              "'after T'"),
                     0);
    itest_pg_exec(bx.conn, "INSERT INTO workspaces (name) VALUES ('after the restore')");
    free(t);
}

static void verifies_a_backup_by_restoring_it(void **state)
{
    (void)state;
    stack_ok("backup-verify", NULL);
    assert_int_equal(log_count("verified"), 1);
    char scratch[400];
    snprintf(scratch, sizeof scratch, "%s/pg/backup/verify", bx.state);
    struct stat st;
    assert_int_not_equal(stat(scratch, &st), 0);
}

static void backs_up_before_a_migration(void **state)
{
    (void)state;
    int64_t applied = itest_pg_int64f(bx.conn, "SELECT count(*) FROM schema_migrations");
    char path[512];
    snprintf(path, sizeof path, "%s/%04lld_backup_marker.sql", bx.migrations,
             (long long)applied + 1);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("CREATE TABLE backup_marker (id int);\n", f);
    fclose(f);
    stack_ok("migrate", NULL);
    assert_int_equal(log_count("(pre-migration: 1 to apply)"), 1);
    assert_int_equal(itest_pg_int64f(bx.conn, "SELECT count(*) FROM schema_migrations"),
                     applied + 1);
    /* nothing pending: no backup */
    stack_ok("migrate", NULL);
    assert_int_equal(log_count("pre-migration"), 1);
}

/* ---- Kafka's retention and the restore window ---------------------------------------- */

/* Records 0..n-1 on partition 0 of topic, then Kafka told to delete those
 * before offset `before`, as retention would: the partition's first kept
 * record is then `before`. */
static void produce_then_delete(const char *topic, int n, int64_t before)
{
    bz_kafka_settings settings = {.brokers = itest_env("BLAZZ_KAFKA_BROKERS"),
                                  .client_id = "itest-retention"};
    rd_kafka_conf_t *conf;
    bz_error err;
    char errstr[256];
    if (bz_kafka_conf_new(&settings, NULL, &conf, &err) != BZ_OK)
        fail_msg("producer config: %s", err.msg);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    for (int i = 0; i < n; i++)
        assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_VALUE((void *)"x", 1), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offsets, topic, 0)->offset = before;
    rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(offsets);
    rd_kafka_topic_partition_list_destroy(offsets);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteRecords(rk, &del, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    assert_non_null(ev);
    if (rd_kafka_event_error(ev))
        fail_msg("delete records of %s: %s", topic, rd_kafka_event_error_string(ev));
    const rd_kafka_topic_partition_list_t *done =
        rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
    assert_int_equal(done->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_event_destroy(ev);
    rd_kafka_DeleteRecords_destroy(del);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

/* stack.sh check-retention on the shared stack, reading this program's
 * database: its exit status, its output in log. */
static int check_retention(const char *log)
{
    char *argv[] = {(char *)itest_env("BLAZZ_STACK_SCRIPT"), "check-retention",
                    (char *)itest_env("BLAZZ_PG_DSN"), NULL};
    return itest_wait(itest_spawn(argv, log));
}

static void names_what_retention_took(void **state)
{
    (void)state;
    char prefix[64], topic[128], group[96], log[200];
    itest_unique("itest-ret-", prefix, sizeof prefix);
    itest_topics_create(prefix, 1);
    snprintf(topic, sizeof topic, "%schat.sync", prefix);
    snprintf(group, sizeof group, "%sgroup", prefix);
    snprintf(log, sizeof log, "/tmp/%scheck.log", prefix);
    produce_then_delete(topic, 10, 5);
    PGconn *db = itest_pg_connect();
    /* a restored database whose consumer stopped at offset 2 */
    itest_pg_exec(db, "DELETE FROM kafka_offsets WHERE group_id LIKE 'itest-ret-%'");
    char *row = itest_pg_textf(db, "INSERT INTO kafka_offsets (group_id, topic, partition, "
                                   "next_offset) VALUES ('%s', '%s', 0, 2) RETURNING group_id",
                               group, topic);
    free(row);
    assert_int_equal(check_retention(log), 3);
    char expect[300];
    snprintf(expect, sizeof expect, "%s %s[0]: restored offset 2, first record kept 5", group,
             topic);
    if (!itest_file_contains(log, expect))
        fail_msg("%s does not say \"%s\"", log, expect);
    /* one that stopped at 7: what it needs is all there */
    itest_pg_exec(db, "UPDATE kafka_offsets SET next_offset = 7 WHERE group_id LIKE 'itest-ret-%'");
    assert_int_equal(check_retention(log), 0);
    assert_true(itest_file_contains(log, "every restored offset is still in its topic"));
    itest_pg_exec(db, "DELETE FROM kafka_offsets WHERE group_id LIKE 'itest-ret-%'");
    PQfinish(db);
    remove(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(restores_to_a_point_in_time, setup, teardown),
        cmocka_unit_test_setup_teardown(verifies_a_backup_by_restoring_it, setup, teardown),
        cmocka_unit_test_setup_teardown(backs_up_before_a_migration, setup, teardown),
        cmocka_unit_test(names_what_retention_took),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
