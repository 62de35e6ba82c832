/*
 * main.c - blazz-meta-sender: Meta Cloud API accounts really send
 * (ARCHITECTURE.md §12, issue 17).
 *
 * Wiring only. The exactly-once consumer of wa.outbound (intake.c) on the
 * main thread, the sender thread (worker.c), the outbox relay that
 * publishes the outcomes on chat.sync, and the admin endpoint. Shutdown:
 * the consumer finishes its batch and leaves the group, the sender finishes
 * the requests in flight and records their outcomes, the relay publishes
 * its round.
 */
#include <curl/curl.h>
#include <string.h>

#include "core/log.h"
#include "core/service.h"
#include "kafka/outbox.h"
#include "kafka/topics.h"
#include "meta_sender.h"

static const bz_config_key keys[] = {
    {.name = "meta.base_url", .type = BZ_CFG_STRING, .def = "https://graph.facebook.com",
     .help = "Graph API host (the tests' server on loopback in tests and the demo)"},
    {.name = "meta.api_version", .type = BZ_CFG_STRING, .def = "v23.0",
     .help = "Graph API version in the request path"},
    {.name = "secrets.keys", .type = BZ_CFG_STRING, .secret = 1,
     .help = "keys that open the sealed access tokens, ID:KEY,... oldest first (the ring "
             "blazzctl meta token seals with, ARCHITECTURE.md §9.3)"},
    {.name = "meta.token_key", .type = BZ_CFG_STRING, .secret = 1,
     .help = "the older single key (id 0), read when secrets.keys is not set"},
    {.name = "meta.account_per_second", .type = BZ_CFG_DOUBLE, .def = "80", .min = 0.1,
     .max = 1000, .help = "an account's pace without metadata.rate_limits.per_second"},
    {.name = "meta.max_per_second", .type = BZ_CFG_DOUBLE, .def = "80", .min = 0.1, .max = 1000,
     .help = "cap of any account's pace (Meta's top tier: 80/s)"},
    {.name = "meta.rate_guard_ms", .type = BZ_CFG_INT, .def = "100", .min = 0, .max = 10000,
     .help = "the pace counts windows of 1000 ms plus this guard"},
    {.name = "meta.account_concurrency", .type = BZ_CFG_INT, .def = "8", .min = 1, .max = 1000,
     .help = "requests in flight per account"},
    {.name = "meta.max_connections", .type = BZ_CFG_INT, .def = "64", .min = 1, .max = 10000,
     .help = "kept-alive connections to the Graph API at most"},
    {.name = "meta.request_timeout_ms", .type = BZ_CFG_INT, .def = "20000", .min = 100,
     .max = 600000, .help = "a request without an answer by then is ambiguous"},
    {.name = "meta.connect_timeout_ms", .type = BZ_CFG_INT, .def = "5000", .min = 100,
     .max = 600000, .help = "connection setup timeout"},
    {.name = "meta.max_attempts", .type = BZ_CFG_INT, .def = "10", .min = 1, .max = 1000,
     .help = "retryable failures (5xx, throttling, no answer) before a send fails"},
    {.name = "meta.retry_base_ms", .type = BZ_CFG_INT, .def = "1000", .min = 1, .max = 600000,
     .help = "first retry delay; doubles per attempt"},
    {.name = "meta.retry_max_ms", .type = BZ_CFG_INT, .def = "60000", .min = 1, .max = 3600000,
     .help = "longest retry delay"},
    {.name = "meta.ambiguous_hold_ms", .type = BZ_CFG_INT, .def = "15000", .min = 0,
     .max = 3600000,
     .help = "a send that may have reached Meta waits this long for a status webhook naming it "
             "before it is sent again"},
    {.name = "meta.claim_max", .type = BZ_CFG_INT, .def = "200", .min = 1, .max = 10000,
     .help = "sends claimed per account and round at most"},
    {.name = "meta.lock_name", .type = BZ_CFG_STRING, .def = "blazz-meta-sender",
     .help = "advisory lock that makes one instance per database the active sender"},
    {.name = "consumer.group_id", .type = BZ_CFG_STRING, .def = "blazz-meta-sender",
     .help = "Kafka consumer group of wa.outbound (also the kafka_offsets group_id)"},
    {.name = "consumer.dlq_topic", .type = BZ_CFG_STRING, .def = "wa.outbound.dlq",
     .help = "base name of the dead-letter topic for undecodable sends"},
    {.name = "consumer.batch_max", .type = BZ_CFG_INT, .def = "500", .min = 1, .max = 10000,
     .help = "wa.outbound records stored per transaction at most"},
    {.name = "consumer.batch_linger_ms", .type = BZ_CFG_INT, .def = "5", .min = 0, .max = 10000,
     .help = "how long a partial batch may wait"},
    {.name = "kafka.session_timeout_ms", .type = BZ_CFG_INT, .def = "10000", .min = 1000,
     .max = 300000, .help = "consumer group session timeout (failover time after a crash)"},
    BZ_OUTBOX_RELAY_CONFIG_KEYS,
};

typedef struct app {
    bz_service svc;
    ms_settings s;
    ms_metrics m;
    bz_eo_consumer *consumer;
    ms_worker *worker;
    bz_outbox_relay *relay;
} app;

