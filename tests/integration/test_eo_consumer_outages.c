/*
 * test_eo_consumer_outages.c - the exactly-once consumer survives a
 * PostgreSQL restart, a Kafka broker restart and the database turning
 * read-only (as a demoted primary does) without losing or repeating a
 * single record. scripts/test.sh runs it on the outage stack: it stops
 * the servers, and the read-only turn is server-wide (ALTER SYSTEM).
 * The run and its checks are test_eo_consumer's (support/eo_itest.c).
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

#include "eo_itest.h"
#include "itest.h"

static void test_survives_postgres_restart(void **state)
{
    (void)state;
    eo_run r;
    eo_run_setup(&r, 60000, 10, 5);
    eo_run_start_consumer(&r);
    eo_run_wait_for_counter_above(&r, 5000);
    itest_stack("stop-pg");
    itest_sleep_ms(2000);
    eo_run_assert_alive(&r);
    itest_stack("start-pg");
    eo_run_wait_until_all_consumed(&r);
    eo_run_stop_gracefully(&r);
    eo_run_assert_applied_exactly_once(&r);
    eo_run_assert_dead_letters(&r);
    eo_run_teardown(&r);
}

/* A second consumer in Kafka group <group>-rival whose offsets live under
 * <group> in kafka_offsets: it owns every partition the first one owns. */

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
        eo_run_assert_alive(r);
        if (waited > EO_RUN_WAIT_LIMIT_MS)
            fail_msg("the consumer never logged '%s'; see %s", text, r->log_path);
        itest_sleep_ms(50);
    }
}

static void test_survives_the_database_turning_read_only(void **state)
{
    (void)state;
    eo_run r;
    eo_run_setup(&r, 60000, 10, 5);
    eo_run_start_consumer(&r);
    eo_run_wait_for_counter_above(&r, 5000);
    set_server_read_only(r.conn, 1);
    wait_for_log(&r, "[25006]");
    /* Let it retry against the read-only server for a while. */
    itest_sleep_ms(3000);
    eo_run_assert_alive(&r);
    set_server_read_only(r.conn, 0);
    eo_run_wait_until_all_consumed(&r);
    eo_run_stop_gracefully(&r);
    eo_run_assert_applied_exactly_once(&r);
    eo_run_assert_dead_letters(&r);
    /* It left the read-only session, and the new one was refused. */
    assert_true(itest_file_contains(r.log_path, "session is read-only"));
    eo_run_teardown(&r);
}

static void test_survives_kafka_restart(void **state)
{
    (void)state;
    eo_run r;
    eo_run_setup(&r, 60000, 10, 5);
    eo_run_start_consumer(&r);
    eo_run_wait_for_counter_above(&r, 5000);
    itest_stack("restart-kafka");
    eo_run_wait_until_all_consumed(&r);
    eo_run_stop_gracefully(&r);
    eo_run_assert_applied_exactly_once(&r);
    eo_run_assert_dead_letters(&r);
    eo_run_teardown(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_survives_postgres_restart),
        cmocka_unit_test(test_survives_kafka_restart),
        cmocka_unit_test_teardown(test_survives_the_database_turning_read_only,
                                  restore_writable_server),
    };
    return cmocka_run_group_tests_name("exactly-once consumer, outages", tests, NULL, NULL);
}
