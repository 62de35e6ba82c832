/*
 * service.c - common service start-up (see service.h), and the runner of
 * the exactly-once consumer services: it builds the consumer from the
 * service's plan, starts the relay, the service's threads and the admin
 * endpoint, consumes until a shutdown signal, then stops them in reverse.
 */
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/signals.h"
#include "kafka/eo_consumer.h"
#include "kafka/outbox.h"
#include "kafka/security.h"
#include "kafka/topics.h"
#include "pg/pg.h"

#ifndef BZ_VERSION
#define BZ_VERSION "dev"
#endif

static const bz_config_key common_keys[] = {
    {.name = "log.level", .type = BZ_CFG_STRING, .def = "info",
     .help = "lowest log level written: debug, info, warn or error"},
    {.name = "http.listen", .type = BZ_CFG_STRING, .def = "127.0.0.1:0",
     .help = "admin endpoint (/healthz, /readyz, /metrics) as host:port"},
    {.name = "kafka.brokers", .type = BZ_CFG_STRING, .required = 1,
     .help = "Kafka bootstrap servers, host:port[,host:port]"},
    {.name = "kafka.topic_prefix", .type = BZ_CFG_STRING, .def = "",
     .help = "prefix of every topic name, for several deployments on one cluster"},
    {.name = "pg.dsn", .type = BZ_CFG_STRING, .required = 1, .secret = 1,
     .help = "PostgreSQL connection string"},
};
#define NCOMMON (sizeof common_keys / sizeof common_keys[0])

static void print_usage(const bz_service *svc, FILE *out)
{
    fprintf(out,
            "usage: blazz-%s [--config FILE] [--check-config] [--help] [--version]\n\n"
            "Every key can be set in the libconfig file, or overridden by the environment\n"
            "variable BLAZZ_<KEY> (dots become underscores); secret keys also accept\n"
            "BLAZZ_<KEY>_FILE.\n\n",
            svc->name);
    fflush(out);
    bz_config_usage(svc->schema, svc->nschema, fileno(out));
}

/* The common keys, the Kafka principal's (kafka/security.h), the service's. */
static bz_status merge_schema(bz_service *svc, const bz_config_key *keys, size_t nkeys)
{
    svc->nschema = NCOMMON + BZ_KAFKA_SECURITY_NKEYS + nkeys;
    svc->schema = malloc(svc->nschema * sizeof *svc->schema);
    if (!svc->schema)
        return BZ_ERR_NOMEM;
    memcpy(svc->schema, common_keys, sizeof common_keys);
    memcpy(svc->schema + NCOMMON, bz_kafka_security_keys,
           BZ_KAFKA_SECURITY_NKEYS * sizeof *bz_kafka_security_keys);
    if (nkeys)
        memcpy(svc->schema + NCOMMON + BZ_KAFKA_SECURITY_NKEYS, keys, nkeys * sizeof *keys);
    return BZ_OK;
}

/* Every Kafka client of the service authenticates as the principal its
 * configuration names, by default the service's own name. */
static bz_status install_kafka_identity(const bz_service *svc, bz_error *err)
{
    bz_kafka_security sec;
    bz_status st = bz_kafka_security_from_config(svc->config, svc->name, &sec, err);
    if (st == BZ_OK)
        st = bz_kafka_identity_install(&sec, err);
    bz_kafka_security_release(&sec);
    return st;
}

typedef struct command_line {
    const char *config_path;
    int check_only;
    int help;
    int version;
    const char *unknown;
} command_line;

static command_line parse_command_line(int argc, char **argv)
{
    command_line cl = {.config_path = getenv("BLAZZ_CONFIG_FILE")};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            cl.config_path = argv[++i];
        else if (strcmp(argv[i], "--check-config") == 0)
            cl.check_only = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            cl.help = 1;
        else if (strcmp(argv[i], "--version") == 0)
            cl.version = 1;
        else if (!cl.unknown)
            cl.unknown = argv[i];
    }
    return cl;
}

