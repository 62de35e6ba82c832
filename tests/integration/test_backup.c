/*
 * test_backup.c - the local stack's backups (scripts/lib/pg_backup.sh,
 * ARCHITECTURE.md §6.5), with pgBackRest, on a PostgreSQL of the test's
 * own (own_pg.h), so a restore stops nobody else's server:
 *
 *  - restores_to_a_point_in_time: the migrated database backed up (the
 *    first backup enables WAL archiving and is full); a row written, the
 *    moment T noted, another row written; `stack.sh restore T` brings back
 *    the first row and not the second, records the restore fence
 *    (restore_fences, its offsets from the shared Kafka) and the server
 *    takes writes again;
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
 *    passes;
 *  - refuses_a_restore_past_kafkas_retention: at T the database had read
 *    offset 2 of a chat.sync partition whose records before offset 5 were
 *    deleted since, as retention deletes them: `stack.sh restore T` checks
 *    a scratch copy first and refuses (exit 3, naming the partition) with
 *    the database untouched (the row written after T still there, no
 *    fence); with BLAZZ_RESTORE_IGNORE_RETENTION=1 it restores to T and
 *    records the fence all the same;
 *  - restores_from_the_offsite_repository: backups enabled with an offsite
 *    repository, the shared stack's S3 server over TLS (s3_server.sh):
 *    the backup and the WAL go to both, backup-verify restores the newest
 *    of each; then the local repository is lost (its folder removed), and
 *    `BLAZZ_BACKUP_REPO=offsite stack.sh restore T` restores from the
 *    bucket alone: the row before T back, the one after it not; the local
 *    repository is made again, so the next backup is taken in both;
 *  - fence_waits_for_the_data_not_the_marker: three records written in
 *    one Kafka transaction end their partition at high watermark 4 (the
 *    commit marker is offset 3); `stack.sh restore-fence` (the restore's
 *    last step) records 3 for it, in a database of the program's own.
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
#include "own_pg.h"

typedef struct backup_fx {
    own_pg pg;
    PGconn *conn;
} backup_fx;

static backup_fx bx;

static void connect_db(void)
{
    char dsn[160];
    own_pg_dsn(&bx.pg, "postgres", dsn, sizeof dsn);
    PQfinish(bx.conn);
    bx.conn = PQconnectdb(dsn);
    if (PQstatus(bx.conn) != CONNECTION_OK)
        fail_msg("connect %s: %s", dsn, PQerrorMessage(bx.conn));
}

/* db/migrations as links in a folder of the test's, for a test to add a
 * migration to. */
static void link_migrations(void)
{
    char source[600];
    snprintf(bx.pg.migrations, sizeof bx.pg.migrations, "%s/migrations", bx.pg.state);
    snprintf(source, sizeof source, "%s/db/migrations", itest_repo_dir("db/migrations"));
    assert_int_equal(mkdir(bx.pg.migrations, 0755), 0);
    DIR *d = opendir(source);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 4, ".sql") != 0)
            continue;
        char from[900], to[900];
        snprintf(from, sizeof from, "%s/%s", source, e->d_name);
        snprintf(to, sizeof to, "%s/%s", bx.pg.migrations, e->d_name);
        assert_int_equal(symlink(from, to), 0);
    }
    closedir(d);
}

static int setup(void **state)
{
    (void)state;
    memset(&bx, 0, sizeof bx);
    own_pg_init(&bx.pg, "/tmp/itest-backup");
    link_migrations();
    own_pg_stack_ok(&bx.pg, "start-pg", NULL);
    own_pg_stack_ok(&bx.pg, "migrate", NULL);
    own_pg_stack_ok(&bx.pg, "backup", NULL);
    assert_int_equal(own_pg_log_count(&bx.pg, "backups enabled"), 1);
    connect_db();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(bx.conn);
    bx.conn = NULL;
    own_pg_remove(&bx.pg);
    return 0;
}

/* The offsite repository's settings (pg_backup.sh) for the stack.sh runs
 * that follow: the shared stack's S3 server, over TLS. */
