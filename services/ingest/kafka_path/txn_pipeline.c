/*
 * txn_pipeline.c - the transactional consume-transform-produce loop (see
 * txn_pipeline.h): consume raw records, hand each to record_route.c inside
 * the open transaction, commit the transaction with the consumer's
 * offsets.
 *
 * A record's outcome (record_route.h) decides: handled or dead-lettered
 * records stay in the transaction; RETRY_LATER (PostgreSQL could not
 * answer) aborts, rewinds and backs off; BROKEN (a produce failed) makes
 * the transaction unusable: abort or rebuild. Every Kafka transaction call
 * goes through one classifier that turns an rd_kafka_error_t into retry /
 * abort / rebuild, as librdkafka documents.
 */
#include "kafka_path/txn_pipeline.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/signals.h"
#include "kafka/consumer_close.h"
#include "kafka/producer.h"
#include "kafka_path/record_route.h"

#define BACKOFF_MS 1000
#define SESSION_POLL_MS 200
#define CLOSE_DEADLINE_MS 10000

/* With fetch.min.bytes at its default of 1 the broker answers a fetch as soon
 * as one record arrives: under a steady trickle of HTTP events that is one
 * fetch round trip per produce request (630 a second at 2,000 req/s). That
 * cost the broker and this process about a quarter of their CPU, and on a
 * two-core machine the broker, short of CPU, answered the HTTP path's
 * produce requests 100-200 ms late. Asking for more than a fetch usually
 * holds makes the broker wait fetch_wait_ms instead (90 fetches a second at
 * that rate, 1000 / fetch_wait_ms when idle); a backlog still fills a fetch
 * at once. */
#define FETCH_MIN_BYTES "1048576"

typedef enum txn_verdict { TXN_OK, TXN_RETRY, TXN_ABORT, TXN_REBUILD } txn_verdict;

struct ing_pipeline {
    ing_pipeline_config cfg;
    rd_kafka_t *consumer;
    bz_producer *producer;
    char txn_timeout[16];
    const char *producer_extra[9];
    int in_txn;
    int txn_events;
    uint64_t txn_failed_before; /* bz_producer_failed when the transaction began */
    int64_t txn_started_ms;
    /* The accepted-at instants (raw records' timestamps) of the open
     * transaction's events, txn_max_events of them at most: at commit each
     * becomes one sample of accepted_to_committed. */
    int64_t *txn_accepted_ms;
    atomic_int assigned;
    ing_record_router router;
    uint64_t session_queries_reported;
};

