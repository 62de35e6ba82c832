/*
 * test_pg.c - libs/pg against the real PostgreSQL of the test stack.
 *
 *  - bz_pg_open connects with the caller's DSN and the library's defaults
 *    (application_name "blazz" unless the DSN says otherwise);
 *  - bz_pg_connect_like opens another session on another backend with the
 *    same user, database and settings, and that session can run statements
 *    while the first one holds a transaction open;
 *  - bz_pg_exec_params returns the rows of a parameterized statement, and a
 *    failure whose message starts with what was being done;
 *  - bz_pg_exec_named prepares its statement at its first use in a session
 *    (once: later uses run what was prepared), again in a new session and
 *    again when a change of a table altered a column it answers, and a
 *    statement that cannot be prepared fails with what was done;
 *  - sessions must be writable (target_session_attrs=read-write, added to
 *    URI and key=value DSNs alike unless the DSN chooses): a session that
 *    meets a read-only node (25006) fails transiently and is replaced, and
 *    the read-only node is refused until it is writable again;
 *  - real failures are classified by the shared rule: a read-only
 *    transaction and a terminated session are transient, bad data is not;
 *    a failure leaves no result behind, whatever the caller's pointer held;
 *  - a leader (pg/leader.h) whose session ends while it waits takes the
 *    lock again on the next session before it leads;
 *  - a session the server ended while it sat idle is dropped by
 *    bz_pg_drop_if_closed, and a live idle one is kept;
 *  - an idle wait (bz_pg_wait_notify_or_stop) ends on a notification, on
 *    its timeout, on a stop asked of it, and, a plain sleep then, on a
 *    stop when its session was ended or there is none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"
#include "pg/leader.h"
#include "pg/pg.h"

static char *query_text(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    char *text = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    assert_non_null(text);
    return text;
}

static void assert_same_text(PGconn *a, PGconn *b, const char *sql)
{
    char *left = query_text(a, sql), *right = query_text(b, sql);
    assert_string_equal(left, right);
    free(left);
    free(right);
}

static void test_a_connection_like_another_is_a_second_session_with_the_same_settings(void **state)
{
    (void)state;
    const char *dsn = getenv("BLAZZ_PG_DSN");
    assert_non_null(dsn);
    bz_pg *pg;
    bz_error err;
    assert_int_equal(bz_pg_open(dsn, &pg, &err), BZ_OK);
    assert_int_equal(bz_pg_ensure(pg, &err), BZ_OK);
    PGconn *first = bz_pg_conn(pg);
    assert_int_equal(bz_pg_begin(first, &err), BZ_OK);
    assert_int_equal(bz_pg_exec(first, "CREATE TEMP TABLE only_here (x int)", &err), BZ_OK);

    PGconn *second;
    assert_int_equal(bz_pg_connect_like(first, &second, &err), BZ_OK);
    assert_int_equal(PQtransactionStatus(second), PQTRANS_IDLE);
    assert_same_text(first, second, "SELECT current_user");
    assert_same_text(first, second, "SELECT current_database()");
    assert_same_text(first, second, "SELECT current_setting('application_name')");
    char *a = query_text(first, "SELECT pg_backend_pid()");
    char *b = query_text(second, "SELECT pg_backend_pid()");
    assert_string_not_equal(a, b);
    free(a);
    free(b);
    /* The first session's uncommitted temp table is not visible here. */
    char *seen = query_text(second, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'");
    assert_string_equal(seen, "0");
    free(seen);

    PQfinish(second);
    bz_pg_rollback(first);
    bz_pg_close(pg);
}

static void test_a_connection_like_a_closed_one_fails_with_a_message(void **state)
{
    (void)state;
    PGconn *dead = PQconnectdb("host=127.0.0.1 port=1 dbname=nowhere connect_timeout=2");
    assert_int_not_equal(PQstatus(dead), CONNECTION_OK);
    PGconn *second = dead;
    bz_error err;
    assert_int_equal(bz_pg_connect_like(dead, &second, &err), BZ_ERR_TRANSIENT);
    assert_null(second);
    assert_non_null(strstr(err.msg, "open a second PostgreSQL connection"));
    PQfinish(dead);
}

