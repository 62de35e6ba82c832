/*
 * plaintext_refused.c - a stack started with BLAZZ_KAFKA_TLS=1 and
 * BLAZZ_PG_TLS=1 refuses plaintext clients (plaintext_refused.h);
 * test_make_run.c checks `make run`'s stack with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "itest.h"
#include "plaintext_refused.h"

static void postgresql_refuses(const char *dir)
{
    char dsn[1024];
    itest_stack_env_value(dir, "BLAZZ_PG_DSN", dsn, sizeof dsn);
    const char *keys[] = {"dbname", "sslmode", "connect_timeout", NULL};
    const char *vals[] = {dsn, "disable", "10", NULL};
    PGconn *plain = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(plain) == CONNECTION_OK)
        fail_msg("PostgreSQL accepted a connection without TLS");
    printf("  PostgreSQL without TLS: %s", PQerrorMessage(plain));
    assert_non_null(strstr(PQerrorMessage(plain), "no encryption"));
    PQfinish(plain);
}

static void set_conf(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        fail_msg("kafka client setting %s: %s", name, errstr);
}

static void kafka_refuses(const char *dir)
{
    char brokers[512], user[128], password_file[1024], password[256] = "";
    itest_stack_env_value(dir, "BLAZZ_KAFKA_BROKERS", brokers, sizeof brokers);
    itest_stack_env_value(dir, "BLAZZ_KAFKA_SASL_USERNAME", user, sizeof user);
    itest_stack_env_value(dir, "BLAZZ_KAFKA_SASL_PASSWORD_FILE", password_file,
                          sizeof password_file);
    FILE *f = fopen(password_file, "r");
    assert_non_null(f);
    assert_non_null(fgets(password, sizeof password, f));
    fclose(f);
    password[strcspn(password, "\n")] = '\0';
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set_conf(conf, "bootstrap.servers", brokers);
    set_conf(conf, "security.protocol", "sasl_plaintext");
    set_conf(conf, "sasl.mechanism", "SCRAM-SHA-512");
    set_conf(conf, "sasl.username", user);
    set_conf(conf, "sasl.password", password);
    set_conf(conf, "log_level", "0");
    char errstr[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk)
        fail_msg("kafka client: %s", errstr);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        fail_msg("Kafka answered a SASL_PLAINTEXT client on its TLS listener");
    }
    printf("  Kafka without TLS: %s\n", rd_kafka_err2str(err));
    rd_kafka_destroy(rk);
}

void itest_plaintext_refused(const char *dir)
{
    postgresql_refuses(dir);
    kafka_refuses(dir);
}