static bz_status read_settings(app *a, bz_error *err)
{
    const bz_config *cfg = a->svc.config;
    ms_settings *s = &a->s;
    s->base_url = bz_config_string(cfg, "meta.base_url");
    s->api_version = bz_config_string(cfg, "meta.api_version");
    s->default_per_second = bz_config_double(cfg, "meta.account_per_second");
    s->max_per_second = bz_config_double(cfg, "meta.max_per_second");
    s->rate_guard_ms = bz_config_int(cfg, "meta.rate_guard_ms");
    s->account_concurrency = (int)bz_config_int(cfg, "meta.account_concurrency");
    s->max_connections = (int)bz_config_int(cfg, "meta.max_connections");
    s->request_timeout_ms = bz_config_int(cfg, "meta.request_timeout_ms");
    s->connect_timeout_ms = bz_config_int(cfg, "meta.connect_timeout_ms");
    s->max_attempts = (int)bz_config_int(cfg, "meta.max_attempts");
    s->retry_base_ms = bz_config_int(cfg, "meta.retry_base_ms");
    s->retry_max_ms = bz_config_int(cfg, "meta.retry_max_ms");
    s->ambiguous_hold_ms = bz_config_int(cfg, "meta.ambiguous_hold_ms");
    s->claim_max = (int)bz_config_int(cfg, "meta.claim_max");
    s->lock_name = bz_config_string(cfg, "meta.lock_name");
    bz_status st = bz_keyring_from_config(cfg, "meta.token_key", &s->keyring, err);
    if (st == BZ_OK && s->keyring.count == 0)
        bz_warn("secrets.keys is not set: no access token can be opened, nothing is sent");
    return st;
}

static void readiness(void *arg, bz_readiness *r)
{
    app *a = arg;
    bz_eo_consumer_report_readiness(a->consumer, r);
}

static int run(app *a)
{
    const bz_config *cfg = a->svc.config;
    char topic[BZ_TOPIC_NAME_MAX], dlq[BZ_TOPIC_NAME_MAX];
    bz_service_topic(&a->svc, bz_topic_base(BZ_TOPIC_WA_OUTBOUND), topic, sizeof topic);
    bz_service_topic(&a->svc, bz_config_string(cfg, "consumer.dlq_topic"), dlq, sizeof dlq);
    bz_eo_group_timing timing;
    bz_eo_group_timing_init(&timing, bz_config_int(cfg, "kafka.session_timeout_ms"));
    const char *topics[] = {topic};
    bz_eo_consumer_config ccfg = {
        .kafka = {.brokers = bz_config_string(cfg, "kafka.brokers"),
                  .client_id = "blazz-meta-sender", .extra = timing.extra},
        .group_id = bz_config_string(cfg, "consumer.group_id"),
        .topics = topics,
        .ntopics = 1,
        .dlq_topic = dlq,
        .service = "meta-sender",
        .pg_dsn = bz_config_string(cfg, "pg.dsn"),
        .batch_max = (int)bz_config_int(cfg, "consumer.batch_max"),
        .batch_linger_ms = (int)bz_config_int(cfg, "consumer.batch_linger_ms"),
        .handler = &ms_intake_handler,
        .handler_ctx = a,
        .metrics = a->svc.metrics,
    };
    bz_error err;
    bz_status st = bz_eo_consumer_new(&ccfg, &a->consumer, &err);
    if (st == BZ_OK)
        st = bz_outbox_relay_start_configured(cfg, "blazz-meta-sender-outbox", a->svc.metrics,
                                              &a->relay, &err);
    if (st == BZ_OK)
        st = ms_worker_start(&a->s, ccfg.pg_dsn, &a->m, &a->worker, &err);
    if (st == BZ_OK)
        st = bz_service_start_admin(&a->svc, readiness, a, &err);
    if (st == BZ_OK) {
        bz_info("consuming %s as group %s; sending to %s/%s (relay %s)", topic, ccfg.group_id,
                a->s.base_url, a->s.api_version, a->relay ? "on" : "off");
        st = bz_eo_consumer_run(a->consumer, &err);
    }
    if (st != BZ_OK)
        bz_error_log("meta-sender: %s", err.msg);
    ms_worker_stop(a->worker);
    a->worker = NULL;
    bz_outbox_relay_stop(a->relay);
    a->relay = NULL;
    return st == BZ_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    app a;
    memset(&a, 0, sizeof a);
    int exit_code;
    if (bz_service_init(&a.svc, "meta-sender", argc, argv, keys, sizeof keys / sizeof keys[0],
                        &exit_code) != BZ_OK)
        return exit_code;
    bz_error err;
    bz_error_clear(&err);
    int rc = 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        bz_error_log("meta-sender: libcurl does not initialize");
    else if (read_settings(&a, &err) != BZ_OK || ms_metrics_register(&a.m, a.svc.metrics, &err) !=
                                                     BZ_OK)
        bz_error_log("meta-sender: %s", err.msg);
    else
        rc = run(&a);
    bz_keyring_free(&a.s.keyring);
    bz_service_free(&a.svc);
    bz_eo_consumer_free(a.consumer);
    curl_global_cleanup();
    return rc;
}
