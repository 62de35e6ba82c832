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
 * it off when another process relays), the session assignment sweep
 * (assign.h; one active per database), the admin endpoint, then an
 * orderly shutdown: the sweep ends its round, the consumer finishes its
 * batch and leaves the group, the relay publishes its round and stops,
 * everything is freed.
 */
#include <string.h>

#include "assign.h"
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
    {.name = "consumer.fetch_wait_ms", .type = BZ_CFG_INT, .def = "5", .min = 0, .max = 1000,
     .help = "the broker gathers commands this long per fetch (0: answers at the first "
             "one): a fetch every few milliseconds rather than one per command"},
    {.name = "consumer.async_commit", .type = BZ_CFG_BOOL, .def = "true",
     .help = "commit batches without waiting for the WAL flush (safe: offsets commit with "
             "the effects; see chat-sync.conf.example)"},
    {.name = "kafka.session_timeout_ms", .type = BZ_CFG_INT, .def = "10000", .min = 1000,
     .max = 300000, .help = "consumer group session timeout (failover time after a crash)"},
    {.name = "sessions.sweep_enabled", .type = BZ_CFG_BOOL, .def = "true",
     .help = "run the session assignment sweep (one instance per database sweeps at a time)"},
    {.name = "sessions.instance_timeout_s", .type = BZ_CFG_INT, .def = "30", .min = 2,
     .max = 3600, .help = "a gateway instance silent this long is declared dead; its sessions move"},
    {.name = "sessions.sweep_interval_ms", .type = BZ_CFG_INT, .def = "1000", .min = 10,
     .max = 60000, .help = "how often the sweep looks when nothing wakes it"},
    {.name = "sessions.moves_per_instance", .type = BZ_CFG_INT, .def = "50", .min = 1,
     .max = 100000, .help = "sessions placed on one instance per round at most"},
    {.name = "sessions.per_round", .type = BZ_CFG_INT, .def = "500", .min = 1, .max = 100000,
     .help = "sessions the sweep looks at per round"},
    {.name = "sessions.assignment", .type = BZ_CFG_STRING, .def = "least_loaded",
     .help = "least_loaded (with workspace affinity) or modulo (seed 003: workspace_id % "
             "live instances)"},
    {.name = "sessions.affinity_slack", .type = BZ_CFG_INT, .def = "10", .min = 0,
     .max = 100000,
     .help = "sessions an instance may carry above the least loaded to keep a workspace together"},
    {.name = "history_sync.enabled", .type = BZ_CFG_BOOL, .def = "true",
     .help = "a connect starts the initial history sync (seed 002's sync_enabled; each "
             "account's whatsapp_accounts.sync_enabled too)"},
    {.name = "history_sync.max_chats", .type = BZ_CFG_INT, .def = "500", .min = 0,
     .max = 1000000, .help = "the newest chats a sync sends at most (0: no limit)"},
    {.name = "history_sync.window_days", .type = BZ_CFG_INT, .def = "30", .min = 0,
     .max = 36500, .help = "only chats active in the last N days (0: no limit)"},
    {.name = "history_sync.messages_per_chat", .type = BZ_CFG_INT, .def = "50", .min = 0,
     .max = 1000, .help = "the last N messages of each synced chat (ingest takes 1,000)"},
    {.name = "history_sync.chats_per_second", .type = BZ_CFG_INT, .def = "10", .min = 1,
     .max = 100000, .help = "chats a gateway reads from WhatsApp a second at most"},
    {.name = "history_sync.batch_chats", .type = BZ_CFG_INT, .def = "50", .min = 1, .max = 50,
     .help = "chats one history batch carries at most (ingest takes 50, the seeds' batch)"},
    {.name = "history_sync.batches_in_flight", .type = BZ_CFG_INT, .def = "5", .min = 1,
     .max = 100, .help = "history batches a gateway has on their way at once at most"},
    BZ_OUTBOX_RELAY_CONFIG_KEYS,
};