static void test_exec_params_returns_rows_and_names_failures(void **state)
{
    (void)state;
    PGconn *conn = PQconnectdb(getenv("BLAZZ_PG_DSN"));
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    const char *values[] = {"20", "22"};
    PGresult *res = NULL;
    bz_error err;
    assert_int_equal(bz_pg_exec_params(conn, "add", "SELECT $1::int + $2::int", 2, values, &res,
                                       &err),
                     BZ_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "42");
    PQclear(res);
    /* a failure leaves NULL whatever res held, here the result just cleared */
    assert_int_not_equal(bz_pg_exec_params(conn, "divide by zero", "SELECT $1::int / 0", 1,
                                           values, &res, &err),
                         BZ_OK);
    assert_null(res);
    assert_non_null(strstr(err.msg, "divide by zero: [22012]"));
    PQfinish(conn);
}

/* How many times this session prepared name: 0 or 1, from
 * pg_prepared_statements, which shows only the session's own. */
static int prepared_in_session(PGconn *conn, const char *name)
{
    const char *values[] = {name};
    PGresult *res = PQexecParams(conn, "SELECT count(*) FROM pg_prepared_statements WHERE name = $1",
                                 1, NULL, values, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    int n = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

static void test_exec_named_prepares_once_a_session(void **state)
{
    (void)state;
    bz_error err;
    PGresult *res = NULL;
    const char *values[] = {"40"};
    for (int session = 0; session < 2; session++) {
        PGconn *conn = PQconnectdb(getenv("BLAZZ_PG_DSN"));
        assert_int_equal(PQstatus(conn), CONNECTION_OK);
        assert_int_equal(prepared_in_session(conn, "plus_two"), 0);
        for (int use = 0; use < 3; use++) {
            assert_int_equal(bz_pg_exec_named(conn, "add two", "plus_two", "SELECT $1::int + 2", 1,
                                              values, &res, &err),
                             BZ_OK);
            assert_string_equal(PQgetvalue(res, 0, 0), "42");
            PQclear(res);
            assert_int_equal(prepared_in_session(conn, "plus_two"), 1);
        }
        PQfinish(conn);
    }
    PGconn *conn = PQconnectdb(getenv("BLAZZ_PG_DSN"));
    /* a migration changes the type of a column the statement answers */
    itest_pg_exec(conn, "CREATE TEMP TABLE named_stale (a int)");
    itest_pg_exec(conn, "INSERT INTO named_stale VALUES (40)");
    for (int migrated = 0; migrated < 2; migrated++) {
        if (migrated)
            itest_pg_exec(conn, "ALTER TABLE named_stale ALTER a TYPE text");
        assert_int_equal(bz_pg_exec_named(conn, "read a", "read_a",
                                          "SELECT a FROM named_stale WHERE $1::int > 0", 1,
                                          values, &res, &err),
                         BZ_OK);
        assert_string_equal(PQgetvalue(res, 0, 0), "40");
        assert_int_equal(PQftype(res, 0), migrated ? 25 : 23); /* text, int4 */
        PQclear(res);
    }
    assert_int_not_equal(bz_pg_exec_named(conn, "read a table that is not", "no_table",
                                          "SELECT * FROM no_such_table WHERE $1::int > 0", 1,
                                          values, &res, &err),
                         BZ_OK);
    assert_null(res);
    assert_non_null(strstr(err.msg, "prepare statement no_table: read a table that is not: [42P01]"));
    PQfinish(conn);
}

/* The value libpq used for keyword on conn, as a heap copy ("" when unset). */
static char *conninfo_value(PGconn *conn, const char *keyword)
{
    PQconninfoOption *opts = PQconninfo(conn);
    assert_non_null(opts);
    char *value = NULL;
    for (PQconninfoOption *o = opts; o->keyword && !value; o++)
        if (strcmp(o->keyword, keyword) == 0)
            value = strdup(o->val ? o->val : "");
    PQconninfoFree(opts);
    assert_non_null(value);
    return value;
}

/* A key=value DSN for database dbname on the test server, plus extra. */
static void keyword_dsn(const char *dbname, const char *extra, char *out, size_t cap)
{
    PGconn *conn = itest_pg_connect();
    snprintf(out, cap, "host=%s port=%s user=%s dbname=%s %s", PQhost(conn), PQport(conn),
             PQuser(conn), dbname ? dbname : PQdb(conn), extra);
    PQfinish(conn);
}

static void assert_session_attrs(const char *dsn, const char *want)
{
    bz_pg *pg;
    bz_error err;
    assert_int_equal(bz_pg_open(dsn, &pg, &err), BZ_OK);
    if (bz_pg_ensure(pg, &err) != BZ_OK)
        fail_msg("connect with %s: %s", dsn, err.msg);
    char *got = conninfo_value(bz_pg_conn(pg), "target_session_attrs");
    if (strcmp(got, want) != 0)
        fail_msg("%s: target_session_attrs is '%s', want '%s'", dsn, got, want);
    free(got);
    bz_pg_close(pg);
}

static void test_sessions_must_be_writable_unless_the_dsn_chooses(void **state)
{
    (void)state;
    const char *uri = itest_env("BLAZZ_PG_DSN");
    char dsn[512];
    assert_session_attrs(uri, "read-write");
    snprintf(dsn, sizeof dsn, "%s%ctarget_session_attrs=any", uri, strchr(uri, '?') ? '&' : '?');
    assert_session_attrs(dsn, "any");
    keyword_dsn(NULL, "", dsn, sizeof dsn);
    assert_session_attrs(dsn, "read-write");
    keyword_dsn(NULL, "target_session_attrs=any", dsn, sizeof dsn);
    assert_session_attrs(dsn, "any");
}

/* bz_pg_ensure until it connects, for at most ~10 s of reconnect backoff. */
static void ensure_within_backoff(bz_pg *pg)
{
    bz_error err;
    for (int i = 0; bz_pg_ensure(pg, &err) != BZ_OK; i++) {
        if (i == 100)
            fail_msg("no reconnect once the database was writable: %s", err.msg);
        itest_sleep_ms(100);
    }
}

static void test_a_read_only_node_is_left_and_refused_until_writable(void **state)
{
    (void)state;
    PGconn *admin = itest_pg_connect();
    char db[64], sql[256], dsn[512];
    itest_unique("itest_ro_", db, sizeof db);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    itest_pg_exec(admin, sql);
    keyword_dsn(db, "", dsn, sizeof dsn);
    bz_pg *pg;
    bz_error err;
    assert_int_equal(bz_pg_open(dsn, &pg, &err), BZ_OK);
    assert_int_equal(bz_pg_ensure(pg, &err), BZ_OK);
    assert_int_equal(bz_pg_exec(bz_pg_conn(pg), "CREATE TABLE t (x int)", &err), BZ_OK);

    /* The node turns read-only: new sessions by the database's setting,
     * the open one as a demoted primary's would. */
    snprintf(sql, sizeof sql, "ALTER DATABASE %s SET default_transaction_read_only = on", db);
    itest_pg_exec(admin, sql);
    assert_int_equal(bz_pg_exec(bz_pg_conn(pg), "SET default_transaction_read_only = on", &err),
                     BZ_OK);
    assert_int_equal(bz_pg_exec(bz_pg_conn(pg), "INSERT INTO t VALUES (1)", &err),
                     BZ_ERR_TRANSIENT);
    assert_non_null(strstr(err.msg, "[25006]"));
    /* That session is dropped as if lost, and a new one is refused while
     * the node is read-only. */
    assert_int_equal(bz_pg_ensure(pg, &err), BZ_ERR_TRANSIENT);
    assert_null(bz_pg_conn(pg));
    assert_int_equal(bz_pg_ensure(pg, &err), BZ_ERR_TRANSIENT);
    assert_non_null(strstr(err.msg, "session is read-only"));

    /* An operator who means to use a read-only node says so in the DSN. */
    char any_dsn[512];
    keyword_dsn(db, "target_session_attrs=any", any_dsn, sizeof any_dsn);
    bz_pg *any;
    assert_int_equal(bz_pg_open(any_dsn, &any, &err), BZ_OK);
    assert_int_equal(bz_pg_ensure(any, &err), BZ_OK);
    bz_pg_close(any);

    snprintf(sql, sizeof sql, "ALTER DATABASE %s RESET default_transaction_read_only", db);
    itest_pg_exec(admin, sql);
    ensure_within_backoff(pg);
    assert_int_equal(bz_pg_exec(bz_pg_conn(pg), "INSERT INTO t VALUES (1)", &err), BZ_OK);
    bz_pg_close(pg);
    snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", db);
    itest_pg_exec(admin, sql);
    PQfinish(admin);
}

static void test_real_failures_are_classified_by_the_shared_rule(void **state)
{
    (void)state;
    PGconn *conn = itest_pg_connect();
    bz_error err;
    assert_int_equal(bz_pg_exec(conn, "BEGIN READ ONLY", &err), BZ_OK);
    assert_int_equal(bz_pg_exec(conn, "CREATE TABLE never_created (x int)", &err),
                     BZ_ERR_TRANSIENT);
    assert_non_null(strstr(err.msg, "[25006]"));
    bz_pg_rollback(conn);
    assert_int_equal(bz_pg_exec(conn, "SELECT 'x'::int", &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "[22P02]"));

    PGconn *admin = itest_pg_connect();
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", PQbackendPID(conn));
    itest_pg_exec(admin, sql);
    PQfinish(admin);
    /* a terminated session: the failure campaign-sender met in a switchover,
     * with res still holding a result cleared before */
    PGresult *res = PQexec(conn, "SELECT 1");
    PQclear(res);
    assert_int_equal(bz_pg_exec_params(conn, "after termination", "SELECT 1", 0, NULL, &res, &err),
                     BZ_ERR_TRANSIENT);
    assert_null(res);
    assert_int_equal(bz_pg_exec(conn, "SELECT 1", &err), BZ_ERR_TRANSIENT);
    PQfinish(conn);
}

/* Advisory locks of key held by backend pid, seen from another session. */
static int64_t advisory_locks_of(PGconn *admin, int pid, long long key)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = %d "
             "AND ((classid::bigint << 32) | objid::bigint) = %lld",
             pid, key);
    return itest_pg_int64(admin, sql);
}

