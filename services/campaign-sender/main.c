/*
 * main.c - blazz-campaign-sender: bulk WhatsApp campaigns that respect rate
 * limits and never send a recipient twice (ARCHITECTURE.md §5).
 *
 * Wiring only, run by bz_consumer_service_main (libs/runtime/service.c):
 * service start-up (configuration, logging, signals, metrics),
 * the exactly-once consumer of campaign.commands and campaign.receipts
 * (handler.c), the sender thread (sender.c: scheduler and send loop), the
 * outbox relay that publishes wa.outbound and campaign.events, and the
 * admin endpoint. Shutdown runs in order: the consumer finishes its batch
 * and leaves the group, the sender finishes its transaction and releases
 * its lock, the relay publishes its round, then everything is freed.
 */
#include "campaign_sender.h"
#include "runtime/service.h"
#include "kafka/outbox.h"
#include "sender.h"

static const bz_config_key keys[] = {
    {.name = "consumer.group_id", .type = BZ_CFG_STRING, .def = "blazz-campaign-sender",
     .help = "Kafka consumer group (also the kafka_offsets group_id)"},
    {.name = "consumer.batch_max", .type = BZ_CFG_INT, .def = "500", .min = 1, .max = 10000,
     .help = "commands and receipts applied per transaction at most"},
    {.name = "consumer.batch_linger_ms", .type = BZ_CFG_INT, .def = "10", .min = 1, .max = 10000,
     .help = "how long a partial batch waits for more records"},
    {.name = "kafka.session_timeout_ms", .type = BZ_CFG_INT, .def = "10000", .min = 1000,
     .max = 300000, .help = "consumer group session timeout (failover time after a crash)"},
    BZ_OUTBOX_RELAY_CONFIG_KEYS,
    {.name = "sender.enabled", .type = BZ_CFG_BOOL, .def = "true",
     .help = "compete for the sender lock and run the send loop"},
    {.name = "sender.lock_name", .type = BZ_CFG_STRING, .def = "blazz-campaign-sender",
     .help = "advisory lock name: one active send loop per database and name"},
    {.name = "sender.batch_max", .type = BZ_CFG_INT, .def = "500", .min = 1, .max = 10000,
     .help = "logs queued per transaction at most"},
    {.name = "sender.idle_ms", .type = BZ_CFG_INT, .def = "200", .min = 1, .max = 10000,
     .help = "longest sleep of the send loop when there is nothing to send"},
    {.name = "sender.refresh_ms", .type = BZ_CFG_INT, .def = "500", .min = 20, .max = 60000,
     .help = "how often running campaigns, accounts and limits are re-read"},
    {.name = "sender.expire_after_s", .type = BZ_CFG_INT, .def = "0", .min = 0, .max = 604800,
     .help = "SendMessage.expires_at = queue time + this (0: never expires)"},
    {.name = "scheduler.enabled", .type = BZ_CFG_BOOL, .def = "true",
     .help = "start due scheduled campaigns (safe on every instance)"},
    {.name = "scheduler.interval_ms", .type = BZ_CFG_INT, .def = "1000", .min = 20,
     .max = 3600000, .help = "how often due scheduled campaigns are looked for"},
    {.name = "rate.smoothing_ms", .type = BZ_CFG_INT, .def = "100", .min = 1, .max = 60000,
     .help = "a campaign's pace: at most what a limit earns in this time (at least one "
             "message) back to back"},
    {.name = "rate.account_per_second", .type = BZ_CFG_DOUBLE, .def = "0", .min = 0, .max = 100000,
     .help = "default per-account limit per second (0: none)"},
    {.name = "rate.account_per_minute", .type = BZ_CFG_DOUBLE, .def = "60", .min = 0,
     .max = 6000000, .help = "default per-account limit per minute (seeds: 60)"},
    {.name = "rate.account_per_hour", .type = BZ_CFG_DOUBLE, .def = "1000", .min = 0,
     .max = 360000000, .help = "default per-account limit per hour (seeds: 1000)"},
    {.name = "rate.account_max_per_second", .type = BZ_CFG_DOUBLE, .def = "80", .min = 0,
     .max = 100000, .help = "cap of any account's rate (Meta's top tier: 80/s; 0: no cap)"},
    {.name = "rate.workspace_per_second", .type = BZ_CFG_DOUBLE, .def = "80", .min = 0,
     .max = 100000, .help = "default per-workspace limit per second (0: none)"},
    {.name = "rate.workspace_per_minute", .type = BZ_CFG_DOUBLE, .def = "0", .min = 0,
     .max = 6000000, .help = "default per-workspace limit per minute (0: none)"},
    {.name = "rate.workspace_per_hour", .type = BZ_CFG_DOUBLE, .def = "0", .min = 0,
     .max = 360000000, .help = "default per-workspace limit per hour (0: none)"},
    {.name = "budget.window_guard_ms", .type = BZ_CFG_INT, .def = "2000", .min = 0,
     .max = 60000, .help = "added to the per-minute and per-hour windows of the send budget: "
                            "absorbs release-to-gateway jitter (outbox relay, gateway consumer)"},
    {.name = "budget.reach_window_s", .type = BZ_CFG_INT, .def = "86400", .min = 1,
     .max = 86400, .help = "Meta's messaging limit: the moving window of unique users a "
                           "business portfolio's tier counts (24 h; shorter only to test)"},
    {.name = "budget.pair_interval_s", .type = BZ_CFG_INT, .def = "6", .min = 0, .max = 60,
     .help = "Meta's pair rate: one message per this many seconds from an account to one "
             "recipient, bursts aside (0: no pair rate)"},
    {.name = "budget.pair_burst", .type = BZ_CFG_INT, .def = "45", .min = 1, .max = 100,
     .help = "Meta's pair rate: messages an agent may send one recipient at once before the "
             "interval applies (campaign messages never burst)"},
    {.name = "warmup.schedule", .type = BZ_CFG_STRING, .def = "0:20,3:50,7:100,14:200,30:0",
     .help = "a webjs number's warm-up: from_day:cap steps, the new recipients it may reach per "
             "window from that age in days on (0: no cap; empty: no warm-up)"},
    {.name = "warmup.window_s", .type = BZ_CFG_INT, .def = "86400", .min = 1, .max = 86400,
     .help = "the moving window the warm-up's cap counts new recipients in (24 h; shorter only "
             "to test)"},
    {.name = "warmup.jitter_min_ms", .type = BZ_CFG_INT, .def = "5000", .min = 0, .max = 600000,
     .help = "shortest random gap between a warming-up webjs number's campaign sends"},
    {.name = "warmup.jitter_max_ms", .type = BZ_CFG_INT, .def = "15000", .min = 0, .max = 600000,
     .help = "longest random gap between a warming-up webjs number's campaign sends (0: none)"},
    {.name = "agent.max_wait_s", .type = BZ_CFG_INT, .def = "300", .min = 1, .max = 86400,
     .help = "an agent's message waiting longer for send budget or a connected account fails"},
    {.name = "agent.batch_max", .type = BZ_CFG_INT, .def = "500", .min = 1, .max = 10000,
     .help = "queued agents' messages read per release round"},
    {.name = "failover.mode", .type = BZ_CFG_STRING, .def = "failover",
     .help = "sending account disconnected: failover (next account) or pause"},
    {.name = "retry.max", .type = BZ_CFG_INT, .def = "2", .min = 0, .max = 100,
     .help = "re-sends of a log whose send failed with a transient error"},
    {.name = "retry.transient_errors", .type = BZ_CFG_STRING,
     .def = "timeout,rate_limited,session_unavailable,130429,131000,131016,131048",
     .help = "error codes worth a retry (comma-separated)"},
    {.name = "retry.marketing_limit_after_s", .type = BZ_CFG_INT, .def = "86400", .min = 0,
     .max = 604800,
     .help = "a campaign message Meta failed for the recipient's per-user marketing limit "
             "(131049) is sent again once, this many seconds later (0: never; failed for good)"},
    {.name = "autopause.enabled", .type = BZ_CFG_BOOL, .def = "true",
     .help = "pause a campaign whose failure rate crosses the threshold"},
    {.name = "autopause.threshold", .type = BZ_CFG_DOUBLE, .def = "0.2", .min = 0, .max = 1,
     .help = "failure rate (failed / attempts) above which a campaign pauses"},
    {.name = "autopause.window_s", .type = BZ_CFG_INT, .def = "60", .min = 1, .max = 86400,
     .help = "sliding window of the failure rate, seconds"},
    {.name = "autopause.min_samples", .type = BZ_CFG_INT, .def = "50", .min = 1, .max = 1000000,
     .help = "outcomes needed in the window before it may pause a campaign"},
    {.name = "events.progress_interval_ms", .type = BZ_CFG_INT, .def = "5000", .min = 100,
     .max = 3600000, .help = "at most one progress event per campaign per interval"},
};