static bz_status init_service(bz_service *svc, const char *name, int argc, char **argv,
                              const bz_config_key *keys, size_t nkeys, int *exit_code)
{
    memset(svc, 0, sizeof *svc);
    svc->name = name;
    *exit_code = BZ_SERVICE_EXIT_USAGE;
    if (merge_schema(svc, keys, nkeys) != BZ_OK) {
        fprintf(stderr, "blazz-%s: out of memory\n", name);
        return BZ_ERR_NOMEM;
    }
    command_line cl = parse_command_line(argc, argv);
    if (cl.help || cl.version || cl.unknown) {
        if (cl.unknown)
            fprintf(stderr, "blazz-%s: unknown argument '%s'\n\n", name, cl.unknown);
        if (cl.version)
            printf("blazz-%s %s\n", name, BZ_VERSION);
        else
            print_usage(svc, cl.unknown ? stderr : stdout);
        *exit_code = cl.unknown ? BZ_SERVICE_EXIT_USAGE : BZ_SERVICE_EXIT_OK;
        return BZ_ERR_CONFIG;
    }

    bz_error err;
    bz_log_level level;
    if (bz_config_load(svc->schema, svc->nschema, cl.config_path, &svc->config, &err) != BZ_OK ||
        bz_log_level_parse(bz_config_string(svc->config, "log.level"), &level, &err) != BZ_OK ||
        bz_pg_dsn_refuse_weak_password(bz_config_string(svc->config, "pg.dsn"), &err) != BZ_OK ||
        install_kafka_identity(svc, &err) != BZ_OK) {
        fprintf(stderr, "blazz-%s: invalid configuration: %s\n", name, err.msg);
        return BZ_ERR_CONFIG;
    }
    if (cl.check_only) {
        bz_config_dump(svc->config, STDOUT_FILENO);
        *exit_code = BZ_SERVICE_EXIT_OK;
        return BZ_ERR_CONFIG;
    }
    bz_log_init(name, level);
    if (bz_signals_install_shutdown() != BZ_OK || bz_metrics_new(&svc->metrics, &err) != BZ_OK) {
        fprintf(stderr, "blazz-%s: start-up failed\n", name);
        return BZ_ERR_INTERNAL;
    }
    *exit_code = BZ_SERVICE_EXIT_OK;
    return BZ_OK;
}

/* When the process is not going to run (--help, --check-config, a bad
 * configuration), main returns at once: release what init built, so the
 * sanitizer's leak check stays quiet on those paths too. */
bz_status bz_service_init(bz_service *svc, const char *name, int argc, char **argv,
                          const bz_config_key *keys, size_t nkeys, int *exit_code)
{
    bz_status st = init_service(svc, name, argc, argv, keys, nkeys, exit_code);
    if (st != BZ_OK)
        bz_service_free(svc);
    return st;
}

bz_status bz_service_start_admin(bz_service *svc, bz_readiness_fn ready, void *ctx,
                                 bz_error *err)
{
    const char *listen = bz_config_string(svc->config, "http.listen");
    bz_status st = bz_admin_http_start(listen, svc->metrics, ready, ctx, &svc->admin, err);
    if (st != BZ_OK)
        return bz_wrap(err, "start admin endpoint on %s", listen);
    bz_info("admin endpoint on port %u", (unsigned)bz_admin_http_port(svc->admin));
    return BZ_OK;
}

const char *bz_service_topic(const bz_service *svc, const char *base, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s", bz_config_string(svc->config, "kafka.topic_prefix"), base);
    return buf;
}

void bz_service_free(bz_service *svc)
{
    bz_admin_http_stop(svc->admin);
    bz_metrics_free(svc->metrics);
    bz_config_free(svc->config);
    free(svc->schema);
    memset(svc, 0, sizeof *svc);
}

/* What a consumer service's run holds; its strings outlive the consumer and
 * the relay, which keep pointers to them. */
typedef struct consumer_run {
    const bz_consumer_service_def *def;
    bz_service svc;
    bz_eo_consumer *consumer;
    bz_outbox_relay *relay;
    char client_id[128], relay_id[136], dlq[BZ_TOPIC_NAME_MAX];
    bz_eo_group_timing timing;
} consumer_run;

static void report_consumer_service_readiness(void *arg, bz_readiness *r)
{
    consumer_run *run = arg;
    bz_eo_consumer_report_readiness(run->consumer, r);
    if (run->def->ready)
        run->def->ready(run->def->app, r);
}

static void log_consuming(const consumer_run *run, const bz_consumer_plan *plan,
                          const char *group)
{
    char topics[4 * BZ_TOPIC_NAME_MAX + 32];
    size_t len = 0;
    topics[0] = '\0';
    for (int i = 0; i < plan->ntopics && len < sizeof topics; i++)
        len += (size_t)snprintf(topics + len, sizeof topics - len, "%s%s", i ? " and " : "",
                                plan->topics[i]);
    bz_info("consuming %s as group %s%s (relay %s)", topics, group, plan->detail,
            run->relay ? "on" : "off");
}

