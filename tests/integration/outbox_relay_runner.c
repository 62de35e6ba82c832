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
#include "core/signals.h"
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
    if (!cfg.kafka.brokers || !cfg.pg_dsn) {
        fprintf(stderr, "BLAZZ_KAFKA_BROKERS and BLAZZ_PG_DSN must be set\n");
        return 2;
    }
    bz_outbox_relay *relay;
    bz_error err;
    if (bz_outbox_relay_start(&cfg, &relay, &err) != BZ_OK) {
        bz_error_log("%s", err.msg);
        return 1;
    }
    struct timespec tick = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
    while (!bz_shutdown_requested())
        nanosleep(&tick, NULL);
    bz_info("stopping after publishing %llu rows and dead-lettering %llu",
            (unsigned long long)bz_outbox_relay_published(relay),
            (unsigned long long)bz_outbox_relay_dead_lettered(relay));
    bz_outbox_relay_stop(relay);
    return 0;
}
