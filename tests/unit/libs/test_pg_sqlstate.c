/*
 * test_pg_sqlstate.c - the one SQLSTATE classifier every service relies on
 * (bz_pg_sqlstate_is_transient, libs/pg/pg.h).
 *
 * A failure that comes from the server's situation (a failover, a restart,
 * a read-only node, a lost connection, lock or serialization trouble,
 * exhausted resources, a schema not migrated yet) must be transient: the
 * work is retried, never dead-lettered. A failure that comes from the
 * statement or its data must be permanent, or a bad record would be
 * retried for ever. Both lists are checked code by code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "pg/pg.h"

static void test_failover_and_server_trouble_are_transient(void **state)
{
    (void)state;
    static const char *const transient[] = {
        "08000", "08001", "08003", "08004", "08006", "08007", "08P01", /* connection */
        "25006",                                                       /* read-only node */
        "25P03",                                                       /* idle-in-txn timeout */
        "40001", "40003", "40P01",                  /* serialization, unknown outcome, deadlock */
        "53000", "53100", "53200", "53300", "53400", /* resources */
        "55P03",                                     /* lock not available */
        "57000", "57014", "57P01", "57P02", "57P03", "57P04", "57P05", /* operator, shutdown */
        "58000", "58030", "58P01",                                     /* system error */
        "42P01", "42703", "42704", "42883", /* the schema behind the code */
    };
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
        if (!bz_pg_sqlstate_is_transient(transient[i]))
            fail_msg("SQLSTATE %s should be transient", transient[i]);
}

static void test_no_sqlstate_means_the_wire_failed(void **state)
{
    (void)state;
    assert_true(bz_pg_sqlstate_is_transient(NULL));
    assert_true(bz_pg_sqlstate_is_transient(""));
}

static void test_bad_statements_and_data_are_permanent(void **state)
{
    (void)state;
    static const char *const permanent[] = {
        "22001", "22003", "22012", "22021", "22P02", /* data */
        "23502", "23503", "23505", "23514",          /* constraints */
        "25001", "25P02",                            /* transaction state misuse */
        "40002",                                     /* constraint at commit */
        "42501", "42601", "42804",                   /* statement, privileges */
        "P0001", "XX000",                            /* raised, internal */
    };
    for (size_t i = 0; i < sizeof permanent / sizeof permanent[0]; i++)
        if (bz_pg_sqlstate_is_transient(permanent[i]))
            fail_msg("SQLSTATE %s should be permanent", permanent[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failover_and_server_trouble_are_transient),
        cmocka_unit_test(test_no_sqlstate_means_the_wire_failed),
        cmocka_unit_test(test_bad_statements_and_data_are_permanent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