static txn_verdict classify(rd_kafka_error_t *error, const char *what)
{
    if (!error)
        return TXN_OK;
    txn_verdict v = rd_kafka_error_is_fatal(error)             ? TXN_REBUILD
                  : rd_kafka_error_txn_requires_abort(error)   ? TXN_ABORT
                  : rd_kafka_error_is_retriable(error)         ? TXN_RETRY
                                                               : TXN_REBUILD;
    bz_log(v == TXN_RETRY ? BZ_LOG_INFO : BZ_LOG_WARN, "kafka transaction: %s: %s", what,
           rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    return v;
}

static bz_status create_producer(ing_pipeline *p, bz_error *err)
{
    bz_kafka_settings settings = {.brokers = p->cfg.brokers, .client_id = "blazz-ingest-txn",
                                  .extra = p->producer_extra};
    return bz_producer_new(&settings, &p->producer, err);
}

/* Best effort: otherwise the first transaction after a start waits up to a
 * second for librdkafka to learn chat.sync (see bz_kafka_learn_topic). */
static void learn_sync_topic(ing_pipeline *p)
{
    bz_error err;
    rd_kafka_t *rk = bz_producer_handle(p->producer);
    if (bz_kafka_learn_topic(rk, p->cfg.sync_topic, BZ_KAFKA_TOPIC_SCAN_MS, &err) != BZ_OK)
        bz_warn("ingest: %s; the first transaction may wait up to a second", err.msg);
}

/* init_transactions, retried while the broker is away. */
static bz_status init_transactions(ing_pipeline *p, bz_error *err)
{
    while (!bz_shutdown_requested()) {
        txn_verdict v = classify(
            rd_kafka_init_transactions(bz_producer_handle(p->producer), p->cfg.transaction_timeout_ms),
            "init_transactions");
        if (v == TXN_OK) {
            learn_sync_topic(p);
            return BZ_OK;
        }
        if (v != TXN_RETRY) {
            bz_producer_free(p->producer, 0);
            p->producer = NULL;
            bz_status st = create_producer(p, err);
            if (st != BZ_OK)
                return st;
        }
        bz_sleep_ms(200);
    }
    return bz_fail(err, BZ_ERR_TRANSIENT, "init_transactions: shut down before the broker answered");
}

/* Seek every assigned partition back to its committed offset, so records of
 * an aborted transaction are consumed again. Retries until it worked: going
 * on without rewinding would skip records. */
static void rewind_consumer(ing_pipeline *p)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(p->consumer, &parts) || !parts)
        return;
    while (parts->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_committed(p->consumer, parts, 10000);
        if (!e) {
            for (int i = 0; i < parts->cnt; i++)
                if (parts->elems[i].offset < 0)
                    parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
            rd_kafka_error_t *error = rd_kafka_seek_partitions(p->consumer, parts, -1);
            if (!error)
                break;
            bz_warn("rewind: seek: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        } else {
            bz_warn("rewind: committed offsets unavailable: %s", rd_kafka_err2str(e));
        }
        if (bz_shutdown_requested())
            break; /* the next start reads the committed offsets anyway */
        bz_sleep_ms(500);
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

static void end_transaction_state(ing_pipeline *p, int committed)
{
    if (committed)
        ing_dedupe_commit(p->cfg.dedupe);
    else
        ing_dedupe_rollback(p->cfg.dedupe);
    p->in_txn = 0;
    p->txn_events = 0;
}

static void rebuild_producer(ing_pipeline *p)
{
    bz_warn("rebuilding the transactional producer");
    bz_producer_free(p->producer, 0);
    p->producer = NULL;
    bz_error err;
    for (;;) {
        if (create_producer(p, &err) == BZ_OK && init_transactions(p, &err) == BZ_OK)
            break;
        bz_error_log("transactional producer: %s", err.msg);
        if (p->producer) {
            bz_producer_free(p->producer, 0);
            p->producer = NULL;
        }
        if (bz_shutdown_requested())
            return;
        bz_sleep_ms(BACKOFF_MS);
    }
}

static void abort_and_rewind(ing_pipeline *p)
{
    if (p->cfg.metrics)
        bz_counter_inc(p->cfg.metrics->aborts);
    for (;;) {
        txn_verdict v = p->producer ? classify(rd_kafka_abort_transaction(
                                                   bz_producer_handle(p->producer), -1),
                                               "abort_transaction")
                                    : TXN_REBUILD;
        if (v == TXN_OK)
            break;
        if (v != TXN_RETRY) {
            rebuild_producer(p);
            break;
        }
        if (bz_shutdown_requested())
            break;
    }
    end_transaction_state(p, 0);
    rewind_consumer(p);
}

/* librdkafka commits a transaction whose records it calls delivered; a
 * record it acked only implicitly (bz_kafka_delivery_error) is not proven
 * stored, so the transaction is aborted and its input consumed again. */
static txn_verdict every_record_proven_stored(ing_pipeline *p)
{
    bz_error err;
    if (bz_producer_flush(p->producer, p->cfg.transaction_timeout_ms, &err) != BZ_OK)
        return TXN_ABORT;
    return bz_producer_failed(p->producer) == p->txn_failed_before ? TXN_OK : TXN_ABORT;
}

/* One latency hop of the waterfall (ARCHITECTURE.md §8.1): from the HTTP
 * answer (the raw record's timestamp, taken when ingest produced it) to the
 * chat.sync record visible to chat-sync. */
static void observe_accepted_to_committed(ing_pipeline *p)
{
    int64_t now = bz_wall_ms();
    for (int i = 0; i < p->txn_events; i++)
        if (p->txn_accepted_ms[i] > 0 && now >= p->txn_accepted_ms[i])
            bz_histogram_observe(p->cfg.metrics->accepted_to_committed,
                                 (double)(now - p->txn_accepted_ms[i]) / 1000.0);
}

/* Commit the open transaction with the consumer's positions. */
static void commit_transaction(ing_pipeline *p)
{
    double t0 = bz_metrics_clock();
    rd_kafka_t *rk = bz_producer_handle(p->producer);
    rd_kafka_topic_partition_list_t *offsets = NULL;
    txn_verdict v = every_record_proven_stored(p);
    if (v == TXN_OK &&
        rd_kafka_assignment(p->consumer, &offsets) == RD_KAFKA_RESP_ERR_NO_ERROR && offsets) {
        rd_kafka_position(p->consumer, offsets);
        rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(p->consumer);
        do {
            v = classify(rd_kafka_send_offsets_to_transaction(rk, offsets, cgmd, -1),
                         "send_offsets_to_transaction");
        } while (v == TXN_RETRY && !bz_shutdown_requested());
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        rd_kafka_topic_partition_list_destroy(offsets);
    }
    while (v == TXN_OK) {
        v = classify(rd_kafka_commit_transaction(rk, -1), "commit_transaction");
        if (v == TXN_OK)
            break;
        if (v != TXN_RETRY || bz_shutdown_requested())
            break;
        v = TXN_OK;
    }
    if (v == TXN_OK) {
        if (p->cfg.metrics) {
            bz_histogram_observe(p->cfg.metrics->commit_seconds, bz_metrics_clock() - t0);
            bz_histogram_observe(p->cfg.metrics->txn_events, p->txn_events);
            observe_accepted_to_committed(p);
        }
        end_transaction_state(p, 1);
        return;
    }
    if (v == TXN_REBUILD) {
        rebuild_producer(p);
        end_transaction_state(p, 0);
        rewind_consumer(p);
        return;
    }
    abort_and_rewind(p);
}

static int begin_transaction(ing_pipeline *p)
{
    if (p->in_txn)
        return 1;
    txn_verdict v = classify(rd_kafka_begin_transaction(bz_producer_handle(p->producer)),
                             "begin_transaction");
    if (v != TXN_OK) {
        rebuild_producer(p);
        rewind_consumer(p);
        return 0;
    }
    p->in_txn = 1;
    p->txn_events = 0;
    p->txn_failed_before = bz_producer_failed(p->producer);
    p->txn_started_ms = bz_monotonic_ms();
    return 1;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    ing_pipeline *p = opaque;
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
        atomic_store(&p->assigned, parts->cnt);
        bz_info("assigned %d partitions", parts->cnt);
        return;
    }
    /* Revoked: hand over what we did, so the next owner starts after it.
     * Lost: someone else may already own them; our work must not count. */
    if (p->in_txn && p->producer) {
        if (rd_kafka_assignment_lost(rk))
            abort_and_rewind(p);
        else
            commit_transaction(p);
    }
    rd_kafka_assign(rk, NULL);
    atomic_store(&p->assigned, 0);
    bz_info("partitions revoked");
}

/* librdkafka's subscription pattern for every gateway topic of prefix:
 * "^<prefix>wa\.inbound\.gw\..+", dots escaped (topic names hold no other
 * pattern character). */
static void gateway_topic_pattern(const char *prefix, char *out, size_t cap)
{
    char literal[BZ_TOPIC_NAME_MAX];
    snprintf(literal, sizeof literal, "%s%s", prefix ? prefix : "",
             bz_gateway_topic_base(BZ_GATEWAY_TOPIC_INBOUND));
    size_t n = 0;
    out[n++] = '^';
    for (const char *c = literal; *c && n + 4 < cap; c++) {
        if (*c == '.')
            out[n++] = '\\';
        out[n++] = *c;
    }
    snprintf(out + n, cap - n, ".+");
}

static bz_status create_consumer(ing_pipeline *p, bz_error *err)
{
    char session_timeout[16], heartbeat[16], fetch_wait[16];
    snprintf(session_timeout, sizeof session_timeout, "%d", p->cfg.session_timeout_ms);
    snprintf(heartbeat, sizeof heartbeat, "%d", p->cfg.session_timeout_ms / 4);
    snprintf(fetch_wait, sizeof fetch_wait, "%d", p->cfg.fetch_wait_ms);
    const char *const defaults[] = {"group.id", p->cfg.group_id,
                                    "enable.auto.commit", "false",
                                    "auto.offset.reset", "earliest",
                                    "isolation.level", "read_committed",
                                    "enable.partition.eof", "false",
                                    "session.timeout.ms", session_timeout,
                                    "heartbeat.interval.ms", heartbeat,
                                    "fetch.wait.max.ms", fetch_wait,
                                    "fetch.min.bytes", FETCH_MIN_BYTES,
                                    NULL};
    bz_kafka_settings settings = {.brokers = p->cfg.brokers, .client_id = "blazz-ingest"};
    rd_kafka_conf_t *conf;
    bz_status st = bz_kafka_conf_new(&settings, defaults, &conf, err);
    if (st != BZ_OK)
        return st;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    char errstr[256];
    p->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!p->consumer) {
        rd_kafka_conf_destroy(conf);
        return bz_fail(err, BZ_ERR_CONFIG, "create ingest consumer: %s", errstr);
    }
    rd_kafka_poll_set_consumer(p->consumer);
    char pattern[2 * BZ_TOPIC_NAME_MAX];
    gateway_topic_pattern(p->cfg.topic_prefix, pattern, sizeof pattern);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(topics, p->cfg.raw_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, pattern, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(p->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e)
        return bz_fail(err, BZ_ERR_CONFIG, "subscribe to %s: %s", p->cfg.raw_topic,
                       rd_kafka_err2str(e));
    return BZ_OK;
}

bz_status ing_pipeline_new(const ing_pipeline_config *cfg, ing_pipeline **out, bz_error *err)
{
    ing_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return bz_fail(err, BZ_ERR_NOMEM, "create pipeline: out of memory");
    p->cfg = *cfg;
    p->router.cfg = &p->cfg;
    snprintf(p->txn_timeout, sizeof p->txn_timeout, "%d", cfg->transaction_timeout_ms);
    const char *extra[] = {"transactional.id", cfg->transactional_id,
                           "transaction.timeout.ms", p->txn_timeout,
                           "message.timeout.ms", p->txn_timeout,
                           NULL};
    memcpy(p->producer_extra, extra, sizeof extra);
    p->txn_accepted_ms = calloc((size_t)(cfg->txn_max_events > 0 ? cfg->txn_max_events : 1),
                                sizeof *p->txn_accepted_ms);
    if (!p->txn_accepted_ms) {
        free(p);
        return bz_fail(err, BZ_ERR_NOMEM, "create pipeline: out of memory");
    }
    bz_status st = create_consumer(p, err);
    if (st == BZ_OK)
        st = create_producer(p, err);
    if (st != BZ_OK) {
        ing_pipeline_free(p);
        return st;
    }
    *out = p;
    return BZ_OK;
}

static void report_session_queries(ing_pipeline *p)
{
    uint64_t q = ing_sessions_queries(p->cfg.sessions);
    if (p->cfg.metrics && q > p->session_queries_reported)
        bz_counter_add(p->cfg.metrics->session_queries, q - p->session_queries_reported);
    p->session_queries_reported = q;
}

static void handle_record(ing_pipeline *p, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            bz_warn("consume: %s", rd_kafka_message_errstr(m));
        return;
    }
    if (!begin_transaction(p))
        return;
    p->router.producer = p->producer;
    ing_record_outcome o = ing_record_route(&p->router, m);
    if (o == ING_RECORD_HANDLED || o == ING_RECORD_DEAD_LETTERED) {
        p->txn_accepted_ms[p->txn_events++] = rd_kafka_message_timestamp(m, NULL);
        return;
    }
    abort_and_rewind(p);
    if (o == ING_RECORD_RETRY_LATER)
        bz_sleep_ms(BACKOFF_MS);
}

