/*
 * main.c - blazz-webhook-dispatcher: wiring only, run by
 * bz_consumer_service_main (libs/runtime/service.c) without an outbox relay
 * (the dispatcher has no outbox).
 *
 * The exactly-once consumer (fanout.c) turns chat.events, session.events and
 * campaign.events into webhook_retry_queue rows on the main thread and
 * hands each committed batch's rows to the delivery worker (worker.c),
 * which sends them on its own thread. Shutdown: the
 * consumer returns on SIGTERM/SIGINT after committing what it applied, then
 * the worker gives in-flight attempts webhook.stop_wait_ms to finish, hands
 * the rest back and writes every outcome.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "core/log.h"
#include "fanout.h"
#include "kafka/topics.h"
#include "runtime/service.h"
#include "worker.h"

#define SERVICE "webhook-dispatcher"

/* A member hears of a rebalance in a heartbeat's answer, so frequent
 * heartbeats shorten the time between joining the group and the first
 * assignment, the window in which librdkafka 2.0.2 aborts if the consumer
 * is destroyed (libs/kafka/eo_consumer.c, await_first_assignment). The
 * dispatcher has always beaten every second; at a third of its session
 * timeout (3.3 s) test_webhook_outcomes' broker stop 2 s after two
 * dispatchers started met that abort at SIGTERM. */
#define DISPATCHER_HEARTBEAT_MS 1000

#ifndef BZ_VERSION
#define BZ_VERSION "dev"
#endif