/* A leader whose session ends while it waits (a switchover, an
 * administrator) leads again only on a session that holds the lock: the
 * relay found in a switchover must not run unlocked beside another. */
static void test_a_leader_takes_its_lock_again_on_a_new_session(void **state)
{
    (void)state;
    bz_error err;
    bz_pg *pg = NULL;
    assert_int_equal(bz_pg_open(getenv("BLAZZ_PG_DSN"), &pg, &err), BZ_OK);
    bz_pg_leader l = {.pg = pg, .lock_key = 0x74657374LL, .channel = "blazz_leader_test"};
    assert_int_equal(bz_pg_leader_acquire(&l, "the test's work", &err), BZ_OK);
    PGconn *admin = itest_pg_connect();
    int first = PQbackendPID(bz_pg_conn(pg));
    assert_int_equal(advisory_locks_of(admin, first, l.lock_key), 1);

    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", first);
    itest_pg_exec(admin, sql);
    for (int i = 0; i < 50 && PQstatus(bz_pg_conn(pg)) == CONNECTION_OK; i++)
        bz_pg_leader_wait(&l, 100);
    assert_int_not_equal(PQstatus(bz_pg_conn(pg)), CONNECTION_OK);

    bz_status st = BZ_ERR_TRANSIENT;
    for (int i = 0; i < 100 && st == BZ_ERR_TRANSIENT; i++) {
        st = bz_pg_leader_acquire(&l, "the test's work", &err);
        if (st == BZ_ERR_TRANSIENT)
            itest_sleep_ms(100);
    }
    assert_int_equal(st, BZ_OK);
    int second = PQbackendPID(bz_pg_conn(pg));
    assert_int_not_equal(second, first);
    assert_int_equal(advisory_locks_of(admin, second, l.lock_key), 1);
    PQfinish(admin);
    bz_pg_close(pg);
}