static bz_status start_consumer_service(consumer_run *run, const bz_consumer_plan *plan,
                                        bz_error *err)
{
    const bz_config *cfg = run->svc.config;
    snprintf(run->client_id, sizeof run->client_id, "blazz-%s", run->def->name);
    snprintf(run->relay_id, sizeof run->relay_id, "%s-outbox", run->client_id);
    bz_service_topic(&run->svc, plan->dlq_base, run->dlq, sizeof run->dlq);
    const char *session_timeout_key = run->def->session_timeout_key
                                          ? run->def->session_timeout_key
                                          : "kafka.session_timeout_ms";
    bz_eo_group_timing_init(&run->timing, bz_config_int(cfg, session_timeout_key),
                            run->def->heartbeat_ms);
    bz_eo_consumer_config ccfg = {
        .kafka = {.brokers = bz_config_string(cfg, "kafka.brokers"), .client_id = run->client_id,
                  .extra = run->timing.extra},
        .group_id = bz_config_string(cfg, "consumer.group_id"),
        .topics = plan->topics,
        .ntopics = plan->ntopics,
        .dlq_topic = run->dlq,
        .service = run->def->name,
        .pg_dsn = bz_config_string(cfg, "pg.dsn"),
        .batch_max = (int)bz_config_int(cfg, "consumer.batch_max"),
        .batch_linger_ms = plan->batch_linger_ms,
        .fetch_wait_ms = plan->fetch_wait_ms,
        .async_commit = plan->async_commit,
        .handler = plan->handler,
        .handler_ctx = plan->handler_ctx,
        .metrics = run->svc.metrics,
    };
    bz_status st = bz_eo_consumer_new(&ccfg, &run->consumer, err);
    if (st == BZ_OK && !run->def->without_relay)
        st = bz_outbox_relay_start_configured(cfg, run->relay_id, run->svc.metrics, &run->relay,
                                              err);
    if (st == BZ_OK && run->def->start)
        st = run->def->start(run->def->app, &run->svc, err);
    if (st == BZ_OK)
        st = bz_service_start_admin(&run->svc, report_consumer_service_readiness, run, err);
    if (st == BZ_OK)
        log_consuming(run, plan, ccfg.group_id);
    return st;
}

static int run_consumer_service(consumer_run *run)
{
    bz_consumer_plan plan;
    memset(&plan, 0, sizeof plan);
    bz_error err;
    bz_status st = run->def->prepare(run->def->app, &run->svc, &plan, &err);
    if (st == BZ_ERR_CONFIG) {
        bz_error_log("%s: invalid configuration: %s", run->def->name, err.msg);
        return BZ_SERVICE_EXIT_USAGE;
    }
    if (st == BZ_OK && plan.run_instead)
        return plan.run_instead(run->def->app, &run->svc);
    if (st == BZ_OK)
        st = start_consumer_service(run, &plan, &err);
    if (st == BZ_OK)
        st = bz_eo_consumer_run(run->consumer, &err);
    if (st != BZ_OK)
        bz_error_log("%s: %s", run->def->name, err.msg);
    return st == BZ_OK ? 0 : 1;
}

/* The admin thread reads the consumer's and the service's state and the
 * relay and the service's threads update metrics: the admin endpoint stops
 * first, the registry is freed last. */
static void stop_consumer_service(consumer_run *run)
{
    const bz_consumer_service_def *def = run->def;
    bz_admin_http_stop(run->svc.admin);
    run->svc.admin = NULL;
    if (def->stop)
        def->stop(def->app);
    bz_outbox_relay_stop(run->relay);
    bz_eo_consumer_free(run->consumer);
    if (def->release)
        def->release(def->app);
    bz_service_free(&run->svc);
}

int bz_consumer_service_main(int argc, char **argv, const bz_consumer_service_def *def)
{
    consumer_run *run = calloc(1, sizeof *run);
    if (!run) {
        fprintf(stderr, "blazz-%s: out of memory\n", def->name);
        return 1;
    }
    run->def = def;
    int rc;
    if (bz_service_init(&run->svc, def->name, argc, argv, def->keys, def->nkeys, &rc) == BZ_OK) {
        rc = run_consumer_service(run);
        stop_consumer_service(run);
    }
    free(run);
    return rc;
}
