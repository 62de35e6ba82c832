/*
 * eo_counter_consumer.c - a minimal service built on the exactly-once
 * consumer, for the crash tests in test_eo_consumer.c.
 *
 * Usage: eo_counter_consumer GROUP TOPIC DLQ_TOPIC TABLE
 * Records are blazz.v1.Envelope values. Each applied record inserts one row
 * (event_id, partition, offset) into TABLE_applied and adds one to
 * TABLE_counter.n, so a lost record shows as a missing row and a duplicate
 * as a repeated event_id and an inflated counter. An event_id starting with
 * "poison-" is rejected at apply time, to exercise the consumer's isolation
 * of a bad record inside a batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/common.pb-c.h"
#include "core/log.h"
#include "core/signals.h"
#include "kafka/eo_consumer.h"

typedef struct counter_ctx {
    char insert_sql[256];
    char count_sql[256];
} counter_ctx;

static bz_status counter_init(void *ctx, bz_pg *pg, bz_error *err)
{
    counter_ctx *c = ctx;
    bz_status st = bz_pg_prepare(pg, "counter_insert", c->insert_sql, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(pg, "counter_add", c->count_sql, err);
    return st;
}

static bz_status counter_decode(void *ctx, const rd_kafka_message_t *msg, void **decoded,
                                bz_error *err)
{
    (void)ctx;
    Blazz__V1__Envelope *env = blazz__v1__envelope__unpack(NULL, msg->len, msg->payload);
    if (!env)
        return bz_reject(err, "decode_error", "not a blazz.v1.Envelope (%zu bytes)", msg->len);
    if (!env->event_id || !*env->event_id) {
        blazz__v1__envelope__free_unpacked(env, NULL);
        return bz_reject(err, "missing_event_id", "envelope without event_id");
    }
    *decoded = env;
    return BZ_OK;
}

static void counter_release(void *ctx, void *decoded)
{
    (void)ctx;
    blazz__v1__envelope__free_unpacked(decoded, NULL);
}

static bz_status counter_apply(void *ctx, PGconn *conn, bz_eo_record *recs, size_t n,
                               bz_error *err)
{
    (void)ctx;
    const char **ids = malloc(n * sizeof *ids);
    int64_t *partitions = malloc(n * sizeof *partitions);
    int64_t *offsets = malloc(n * sizeof *offsets);
    if (!ids || !partitions || !offsets) {
        free(ids);
        free(partitions);
        free(offsets);
        return bz_fail(err, BZ_ERR_TRANSIENT, "apply: out of memory");
    }
    bz_status st = BZ_OK;
    for (size_t i = 0; i < n && st == BZ_OK; i++) {
        const Blazz__V1__Envelope *env = recs[i].decoded;
        if (strncmp(env->event_id, "poison-", 7) == 0)
            st = bz_reject(err, "poison", "event %s is poison", env->event_id);
        ids[i] = env->event_id;
        partitions[i] = recs[i].msg->partition;
        offsets[i] = recs[i].msg->offset;
    }
    char *id_array = NULL, *part_array = NULL, *off_array = NULL;
    if (st == BZ_OK) {
        id_array = bz_pg_text_array(ids, n);
        part_array = bz_pg_int64_array(partitions, n);
        off_array = bz_pg_int64_array(offsets, n);
        const char *params[] = {id_array, part_array, off_array};
        st = bz_pg_exec_prepared(conn, "counter_insert", 3, params, NULL, NULL, NULL, err);
    }
    if (st == BZ_OK) {
        char count[24];
        snprintf(count, sizeof count, "%zu", n);
        const char *params[] = {count};
        st = bz_pg_exec_prepared(conn, "counter_add", 1, params, NULL, NULL, NULL, err);
    }
    free(id_array);
    free(part_array);
    free(off_array);
    free(ids);
    free(partitions);
    free(offsets);
    return st;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s GROUP TOPIC DLQ_TOPIC TABLE\n", argv[0]);
        return 2;
    }
    bz_log_init("eo-counter", BZ_LOG_INFO);
    bz_signals_install_shutdown();

    counter_ctx ctx;
    snprintf(ctx.insert_sql, sizeof ctx.insert_sql,
             "INSERT INTO %s_applied (event_id, kafka_partition, kafka_offset) "
             "SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])",
             argv[4]);
    snprintf(ctx.count_sql, sizeof ctx.count_sql, "UPDATE %s_counter SET n = n + $1::bigint",
             argv[4]);
    static const bz_eo_handler handler = {
        .init = counter_init,
        .decode = counter_decode,
        .apply = counter_apply,
        .release = counter_release,
    };
    const char *topics[] = {argv[2]};
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
        .topics = topics,
        .ntopics = 1,
        .dlq_topic = argv[3],
        .service = "eo-counter",
        .pg_dsn = getenv("BLAZZ_PG_DSN"),
        .batch_max = 500,
        .handler = &handler,
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
