/*
 * outbox.c - the outbox relay (see outbox.h; writers: outbox_write.c).
 *
 * Relay round: SELECT the oldest batch_max rows (binary results, so bytea
 * arrives raw), produce each with a per-row completion, wait for all delivery
 * reports, DELETE the rows that were persisted. Rows whose delivery failed
 * for a transient reason stay and are retried next round; a transient
 * produce error also ends the round there, since the rows behind it would
 * meet the same broker. A row that can never be published (its topic is
 * neither in the catalogue nor a gateway's outbound one, or librdkafka or
 * the broker refused the record for good: bz_kafka_error_is_permanent) is
 * refused: it is dead-lettered to
 * outbox.dlq, and deleted once that write was acknowledged, and the rows
 * behind it go on. Any database failure drops the connection (and with it
 * the advisory lock) and the relay starts over after a backoff.
 */
#include "kafka/outbox.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "kafka/dlq.h"
#include "kafka/topics.h"
#include "pg/leader.h"
#include "pg/columns.h"
#include "pg/pg.h"

#define RELAY_LOCK_KEY 0x626c617a7a6f7574LL /* "blazzout" */
#define DELIVERY_TIMEOUT_MS 30000
#define STOP_WAIT_MS 2000 /* acknowledgements still awaited when the relay is stopped */
#define DLQ_ACK_TIMEOUT_MS 10000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_HEADERS 16

#define SQL_OUTBOX_FETCH                                                                         \
    "SELECT id, event_id::text, topic, msg_key, payload, headers::text, "                        \
    "(extract(epoch FROM created_at) * 1000)::int8 FROM outbox ORDER BY id LIMIT $1"
#define SQL_OUTBOX_DELETE "DELETE FROM outbox WHERE id = ANY($1::bigint[])"

/* ---- relay ------------------------------------------------------------------ */

#define GATEWAY_TOPIC_MISSING                                                                      \
    "its gateway's topic does not exist: create it (blazzctl topics ensure --gateway ID), "      \
    "then replay this dead letter"

typedef struct outbox_row {
    bz_delivery delivery;
    int64_t id;
    int done;
    int ok;             /* published, or dead-lettered: delete it */
    const char *refusal; /* why it can never be published (a static reason), or NULL */
    int to_gateway;      /* routed to a gateway's own topic (topics.h) */
    char why[BZ_ERROR_MSG_MAX];
} outbox_row;

/* Prometheus view of the relay; all NULL when no registry was given. */
typedef struct relay_metrics {
    bz_counter *published, *failed;
    bz_counter_family *dead_lettered;
    bz_histogram *round_seconds;
    bz_histogram_family *row_age;
    bz_gauge *active, *last_batch;
} relay_metrics;

struct bz_outbox_relay {
    bz_outbox_relay_config cfg;
    relay_metrics m;
    bz_pg *pg;
    bz_producer *producer;
    pthread_t thread;
    atomic_int stop;
    char dlq_topic[BZ_TOPIC_NAME_MAX];
    bz_pg_leader leader; /* on pg: the relay lock, LISTEN blazz_outbox */
    int backoff_ms;
};

static bz_status register_metrics(bz_outbox_relay *r, bz_error *err)
{
    if (!r->cfg.metrics)
        return BZ_OK;
    relay_metrics *m = &r->m;
    const bz_metric_decl decls[] = {
        {.def = {.name = "blazz_outbox_published_total",
                 .help = "Outbox rows published and deleted"},
         .counter = &m->published},
        {.def = {.name = "blazz_outbox_failed_total",
                 .help = "Outbox rows whose publish failed (retried)"},
         .counter = &m->failed},
        {.def = {.name = "blazz_outbox_dead_lettered_total",
                 .help = "Outbox rows that can never be published, dead-lettered to outbox.dlq "
                         "and deleted",
                 .label_names = (const char *const[]){"reason", NULL}},
         .counters = &m->dead_lettered},
        {.def = {.name = "blazz_outbox_round_seconds",
                 .help = "Time to publish and delete one batch"},
         .histogram = &m->round_seconds},
        {.def = {.name = "blazz_outbox_row_age_seconds",
                 .help = "From the transaction that wrote an outbox row to its record "
                         "published, by topic",
                 .label_names = (const char *const[]){"topic", NULL}},
         .histograms = &m->row_age},
        {.def = {.name = "blazz_outbox_relay_active",
                 .help = "1 while this instance holds the relay lock"},
         .gauge = &m->active},
        {.def = {.name = "blazz_outbox_last_batch_rows",
                 .help = "Rows fetched by the last round (backlog sign)"},
         .gauge = &m->last_batch},
    };
    return BZ_METRICS_DECLARE(r->cfg.metrics, decls, err);
}

