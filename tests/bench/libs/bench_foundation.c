/*
 * bench_foundation.c - baselines and the exactly-once consumer, measured in
 * one run on this machine (make bench).
 *
 *  1. raw Kafka: produce N records with librdkafka (idempotent, acks=all)
 *     and consume them back; messages/s for the round trip;
 *  2. raw PostgreSQL: insert N rows in transactions of 1,000 rows
 *     (INSERT ... SELECT unnest), rows/s;
 *  3. the exactly-once consumer with the counter handler of the crash tests
 *     (one row and a counter update per record, offsets stored in the same
 *     transaction), records/s in steady state, and its ratio to 1 and 2;
 *  4. the first record to each of five topics a producer has not written
 *     to yet: send -> delivery report, the median in ms. librdkafka 2.0.2
 *     held such a record until its one-second topic scan, and the outbox
 *     relay's round with it (make run's webhooks stalled for a second,
 *     issue 52); bz_producer_send now looks the topic up first.
 *
 * Output: a readable table, plus one "BENCH name value unit" line per figure
 * for scripts. Record count from BENCH_N (default 200000).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/common.pb-c.h"
#include "core/clock.h"
#include "core/log.h"
#include "counter_handler.h"
#include "kafka/admin.h"
#include "kafka/eo_consumer.h"
#include "kafka/producer.h"
#include "pg/columns.h"

#define BATCH_ROWS 1000

typedef struct bench_env {
    const char *brokers;
    const char *dsn;
    char prefix[64];
    int n;
} bench_env;

static int die(const char *what, const char *detail)
{
    fprintf(stderr, "bench: %s: %s\n", what, detail);
    exit(1);
}

/* BENCH_N, the number of envelopes per stage; 200000 when unset. */
static int bench_size(void)
{
    const char *text = getenv("BENCH_N");
    if (!text)
        return 200000;
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || n <= 0 || n > INT_MAX)
        die("BENCH_N", "must be a positive integer");
    return (int)n;
}

static void report(const char *name, double value, const char *unit)
{
    printf("BENCH %s %.0f %s\n", name, value, unit);
}

/* Produce n records of `size` bytes (or Envelopes when envelopes is set). */
static double produce_records(const bench_env *env, const char *topic, int envelopes)
{
    bz_kafka_settings settings = {.brokers = env->brokers, .client_id = "bench"};
    bz_producer *p;
    bz_error err;
    if (bz_producer_new(&settings, &p, &err) != BZ_OK)
        die("producer", err.msg);
    char payload[200];
    memset(payload, 'x', sizeof payload);
    int64_t start = bz_monotonic_ms();
    for (int i = 0; i < env->n; i++) {
        char key[32], event_id[64];
        uint8_t buf[256];
        size_t len = sizeof payload;
        const void *value = payload;
        snprintf(key, sizeof key, "conversation-%d", i % 997);
        if (envelopes) {
            Blazz__V1__Envelope e = BLAZZ__V1__ENVELOPE__INIT;
            snprintf(event_id, sizeof event_id, "bench-%d", i);
            e.event_id = event_id;
            e.source = "bench";
            len = blazz__v1__envelope__pack(&e, buf);
            value = buf;
        }
        if (bz_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), value, len, NULL,
                             0, NULL, &err) != BZ_OK)
            die("produce", err.msg);
    }
    if (bz_producer_flush(p, 120000, &err) != BZ_OK)
        die("flush", err.msg);
    double seconds = (double)(bz_monotonic_ms() - start) / 1000.0;
    bz_producer_free(p, 1000);
    return seconds;
}

static double consume_records(const bench_env *env, const char *topic)
{
    char errstr[256];
    /* as the bench's principal (the stack's admin), like every client here */
    static const char *const defaults[] = {"group.id", "bench-raw-reader", "enable.auto.commit",
                                           "false", NULL};
    bz_kafka_settings settings = {.brokers = env->brokers, .client_id = "bench-raw-reader"};
    rd_kafka_conf_t *conf;
    bz_error cerr;
    if (bz_kafka_conf_new(&settings, defaults, &conf, &cerr) != BZ_OK)
        die("reader config", cerr.msg);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk)
        die("reader", errstr);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(6);
    for (int p = 0; p < 6; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    int64_t start = bz_monotonic_ms();
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int seen = 0;
    while (seen < env->n) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (m && !m->err)
            seen++;
        if (m)
            rd_kafka_message_destroy(m);
    }
    double seconds = (double)(bz_monotonic_ms() - start) / 1000.0;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return seconds;
}