/* An open transaction is committed when it is due, not up to a poll
 * timeout later: its records become visible to chat-sync only then. */
static int poll_timeout_ms(const ing_pipeline *p)
{
    if (!p->in_txn)
        return 100;
    int64_t left = p->cfg.txn_max_ms - (bz_monotonic_ms() - p->txn_started_ms);
    return left <= 0 ? 0 : left < 10 ? (int)left : 10;
}

bz_status ing_pipeline_run(ing_pipeline *p, bz_error *err)
{
    bz_status st = init_transactions(p, err);
    if (st != BZ_OK)
        return bz_shutdown_requested() ? BZ_OK : st;
    bz_info("kafka path: %s -> %s (transactional.id %s, group %s)", p->cfg.raw_topic,
            p->cfg.sync_topic, p->cfg.transactional_id, p->cfg.group_id);
    int64_t next_session_poll = 0;
    while (!bz_shutdown_requested()) {
        int64_t now = bz_monotonic_ms();
        if (now >= next_session_poll) {
            ing_sessions_poll(p->cfg.sessions);
            report_session_queries(p);
            next_session_poll = now + SESSION_POLL_MS;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, poll_timeout_ms(p));
        if (m) {
            handle_record(p, m);
            rd_kafka_message_destroy(m);
        }
        if (p->in_txn && (p->txn_events >= p->cfg.txn_max_events ||
                          bz_monotonic_ms() - p->txn_started_ms >= p->cfg.txn_max_ms))
            commit_transaction(p);
    }
    if (p->in_txn && p->producer)
        commit_transaction(p);
    return BZ_OK;
}

void ing_pipeline_free(ing_pipeline *p)
{
    if (!p)
        return;
    /* leaving the group within a bounded wait (consumer_close.h): the
     * revoke it triggers finds no open transaction any more, so it only
     * unassigns */
    if (p->consumer)
        bz_consumer_destroy(p->consumer, bz_consumer_leave_group(p->consumer, CLOSE_DEADLINE_MS,
                                                                 on_rebalance, p));
    if (p->producer)
        bz_producer_free(p->producer, 5000);
    ing_record_router_clear(&p->router);
    free(p->txn_accepted_ms);
    free(p);
}

int ing_pipeline_assigned(const ing_pipeline *p)
{
    return atomic_load(&p->assigned);
}