static void record_round(bz_outbox_relay *r, int fetched, int deleted, int dead, double started)
{
    if (!r->cfg.metrics)
        return;
    bz_counter_add(r->m.published, (uint64_t)(deleted - dead));
    bz_counter_add(r->m.failed, (uint64_t)(fetched - deleted));
    bz_gauge_set(r->m.last_batch, fetched);
    if (fetched > 0)
        bz_histogram_observe(r->m.round_seconds, bz_metrics_clock() - started);
}

static void set_active(bz_outbox_relay *r, int active)
{
    if (r->m.active)
        bz_gauge_set(r->m.active, active);
}

static void on_row_delivered(bz_delivery *d, rd_kafka_resp_err_t err, int32_t partition,
                             int64_t offset)
{
    (void)partition;
    (void)offset;
    outbox_row *row = (outbox_row *)d;
    row->done = 1;
    row->ok = err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (bz_kafka_error_is_permanent(err)) {
        row->refusal = bz_kafka_refusal_reason(err);
        snprintf(row->why, sizeof row->why, "the broker refused it: %s", rd_kafka_err2str(err));
    } else if (err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC && row->to_gateway) {
        row->refusal = "unknown_topic";
        snprintf(row->why, sizeof row->why, GATEWAY_TOPIC_MISSING);
    }
}

static int64_t int64_from_binary(const char *p)
{
    uint32_t hi, lo;
    memcpy(&hi, p, 4);
    memcpy(&lo, p + 4, 4);
    return (int64_t)(((uint64_t)ntohl(hi) << 32) | ntohl(lo));
}

/* Turn the headers jsonb of a row into Kafka headers pointing into root. */
static size_t headers_from_json(json_t *root, bz_kafka_header *out, size_t cap)
{
    size_t n = 0;
    const char *name;
    json_t *value;
    json_object_foreach(root, name, value)
    {
        if (n == cap || !json_is_string(value))
            continue;
        out[n++] = (bz_kafka_header){name, json_string_value(value), json_string_length(value)};
    }
    return n;
}

/* The row's headers jsonb as Kafka headers pointing into *root, which the
 * caller releases with json_decref. */
static size_t row_headers(const PGresult *res, int i, bz_kafka_header *out, json_t **root)
{
    *root = json_loadb(PQgetvalue(res, i, 5), (size_t)PQgetlength(res, i, 5), 0, NULL);
    return *root ? headers_from_json(*root, out, MAX_HEADERS) : 0;
}

/* Full topic name of the row, and whether it is a gateway's own (the
 * outbox routes those, 0029_outbound_per_gateway.sql); BZ_ERR_INVALID when
 * its base is neither that nor a catalogue topic: no relay could ever
 * publish it. */
static bz_status row_topic(const bz_outbox_relay *r, const PGresult *res, int i, char *out,
                           size_t cap, int *to_gateway, bz_error *err)
{
    char base[BZ_TOPIC_NAME_MAX];
    snprintf(base, sizeof base, "%.*s", PQgetlength(res, i, 2), PQgetvalue(res, i, 2));
    bz_topic known;
    *to_gateway = bz_topic_gateway_route(base, NULL);
    if (!*to_gateway && bz_topic_lookup(base, &known, NULL) != BZ_OK)
        return bz_reject(err, "unknown_topic", "topic '%s' is not in the catalogue", base);
    return bz_topic_name_checked(r->cfg.topic_prefix, base, out, cap, err);
}