/* The first statement after a restart must not be the one that finds the
 * session gone (ingest answered it 503). */
static void test_a_session_ended_while_idle_is_dropped_before_use(void **state)
{
    (void)state;
    bz_error err;
    bz_pg *pg = NULL;
    assert_int_equal(bz_pg_open(getenv("BLAZZ_PG_DSN"), &pg, &err), BZ_OK);
    assert_int_equal(bz_pg_ensure(pg, &err), BZ_OK);
    PGconn *live = bz_pg_conn(pg);
    bz_pg_drop_if_closed(pg);
    assert_ptr_equal(bz_pg_conn(pg), live);

    PGconn *admin = itest_pg_connect();
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", PQbackendPID(live));
    itest_pg_exec(admin, sql);
    PQfinish(admin);
    for (int i = 0; i < 50 && bz_pg_conn(pg); i++) {
        bz_pg_drop_if_closed(pg);
        if (bz_pg_conn(pg))
            itest_sleep_ms(100);
    }
    assert_null(bz_pg_conn(pg));
    assert_int_equal(bz_pg_ensure(pg, &err), BZ_OK);
    assert_int_equal(bz_pg_exec(bz_pg_conn(pg), "SELECT 1", &err), BZ_OK);
    bz_pg_close(pg);
}

/* Asked before each slice; says stop from the stop_at-th call on. */
typedef struct {
    int calls, stop_at;
} stop_after;

