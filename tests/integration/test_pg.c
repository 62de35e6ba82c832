/*
 * test_pg.c - libs/pg against the real PostgreSQL of the test stack.
 *
 *  - bz_pg_open connects with the caller's DSN and the library's defaults
 *    (application_name "blazz" unless the DSN says otherwise);
 *  - bz_pg_connect_like opens another session on another backend with the
 *    same user, database and settings, and that session can run statements
 *    while the first one holds a transaction open;
 *  - bz_pg_exec_params returns the rows of a parameterized statement, and a
 *    failure whose message starts with what was being done.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"
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
    res = NULL;
    assert_int_not_equal(bz_pg_exec_params(conn, "divide by zero", "SELECT $1::int / 0", 1,
                                           values, &res, &err),
                         BZ_OK);
    assert_null(res);
    assert_non_null(strstr(err.msg, "divide by zero: [22012]"));
    PQfinish(conn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_connection_like_another_is_a_second_session_with_the_same_settings),
        cmocka_unit_test(test_a_connection_like_a_closed_one_fails_with_a_message),
        cmocka_unit_test(test_exec_params_returns_rows_and_names_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
