/*
 * service.h - the start-up and shutdown every Blazz service shares.
 *
 * A service's main.c declares its own configuration keys and calls
 * bz_service_init, which handles the standard command line
 *   --config FILE   libconfig file (else BLAZZ_CONFIG_FILE, else none)
 *   --check-config  load and validate, print the effective config (secrets
 *                   masked), exit 0 or 2
 *   --help, --version
 * loads the configuration (the common keys below plus the service's),
 * initialises JSON logging and the shutdown signal handlers, and creates the
 * metrics registry. bz_service_start_admin then serves /healthz, /readyz and
 * /metrics. Everything else (consumers, relays, HTTP APIs) is the service's
 * own wiring.
 *
 * Common keys, present in every service:
 *   log.level           debug | info | warn | error          (info)
 *   http.listen         admin endpoint, host:port            (127.0.0.1:0)
 *   kafka.brokers       bootstrap servers                    (required)
 *   kafka.topic_prefix  deployment prefix of every topic     ("")
 *   pg.dsn              PostgreSQL connection string, secret (required)
 * and the Kafka principal's keys (kafka/security.h: kafka.security_protocol,
 * kafka.sasl_username (default: the service's name), kafka.sasl_password,
 * ...), installed as the identity of every Kafka client the service builds.
 *
 * Every service but ingest shares one shape beyond that: the exactly-once
 * consumer (kafka/eo_consumer.h) on the main thread, the outbox relay
 * (unless the service has no outbox: webhook-dispatcher), threads of their
 * own, the admin endpoint, and the shutdown in that order reversed. bz_consumer_service_main runs the
 * whole of it; the service's main.c describes what is its own in a
 * bz_consumer_service_def (its keys, topics, handler and hooks).
 */
#ifndef BZ_SERVICE_H
#define BZ_SERVICE_H

#include <stddef.h>

#include "core/admin_http.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/status.h"

typedef struct bz_service {
    const char *name;
    bz_config *config;
    bz_metrics *metrics;
    bz_admin_http *admin;
    bz_config_key *schema; /* common + service keys; owned */
    size_t nschema;
} bz_service;

/* Outcome of bz_service_init when the process should not go on running. */
#define BZ_SERVICE_EXIT_OK 0     /* --help, --version, --check-config passed */
#define BZ_SERVICE_EXIT_USAGE 2  /* bad command line or configuration */

/* Initialise svc as described above. Returns BZ_OK when the service should
 * run; otherwise *exit_code says how main should exit (a message has been
 * printed). keys may be NULL when the service has no keys of its own. */
bz_status bz_service_init(bz_service *svc, const char *name, int argc, char **argv,
                          const bz_config_key *keys, size_t nkeys, int *exit_code);

/* Serve /healthz, /readyz (asking ready, which may be NULL) and /metrics on
 * http.listen. */
bz_status bz_service_start_admin(bz_service *svc, bz_readiness_fn ready, void *ctx,
                                 bz_error *err);

/* Full topic name: kafka.topic_prefix + base, into buf. */
const char *bz_service_topic(const bz_service *svc, const char *base, char *buf, size_t cap);

/* Stop the admin endpoint and free everything svc owns. */
void bz_service_free(bz_service *svc);

#define BZ_SERVICE_TOPICS_MAX 4

struct bz_eo_handler;

/* What a consumer service's prepare hook tells the runner. */
typedef struct bz_consumer_plan {
    const char *topics[BZ_SERVICE_TOPICS_MAX]; /* full names (bz_service_topic), in the app */
    int ntopics;
    const char *dlq_base; /* the dead-letter topic's base name; the runner prefixes it */
    const struct bz_eo_handler *handler;
    void *handler_ctx;
    int batch_linger_ms; /* 0: the consumer's default */
    int fetch_wait_ms;   /* 0: librdkafka's (bz_eo_consumer_config.fetch_wait_ms) */
    int async_commit;
    char detail[160]; /* appended to the start-up line after "as group G" */
    /* A mode without the consumer (cleanup.run_once): when set, it runs
     * instead, and what it returns is the exit code. */
    int (*run_instead)(void *app, bz_service *svc);
} bz_consumer_plan;

/* A consumer service: its name (blazz-<name>, the consumer's client id,
 * blazz-<name>-outbox the relay's), its configuration keys (which must
 * include consumer.group_id, consumer.batch_max, the session timeout key,
 * and BZ_OUTBOX_RELAY_CONFIG_KEYS unless it runs without a relay), and
 * hooks on app, its own state. Only prepare is required. A prepare that
 * fails with BZ_ERR_CONFIG exits BZ_SERVICE_EXIT_USAGE, any other failure
 * 1. */
typedef struct bz_consumer_service_def {
    const char *name;
    const bz_config_key *keys;
    size_t nkeys;
    void *app;
    int without_relay;               /* a service with no outbox of its own */
    const char *session_timeout_key; /* NULL: kafka.session_timeout_ms */
    int heartbeat_ms;                /* 0: a third of the session timeout */
    /* After start-up: read settings, register metrics, fill plan. */
    bz_status (*prepare)(void *app, bz_service *svc, bz_consumer_plan *plan, bz_error *err);
    /* Start the service's threads, after the consumer and the relay and
     * before the admin endpoint. */
    bz_status (*start)(void *app, bz_service *svc, bz_error *err);
    /* Stop them: the admin endpoint is down, the relay still runs. */
    void (*stop)(void *app);
    /* Free what prepare built, once everything has stopped. */
    void (*release)(void *app);
    /* Readiness lines beyond the consumer's. */
    void (*ready)(void *app, bz_readiness *r);
} bz_consumer_service_def;

/* The whole life of a consumer service, from the command line to the
 * shutdown; returns main's exit code. */
int bz_consumer_service_main(int argc, char **argv, const bz_consumer_service_def *def);

#endif