static const bz_config_key keys[] = {
    {.name = "consumer.group_id", .type = BZ_CFG_STRING, .def = "blazz-webhook-dispatcher",
     .help = "Kafka consumer group (and kafka_offsets group_id)"},
    {.name = "consumer.batch_max", .type = BZ_CFG_INT, .def = "500", .min = 1, .max = 10000,
     .help = "events fanned out per transaction"},
    {.name = "consumer.batch_linger_ms", .type = BZ_CFG_INT, .def = "3", .min = 1, .max = 10000,
     .help = "how long a partial batch waits for more events"},
    {.name = "consumer.async_commit", .type = BZ_CFG_BOOL, .def = "true",
     .help = "commit fan-out batches without waiting for the WAL flush (safe: offsets commit "
             "with the rows; see webhook-dispatcher.conf.example)"},
    {.name = "consumer.session_timeout_ms", .type = BZ_CFG_INT, .def = "10000", .min = 1000,
     .max = 300000, .help = "group session timeout: how soon a dead instance's partitions move"},
    {.name = "secrets.keys", .type = BZ_CFG_STRING, .secret = 1,
     .help = "keys of the endpoint secrets, oldest first: ID:KEY[,ID:KEY] (KEY: 64 hex digits "
             "or base64 of 32 bytes); all decrypt"},
    {.name = "webhook.secret_key", .type = BZ_CFG_STRING, .secret = 1,
     .help = "the older name of a single key (id 0), read when secrets.keys is not set"},
    {.name = "webhook.retry_schedule", .type = BZ_CFG_STRING, .def = "0,5s,5m,30m,2h,5h,10h,10h",
     .help = "delay of each attempt (first = initial attempt); units ms, s, m, h"},
    {.name = "webhook.retry_jitter", .type = BZ_CFG_DOUBLE, .def = "0.2", .min = 0, .max = 1,
     .help = "random spread of retry delays, as a fraction (+-)"},
    {.name = "webhook.retry_after_max_s", .type = BZ_CFG_INT, .def = "3600", .min = 0,
     .max = 86400, .help = "upper clamp of a receiver's Retry-After"},
    {.name = "webhook.connect_timeout_ms", .type = BZ_CFG_INT, .def = "5000", .min = 100,
     .max = 60000, .help = "TCP/TLS connect timeout of an attempt"},
    {.name = "webhook.timeout_ms", .type = BZ_CFG_INT, .def = "15000", .min = 100,
     .max = 300000, .help = "total timeout of an attempt (caps the endpoint's timeout_ms)"},
    {.name = "webhook.stop_wait_ms", .type = BZ_CFG_INT, .def = "5000", .min = 0,
     .max = 300000,
     .help = "at a stop, how long in-flight attempts may finish; the rest are sent again "
             "later (same webhook-id)"},
    {.name = "webhook.max_response_bytes", .type = BZ_CFG_INT, .def = "65536", .min = 0,
     .max = 16777216, .help = "response body read at most; the rest is not waited for"},
    {.name = "webhook.allow_private_targets", .type = BZ_CFG_BOOL, .def = "false",
     .help = "allow loopback, private, link-local and CGNAT targets (tests only)"},
    {.name = "webhook.claim_batch", .type = BZ_CFG_INT, .def = "500", .min = 1, .max = 10000,
     .help = "due deliveries claimed per query"},
    {.name = "webhook.max_local_jobs", .type = BZ_CFG_INT, .def = "2000", .min = 1,
     .max = 100000, .help = "deliveries claimed and not yet finished, all endpoints"},
    {.name = "webhook.max_pending_dead_letters", .type = BZ_CFG_INT, .def = "1000", .min = 1,
     .max = 100000,
     .help = "dead letters held until the broker acknowledges them; beyond, rows wait leased"},
    {.name = "webhook.claim_lease_ms", .type = BZ_CFG_INT, .def = "120000", .min = 1000,
     .max = 3600000,
     .help = "a claimed delivery falls due again after this if its instance died"},
    {.name = "webhook.poll_ms", .type = BZ_CFG_INT, .def = "1000", .min = 10, .max = 60000,
     .help = "claim at least this often even without notifications"},
    {.name = "webhook.max_connections", .type = BZ_CFG_INT, .def = "512", .min = 1,
     .max = 100000, .help = "HTTP connection pool size (keep-alive connections)"},
    {.name = "webhook.circuit.enabled", .type = BZ_CFG_BOOL, .def = "true",
     .help = "circuit breakers; false: retries follow the schedule alone, however an "
             "endpoint fails"},
    {.name = "webhook.circuit.window", .type = BZ_CFG_INT, .def = "20", .min = 1, .max = 64,
     .help = "circuit breaker: attempts remembered per endpoint"},
    {.name = "webhook.circuit.min_requests", .type = BZ_CFG_INT, .def = "10", .min = 1,
     .max = 64, .help = "circuit breaker: attempts needed before it may open"},
    {.name = "webhook.circuit.failure_ratio", .type = BZ_CFG_DOUBLE, .def = "0.5", .min = 0.01,
     .max = 1, .help = "circuit breaker: failure ratio that opens it"},
    {.name = "webhook.circuit.open_ms", .type = BZ_CFG_INT, .def = "30000", .min = 10,
     .max = 3600000, .help = "circuit breaker: first open period before a probe"},
    {.name = "webhook.circuit.open_max_ms", .type = BZ_CFG_INT, .def = "600000", .min = 10,
     .max = 86400000, .help = "circuit breaker: longest open period"},
    {.name = "webhook.circuit.timeouts_to_open", .type = BZ_CFG_INT, .def = "3", .min = 0,
     .max = 64, .help = "circuit breaker: timed-out attempts in a row that open it (0: off)"},
    {.name = "webhook.auto_disable_after_s", .type = BZ_CFG_INT, .def = "432000", .min = 0,
     .max = 31536000, .help = "disable an endpoint failing continuously this long (0: never)"},
};

typedef struct app {
    wh_worker *worker;
    wh_worker_config worker_config;
    bz_keyring keyring;
    wh_fanout fanout;
    char chat[BZ_TOPIC_NAME_MAX], session[BZ_TOPIC_NAME_MAX], campaign[BZ_TOPIC_NAME_MAX],
        dlq[BZ_TOPIC_NAME_MAX];
} app;

/* The consumer's lines come from the runner; the worker has a connection of
 * its own. */
static void readiness(void *arg, bz_readiness *r)
{
    app *a = arg;
    int up = a->worker && wh_worker_db_up(a->worker);
    bz_readiness_add(r, "delivery postgresql", up, "%s", up ? "up" : "down");
}