static bz_status produce_row(bz_outbox_relay *r, const PGresult *res, int i, outbox_row *row,
                             bz_error *err)
{
    char topic[BZ_TOPIC_NAME_MAX];
    bz_status st = row_topic(r, res, i, topic, sizeof topic, &row->to_gateway, err);
    if (st != BZ_OK)
        return st;
    json_t *headers_json;
    bz_kafka_header headers[MAX_HEADERS];
    size_t nheaders = row_headers(res, i, headers, &headers_json);
    int has_key = !PQgetisnull(res, i, 3);
    st = bz_producer_send(r->producer, topic, RD_KAFKA_PARTITION_UA,
                          has_key ? PQgetvalue(res, i, 3) : NULL,
                          has_key ? (size_t)PQgetlength(res, i, 3) : 0, PQgetvalue(res, i, 4),
                          (size_t)PQgetlength(res, i, 4), headers, nheaders, &row->delivery, err);
    json_decref(headers_json);
    return st;
}

/* A gateway's topic is created with the gateway, before accounts are bound
 * to it (ARCHITECTURE.md §9.1); if it was not, retrying would hold up every
 * row behind this one until it is. */
static int is_missing_gateway_topic(const outbox_row *row, const bz_error *err)
{
    return row->to_gateway && err->reason && strcmp(err->reason, "unknown_topic") == 0;
}

/* Produce the rows in order until a transient failure; a refused row is
 * marked and skipped. Returns how many rows were handled (produced or
 * refused); the rest stay for the next round. */
static int produce_rows(bz_outbox_relay *r, const PGresult *res, outbox_row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        bz_error err;
        rows[i].delivery.on_done = on_row_delivered;
        rows[i].id = int64_from_binary(PQgetvalue(res, i, 0));
        if (produce_row(r, res, i, &rows[i], &err) == BZ_OK)
            continue;
        if (err.code != BZ_ERR_INVALID && !is_missing_gateway_topic(&rows[i], &err)) {
            bz_warn("outbox row %" PRId64 ": %s", rows[i].id, err.msg);
            return i;
        }
        rows[i].done = 1;
        rows[i].refusal = err.reason ? err.reason : "produce_refused";
        if (is_missing_gateway_topic(&rows[i], &err))
            snprintf(rows[i].why, sizeof rows[i].why, "%.300s: %s", err.msg,
                     GATEWAY_TOPIC_MISSING);
        else
            snprintf(rows[i].why, sizeof rows[i].why, "%s", err.msg);
    }
    return n;
}

/* Wait until every produced row has its delivery report. Once the relay
 * is stopped they get STOP_WAIT_MS more, not what is left of
 * DELIVERY_TIMEOUT_MS: with the broker gone, a round in flight held the
 * service's stop for up to 30 s, past an orchestrator's grace period. The
 * rows not acknowledged stay in the table for the next relay (consumers
 * deduplicate by event_id). */
