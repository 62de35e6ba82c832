/*
 * main.c - blazz-chat-sync: applies chat.sync commands and the CRM's
 * crm.commands to PostgreSQL exactly once and publishes what happened
 * (chat.events, session.events, campaign.receipts, read receipts on
 * wa.outbound) through its outbox.
 *
 * Wiring only, run by bz_consumer_service_main (libs/runtime/service.c):
 * service start-up (configuration, logging, signals, metrics),
 * the exactly-once consumer with chat-sync's handler (handler.c), the
 * outbox relay thread (one active per database; outbox.relay_enabled turns
 * it off when another process relays), the admin endpoint, then an orderly
 * shutdown: the consumer finishes its batch and leaves the group, the relay
 * publishes its round and stops, everything is freed.
 */
#include "chat_sync.h"
#include "runtime/service.h"
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
    cs_ctx ctx;
    char topic[BZ_TOPIC_NAME_MAX];
} app;

static bz_status prepare(void *arg, bz_service *svc, bz_consumer_plan *plan, bz_error *err)
{
    app *a = arg;
    const bz_config *cfg = svc->config;
    bz_status st = cs_ctx_init(&a->ctx, svc->metrics, err);
    if (st != BZ_OK)
        return st;
    bz_service_topic(svc, bz_topic_base(BZ_TOPIC_CHAT_SYNC), a->topic, sizeof a->topic);
    bz_service_topic(svc, bz_topic_base(BZ_TOPIC_CRM_COMMANDS), a->ctx.crm_topic,
                     sizeof a->ctx.crm_topic);
    plan->topics[0] = a->topic;
    plan->topics[1] = a->ctx.crm_topic;
    plan->ntopics = 2;
    plan->dlq_base = bz_topic_base(BZ_TOPIC_CHAT_SYNC_DLQ);
    plan->handler = &cs_handler;
    plan->handler_ctx = &a->ctx;
    plan->batch_linger_ms = (int)bz_config_int(cfg, "consumer.batch_linger_ms");
    plan->async_commit = bz_config_bool(cfg, "consumer.async_commit");
    return BZ_OK;
}

int main(int argc, char **argv)
{
    static app a;
    const bz_consumer_service_def def = {.name = "chat-sync", .keys = keys,
                                         .nkeys = sizeof keys / sizeof keys[0], .app = &a,
                                         .prepare = prepare};
    return bz_consumer_service_main(argc, argv, &def);
}
