/*
 * eo_counter_consumer.c - a minimal service built on the exactly-once
 * consumer with the counter handler (support/counter_handler.h), run as a
 * separate process by the crash tests in test_eo_consumer.c.
 *
 * Usage: eo_counter_consumer GROUP TOPIC DLQ_TOPIC TABLE
 * EO_COUNTER_ASYNC_COMMIT=1 in the environment turns on the consumer's
 * async_commit (the crash tests then cover that mode).
 * EO_COUNTER_OFFSETS_GROUP=NAME keeps the offsets in kafka_offsets under
 * NAME instead of GROUP, so two processes in different Kafka groups can
 * own the same partitions at once (the double-ownership test).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/signals.h"
#include "counter_handler.h"
#include "kafka/eo_consumer.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s GROUP TOPIC DLQ_TOPIC TABLE\n", argv[0]);
        return 2;
    }
    bz_log_init("eo-counter", BZ_LOG_INFO);
    bz_signals_install_shutdown();

    counter_ctx ctx;
    counter_ctx_init(&ctx, argv[4]);
    const char *topics[] = {argv[2]};
    const char *async_commit = getenv("EO_COUNTER_ASYNC_COMMIT");
    const char *offsets_group = getenv("EO_COUNTER_OFFSETS_GROUP");
    /* A short session lets a restarted process get the killed one's
     * partitions within seconds. Static membership would avoid the wait, but
     * librdkafka 2.0.2 reports a spurious fatal "fenced" error after a
     * broker restart with it. */
    const char *const kafka_extra[] = {"session.timeout.ms", "6000",
                                       "heartbeat.interval.ms", "1000", NULL};
    bz_eo_consumer_config cfg = {
        .kafka = {.brokers = getenv("BLAZZ_KAFKA_BROKERS"), .client_id = "eo-counter",
                  .extra = kafka_extra},
        .group_id = argv[1],
        .offsets_group_id = offsets_group && *offsets_group ? offsets_group : NULL,
        .topics = topics,
        .ntopics = 1,
        .dlq_topic = argv[3],
        .service = "eo-counter",
        .pg_dsn = getenv("BLAZZ_PG_DSN"),
        .batch_max = 500,
        .async_commit = async_commit && strcmp(async_commit, "1") == 0,
        .handler = &counter_handler,
        .handler_ctx = &ctx,
    };
    if (!cfg.kafka.brokers || !cfg.pg_dsn) {
        fprintf(stderr, "BLAZZ_KAFKA_BROKERS and BLAZZ_PG_DSN must be set\n");
        return 2;
    }
    bz_eo_consumer *consumer;
    bz_error err;
    if (bz_eo_consumer_new(&cfg, &consumer, &err) != BZ_OK) {
        bz_error_log("%s", err.msg);
        return 1;
    }
    bz_status st = bz_eo_consumer_run(consumer, &err);
    bz_eo_stats stats;
    bz_eo_consumer_stats(consumer, &stats);
    bz_info("stopped: consumed=%llu applied=%llu dead_lettered=%llu batches=%llu retries=%llu",
            (unsigned long long)stats.consumed, (unsigned long long)stats.applied,
            (unsigned long long)stats.dead_lettered, (unsigned long long)stats.batches,
            (unsigned long long)stats.transient_retries);
    bz_eo_consumer_free(consumer);
    if (st != BZ_OK) {
        bz_error_log("%s", err.msg);
        return 1;
    }
    return 0;
}