static void await_deliveries(bz_outbox_relay *r, outbox_row *rows, int n)
{
    int64_t deadline = bz_monotonic_ms() + DELIVERY_TIMEOUT_MS;
    for (;;) {
        int pending = 0;
        for (int i = 0; i < n; i++)
            pending += !rows[i].done;
        if (!pending)
            return;
        int64_t now = bz_monotonic_ms();
        if (atomic_load(&r->stop) && deadline > now + STOP_WAIT_MS)
            deadline = now + STOP_WAIT_MS;
        if (now >= deadline) {
            /* Fail the stragglers back to us so `rows` may be freed; they
             * stay in the table and are retried next round. */
            rd_kafka_purge(bz_producer_handle(r->producer),
                           RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        }
        bz_producer_poll(r->producer, 20);
    }
}

/* One latency hop of the waterfall (ARCHITECTURE.md §8.1): created_at is
 * the writing transaction's start, so the figure also holds the rest of
 * that transaction, the wake-up and the broker's acknowledgement. */
static void observe_row_ages(bz_outbox_relay *r, const PGresult *res, const outbox_row *rows,
                             int n)
{
    if (!r->m.row_age)
        return;
    int64_t now = bz_wall_ms();
    for (int i = 0; i < n; i++) {
        int64_t created_ms = int64_from_binary(PQgetvalue(res, i, 6));
        if (rows[i].ok && !rows[i].refusal && now >= created_ms)
            bz_histogram_observe(bz_histogram_family_with(r->m.row_age, PQgetvalue(res, i, 2)),
                                 (double)(now - created_ms) / 1000.0);
    }
}

/* Dead-letter one refused row to outbox.dlq and wait for the broker: the
 * row may be deleted only then. */
static bz_status dead_letter_row(bz_outbox_relay *r, const PGresult *res, int i,
                                 const outbox_row *row, bz_error *err)
{
    char topic[BZ_TOPIC_NAME_MAX], message[BZ_ERROR_MSG_MAX + 64];
    snprintf(topic, sizeof topic, "%s%.*s", r->cfg.topic_prefix ? r->cfg.topic_prefix : "",
             PQgetlength(res, i, 2), PQgetvalue(res, i, 2));
    snprintf(message, sizeof message, "outbox row %" PRId64 " can never be published: %s", row->id,
             row->why);
    json_t *headers_json;
    bz_kafka_header headers[MAX_HEADERS];
    size_t nheaders = row_headers(res, i, headers, &headers_json);
    int has_key = !PQgetisnull(res, i, 3);
    bz_dlq_original orig = {.topic = topic, .partition = -1, .offset = -1,
                            .key = has_key ? PQgetvalue(res, i, 3) : NULL,
                            .key_len = has_key ? (size_t)PQgetlength(res, i, 3) : 0,
                            .value = PQgetvalue(res, i, 4),
                            .value_len = (size_t)PQgetlength(res, i, 4),
                            .headers = headers, .nheaders = nheaders};
    int64_t now = bz_wall_ms();
    bz_dead_letter_info info = {.error_code = row->refusal, .error_message = message,
                                .service = r->cfg.kafka.client_id, .event_id = PQgetvalue(res, i, 1),
                                .attempts = 1, .first_failed_at_ms = now, .last_failed_at_ms = now};
    bz_status st = bz_dlq_send_original_sync(r->producer, r->dlq_topic, &orig, &info,
                                             DLQ_ACK_TIMEOUT_MS, err);
    json_decref(headers_json);
    if (st != BZ_OK)
        return st;
    bz_log_event(BZ_LOG_ERROR, info.event_id, NULL, "%s (%s, %zu bytes for %s); dead-lettered to %s",
                 message, row->refusal, orig.value_len, topic, r->dlq_topic);
    return BZ_OK;
}

/* Dead-letter every refused row; those whose dead letter was acknowledged
 * become deletable (returns how many). A row whose dead letter failed stays
 * for the next round. */
static int dead_letter_refused(bz_outbox_relay *r, const PGresult *res, outbox_row *rows, int n)
{
    int dead = 0;
    for (int i = 0; i < n; i++) {
        if (!rows[i].refusal)
            continue;
        bz_error err;
        if (dead_letter_row(r, res, i, &rows[i], &err) != BZ_OK) {
            bz_warn("outbox row %" PRId64 ": %s; retrying", rows[i].id, err.msg);
            continue;
        }
        rows[i].ok = 1;
        dead++;
        if (r->m.dead_lettered)
            bz_counter_inc(bz_counter_family_with(r->m.dead_lettered, rows[i].refusal));
    }
    return dead;
}

static bz_status delete_delivered(bz_outbox_relay *r, const outbox_row *rows, int n,
                                  int *deleted, bz_error *err)
{
    *deleted = 0;
    if (n <= 0)
        return BZ_OK;
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids)
        return bz_fail(err, BZ_ERR_NOMEM, "outbox delete: out of memory");
    size_t nids = 0;
    for (int i = 0; i < n; i++)
        if (rows[i].ok)
            ids[nids++] = rows[i].id;
    *deleted = (int)nids;
    if (nids == 0) {
        free(ids);
        return BZ_OK;
    }
    char *array = bz_pg_int64_array(ids, nids);
    free(ids);
    if (!array)
        return bz_fail(err, BZ_ERR_NOMEM, "outbox delete: out of memory");
    const char *params[] = {array};
    bz_status st = bz_pg_exec_prepared(bz_pg_conn(r->pg), "bz_outbox_delete", 1, params, NULL,
                                       NULL, NULL, err);
    free(array);
    if (st != BZ_OK)
        return bz_wrap(err, "delete %zu published or dead-lettered outbox rows", nids);
    return BZ_OK;
}