static void name_the_offsite_repository(int on)
{
    static const char *const names[][2] = {
        {"BLAZZ_BACKUP_S3_ENDPOINT", "BLAZZ_S3_TLS_ENDPOINT"},
        {"BLAZZ_BACKUP_S3_CA_FILE", "BLAZZ_S3_CA_FILE"},
        {"BLAZZ_BACKUP_S3_ACCESS_KEY_FILE", "BLAZZ_MEDIA_S3_ACCESS_KEY_FILE"},
        {"BLAZZ_BACKUP_S3_SECRET_KEY_FILE", "BLAZZ_MEDIA_S3_SECRET_KEY_FILE"},
        {"BLAZZ_BACKUP_S3_REGION", "BLAZZ_MEDIA_S3_REGION"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (on)
            setenv(names[i][0], itest_env(names[i][1]), 1);
        else
            unsetenv(names[i][0]);
    }
    if (on)
        setenv("BLAZZ_BACKUP_S3_BUCKET", "blazz-backups", 1);
    else
        unsetenv("BLAZZ_BACKUP_S3_BUCKET");
}

static int setup_with_offsite(void **state)
{
    name_the_offsite_repository(1);
    return setup(state);
}

static int teardown_with_offsite(void **state)
{
    name_the_offsite_repository(0);
    unsetenv("BLAZZ_BACKUP_REPO");
    return teardown(state);
}

/* A row 'before T', the moment T (returned, heap), a row 'after T', the
 * WAL holding it archived; the connection closed for a restore. */
static char *rows_around_a_moment(void)
{
    itest_pg_exec(bx.conn, "INSERT INTO workspaces (name) VALUES ('before T')");
    itest_sleep_ms(1100);
    char *t = itest_pg_textf(bx.conn, "SELECT now()::text");
    itest_sleep_ms(1100);
    itest_pg_exec(bx.conn, "INSERT INTO workspaces (name) VALUES ('after T')");
    /* the segment holding the second row goes to the archive now */
    itest_pg_exec(bx.conn, "SELECT pg_switch_wal()");
    PQfinish(bx.conn);
    bx.conn = NULL;
    return t;
}

/* How many workspaces rows are named name. */
static int64_t rows_named(const char *name)
{
    return itest_pg_int64f(bx.conn, "SELECT count(*) FROM workspaces WHERE name = '%s'", name);
}

static void restores_to_a_point_in_time(void **state)
{
    (void)state;
    char *t = rows_around_a_moment();
    own_pg_stack_ok(&bx.pg, "restore", t);
    assert_int_equal(own_pg_log_count(&bx.pg, "restored to"), 1);
    assert_int_equal(own_pg_log_count(&bx.pg, "fence recorded"), 1);
    connect_db();
    /* the fence meta-sender waits behind: the restore point, unlifted */
    assert_int_equal(itest_pg_int64f(bx.conn, "SELECT count(*) FROM restore_fences WHERE "
                                              "restored_to = '%s' AND lifted_at IS NULL", t),
                     1);
    assert_int_equal(rows_named("before T"), 1);
    assert_int_equal(rows_named("after T"), 0);
    itest_pg_exec(bx.conn, "INSERT INTO workspaces (name) VALUES ('after the restore')");
    free(t);
}

/* The local repository's folder gone, as with the host that held it. */
static void lose_the_local_repository(void)
{
    char repo[400];
    snprintf(repo, sizeof repo, "%s/pg/backup/repo", bx.pg.state);
    itest_remove_tree(repo);
    struct stat st;
    assert_int_not_equal(stat(repo, &st), 0);
}

static void restores_from_the_offsite_repository(void **state)
{
    (void)state;
    assert_int_equal(own_pg_log_count(&bx.pg, "and offsite to https://"), 1);
    assert_int_equal(own_pg_log_count(&bx.pg, "(enabled), offsite repository"), 1);
    own_pg_stack_ok(&bx.pg, "backup-verify", NULL);
    assert_int_equal(own_pg_log_count(&bx.pg, "(local): restored, started and read"), 1);
    assert_int_equal(own_pg_log_count(&bx.pg, "(offsite): restored, started and read"), 1);
    char *t = rows_around_a_moment();
    lose_the_local_repository();
    setenv("BLAZZ_BACKUP_REPO", "offsite", 1);
    own_pg_stack_ok(&bx.pg, "restore", t);
    assert_int_equal(own_pg_log_count(&bx.pg, "from the offsite repository"), 1);
    connect_db();
    assert_int_equal(rows_named("before T"), 1);
    assert_int_equal(rows_named("after T"), 0);
    unsetenv("BLAZZ_BACKUP_REPO");
    own_pg_stack_ok(&bx.pg, "backup", NULL);
    assert_int_equal(own_pg_log_count(&bx.pg, "(make backup), local repository"), 1);
    assert_int_equal(own_pg_log_count(&bx.pg, "(make backup), offsite repository"), 1);
    free(t);
}

static void verifies_a_backup_by_restoring_it(void **state)
{
    (void)state;
    own_pg_stack_ok(&bx.pg, "backup-verify", NULL);
    assert_int_equal(own_pg_log_count(&bx.pg, "verified"), 1);
    char scratch[400];
    snprintf(scratch, sizeof scratch, "%s/pg/backup/verify", bx.pg.state);
    struct stat st;
    assert_int_not_equal(stat(scratch, &st), 0);
}

static void backs_up_before_a_migration(void **state)
{
    (void)state;
    int64_t applied = itest_pg_int64f(bx.conn, "SELECT count(*) FROM schema_migrations");
    char path[512];
    snprintf(path, sizeof path, "%s/%04lld_backup_marker.sql", bx.pg.migrations,
             (long long)applied + 1);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("CREATE TABLE backup_marker (id int);\n", f);
    fclose(f);
    own_pg_stack_ok(&bx.pg, "migrate", NULL);
    assert_int_equal(own_pg_log_count(&bx.pg, "(pre-migration: 1 to apply)"), 1);
    assert_int_equal(itest_pg_int64f(bx.conn, "SELECT count(*) FROM schema_migrations"),
                     applied + 1);
    /* nothing pending: no backup */
    own_pg_stack_ok(&bx.pg, "migrate", NULL);
    assert_int_equal(own_pg_log_count(&bx.pg, "pre-migration"), 1);
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

/* Topics of their own under a new prefix starting with tag: their
 * chat.sync into topic (128 bytes), a consumer group's name into group (96
 * bytes), the prefix into prefix (64 bytes). */
static void topics_of_our_own(const char *tag, char *prefix, char *topic, char *group)
{
    itest_unique(tag, prefix, 64);
    itest_topics_create(prefix, 1);
    snprintf(topic, 128, "%schat.sync", prefix);
    snprintf(group, 96, "%sgroup", prefix);
}

static void names_what_retention_took(void **state)
{
    (void)state;
    char prefix[64], topic[128], group[96], log[200];
    topics_of_our_own("itest-ret-", prefix, topic, group);
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

/* The check before anything is changed (issue 55): the restore point's
 * offsets, read from a scratch copy of the backup restored to T, against
 * what Kafka still holds. */
static void refuses_a_restore_past_kafkas_retention(void **state)
{
    (void)state;
    char prefix[64], topic[128], group[96], sql[400];
    topics_of_our_own("itest-refuse-", prefix, topic, group);
    snprintf(sql, sizeof sql,
             "INSERT INTO kafka_offsets (group_id, topic, partition, next_offset) VALUES ('%s', "
             "'%s', 0, 2)",
             group, topic);
    itest_pg_exec(bx.conn, sql);
    char *t = rows_around_a_moment();
    /* since T, retention took the partition's records before offset 5 */
    produce_then_delete(topic, 10, 5);

    assert_int_equal(own_pg_stack(&bx.pg, "restore", t, NULL), 3);
    char expect[300];
    snprintf(expect, sizeof expect, "%s %s[0]: restored offset 2, first record kept 5", group,
             topic);
    assert_int_equal(own_pg_log_count(&bx.pg, expect), 1);
    assert_int_equal(own_pg_log_count(&bx.pg, "refused, nothing was changed"), 1);
    assert_int_equal(own_pg_log_count(&bx.pg, "restored to"), 0);
    connect_db();
    assert_int_equal(rows_named("after T"), 1);
    assert_int_equal(itest_pg_int64f(bx.conn, "SELECT count(*) FROM restore_fences"), 0);
    PQfinish(bx.conn);
    bx.conn = NULL;

    /* the operator accepts losing those effects: restored, fence recorded */
    setenv("BLAZZ_RESTORE_IGNORE_RETENTION", "1", 1);
    int rc = own_pg_stack(&bx.pg, "restore", t, NULL);
    unsetenv("BLAZZ_RESTORE_IGNORE_RETENTION");
    assert_int_equal(rc, 0);
    assert_int_equal(own_pg_log_count(&bx.pg, "restored to"), 1);
    assert_int_equal(own_pg_log_count(&bx.pg, "fence recorded"), 1);
    connect_db();
    assert_int_equal(rows_named("after T"), 0);
    assert_int_equal(rows_named("before T"), 1);
    assert_int_equal(itest_pg_int64f(bx.conn, "SELECT count(*) FROM restore_fences WHERE "
                                              "restored_to = '%s' AND lifted_at IS NULL", t),
                     1);
    free(t);
}

/* n records to partition 0 of topic in one Kafka transaction: the
 * partition then ends with its commit marker. */
static void produce_in_a_transaction(const char *topic, int n)
{
    bz_kafka_settings settings = {.brokers = itest_env("BLAZZ_KAFKA_BROKERS"),
                                  .client_id = "itest-data-end"};
    char txid[64];
    itest_unique("itest-data-end-", txid, sizeof txid);
    const char *defaults[] = {"transactional.id", txid, NULL};
    rd_kafka_conf_t *conf;
    bz_error err;
    char errstr[256];
    if (bz_kafka_conf_new(&settings, defaults, &conf, &err) != BZ_OK)
        fail_msg("producer config: %s", err.msg);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    assert_null(rd_kafka_init_transactions(rk, 30000));
    assert_null(rd_kafka_begin_transaction(rk));
    for (int i = 0; i < n; i++)
        assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_VALUE((void *)"x", 1), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_null(rd_kafka_commit_transaction(rk, 30000));
    rd_kafka_destroy(rk);
}

/* The restore's fence must wait for where the data ends, not for the high
 * watermark: a consumer that applied every record of a partition written
 * in transactions stores the offset before the commit marker, and a fence
 * at the watermark never lifts (it did not, in the drill). The fence is
 * recorded in a database of this program's own: one in the shared database
 * would hold every other test's Meta sends. */
static void fence_waits_for_the_data_not_the_marker(void **state)
{
    (void)state;
    char prefix[64], topic[128], group[96], log[200];
    topics_of_our_own("itest-end-", prefix, topic, group);
    snprintf(log, sizeof log, "/tmp/%sfence.log", prefix);
    produce_in_a_transaction(topic, 3);
    itest_pg_use_own_database("itest_fence", log);
    PGconn *db = itest_pg_connect();
    char *row = itest_pg_textf(db, "INSERT INTO kafka_offsets (group_id, topic, partition, "
                                   "next_offset) VALUES ('%s', '%s', 0, 1) RETURNING group_id",
                               group, topic);
    free(row);
    char *argv[] = {(char *)itest_env("BLAZZ_STACK_SCRIPT"), "restore-fence",
                    (char *)itest_env("BLAZZ_PG_DSN"), "the test's T", NULL};
    assert_int_equal(itest_wait(itest_spawn(argv, log)), 0);
    assert_int_equal(itest_pg_int64f(db, "SELECT count(*) FROM restore_fences WHERE "
                                         "restored_to = 'the test''s T' AND lifted_at IS NULL"),
                     1);
    assert_int_equal(itest_pg_int64f(db, "SELECT end_offset FROM restore_fence_offsets WHERE "
                                         "group_id = '%s' AND topic = '%s' AND partition = 0",
                                     group, topic),
                     3);
    PQfinish(db);
    itest_pg_leave_own_database();
    remove(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(restores_to_a_point_in_time, setup, teardown),
        cmocka_unit_test_setup_teardown(verifies_a_backup_by_restoring_it, setup, teardown),
        cmocka_unit_test_setup_teardown(backs_up_before_a_migration, setup, teardown),
        cmocka_unit_test(names_what_retention_took),
        cmocka_unit_test_setup_teardown(refuses_a_restore_past_kafkas_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(restores_from_the_offsite_repository,
                                        setup_with_offsite, teardown_with_offsite),
        cmocka_unit_test(fence_waits_for_the_data_not_the_marker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
