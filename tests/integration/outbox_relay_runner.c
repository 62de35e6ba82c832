/*
 * outbox_relay_runner.c - runs the outbox relay alone until SIGTERM, for the
 * crash test in test_outbox_relay.c.
 *
 * Usage: outbox_relay_runner TOPIC_PREFIX
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/signals.h"
#include "itest_http.h"
#include "kafka/outbox.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s TOPIC_PREFIX\n", argv[0]);
        return 2;
    }
    bz_log_init("outbox-relay-runner", BZ_LOG_INFO);
    bz_signals_install_shutdown();
    bz_outbox_relay_config cfg = {
        .kafka = {.brokers = getenv("BLAZZ_KAFKA_BROKERS"), .client_id = "outbox-relay-runner"},
        .pg_dsn = getenv("BLAZZ_PG_DSN"),
        .topic_prefix = argv[1],
        .idle_poll_ms = 200,
    };
    bz_error err;
    if (bz_metrics_new(&cfg.metrics, &err) != BZ_OK) {
        bz_error_log("%s", err.msg);
        return 1;
    }
    if (!cfg.kafka.brokers || !cfg.pg_dsn) {
        fprintf(stderr, "BLAZZ_KAFKA_BROKERS and BLAZZ_PG_DSN must be set\n");
        return 2;
    }
    bz_outbox_relay *relay;
    if (bz_outbox_relay_start(&cfg, &relay, &err) != BZ_OK) {
        bz_error_log("%s", err.msg);
        return 1;
    }
    struct timespec tick = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
    while (!bz_shutdown_requested())
        nanosleep(&tick, NULL);
    /* the relay's own counters: -1 (none yet) reads as 0 */
    double published = itest_registry_metric(cfg.metrics, "blazz_outbox_published_total");
    double dead = itest_registry_metric(cfg.metrics, "blazz_outbox_dead_lettered_total");
    bz_info("stopping after publishing %.0f rows and dead-lettering %.0f",
            published > 0 ? published : 0, dead > 0 ? dead : 0);
    bz_outbox_relay_stop(relay);
    bz_metrics_free(cfg.metrics);
    return 0;
}
