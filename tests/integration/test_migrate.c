/*
 * test_migrate.c - the migrator against a real PostgreSQL (BLAZZ_PG_DSN).
 *
 * Each test gets a scratch database of its own (created from the DSN's
 * database, dropped afterwards) and a temporary folder of small migrations,
 * so the real schema is never touched and tests do not see each other.
 * Migrations append to an applied_log table, which shows the order in which
 * they really ran and that none ran twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg/migrate.h"

#define M1 "CREATE TABLE applied_log (id serial PRIMARY KEY, version int NOT NULL);\n" \
           "INSERT INTO applied_log (version) VALUES (1);\n"
#define M2 "CREATE TABLE items (id int PRIMARY KEY, label text);\n" \
           "INSERT INTO applied_log (version) VALUES (2);\n"
#define M3 "INSERT INTO items VALUES (1, 'one');\n" \
           "INSERT INTO applied_log (version) VALUES (3);\n"

typedef struct fixture {
    char dir[64];
    char dbname[64];
    PGconn *admin; /* on the DSN's own database: creates and drops the scratch one */
    PGconn *conn;  /* on the scratch database */
} fixture;

static PGconn *connect_to(const char *dbname)
{
    const char *dsn = getenv("BLAZZ_PG_DSN");
    const char *keys[] = {"dbname", "dbname", NULL};
    const char *values[] = {dsn, dbname, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "connect to %s: %s", dbname ? dbname : "(dsn)", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static int exec_ok(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    return ok;
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int setup(void **state)
{
    static int counter;
    if (!getenv("BLAZZ_PG_DSN")) {
        fprintf(stderr, "BLAZZ_PG_DSN is not set: this test needs a real PostgreSQL\n");
        return -1;
    }
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    *state = f;
    snprintf(f->dir, sizeof f->dir, "/tmp/bz-test-migrate-XXXXXX");
    snprintf(f->dbname, sizeof f->dbname, "bz_test_migrate_%d_%d", (int)getpid(), ++counter);
    if (!mkdtemp(f->dir) || !(f->admin = connect_to(NULL)))
        return -1;
    PQsetNoticeProcessor(f->admin, ignore_notice, NULL);
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", f->dbname);
    if (!exec_ok(f->admin, sql))
        return -1;
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", f->dbname);
    if (!exec_ok(f->admin, sql) || !(f->conn = connect_to(f->dbname)))
        return -1;
    return 0;
}

static void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    char file[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        unlink(file);
    }
    closedir(d);
    rmdir(path);
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (!f)
        return 0;
    PQfinish(f->conn);
    if (f->admin) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->dbname);
        exec_ok(f->admin, sql);
        PQfinish(f->admin);
    }
    remove_dir(f->dir);
    free(f);
    return 0;
}

static void write_migration(const fixture *f, const char *name, const char *body)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(fputs(body, out) >= 0, 1);
    assert_int_equal(fclose(out), 0);
}

static void write_first_three(const fixture *f)
{
    write_migration(f, "0001_log.sql", M1);
    write_migration(f, "0002_items.sql", M2);
    write_migration(f, "0003_items_data.sql", M3);
}

/* The single value of a one-row, one-column query, as a heap string. */
static char *query_text(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(conn));
        PQclear(res);
        fail_msg("query failed: %s", sql);
    }
    char *v = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