/* One round: publish up to batch_max rows. Sets *count to rows fetched. */
static bz_status relay_round(bz_outbox_relay *r, int *count, bz_error *err)
{
    double started = bz_metrics_clock();
    char limit[16];
    snprintf(limit, sizeof limit, "%d", r->cfg.batch_max);
    const char *params[] = {limit};
    PGresult *res = PQexecPrepared(bz_pg_conn(r->pg), "bz_outbox_fetch", 1, params, NULL, NULL, 1);
    bz_status st = bz_pg_check(bz_pg_conn(r->pg), res, "fetch outbox rows", err);
    if (st != BZ_OK) {
        PQclear(res);
        return st;
    }
    int n = PQntuples(res);
    *count = n;
    if (n == 0) {
        PQclear(res);
        return BZ_OK;
    }
    outbox_row *rows = calloc((size_t)n, sizeof *rows);
    if (!rows) {
        PQclear(res);
        return bz_fail(err, BZ_ERR_NOMEM, "relay %d outbox rows: out of memory", n);
    }
    int handled = produce_rows(r, res, rows, n);
    await_deliveries(r, rows, handled);
    observe_row_ages(r, res, rows, handled);
    int dead = dead_letter_refused(r, res, rows, handled);
    PQclear(res);
    int deleted = 0;
    bz_status dst = delete_delivered(r, rows, handled, &deleted, err);
    free(rows);
    if (dst != BZ_OK)
        return dst;
    record_round(r, n, deleted, dead, started);
    if (deleted < n)
        return bz_fail(err, BZ_ERR_TRANSIENT, "published %d of %d outbox rows", deleted, n);
    return BZ_OK;
}

