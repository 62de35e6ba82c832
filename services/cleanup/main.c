/*
 * main.c - blazz-cleanup: session hygiene, disconnect tracking and
 * retention (ARCHITECTURE.md §5, issue 6).
 *
 * Wiring only, run by bz_consumer_service_main (libs/runtime/service.c).
 * Normal mode: the exactly-once consumer of cleanup.requests
 * (requests.c) on the main thread, the sweep timer thread (timer.c), the
 * outbox relay thread that publishes the destroy commands and session
 * events, and the admin endpoint. Shutdown order: the consumer finishes its
 * batch and leaves the group, the timer stops after its current batch, the
 * relay publishes its round, everything is freed.
 *
 * One-shot mode (cleanup.run_once = true, for cron and tests): one sweep,
 * then wait until its outbox rows are published, exit 0 (1 on failure).
 */
#include <stdio.h>

#include "cleanup.h"
#include "core/log.h"
#include "runtime/service.h"
#include "kafka/outbox.h"
#include "kafka/topics.h"

#define STR(x) #x
#define XSTR(x) STR(x)

static const bz_config_key keys[] = {
    {.name = "cleanup.interval_s", .type = BZ_CFG_INT, .def = "3600", .min = 1, .max = 604800,
     .help = "seconds between timer sweeps"},
    {.name = "cleanup.sweep_at_start", .type = BZ_CFG_BOOL, .def = "true",
     .help = "sweep once right after start (logged as cleanup_type automatic)"},
    {.name = "cleanup.run_once", .type = BZ_CFG_BOOL, .def = "false",
     .help = "sweep once, wait for its events to be published, and exit (cron, tests)"},
    {.name = "cleanup.drain_timeout_s", .type = BZ_CFG_INT, .def = "60", .min = 0, .max = 3600,
     .help = "run_once: how long to wait for the outbox to drain (0: do not wait)"},
    {.name = "cleanup.stale_qr_minutes", .type = BZ_CFG_INT,
     .def = XSTR(BZ_CLEANUP_DEFAULT_STALE_QR_MINUTES), .min = 1, .max = 525600,
     .help = "qr_scanning sessions with no activity for longer are removed"},
    {.name = "cleanup.disconnected_hours", .type = BZ_CFG_INT,
     .def = XSTR(BZ_CLEANUP_DEFAULT_DISCONNECTED_HOURS), .min = 1, .max = 87600,
     .help = "sessions disconnected for longer are removed"},
    {.name = "cleanup.batch_size", .type = BZ_CFG_INT, .def = "500", .min = 1, .max = 10000,
     .help = "sessions removed (or rows purged) per transaction"},
    {.name = "cleanup.batch_pause_ms", .type = BZ_CFG_INT, .def = "0", .min = 0, .max = 60000,
     .help = "pause between batches of a timer sweep, to spare the database"},
    {.name = "cleanup.instance_count", .type = BZ_CFG_INT, .def = "0", .min = 0, .max = 10000,
     .help = "gateway instances; > 0 routes unassigned sessions to workspace_id % count"},
    {.name = "cleanup.advisory_lock", .type = BZ_CFG_BOOL, .def = "true",
     .help = "one sweeping instance at a time (off only to exercise the row-level guarantees)"},
    {.name = "cleanup.webhook_retention_days", .type = BZ_CFG_INT, .def = "30", .min = 0,
     .max = 36500, .help = "purge delivered webhook_retry_queue rows older than this (0: keep)"},
    {.name = "cleanup.pending_receipts_retention_days", .type = BZ_CFG_INT, .def = "7", .min = 0,
     .max = 36500,
     .help = "purge receipts parked for a message that never came after this long (0: keep)"},
    {.name = "cleanup.meta_send_proofs_retention_days", .type = BZ_CFG_INT, .def = "30",
     .min = 0, .max = 36500,
     .help = "purge proofs of Meta sends (meta_message_proofs) older than "
             "this; as long as a restore may queue their sends again (0: keep)"},
    {.name = "cleanup.outbox_retention_hours", .type = BZ_CFG_INT, .def = "72", .min = 0,
     .max = 87600, .help = "outbox rows older than this are stuck: warned about (0: no check)"},
    {.name = "cleanup.send_ledger_retention_hours", .type = BZ_CFG_INT, .def = "48", .min = 2,
     .max = 87600, .help = "purge send_ledger rows older than this (the send budget counts the "
                           "last hour)"},
    {.name = "cleanup.outbox_purge", .type = BZ_CFG_BOOL, .def = "false",
     .help = "delete stuck outbox rows (their events are lost)"},
    {.name = "cleanup.clock_offset_s", .type = BZ_CFG_INT, .def = "0", .min = -3153600000.0,
     .max = 3153600000.0, .help = "shift the service clock by this many seconds"},
    {.name = "cleanup.clock_file", .type = BZ_CFG_STRING,
     .help = "file holding 'now' in ms since the epoch, re-read at every sweep (tests)"},
    {.name = "consumer.group_id", .type = BZ_CFG_STRING, .def = "blazz-cleanup",
     .help = "Kafka consumer group of cleanup.requests (also the kafka_offsets group_id)"},
    {.name = "consumer.dlq_topic", .type = BZ_CFG_STRING, .def = "cleanup.dlq",
     .help = "base name of the dead-letter topic for invalid cleanup requests"},
    {.name = "consumer.batch_max", .type = BZ_CFG_INT, .def = "50", .min = 1, .max = 10000,
     .help = "cleanup requests applied per transaction at most"},
    {.name = "kafka.session_timeout_ms", .type = BZ_CFG_INT, .def = "10000", .min = 1000,
     .max = 300000, .help = "consumer group session timeout (failover time after a crash)"},
    BZ_MEDIA_STORE_CONFIG_KEYS,
    {.name = "media.retention_days", .type = BZ_CFG_INT, .def = "30", .min = 0, .max = 36500,
     .help = "purge media no message refers to, stored longer ago than this (0: keep)"},
    BZ_OUTBOX_RELAY_CONFIG_KEYS,
};