/* secrets.keys, else the single webhook.secret_key of older configurations. */
static bz_status load_keyring(const bz_config *cfg, bz_keyring *ring, bz_error *err)
{
    bz_status st = bz_keyring_from_config(cfg, "webhook.secret_key", ring, err);
    if (st == BZ_OK && ring->count == 0)
        bz_log(BZ_LOG_WARN, "secrets.keys is not set: endpoint secrets cannot be decrypted and "
                            "their deliveries will fail");
    return st;
}

static bz_status worker_config(const bz_config *cfg, bz_keyring *ring, wh_worker_config *w,
                               bz_error *err)
{
    memset(w, 0, sizeof *w);
    if (wh_schedule_parse(bz_config_string(cfg, "webhook.retry_schedule"), &w->schedule,
                             err) != BZ_OK)
        return bz_wrap(err, "webhook.retry_schedule");
    w->schedule.jitter = bz_config_double(cfg, "webhook.retry_jitter");
    if (load_keyring(cfg, ring, err) != BZ_OK)
        return err->code;
    w->keyring = ring;
    w->retry_after_max_ms = bz_config_int(cfg, "webhook.retry_after_max_s") * 1000;
    w->timeout_ms = (int)bz_config_int(cfg, "webhook.timeout_ms");
    w->stop_wait_ms = (int)bz_config_int(cfg, "webhook.stop_wait_ms");
    w->delivery.connect_timeout_ms = (int)bz_config_int(cfg, "webhook.connect_timeout_ms");
    w->delivery.max_response_bytes = (size_t)bz_config_int(cfg, "webhook.max_response_bytes");
    w->delivery.allow_private_targets = bz_config_bool(cfg, "webhook.allow_private_targets");
    w->delivery.max_connections = (int)bz_config_int(cfg, "webhook.max_connections");
    w->delivery.user_agent = "blazz-webhook-dispatcher/" BZ_VERSION;
    w->claim_batch = (int)bz_config_int(cfg, "webhook.claim_batch");
    w->max_local_jobs = (int)bz_config_int(cfg, "webhook.max_local_jobs");
    w->max_pending_dead_letters = (int)bz_config_int(cfg, "webhook.max_pending_dead_letters");
    w->claim_lease_ms = bz_config_int(cfg, "webhook.claim_lease_ms");
    w->poll_ms = (int)bz_config_int(cfg, "webhook.poll_ms");
    w->circuit.window = (int)bz_config_int(cfg, "webhook.circuit.window");
    w->circuit.min_requests = (int)bz_config_int(cfg, "webhook.circuit.min_requests");
    w->circuit.failure_ratio = bz_config_double(cfg, "webhook.circuit.failure_ratio");
    w->circuit.open_ms = bz_config_int(cfg, "webhook.circuit.open_ms");
    w->circuit.open_max_ms = bz_config_int(cfg, "webhook.circuit.open_max_ms");
    w->circuit.timeouts_to_open = (int)bz_config_int(cfg, "webhook.circuit.timeouts_to_open");
    w->circuit.disabled = !bz_config_bool(cfg, "webhook.circuit.enabled");
    w->auto_disable_after_ms = bz_config_int(cfg, "webhook.auto_disable_after_s") * 1000;
    if (w->claim_lease_ms <= w->timeout_ms)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "webhook.claim_lease_ms (%lld) must exceed webhook.timeout_ms (%d)",
                       (long long)w->claim_lease_ms, w->timeout_ms);
    return BZ_OK;
}

static bz_status register_fanout_metrics(app *a, bz_metrics *metrics, bz_error *err)
{
    const bz_metric_decl decls[] = {
        {.def = {.name = "blazz_webhook_dispatcher_produced_to_enqueued_seconds",
                 .help = "From the event's produced_at to its fan-out."},
         .histogram = &a->fanout.produced_to_enqueued},
        {.def = {.name = "blazz_webhook_dispatcher_enqueued_total",
                 .help = "Deliveries created by fan-out and replays."},
         .counter = &a->fanout.enqueued},
    };
    if (BZ_METRICS_DECLARE(metrics, decls, err) != BZ_OK)
        return bz_wrap(err, "register metrics");
    return BZ_OK;
}