static long query_long(PGconn *conn, const char *sql)
{
    char *v = query_text(conn, sql);
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

static void assert_query_equals(PGconn *conn, const char *sql, const char *expected)
{
    char *v = query_text(conn, sql);
    assert_string_equal(v, expected);
    free(v);
}

static void sha256_hex(const char *text, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    assert_true(EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL));
    for (unsigned int i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void applies_files_in_version_order_and_records_them(void **state)
{
    fixture *f = *state;
    /* Written out of order: the folder's listing order must not matter. */
    write_migration(f, "0003_items_data.sql", M3);
    write_migration(f, "0001_log.sql", M1);
    write_migration(f, "0002_items.sql", M2);
    write_migration(f, "README.md", "not a migration");

    bz_migrate_report r;
    bz_error err;
    assert_int_equal(bz_migrate_apply(f->conn, f->dir, &r, &err), BZ_OK);
    assert_int_equal(r.found, 3);
    assert_int_equal(r.applied, 3);
    assert_int_equal(r.already_applied, 0);
    assert_int_equal(r.version, 3);
    assert_string_equal(r.last_applied, "0003_items_data.sql");

    assert_query_equals(f->conn, "SELECT string_agg(version::text, ',' ORDER BY id) FROM applied_log",
                        "1,2,3");
    assert_query_equals(f->conn, "SELECT label FROM items WHERE id = 1", "one");
    assert_query_equals(f->conn,
                        "SELECT string_agg(version || ':' || name, ',' ORDER BY version) "
                        "FROM schema_migrations WHERE applied_at IS NOT NULL",
                        "1:0001_log.sql,2:0002_items.sql,3:0003_items_data.sql");
    char expected[65];
    sha256_hex(M2, expected);
    assert_query_equals(f->conn, "SELECT checksum FROM schema_migrations WHERE version = 2",
                        expected);
}

static void rerun_is_a_noop_and_new_files_apply_alone(void **state)
{
    fixture *f = *state;
    write_first_three(f);
    bz_migrate_report r;
    bz_error err;
    assert_int_equal(bz_migrate_apply(f->conn, f->dir, &r, &err), BZ_OK);
    char *stamps = query_text(f->conn,
                              "SELECT string_agg(applied_at::text, ',' ORDER BY version) FROM schema_migrations");

    assert_int_equal(bz_migrate_apply(f->conn, f->dir, &r, &err), BZ_OK);
    assert_int_equal(r.applied, 0);
    assert_int_equal(r.already_applied, 3);
    assert_int_equal(r.version, 3);
    assert_int_equal(query_long(f->conn, "SELECT count(*) FROM applied_log"), 3);
    assert_query_equals(f->conn,
                        "SELECT string_agg(applied_at::text, ',' ORDER BY version) FROM schema_migrations",
                        stamps);
    free(stamps);

    write_migration(f, "0004_more.sql", "INSERT INTO applied_log (version) VALUES (4);");
    assert_int_equal(bz_migrate_apply(f->conn, f->dir, &r, &err), BZ_OK);
    assert_int_equal(r.applied, 1);
    assert_int_equal(r.already_applied, 3);
    assert_int_equal(r.version, 4);
    assert_query_equals(f->conn, "SELECT string_agg(version::text, ',' ORDER BY id) FROM applied_log",
                        "1,2,3,4");
}

static void edited_applied_file_is_refused_by_name(void **state)
{
    fixture *f = *state;
    write_first_three(f);
    bz_migrate_report r;
    bz_error err;
    assert_int_equal(bz_migrate_apply(f->conn, f->dir, &r, &err), BZ_OK);

    write_migration(f, "0002_items.sql", M2 "-- a harmless-looking edit\n");
    write_migration(f, "0004_more.sql", "INSERT INTO applied_log (version) VALUES (4);");
    assert_int_equal(bz_migrate_apply(f->conn, f->dir, &r, &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "0002_items.sql"));
    assert_non_null(strstr(err.msg, "edited"));
    assert_int_equal(r.applied, 0);
    /* Nothing after the refusal ran. */
    assert_int_equal(query_long(f->conn, "SELECT count(*) FROM applied_log"), 3);
    assert_int_equal(query_long(f->conn, "SELECT max(version) FROM schema_migrations"), 3);
}

static void failing_migration_rolls_back_entirely(void **state)
{
    fixture *f = *state;
    write_first_three(f);
    write_migration(f, "0004_broken.sql",
                    "CREATE TABLE half_done (x int);\n"
                    "INSERT INTO half_done VALUES (1);\n"
                    "INSERT INTO applied_log (version) VALUES (4);\n"
                    "SELECT * FROM no_such_table;\n");
    write_migration(f, "0005_after.sql", "INSERT INTO applied_log (version) VALUES (5);");
    bz_migrate_report r;
    bz_error err;
    assert_int_equal(bz_migrate_apply(f->conn, f->dir, &r, &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "0004_broken.sql"));
    assert_non_null(strstr(err.msg, "no_such_table"));
    assert_int_equal(r.applied, 3);
    assert_string_equal(r.last_applied, "0003_items_data.sql");

    assert_query_equals(f->conn, "SELECT coalesce(to_regclass('half_done')::text, 'absent')",
                        "absent");
    assert_query_equals(f->conn, "SELECT string_agg(version::text, ',' ORDER BY id) FROM applied_log",
                        "1,2,3");
    assert_int_equal(query_long(f->conn, "SELECT max(version) FROM schema_migrations"), 3);
    assert_int_equal(PQtransactionStatus(f->conn), PQTRANS_IDLE);

    /* Once fixed, the broken file and the one after it apply. */
    write_migration(f, "0004_broken.sql", "CREATE TABLE half_done (x int);");
    assert_int_equal(bz_migrate_apply(f->conn, f->dir, &r, &err), BZ_OK);
    assert_int_equal(r.applied, 2);
    assert_int_equal(r.version, 5);
}

static void gaps_duplicates_and_bad_names_are_refused_before_touching_the_database(void **state)
{
    fixture *f = *state;
    bz_migrate_report r;
    bz_error err;
    write_migration(f, "0001_log.sql", M1);
    write_migration(f, "0003_items_data.sql", M3);
    assert_int_equal(bz_migrate_apply(f->conn, f->dir, &r, &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "0003_items_data.sql"));
    assert_non_null(strstr(err.msg, "gap"));

    write_migration(f, "0002_items.sql", M2);
    write_migration(f, "0002_other.sql", "SELECT 1;");
    assert_int_equal(bz_migrate_apply(f->conn, f->dir, &r, &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "0002_items.sql"));
    assert_non_null(strstr(err.msg, "0002_other.sql"));

    char path[256];
    snprintf(path, sizeof path, "%s/0002_other.sql", f->dir);
    assert_int_equal(unlink(path), 0);
    write_migration(f, "4_no_name.sql", "SELECT 1;");
    write_migration(f, "latest.sql", "SELECT 1;");
    assert_int_equal(bz_migrate_apply(f->conn, f->dir, &r, &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "latest.sql"));

    assert_query_equals(f->conn, "SELECT coalesce(to_regclass('schema_migrations')::text, 'absent')",
                        "absent");
    assert_query_equals(f->conn, "SELECT coalesce(to_regclass('applied_log')::text, 'absent')",
                        "absent");
}

typedef struct runner {
    const fixture *f;
    pthread_barrier_t *start;
    bz_status status;
    bz_migrate_report report;
    bz_error err;
} runner;

static void *run_migrator(void *arg)
{
    runner *r = arg;
    PGconn *conn = connect_to(r->f->dbname);
    pthread_barrier_wait(r->start);
    if (!conn) {
        r->status = BZ_ERR_TRANSIENT;
        return NULL;
    }
    r->status = bz_migrate_apply(conn, r->f->dir, &r->report, &r->err);
    PQfinish(conn);
    return NULL;
}

static void concurrent_runners_apply_each_migration_once(void **state)
{
    fixture *f = *state;
    /* The sleep keeps the first runner inside its work long enough for the
     * second to arrive and have to wait for the lock. */
    write_migration(f, "0001_log.sql", M1 "SELECT pg_sleep(0.5);\n");
    write_migration(f, "0002_items.sql", M2);
    write_migration(f, "0003_items_data.sql", M3);
    write_migration(f, "0004_more.sql", "INSERT INTO applied_log (version) VALUES (4);");
    write_migration(f, "0005_more.sql", "INSERT INTO applied_log (version) VALUES (5);");

    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
    runner a = {.f = f, .start = &start}, b = {.f = f, .start = &start};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, run_migrator, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, run_migrator, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&start);

    if (a.status != BZ_OK)
        fail_msg("runner a: %s", a.err.msg);
    if (b.status != BZ_OK)
        fail_msg("runner b: %s", b.err.msg);
    /* Serialized: one did everything, the other found it done. */
    assert_int_equal(a.report.applied + b.report.applied, 5);
    assert_true(a.report.applied == 0 || b.report.applied == 0);
    assert_int_equal(a.report.version, 5);
    assert_int_equal(b.report.version, 5);
    assert_query_equals(f->conn, "SELECT string_agg(version::text, ',' ORDER BY id) FROM applied_log",
                        "1,2,3,4,5");
    assert_int_equal(query_long(f->conn, "SELECT count(*) FROM schema_migrations"), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(applies_files_in_version_order_and_records_them, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rerun_is_a_noop_and_new_files_apply_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(edited_applied_file_is_refused_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_migration_rolls_back_entirely, setup, teardown),
        cmocka_unit_test_setup_teardown(
            gaps_duplicates_and_bad_names_are_refused_before_touching_the_database, setup,
            teardown),
        cmocka_unit_test_setup_teardown(concurrent_runners_apply_each_migration_once, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