static int stop_after_calls(void *arg)
{
    stop_after *s = arg;
    s->calls++;
    return s->calls >= s->stop_at;
}

static void test_an_idle_wait_ends_on_a_notification_or_a_stop(void **state)
{
    (void)state;
    PGconn *listener = itest_pg_connect(), *other = itest_pg_connect();
    itest_pg_exec(listener, "LISTEN blazz_test_idle_wait");
    itest_pg_exec(other, "NOTIFY blazz_test_idle_wait");
    stop_after never = {0, 1 << 30};
    assert_int_equal(bz_pg_wait_notify_or_stop(listener, 60000, 50, stop_after_calls, &never), 1);

    stop_after never_again = {0, 1 << 30};
    assert_int_equal(bz_pg_wait_notify_or_stop(listener, 100, 20, stop_after_calls, &never_again),
                     0);
    assert_true(never_again.calls >= 1);

    stop_after third = {0, 3};
    assert_int_equal(bz_pg_wait_notify_or_stop(listener, 60000, 20, stop_after_calls, &third), 0);
    assert_int_equal(third.calls, 3);

    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", PQbackendPID(listener));
    itest_pg_exec(other, sql);
    stop_after fifth = {0, 5};
    assert_int_equal(bz_pg_wait_notify_or_stop(listener, 60000, 20, stop_after_calls, &fifth), 0);
    assert_int_equal(fifth.calls, 5);
    stop_after second = {0, 2};
    assert_int_equal(bz_pg_wait_notify_or_stop(NULL, 60000, 20, stop_after_calls, &second), 0);
    assert_int_equal(second.calls, 2);
    PQfinish(listener);
    PQfinish(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_connection_like_another_is_a_second_session_with_the_same_settings),
        cmocka_unit_test(test_a_connection_like_a_closed_one_fails_with_a_message),
        cmocka_unit_test(test_exec_params_returns_rows_and_names_failures),
        cmocka_unit_test(test_exec_named_prepares_once_a_session),
        cmocka_unit_test(test_sessions_must_be_writable_unless_the_dsn_chooses),
        cmocka_unit_test(test_a_read_only_node_is_left_and_refused_until_writable),
        cmocka_unit_test(test_real_failures_are_classified_by_the_shared_rule),
        cmocka_unit_test(test_a_leader_takes_its_lock_again_on_a_new_session),
        cmocka_unit_test(test_a_session_ended_while_idle_is_dropped_before_use),
        cmocka_unit_test(test_an_idle_wait_ends_on_a_notification_or_a_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