typedef struct app {
    cmp_ctx ctx;
    cmp_sender *sender;
} app;

static void readiness(void *arg, bz_readiness *r)
{
    app *a = arg;
    bz_readiness_add(r, "sender", 1, "%s",
                     cmp_sender_is_leader(a->sender) ? "active" : "standby");
}

static bz_status prepare(void *arg, bz_service *svc, bz_consumer_plan *plan, bz_error *err)
{
    app *a = arg;
    bz_service_topic(svc, bz_topic_base(BZ_TOPIC_CAMPAIGN_COMMANDS), a->ctx.commands_topic,
                     sizeof a->ctx.commands_topic);
    bz_service_topic(svc, bz_topic_base(BZ_TOPIC_CAMPAIGN_RECEIPTS), a->ctx.receipts_topic,
                     sizeof a->ctx.receipts_topic);
    plan->topics[0] = a->ctx.commands_topic;
    plan->topics[1] = a->ctx.receipts_topic;
    plan->ntopics = 2;
    plan->dlq_base = bz_topic_base(BZ_TOPIC_CAMPAIGN_DLQ);
    plan->handler = &cmp_handler;
    plan->handler_ctx = &a->ctx;
    plan->batch_linger_ms = (int)bz_config_int(svc->config, "consumer.batch_linger_ms");
    return cmp_ctx_init(&a->ctx, svc->config, svc->metrics, err);
}

static bz_status start_sender(void *arg, bz_service *svc, bz_error *err)
{
    app *a = arg;
    return cmp_sender_start(&a->ctx, bz_config_string(svc->config, "pg.dsn"), &a->sender, err);
}

static void stop_sender(void *arg)
{
    app *a = arg;
    cmp_sender_stop(a->sender);
}

int main(int argc, char **argv)
{
    static app a;
    const bz_consumer_service_def def = {.name = "campaign-sender", .keys = keys,
                                         .nkeys = sizeof keys / sizeof keys[0], .app = &a,
                                         .prepare = prepare, .start = start_sender,
                                         .stop = stop_sender, .ready = readiness};
    return bz_consumer_service_main(argc, argv, &def);
}
