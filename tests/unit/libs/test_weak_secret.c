/*
 * test_weak_secret.c - the secrets nothing starts with (libs/core/
 * weak_secret.h): .env.example's "change-me" and other short passwords as
 * a Kafka principal's or in a PostgreSQL DSN, short gateway keys; refusals
 * say what to do and never echo the secret. Weak keys of the ring:
 * test_keyring.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/weak_secret.h"
#include "kafka/security.h"
#include "pg/pg.h"

#define STRONG "5f8f5fdaea9076ea755429f062b0495dc77daef432836628"

static int clear_env(void **state)
{
    (void)state;
    unsetenv("BLAZZ_KAFKA_SECURITY_PROTOCOL");
    unsetenv("BLAZZ_KAFKA_SASL_USERNAME");
    unsetenv("BLAZZ_KAFKA_SASL_PASSWORD");
    unsetenv("BLAZZ_KAFKA_SASL_PASSWORD_FILE");
    return 0;
}

static bz_status kafka_login(const char *password, bz_error *err)
{
    setenv("BLAZZ_KAFKA_SASL_USERNAME", "ingest", 1);
    setenv("BLAZZ_KAFKA_SASL_PASSWORD", password, 1);
    bz_kafka_security s;
    bz_status st = bz_kafka_security_from_env(&s, err);
    if (st == BZ_OK)
        bz_kafka_security_release(&s);
    return st;
}

static void example_kafka_passwords_are_refused(void **state)
{
    (void)state;
    bz_error err;
    assert_int_equal(kafka_login("change-me", &err), BZ_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "kafka.sasl_password"));
    assert_non_null(strstr(err.msg, "make secrets"));
    assert_null(strstr(err.msg, "change-me"));
    assert_int_equal(kafka_login("fifteen-chars-x", &err), BZ_ERR_CONFIG);
    assert_int_equal(kafka_login(STRONG, &err), BZ_OK);
}

static void example_database_passwords_are_refused(void **state)
{
    (void)state;
    static const char *const weak[] = {
        "postgresql://blazz:change-me@postgres:5432/blazz",
        "host=127.0.0.1 user=blazz password=change-me dbname=blazz",
    };
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
        bz_error err;
        assert_int_equal(bz_pg_dsn_refuse_weak_password(weak[i], &err), BZ_ERR_CONFIG);
        assert_non_null(strstr(err.msg, "pg.dsn"));
        assert_null(strstr(err.msg, "change-me"));
    }
    /* trust or peer authentication, a password file: nothing to judge */
    assert_int_equal(bz_pg_dsn_refuse_weak_password("host=127.0.0.1 port=55432 dbname=blazz",
                                                    NULL), BZ_OK);
    assert_int_equal(bz_pg_dsn_refuse_weak_password(
                         "postgresql://blazz:" STRONG "@postgres:5432/blazz", NULL), BZ_OK);
}

static void short_signing_keys_are_refused(void **state)
{
    (void)state;
    bz_error err;
    assert_int_equal(bz_secret_refuse_short("gateway key", "gateway-test-secret",
                                            BZ_SIGNING_KEY_LEN_MIN, &err), BZ_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "gateway key: 19 characters"));
    assert_int_equal(bz_secret_refuse_short("gateway key", "0123456789abcdef0123456789abcdef",
                                            BZ_SIGNING_KEY_LEN_MIN, NULL), BZ_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(example_kafka_passwords_are_refused, clear_env),
        cmocka_unit_test(example_database_passwords_are_refused),
        cmocka_unit_test(short_signing_keys_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