static int compare_ms(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Median ms from the send of the first record to each of topics to its
 * report, on a producer already connected (by a record to warm). */
static double first_record_ms(const bench_env *env, const char *warm, const char *const *topics,
                              size_t n)
{
    bz_kafka_settings settings = {.brokers = env->brokers, .client_id = "bench-first"};
    bz_producer *p;
    bz_error err;
    if (bz_producer_new(&settings, &p, &err) != BZ_OK)
        die("producer", err.msg);
    if (bz_producer_send_sync(p, warm, "k", 1, "v", 1, NULL, 0, 10000, &err) != BZ_OK)
        die("warm-up record", err.msg);
    int64_t ms[8];
    n = n < 8 ? n : 8;
    for (size_t i = 0; i < n; i++) {
        int64_t start = bz_monotonic_ms();
        if (bz_producer_send_sync(p, topics[i], "k", 1, "v", 1, NULL, 0, 10000, &err) != BZ_OK)
            die("first record", err.msg);
        ms[i] = bz_monotonic_ms() - start;
    }
    bz_producer_free(p, 1000);
    qsort(ms, n, sizeof ms[0], compare_ms);
    size_t middle = n / 2;
    return (double)ms[middle];
}

static PGconn *connect_pg(const bench_env *env)
{
    PGconn *conn = PQconnectdb(env->dsn);
    if (PQstatus(conn) != CONNECTION_OK)
        die("connect PostgreSQL", PQerrorMessage(conn));
    return conn;
}

static void exec_or_die(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        die(sql, PQresultErrorMessage(res));
    PQclear(res);
}

/* Raw batched insert of the same row shape the counter handler writes. */
static double raw_batched_insert(const bench_env *env)
{
    PGconn *conn = connect_pg(env);
    exec_or_die(conn, "SET client_min_messages TO warning; DROP TABLE IF EXISTS bench_raw; CREATE TABLE bench_raw (event_id text NOT "
                      "NULL, kafka_partition int NOT NULL, kafka_offset bigint NOT NULL)");
    PGresult *res = PQprepare(conn, "raw_insert",
                              "INSERT INTO bench_raw SELECT * FROM unnest($1::text[], "
                              "$2::int[], $3::bigint[])",
                              0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        die("prepare", PQresultErrorMessage(res));
    PQclear(res);
    const char *ids[BATCH_ROWS];
    char id_store[BATCH_ROWS][32];
    int64_t parts[BATCH_ROWS], offsets[BATCH_ROWS];
    int64_t start = bz_monotonic_ms();
    for (int done = 0; done < env->n; done += BATCH_ROWS) {
        for (int i = 0; i < BATCH_ROWS; i++) {
            snprintf(id_store[i], sizeof id_store[i], "raw-%d", done + i);
            ids[i] = id_store[i];
            parts[i] = i % 6;
            offsets[i] = done + i;
        }
        char *a = bz_pg_text_array(ids, BATCH_ROWS);
        char *b = bz_pg_int64_array(parts, BATCH_ROWS);
        char *c = bz_pg_int64_array(offsets, BATCH_ROWS);
        const char *params[] = {a, b, c};
        exec_or_die(conn, "BEGIN");
        res = PQexecPrepared(conn, "raw_insert", 3, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            die("raw insert", PQresultErrorMessage(res));
        PQclear(res);
        exec_or_die(conn, "COMMIT");
        free(a);
        free(b);
        free(c);
    }
    double seconds = (double)(bz_monotonic_ms() - start) / 1000.0;
    exec_or_die(conn, "DROP TABLE bench_raw");
    PQfinish(conn);
    return seconds;
}

static void *run_consumer(void *arg)
{
    bz_eo_consumer *c = arg;
    bz_error err;
    if (bz_eo_consumer_run(c, &err) != BZ_OK)
        die("consumer", err.msg);
    return NULL;
}

static int64_t query_int64(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        die(sql, PQresultErrorMessage(res));
    int64_t v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* Steady-state rate: from the first applied record to the last. */
static double exactly_once_consumer(const bench_env *env, const char *topic, const char *dlq)
{
    PGconn *conn = connect_pg(env);
    if (!counter_tables_create(conn, "bench_eo"))
        die("create tables", PQerrorMessage(conn));
    counter_ctx ctx;
    counter_ctx_init(&ctx, "bench_eo");
    char group[96];
    snprintf(group, sizeof group, "%sbench-eo", env->prefix);
    const char *topics[] = {topic};
    bz_eo_consumer_config cfg = {
        .kafka = {.brokers = env->brokers, .client_id = "bench-eo"},
        .group_id = group, .topics = topics, .ntopics = 1, .dlq_topic = dlq,
        .service = "bench", .pg_dsn = env->dsn, .batch_max = 1000,
        .handler = &counter_handler, .handler_ctx = &ctx,
    };
    bz_eo_consumer *consumer;
    bz_error err;
    if (bz_eo_consumer_new(&cfg, &consumer, &err) != BZ_OK)
        die("consumer", err.msg);
    pthread_t thread;
    pthread_create(&thread, NULL, run_consumer, consumer);
    int64_t first_ms = 0, first_n = 0, n = 0;
    while (n < env->n) {
        bz_sleep_ms(20);
        n = query_int64(conn, "SELECT n FROM bench_eo_counter");
        if (!first_ms && n > 0) {
            first_ms = bz_monotonic_ms();
            first_n = n;
        }
    }
    double seconds = (double)(bz_monotonic_ms() - first_ms) / 1000.0;
    bz_eo_consumer_request_stop(consumer);
    pthread_join(thread, NULL);
    bz_eo_consumer_free(consumer);
    exec_or_die(conn, "DROP TABLE bench_eo_applied; DROP TABLE bench_eo_counter");
    PQfinish(conn);
    return seconds > 0 ? (double)(env->n - first_n) / seconds : 0;
}

int main(void)
{
    bench_env env = {.brokers = getenv("BLAZZ_KAFKA_BROKERS"), .dsn = getenv("BLAZZ_PG_DSN")};
    if (!env.brokers || !env.dsn)
        return die("environment", "BLAZZ_KAFKA_BROKERS and BLAZZ_PG_DSN must be set");
    env.n = bench_size();
    bz_log_init("bench", BZ_LOG_ERROR);
    snprintf(env.prefix, sizeof env.prefix, "bench-%lld.", (long long)bz_wall_ms());
    bz_kafka_ensure_report created;
    bz_error err;
    if (bz_kafka_topics_ensure(env.brokers, env.prefix, 6, 1, 30000, &created, &err) != BZ_OK)
        die("topics", err.msg);
    char raw_topic[128], eo_topic[128], dlq[128];
    snprintf(raw_topic, sizeof raw_topic, "%swa.inbound.raw", env.prefix);
    snprintf(eo_topic, sizeof eo_topic, "%schat.sync", env.prefix);
    snprintf(dlq, sizeof dlq, "%schat.sync.dlq", env.prefix);

    double produce_s = produce_records(&env, raw_topic, 0);
    double consume_s = consume_records(&env, raw_topic);
    double kafka_rate = env.n / (produce_s + consume_s);
    double pg_rate = env.n / raw_batched_insert(&env);
    produce_records(&env, eo_topic, 1);
    double eo_rate = exactly_once_consumer(&env, eo_topic, dlq);
    char firsts[5][128];
    const char *bases[5] = {"chat.events", "session.events", "campaign.events", "wa.outbound",
                            "campaign.receipts"};
    const char *first_topics[5];
    for (size_t i = 0; i < 5; i++) {
        snprintf(firsts[i], sizeof firsts[i], "%s%s", env.prefix, bases[i]);
        first_topics[i] = firsts[i];
    }
    double first_ms = first_record_ms(&env, raw_topic, first_topics, 5);

    printf("\nfoundation, %d records per measurement (BENCH_N)\n", env.n);
    printf("%-44s %11.0f /s  (produce %.0f/s, consume %.0f/s)\n",
           "raw Kafka produce+consume (acks=all)", kafka_rate, env.n / produce_s,
           env.n / consume_s);
    printf("%-44s %11.0f /s\n", "raw PostgreSQL batched insert (1000/tx)", pg_rate);
    printf("%-44s %11.0f /s  = %.0f%% of raw insert (target >= 25%%), %.0f%% of raw Kafka\n",
           "exactly-once consumer, applied", eo_rate, 100.0 * eo_rate / pg_rate,
           100.0 * eo_rate / kafka_rate);
    printf("%-44s %11.0f ms (median of 5 topics)\n", "first record to a topic, send -> report",
           first_ms);
    report("raw_kafka_produce_consume", kafka_rate, "msg/s");
    report("raw_pg_batched_insert", pg_rate, "rows/s");
    report("eo_consumer_applied", eo_rate, "records/s");
    report("kafka_first_record_ms", first_ms, "ms");
    return 0;
}
