/*
 * main.c - blazz-meta-sender: Meta Cloud API accounts really send
 * (ARCHITECTURE.md §12, issue 17).
 *
 * Wiring only, run by bz_consumer_service_main (libs/runtime/service.c).
 * The exactly-once consumer of wa.outbound (intake.c) on the main thread,
 * the sender thread (worker.c), the media fetcher's threads
 * (media_fetch.c), the outbox relay that publishes the outcomes on
 * chat.sync, and the admin endpoint. Shutdown:
 * the consumer finishes its batch and leaves the group, the sender finishes
 * the requests in flight and records their outcomes, the relay publishes
 * its round.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "runtime/service.h"
#include "kafka/outbox.h"
#include "kafka/topics.h"
#include "media_fetch.h"
#include "meta_sender.h"
#include "wa/meta_graph.h"

static const bz_config_key keys[] = {
    {.name = "meta.base_url", .type = BZ_CFG_STRING, .def = BZ_META_BASE_URL_DEFAULT,
     .help = "Graph API host (the tests' server on loopback in tests and the demo)"},
    {.name = "meta.api_version", .type = BZ_CFG_STRING, .def = BZ_META_API_VERSION_DEFAULT,
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
    {.name = "meta.connection_max_idle_s", .type = BZ_CFG_INT, .def = "30", .min = 1,
     .max = 3600,
     .help = "a kept-alive connection idle longer is not reused (it may be closing: a request "
             "on it whose answer is lost is ambiguous)"},
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
    /* the media store: where the fetcher keeps what it fetches (§16.2),
     * what uploads to Meta read (§16.6) */
    BZ_MEDIA_STORE_CONFIG_KEYS,
    MS_MEDIA_FETCH_CONFIG_KEYS,
};

typedef struct app {
    ms_settings s;
    ms_metrics m;
    ms_worker *worker;
    char topic[BZ_TOPIC_NAME_MAX];
    ms_media_settings media;
    ms_media_metrics media_m;
    ms_media_fetcher *fetcher;
    bz_kafka_settings media_kafka;
    char dlq_topic[BZ_TOPIC_NAME_MAX];
} app;

/* The media fetcher's settings (media_fetch.h); the store's own keys are
 * read by bz_media_store_open. */
static void read_media_settings(app *a, bz_service *svc)
{
    const bz_config *cfg = svc->config;
    ms_media_settings *m = &a->media;
    m->base_url = a->s.base_url;
    m->api_version = a->s.api_version;
    m->keyring = &a->s.keyring;
    m->config = cfg;
    m->dlq_topic = bz_service_topic(svc, bz_topic_base(BZ_TOPIC_WA_OUTBOUND_DLQ), a->dlq_topic,
                                    sizeof a->dlq_topic);
    m->threads = (int)bz_config_int(cfg, "media.fetch_threads");
    m->batch = (int)bz_config_int(cfg, "media.fetch_batch");
    m->max_attempts = (int)bz_config_int(cfg, "media.fetch_max_attempts");
    m->lease_ms = bz_config_int(cfg, "media.fetch_lease_ms");
    m->retry_base_ms = bz_config_int(cfg, "media.fetch_retry_base_ms");
    m->retry_max_ms = bz_config_int(cfg, "media.fetch_retry_max_ms");
    m->request_timeout_ms = bz_config_int(cfg, "media.fetch_timeout_ms");
    m->connect_timeout_ms = bz_config_int(cfg, "media.fetch_connect_timeout_ms");
    m->idle_poll_ms = bz_config_int(cfg, "media.fetch_poll_ms");
    a->media_kafka.brokers = bz_config_string(cfg, "kafka.brokers");
    a->media_kafka.client_id = "blazz-meta-sender-media";
}

