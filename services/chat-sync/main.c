/*
 * main.c - blazz-chat-sync: applies chat.sync commands and the CRM's
 * crm.commands to PostgreSQL exactly once and publishes what happened
 * (chat.events, session.events, campaign.receipts, read receipts on
 * wa.outbound) through its outbox.
 *
 * Wiring only: service start-up (configuration, logging, signals, metrics),
 * the exactly-once consumer with chat-sync's handler (handler.c), the
 * outbox relay thread (one active per database; outbox.relay_enabled turns
 * it off when another process relays), the admin endpoint, then an orderly
 * shutdown: the consumer finishes its batch and leaves the group, the relay
 * publishes its round and stops, everything is freed.
 */
#include <stdio.h>
#include <string.h>

#include "chat_sync.h"
#include "core/log.h"
#include "core/service.h"
#include "kafka/outbox.h"
#include "kafka/topics.h"

static const bz_config_key keys[] = {
    {.name = "consumer.group_id", .type = BZ_CFG_STRING, .def = "blazz-chat-sync",
     .help = "Kafka consumer group (also the kafka_offsets group_id)"},
    {.name = "consumer.batch_max", .type = BZ_CFG_INT, .def = "2000", .min = 1, .max = 10000,
     .help = "commands applied per transaction at most"},
    {.name = "consumer.batch_linger_ms", .type = BZ_CFG_INT, .def = "3", .min = 1, .max = 10000,
     .help = "how long a partial batch waits for more commands"},
    {.name = "consumer.async_commit", .type = BZ_CFG_BOOL, .def = "true",
     .help = "commit batches without waiting for the WAL flush (safe: offsets commit with "
             "the effects; see chat-sync.conf.example)"},
    {.name = "kafka.session_timeout_ms", .type = BZ_CFG_INT, .def = "10000", .min = 1000,
     .max = 300000, .help = "consumer group session timeout (failover time after a crash)"},
    BZ_OUTBOX_RELAY_CONFIG_KEYS,
};

typedef struct app {
    bz_service svc;
    cs_ctx ctx;
    bz_eo_consumer *consumer;
    bz_outbox_relay *relay;
} app;

static void readiness(void *arg, bz_readiness *r)
{
    app *a = arg;
    bz_eo_consumer_report_readiness(a->consumer, r);
}

static int run(app *a)
{
    const bz_config *cfg = a->svc.config;
    char topic[BZ_TOPIC_NAME_MAX], dlq[BZ_TOPIC_NAME_MAX];
    bz_service_topic(&a->svc, bz_topic_base(BZ_TOPIC_CHAT_SYNC), topic, sizeof topic);
    bz_service_topic(&a->svc, bz_topic_base(BZ_TOPIC_CHAT_SYNC_DLQ), dlq, sizeof dlq);
    bz_eo_group_timing timing;
    bz_eo_group_timing_init(&timing, bz_config_int(cfg, "kafka.session_timeout_ms"));
    const char *topics[] = {topic, a->ctx.crm_topic};
    bz_eo_consumer_config ccfg = {
        .kafka = {.brokers = bz_config_string(cfg, "kafka.brokers"), .client_id = "blazz-chat-sync",
                  .extra = timing.extra},
        .group_id = bz_config_string(cfg, "consumer.group_id"),
        .topics = topics,
        .ntopics = 2,
        .dlq_topic = dlq,
        .service = "chat-sync",
        .pg_dsn = bz_config_string(cfg, "pg.dsn"),
        .batch_max = (int)bz_config_int(cfg, "consumer.batch_max"),
        .batch_linger_ms = (int)bz_config_int(cfg, "consumer.batch_linger_ms"),
        .async_commit = bz_config_bool(cfg, "consumer.async_commit"),
        .handler = &cs_handler,
        .handler_ctx = &a->ctx,
        .metrics = a->svc.metrics,
    };
    bz_error err;
    bz_status st = cs_ctx_init(&a->ctx, a->svc.metrics, &err);
    if (st == BZ_OK)
        bz_service_topic(&a->svc, bz_topic_base(BZ_TOPIC_CRM_COMMANDS), a->ctx.crm_topic,
                         sizeof a->ctx.crm_topic);
    if (st == BZ_OK)
        st = bz_eo_consumer_new(&ccfg, &a->consumer, &err);
    if (st == BZ_OK)
        st = bz_outbox_relay_start_configured(cfg, "blazz-chat-sync-outbox", a->svc.metrics,
                                                  &a->relay, &err);
    if (st == BZ_OK)
        st = bz_service_start_admin(&a->svc, readiness, a, &err);
    if (st == BZ_OK) {
        bz_info("consuming %s and %s as group %s (relay %s)", topic, a->ctx.crm_topic,
                ccfg.group_id, a->relay ? "on" : "off");
        st = bz_eo_consumer_run(a->consumer, &err);
    }
    if (st != BZ_OK)
        bz_error_log("chat-sync: %s", err.msg);
    bz_outbox_relay_stop(a->relay);
    a->relay = NULL;
    return st == BZ_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    app a;
    memset(&a, 0, sizeof a);
    int exit_code;
    if (bz_service_init(&a.svc, "chat-sync", argc, argv, keys, sizeof keys / sizeof keys[0],
                        &exit_code) != BZ_OK)
        return exit_code;
    int rc = run(&a);
    /* The admin thread reads the consumer's stats: stop it first. */
    bz_service_free(&a.svc);
    bz_eo_consumer_free(a.consumer);
    return rc;
}