static bz_status prepare(void *arg, bz_service *svc, bz_consumer_plan *plan, bz_error *err)
{
    app *a = arg;
    const bz_config *cfg = svc->config;
    bz_service_topic(svc, bz_topic_base(BZ_TOPIC_CHAT_EVENTS), a->chat, sizeof a->chat);
    bz_service_topic(svc, bz_topic_base(BZ_TOPIC_SESSION_EVENTS), a->session, sizeof a->session);
    bz_service_topic(svc, bz_topic_base(BZ_TOPIC_CAMPAIGN_EVENTS), a->campaign,
                     sizeof a->campaign);
    bz_service_topic(svc, bz_topic_base(BZ_TOPIC_WEBHOOK_DLQ), a->dlq, sizeof a->dlq);
    wh_worker_config *w = &a->worker_config;
    if (worker_config(cfg, &a->keyring, w, err) != BZ_OK)
        return err->code;
    w->pg_dsn = bz_config_string(cfg, "pg.dsn");
    w->kafka = (bz_kafka_settings){.brokers = bz_config_string(cfg, "kafka.brokers"),
                                   .client_id = "blazz-" SERVICE "-dlq"};
    w->topic_prefix = bz_config_string(cfg, "kafka.topic_prefix");
    w->dlq_topic = a->dlq;
    w->service = SERVICE;
    w->metrics = svc->metrics;
    if (register_fanout_metrics(a, svc->metrics, err) != BZ_OK)
        return err->code;
    a->fanout.chat_topic = a->chat;
    a->fanout.session_topic = a->session;
    a->fanout.campaign_topic = a->campaign;
    a->fanout.max_retries = (int)w->schedule.count - 1;
    plan->topics[0] = a->chat;
    plan->topics[1] = a->session;
    plan->topics[2] = a->campaign;
    plan->ntopics = 3;
    /* undecodable events go next to undeliverable webhooks, told apart by
     * error_code, so ops watch one topic */
    plan->dlq_base = bz_topic_base(BZ_TOPIC_WEBHOOK_DLQ);
    plan->handler = &wh_fanout_handler;
    plan->handler_ctx = &a->fanout;
    plan->batch_linger_ms = (int)bz_config_int(cfg, "consumer.batch_linger_ms");
    plan->async_commit = bz_config_bool(cfg, "consumer.async_commit");
    snprintf(plan->detail, sizeof plan->detail, "; dead letters to %.140s", a->dlq);
    return BZ_OK;
}

static bz_status start_worker(void *arg, bz_service *svc, bz_error *err)
{
    (void)svc;
    app *a = arg;
    bz_status st = wh_worker_start(&a->worker_config, &a->worker, err);
    if (st == BZ_OK) {
        a->fanout.worker = a->worker;
        a->fanout.instance_id = wh_worker_instance_id(a->worker);
        a->fanout.lease_ms = a->worker_config.claim_lease_ms;
    }
    return st;
}

static void stop_worker(void *arg)
{
    app *a = arg;
    a->fanout.worker = NULL;
    a->fanout.instance_id = NULL;
    wh_worker_stop(a->worker);
    a->worker = NULL;
}

static void release(void *arg)
{
    app *a = arg;
    wh_fanout_clear(&a->fanout);
    bz_keyring_free(&a->keyring);
}

int main(int argc, char **argv)
{
    static app a;
    const bz_consumer_service_def def = {.name = SERVICE, .keys = keys,
                                         .nkeys = sizeof keys / sizeof keys[0], .app = &a,
                                         .without_relay = 1,
                                         .session_timeout_key = "consumer.session_timeout_ms",
                                         .heartbeat_ms = DISPATCHER_HEARTBEAT_MS,
                                         .prepare = prepare, .start = start_worker,
                                         .stop = stop_worker, .release = release,
                                         .ready = readiness};
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = bz_consumer_service_main(argc, argv, &def);
    curl_global_cleanup();
    return rc;
}