typedef struct app {
    cl_ctx ctx;
    cl_timer *timer;
    char topic[BZ_TOPIC_NAME_MAX];
} app;

static void read_settings(app *a, const bz_config *cfg)
{
    cl_settings *s = &a->ctx.s;
    s->stale_qr_s = bz_config_int(cfg, "cleanup.stale_qr_minutes") * 60;
    s->disconnected_s = bz_config_int(cfg, "cleanup.disconnected_hours") * 3600;
    s->batch_size = (int)bz_config_int(cfg, "cleanup.batch_size");
    s->batch_pause_ms = (int)bz_config_int(cfg, "cleanup.batch_pause_ms");
    s->instance_count = (int)bz_config_int(cfg, "cleanup.instance_count");
    s->advisory_lock = bz_config_bool(cfg, "cleanup.advisory_lock");
    s->webhook_retention_s = bz_config_int(cfg, "cleanup.webhook_retention_days") * 86400;
    s->parked_retention_s = bz_config_int(cfg, "cleanup.pending_receipts_retention_days") * 86400;
    s->proofs_retention_s = bz_config_int(cfg, "cleanup.meta_send_proofs_retention_days") * 86400;
    s->outbox_retention_s = bz_config_int(cfg, "cleanup.outbox_retention_hours") * 3600;
    s->outbox_purge = bz_config_bool(cfg, "cleanup.outbox_purge");
    s->ledger_retention_s = bz_config_int(cfg, "cleanup.send_ledger_retention_hours") * 3600;
    s->media_retention_s = bz_config_int(cfg, "media.retention_days") * 86400;
    a->ctx.clock.offset_ms = bz_config_int(cfg, "cleanup.clock_offset_s") * 1000;
    a->ctx.clock.file = bz_config_string(cfg, "cleanup.clock_file");
}

/* One sweep, then wait until its outbox rows are published. */
static int run_once(void *arg, bz_service *svc)
{
    app *a = arg;
    const bz_config *cfg = svc->config;
    bz_outbox_relay *relay = NULL;
    bz_error err;
    bz_status st = bz_outbox_relay_start_configured(cfg, "blazz-cleanup-outbox", svc->metrics,
                                                    &relay, &err);
    if (st == BZ_OK)
        st = cl_run_once(&a->ctx, bz_config_string(cfg, "pg.dsn"),
                         relay ? bz_config_int(cfg, "cleanup.drain_timeout_s") * 1000 : 0, &err);
    if (st != BZ_OK)
        bz_error_log("cleanup run once: %s", err.msg);
    bz_outbox_relay_stop(relay);
    return st == BZ_OK ? 0 : 1;
}

static bz_status prepare(void *arg, bz_service *svc, bz_consumer_plan *plan, bz_error *err)
{
    app *a = arg;
    const bz_config *cfg = svc->config;
    read_settings(a, cfg);
    if (cl_metrics_register(&a->ctx.m, svc->metrics, err) != BZ_OK)
        return bz_wrap(err, "register metrics");
    a->ctx.have_metrics = 1;
    if (a->ctx.s.media_retention_s > 0 && bz_media_store_open(cfg, &a->ctx.media, err) != BZ_OK)
        return bz_wrap(err, "open the media store");
    if (bz_config_bool(cfg, "cleanup.run_once")) {
        plan->run_instead = run_once;
        return BZ_OK;
    }
    bz_service_topic(svc, bz_topic_base(BZ_TOPIC_CLEANUP_REQUESTS), a->topic, sizeof a->topic);
    plan->topics[0] = a->topic;
    plan->ntopics = 1;
    plan->dlq_base = bz_config_string(cfg, "consumer.dlq_topic");
    plan->handler = &cl_request_handler;
    plan->handler_ctx = &a->ctx;
    snprintf(plan->detail, sizeof plan->detail, "; sweeping every %lld s",
             (long long)bz_config_int(cfg, "cleanup.interval_s"));
    return BZ_OK;
}

static bz_status start_timer(void *arg, bz_service *svc, bz_error *err)
{
    app *a = arg;
    const bz_config *cfg = svc->config;
    return cl_timer_start(&a->ctx, bz_config_string(cfg, "pg.dsn"),
                          bz_config_int(cfg, "cleanup.interval_s"),
                          bz_config_bool(cfg, "cleanup.sweep_at_start"), &a->timer, err);
}

static void stop_timer(void *arg)
{
    app *a = arg;
    cl_timer_stop(a->timer);
}

static void release(void *arg)
{
    app *a = arg;
    bz_media_store_close(a->ctx.media);
    a->ctx.media = NULL;
}

int main(int argc, char **argv)
{
    static app a;
    const bz_consumer_service_def def = {.name = "cleanup", .keys = keys,
                                         .nkeys = sizeof keys / sizeof keys[0], .app = &a,
                                         .prepare = prepare, .start = start_timer,
                                         .stop = stop_timer, .release = release};
    return bz_consumer_service_main(argc, argv, &def);
}