static bz_status read_settings(app *a, const bz_config *cfg, bz_error *err)
{
    ms_settings *s = &a->s;
    s->base_url = bz_config_string(cfg, "meta.base_url");
    s->api_version = bz_config_string(cfg, "meta.api_version");
    s->default_per_second = bz_config_double(cfg, "meta.account_per_second");
    s->max_per_second = bz_config_double(cfg, "meta.max_per_second");
    s->rate_guard_ms = bz_config_int(cfg, "meta.rate_guard_ms");
    s->account_concurrency = (int)bz_config_int(cfg, "meta.account_concurrency");
    s->max_connections = (int)bz_config_int(cfg, "meta.max_connections");
    s->connection_max_idle_s = bz_config_int(cfg, "meta.connection_max_idle_s");
    s->request_timeout_ms = bz_config_int(cfg, "meta.request_timeout_ms");
    s->connect_timeout_ms = bz_config_int(cfg, "meta.connect_timeout_ms");
    s->max_attempts = (int)bz_config_int(cfg, "meta.max_attempts");
    s->retry_base_ms = bz_config_int(cfg, "meta.retry_base_ms");
    s->retry_max_ms = bz_config_int(cfg, "meta.retry_max_ms");
    s->ambiguous_hold_ms = bz_config_int(cfg, "meta.ambiguous_hold_ms");
    s->claim_max = (int)bz_config_int(cfg, "meta.claim_max");
    s->lock_name = bz_config_string(cfg, "meta.lock_name");
    bz_status st = bz_keyring_from_config(cfg, "meta.token_key", &s->keyring, err);
    if (st == BZ_OK)
        st = bz_media_store_open(cfg, &s->media_store, err);
    if (st == BZ_OK && s->keyring.count == 0)
        bz_warn("secrets.keys is not set: no access token can be opened, nothing is sent");
    return st;
}

static bz_status prepare(void *arg, bz_service *svc, bz_consumer_plan *plan, bz_error *err)
{
    app *a = arg;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return bz_fail(err, BZ_ERR_INTERNAL, "libcurl does not initialize");
    bz_status st = read_settings(a, svc->config, err);
    if (st == BZ_OK)
        st = ms_metrics_register(&a->m, svc->metrics, err);
    if (st == BZ_OK)
        st = ms_media_metrics_register(&a->media_m, svc->metrics, err);
    read_media_settings(a, svc);
    bz_service_topic(svc, bz_topic_base(BZ_TOPIC_WA_OUTBOUND), a->topic, sizeof a->topic);
    plan->topics[0] = a->topic;
    plan->ntopics = 1;
    plan->dlq_base = bz_config_string(svc->config, "consumer.dlq_topic");
    plan->handler = &ms_intake_handler;
    plan->handler_ctx = a;
    plan->batch_linger_ms = (int)bz_config_int(svc->config, "consumer.batch_linger_ms");
    snprintf(plan->detail, sizeof plan->detail, "; sending to %s/%s", a->s.base_url,
             a->s.api_version);
    return st;
}

static bz_status start_worker(void *arg, bz_service *svc, bz_error *err)
{
    app *a = arg;
    const char *dsn = bz_config_string(svc->config, "pg.dsn");
    bz_status st = ms_worker_start(&a->s, dsn, &a->m, &a->worker, err);
    if (st == BZ_OK)
        st = ms_media_fetcher_start(&a->media, dsn, &a->media_kafka, &a->media_m, &a->fetcher,
                                    err);
    return st;
}

static void stop_worker(void *arg)
{
    app *a = arg;
    ms_media_fetcher_stop(a->fetcher);
    ms_worker_stop(a->worker);
}

static void release(void *arg)
{
    app *a = arg;
    bz_keyring_free(&a->s.keyring);
    bz_media_store_close(a->s.media_store);
    curl_global_cleanup();
}

int main(int argc, char **argv)
{
    static app a;
    const bz_consumer_service_def def = {.name = "meta-sender", .keys = keys,
                                         .nkeys = sizeof keys / sizeof keys[0], .app = &a,
                                         .prepare = prepare, .start = start_worker,
                                         .stop = stop_worker, .release = release};
    return bz_consumer_service_main(argc, argv, &def);
}