static void relay_failed(bz_outbox_relay *r, const bz_error *err)
{
    set_active(r, 0);
    if (err->code != BZ_ERR_CONFLICT)
        bz_warn("outbox relay: %s; retrying in %d ms", err->msg, r->backoff_ms);
    bz_pg_leader_failed(&r->leader);
    int64_t until = bz_monotonic_ms() +
                    (err->code == BZ_ERR_CONFLICT ? r->cfg.idle_poll_ms : r->backoff_ms);
    while (!atomic_load(&r->stop) && bz_monotonic_ms() < until)
        bz_sleep_ms(50); /* a stop does not wait out the backoff */
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void *relay_main(void *arg)
{
    bz_outbox_relay *r = arg;
    while (!atomic_load(&r->stop)) {
        bz_error err;
        int fetched = 0;
        bz_status st = bz_pg_leader_acquire(&r->leader, "outbox relay", &err);
        if (st == BZ_OK)
            st = relay_round(r, &fetched, &err);
        if (st != BZ_OK) {
            relay_failed(r, &err);
            continue;
        }
        set_active(r, 1);
        r->backoff_ms = BACKOFF_MIN_MS;
        if (fetched < r->cfg.batch_max)
            bz_pg_leader_wait(&r->leader, r->cfg.idle_poll_ms);
    }
    return NULL;
}

static bz_status prepare_relay_statements(bz_outbox_relay *r, bz_error *err)
{
    bz_status st = bz_pg_prepare(r->pg, "bz_outbox_fetch", SQL_OUTBOX_FETCH, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(r->pg, "bz_outbox_delete", SQL_OUTBOX_DELETE, err);
    return st;
}

static void free_relay(bz_outbox_relay *r)
{
    bz_producer_free(r->producer, 5000);
    bz_pg_close(r->pg);
    free(r);
}

bz_status bz_outbox_relay_start(const bz_outbox_relay_config *cfg, bz_outbox_relay **out,
                                bz_error *err)
{
    bz_outbox_relay *r = calloc(1, sizeof *r);
    if (!r)
        return bz_fail(err, BZ_ERR_NOMEM, "start outbox relay: out of memory");
    r->cfg = *cfg;
    /* A round waits for every delivery report before the next can start:
     * librdkafka's default linger of 5 ms would add itself to every round.
     * The rows of a round are produced in one burst and batch anyway. And
     * a row for a topic the broker does not have (a gateway's, created
     * after its accounts were bound) gets its report only when librdkafka
     * stops waiting for the topic to appear, 30 s by default: every row of
     * every service behind it waited that long (the sends, the CRM's
     * webhooks). A topic is created before anything is routed to it
     * (ARCHITECTURE.md §9.1), so a second covers its propagation; a row
     * refused too early is dead-lettered, and replayed from there. */
    static const char *const relay_producer_properties[] = {
        "linger.ms", "0", "topic.metadata.propagation.max.ms", "1000", NULL};
    if (!r->cfg.kafka.extra)
        r->cfg.kafka.extra = relay_producer_properties;
    if (r->cfg.batch_max <= 0)
        r->cfg.batch_max = 1000;
    if (r->cfg.idle_poll_ms <= 0)
        r->cfg.idle_poll_ms = 500;
    r->backoff_ms = BACKOFF_MIN_MS;
    bz_status st = bz_topic_name_checked(cfg->topic_prefix, bz_topic_base(BZ_TOPIC_OUTBOX_DLQ),
                                         r->dlq_topic, sizeof r->dlq_topic, err);
    if (st == BZ_OK)
        st = register_metrics(r, err);
    if (st == BZ_OK)
        st = bz_pg_open(cfg->pg_dsn, &r->pg, err);
    /* The relay's only writes are the DELETEs of published rows. One lost
     * in a database crash only publishes its rows again, which a crash
     * between the acknowledgement and the DELETE does already (the
     * consumers deduplicate by event_id). Waiting for the WAL flush delayed
     * the next round, and every row committed meanwhile. */
    r->leader = (bz_pg_leader){.pg = r->pg, .lock_key = RELAY_LOCK_KEY, .channel = "blazz_outbox",
                               .setup_sql = "SET synchronous_commit TO off"};
    if (st == BZ_OK)
        st = prepare_relay_statements(r, err);
    if (st == BZ_OK)
        st = bz_producer_new(&cfg->kafka, &r->producer, err);
    if (st == BZ_OK && pthread_create(&r->thread, NULL, relay_main, r) != 0)
        st = bz_fail(err, BZ_ERR_IO, "start outbox relay thread: %s", strerror(errno));
    if (st != BZ_OK) {
        free_relay(r);
        return bz_wrap(err, "start outbox relay");
    }
    *out = r;
    return BZ_OK;
}

bz_status bz_outbox_relay_start_configured(const bz_config *cfg, const char *client_id,
                                           bz_metrics *metrics, bz_outbox_relay **out,
                                           bz_error *err)
{
    *out = NULL;
    if (!bz_config_bool(cfg, "outbox.relay_enabled"))
        return BZ_OK;
    bz_outbox_relay_config rcfg = {
        .kafka = {.brokers = bz_config_string(cfg, "kafka.brokers"), .client_id = client_id},
        .pg_dsn = bz_config_string(cfg, "pg.dsn"),
        .topic_prefix = bz_config_string(cfg, "kafka.topic_prefix"),
        .batch_max = (int)bz_config_int(cfg, "outbox.batch_max"),
        .idle_poll_ms = (int)bz_config_int(cfg, "outbox.idle_poll_ms"),
        .metrics = metrics,
    };
    return bz_outbox_relay_start(&rcfg, out, err);
}

void bz_outbox_relay_stop(bz_outbox_relay *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
    free_relay(r);
}