typedef struct app {
    cs_ctx ctx;
    char topic[BZ_TOPIC_NAME_MAX];
    cs_assign_config assign;
    int sweep;
    cs_assigner *assigner;
} app;

static bz_status read_assignment(app *a, const bz_config *cfg, bz_error *err)
{
    const char *policy = bz_config_string(cfg, "sessions.assignment");
    if (strcmp(policy, "least_loaded") != 0 && strcmp(policy, "modulo") != 0)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "sessions.assignment: '%s' is neither least_loaded nor modulo", policy);
    a->sweep = bz_config_bool(cfg, "sessions.sweep_enabled");
    a->assign = (cs_assign_config){
        .pg_dsn = bz_config_string(cfg, "pg.dsn"),
        .instance_timeout_ms = bz_config_int(cfg, "sessions.instance_timeout_s") * 1000,
        .interval_ms = (int)bz_config_int(cfg, "sessions.sweep_interval_ms"),
        .moves_per_instance = (int)bz_config_int(cfg, "sessions.moves_per_instance"),
        .sessions_per_round = (int)bz_config_int(cfg, "sessions.per_round"),
        .policy = strcmp(policy, "modulo") == 0 ? CS_ASSIGN_MODULO : CS_ASSIGN_LEAST_LOADED,
        .affinity_slack = (int)bz_config_int(cfg, "sessions.affinity_slack")};
    return BZ_OK;
}

static void read_history_limits(Blazz__V1__HistorySyncLimits *h, const bz_config *cfg)
{
    blazz__v1__history_sync_limits__init(h);
    *h = (Blazz__V1__HistorySyncLimits){
        .base = h->base,
        .enabled = bz_config_bool(cfg, "history_sync.enabled"),
        .max_chats = (int)bz_config_int(cfg, "history_sync.max_chats"),
        .window_days = (int)bz_config_int(cfg, "history_sync.window_days"),
        .messages_per_chat = (int)bz_config_int(cfg, "history_sync.messages_per_chat"),
        .chats_per_second = (int)bz_config_int(cfg, "history_sync.chats_per_second"),
        .batch_chats = (int)bz_config_int(cfg, "history_sync.batch_chats"),
        .batches_in_flight = (int)bz_config_int(cfg, "history_sync.batches_in_flight")};
}

static bz_status prepare(void *arg, bz_service *svc, bz_consumer_plan *plan, bz_error *err)
{
    app *a = arg;
    const bz_config *cfg = svc->config;
    bz_status st = cs_ctx_init(&a->ctx, svc->metrics, err);
    if (st == BZ_OK)
        st = read_assignment(a, cfg, err);
    if (st != BZ_OK)
        return st;
    read_history_limits(&a->ctx.history, cfg);
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
    plan->fetch_wait_ms = (int)bz_config_int(cfg, "consumer.fetch_wait_ms");
    plan->async_commit = bz_config_bool(cfg, "consumer.async_commit");
    return BZ_OK;
}

static bz_status start(void *arg, bz_service *svc, bz_error *err)
{
    (void)svc;
    app *a = arg;
    return a->sweep ? cs_assigner_start(&a->assign, &a->ctx, &a->assigner, err) : BZ_OK;
}

static void stop(void *arg)
{
    app *a = arg;
    cs_assigner_stop(a->assigner);
    a->assigner = NULL;
}

static void ready(void *arg, bz_readiness *r)
{
    app *a = arg;
    if (a->assigner)
        cs_assigner_report_readiness(a->assigner, r);
}

int main(int argc, char **argv)
{
    static app a;
    const bz_consumer_service_def def = {.name = "chat-sync", .keys = keys,
                                         .nkeys = sizeof keys / sizeof keys[0], .app = &a,
                                         .prepare = prepare, .start = start, .stop = stop,
                                         .ready = ready};
    return bz_consumer_service_main(argc, argv, &def);
}
