/*
 * security.h - how every Kafka client of the backbone authenticates to the
 * broker (ARCHITECTURE.md §9).
 *
 * A process is one Kafka principal: its SASL/SCRAM user name and password,
 * the security protocol (sasl_plaintext by default; sasl_ssl or ssl with a
 * CA file for TLS; plaintext only when configured so, for an unauthenticated
 * quick local broker) and the mechanism. Five configuration keys describe it:
 *
 *   kafka.security_protocol  plaintext | sasl_plaintext | sasl_ssl | ssl
 *   kafka.sasl_mechanism     SCRAM-SHA-512 (default) | SCRAM-SHA-256
 *   kafka.sasl_username      the principal (services default to their name)
 *   kafka.sasl_password      secret: also BLAZZ_KAFKA_SASL_PASSWORD_FILE
 *   kafka.ssl_ca_location    CA certificate (PEM) that signed the broker's
 *
 * Services read them with the rest of their configuration (runtime/service.c
 * installs the result as the process identity); tools and tests read the
 * same names from the environment (BLAZZ_KAFKA_SECURITY_PROTOCOL, ...,
 * BLAZZ_KAFKA_SASL_PASSWORD or its _FILE), lazily, the first time a client
 * is configured. bz_kafka_conf_new (producer.h) applies the process identity
 * to every client it builds unless the caller's settings name another one,
 * which is how a test acts as several principals in one process. Passwords
 * never appear in messages and are wiped when released.
 */
#ifndef BZ_KAFKA_SECURITY_H
#define BZ_KAFKA_SECURITY_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "core/config.h"
#include "core/status.h"

typedef struct bz_kafka_security {
    char protocol[16];  /* lower case, as librdkafka spells it */
    char mechanism[16]; /* "SCRAM-SHA-512" or "SCRAM-SHA-256"; SASL protocols only */
    char *username;     /* heap; NULL for plaintext and ssl */
    char *password;     /* heap, wiped by bz_kafka_security_release */
    char *ca_location;  /* heap or NULL: the system's CAs */
} bz_kafka_security;

/* The five keys above, for a service's configuration schema. */
extern const bz_config_key bz_kafka_security_keys[];
#define BZ_KAFKA_SECURITY_NKEYS 5

/* Read and check the keys from cfg (whose schema includes
 * bz_kafka_security_keys). default_username (may be NULL) stands in for an
 * unset kafka.sasl_username. A SASL protocol without a user name or a
 * password, an unknown protocol or mechanism, is BZ_ERR_CONFIG naming the
 * key. On BZ_OK *out holds heap memory: bz_kafka_security_release. */
bz_status bz_kafka_security_from_config(const bz_config *cfg, const char *default_username,
                                        bz_kafka_security *out, bz_error *err);

/* The same from the environment only (tools, tests). */
bz_status bz_kafka_security_from_env(bz_kafka_security *out, bz_error *err);

/* Wipe the password and free what s holds; s is left empty. */
void bz_kafka_security_release(bz_kafka_security *s);

/* Set security.protocol, sasl.* and ssl.ca.location on conf. */
bz_status bz_kafka_security_apply(const bz_kafka_security *s, rd_kafka_conf_t *conf,
                                  bz_error *err);

/* Make s (copied) the identity of every client this process builds from now
 * on. Call it before the first client, from one thread (service start-up). */
bz_status bz_kafka_identity_install(const bz_kafka_security *s, bz_error *err);

/* The process identity: the installed one, else the environment's, read
 * once. On failure (the environment describes no usable identity) every
 * call returns that same error. The identity lives until exit. */
bz_status bz_kafka_identity(const bz_kafka_security **out, bz_error *err);

#endif
