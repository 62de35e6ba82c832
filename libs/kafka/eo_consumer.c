/*
 * eo_consumer.c - exactly-once Kafka -> PostgreSQL consumer (see eo_consumer.h).
 *
 * One thread does everything: it polls one message at a time (the batch
 * consume APIs of librdkafka 2.0 can lose or repeat messages around seeks and
 * rebalances), appends it to the in-memory batch, and flushes the batch when
 * it is full or has lingered long enough. The rebalance callback runs inside
 * rd_kafka_consumer_poll on this same thread, so it may flush or drop the
 * batch without locks.
 *
 * Per owned partition we remember `db_next`, the next_offset value stored in
 * kafka_offsets (-1: no row yet), and `accept_from`, the lowest offset we
 * still accept into the batch; messages below it are stale prefetches after
 * a seek and are discarded.
 *
 * After a lost compare-and-set (or a COMMIT of unknown outcome) our db_next
 * is stale, so nothing is accepted until the offsets were re-read and the
 * partitions seeked there (`need_reload`): a prefetched record taken in
 * between would join a batch whose offsets start from the old position and
 * commit past or behind the other owner's. The stored offset itself only
 * ever moves forward (the update requires it), a second line of defence.
 */
#include "kafka/eo_consumer.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/signals.h"
#include "kafka/dlq.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define DLQ_ACK_TIMEOUT_MS 10000
#define CLOSE_DEADLINE_MS 10000
#define FIRST_ASSIGNMENT_MARGIN_MS 5000

#define SQL_OFFSET_LOAD                                                                          \
    "SELECT next_offset FROM kafka_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3"
#define SQL_OFFSET_INSERT                                                                        \
    "INSERT INTO kafka_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4) " \
    "ON CONFLICT DO NOTHING"
#define SQL_OFFSET_UPDATE                                                                        \
    "UPDATE kafka_offsets SET next_offset = $4, updated_at = now() "                            \
    "WHERE group_id = $1 AND topic = $2 AND partition = $3 AND next_offset = $5 "               \
    "AND $4::bigint > $5::bigint"

typedef struct partition_state {
    char *topic;
    int32_t partition;
    int64_t db_next;     /* next_offset in kafka_offsets, -1 when no row */
    int64_t accept_from; /* lowest offset accepted into the batch, -1: any */
    int64_t batch_next;  /* next offset after the batch's last record, -1: none */
} partition_state;

typedef struct batch_entry {
    bz_eo_record rec;
    int decoded;       /* decode ran */
    bz_status verdict; /* BZ_OK, or BZ_ERR_INVALID: to be dead-lettered */
    int by_apply;      /* the verdict came from apply, inside a transaction */
    const char *reason;
    char *why;         /* heap copy of the rejection message */
} batch_entry;

/* Prometheus view of the consumer; all NULL when no registry was given. */
typedef struct consumer_metrics {
    bz_counter *consumed, *applied, *retries, *conflicts;
    bz_counter_family *dead_lettered; /* by reason */
    bz_histogram *batch_seconds;      /* apply + offsets + commit */
    bz_histogram *record_age_seconds; /* record timestamp -> committed */
    bz_gauge *assigned, *lag, *db_up;
} consumer_metrics;

struct bz_eo_consumer {
    bz_eo_consumer_config cfg;
    consumer_metrics m;
    int64_t lag_sampled_ms;
    rd_kafka_t *rk;
    bz_producer *dlq;
    bz_pg *pg;

    partition_state *parts;
    size_t nparts, capparts;

    batch_entry *batch;
    size_t nbatch, capbatch;
    int64_t batch_started_ms;

    int backoff_ms;
    int64_t retry_at_ms;
    int paused;
    int need_reload;
    int ever_assigned; /* an assignment callback has run (see close_group_membership) */
    int64_t first_assignment_wait_ms;

    atomic_int stop;
    _Atomic uint64_t consumed, applied, dead_lettered, batches, retries, conflicts;
    atomic_int assigned, db_up;
};

static int should_stop(const bz_eo_consumer *c)
{
    return atomic_load(&c->stop) || bz_shutdown_requested();
}

/* ---- metrics ----------------------------------------------------------- */

static bz_status register_metrics(bz_eo_consumer *c, bz_error *err)
{
    bz_metrics *reg = c->cfg.metrics;
    if (!reg)
        return BZ_OK;
    const char *const group[] = {"group", c->cfg.group_id, NULL};
    const char *const reason[] = {"reason", NULL};
#define DEF(n, h) (&(bz_metric_def){.name = (n), .help = (h), .const_labels = group})
    bz_status st = bz_metrics_counter(reg, DEF("blazz_consumer_consumed_total",
                                               "Records taken from Kafka"), &c->m.consumed, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg, DEF("blazz_consumer_applied_total",
                                         "Records applied to PostgreSQL exactly once"),
                                &c->m.applied, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg, DEF("blazz_consumer_retries_total",
                                         "Batches retried after a transient failure"),
                                &c->m.retries, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg, DEF("blazz_consumer_offset_conflicts_total",
                                         "Batches dropped because another consumer moved the "
                                         "stored offset"),
                                &c->m.conflicts, err);
    if (st == BZ_OK)
        st = bz_metrics_counter_family(
            reg,
            &(bz_metric_def){.name = "blazz_consumer_dead_lettered_total",
                             .help = "Records sent to the dead-letter topic, by reason",
                             .const_labels = group, .label_names = reason},
            &c->m.dead_lettered, err);
    if (st == BZ_OK)
        st = bz_metrics_histogram(reg, DEF("blazz_consumer_batch_seconds",
                                           "Time to apply and commit one batch"),
                                  &c->m.batch_seconds, err);
    if (st == BZ_OK)
        st = bz_metrics_histogram(reg, DEF("blazz_consumer_record_age_seconds",
                                           "Record timestamp to its effects committed"),
                                  &c->m.record_age_seconds, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg, DEF("blazz_consumer_assigned_partitions",
                                       "Partitions this instance owns"), &c->m.assigned, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg, DEF("blazz_consumer_lag",
                                       "Records behind the high watermark, summed over owned "
                                       "partitions"),
                              &c->m.lag, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg, DEF("blazz_consumer_database_up",
                                       "1 when the last PostgreSQL operation succeeded"),
                              &c->m.db_up, err);
#undef DEF
    return st;
}

/* Metrics are optional: updates go through these NULL-tolerant helpers. */
static void add_to_counter(bz_counter *counter, uint64_t n)
{
    if (counter)
        bz_counter_add(counter, n);
}

static void set_gauge(bz_gauge *g, double v)
{
    if (g)
        bz_gauge_set(g, v);
}

/* Lag from the watermarks librdkafka already has (no broker round trip). */
static void sample_lag(bz_eo_consumer *c, int64_t now)
{
    if (!c->m.lag || now - c->lag_sampled_ms < 1000)
        return;
    c->lag_sampled_ms = now;
    int64_t lag = 0;
    for (size_t i = 0; i < c->nparts; i++) {
        int64_t low, high;
        if (rd_kafka_get_watermark_offsets(c->rk, c->parts[i].topic, c->parts[i].partition, &low,
                                           &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            high < 0)
            continue;
        int64_t next = c->parts[i].db_next >= 0 ? c->parts[i].db_next : low;
        if (high > next)
            lag += high - next;
    }
    bz_gauge_set(c->m.lag, (double)lag);
}

/* ---- partition bookkeeping ------------------------------------------- */

static partition_state *find_partition(bz_eo_consumer *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].partition == partition && strcmp(c->parts[i].topic, topic) == 0)
            return &c->parts[i];
    return NULL;
}

static partition_state *add_partition(bz_eo_consumer *c, const char *topic, int32_t partition)
{
    partition_state *p = find_partition(c, topic, partition);
    if (p)
        return p;
    if (c->nparts == c->capparts) {
        size_t cap = c->capparts ? c->capparts * 2 : 16;
        partition_state *grown = realloc(c->parts, cap * sizeof *grown);
        if (!grown)
            return NULL;
        c->parts = grown;
        c->capparts = cap;
    }
    p = &c->parts[c->nparts];
    if (!(p->topic = strdup(topic)))
        return NULL;
    c->nparts++;
    p->partition = partition;
    p->db_next = p->accept_from = p->batch_next = -1;
    return p;
}

static void remove_partition(bz_eo_consumer *c, const char *topic, int32_t partition)
{
    partition_state *p = find_partition(c, topic, partition);
    if (!p)
        return;
    free(p->topic);
    *p = c->parts[--c->nparts];
}

/* ---- the batch ---------------------------------------------------------- */

static void release_entry(bz_eo_consumer *c, batch_entry *e)
{
    if (e->decoded && e->rec.decoded && c->cfg.handler->release)
        c->cfg.handler->release(c->cfg.handler_ctx, e->rec.decoded);
    free(e->why);
    rd_kafka_message_destroy(e->rec.msg);
}

static void clear_batch(bz_eo_consumer *c)
{
    for (size_t i = 0; i < c->nbatch; i++)
        release_entry(c, &c->batch[i]);
    c->nbatch = 0;
    for (size_t i = 0; i < c->nparts; i++) {
        c->parts[i].batch_next = -1;
        c->parts[i].accept_from = c->parts[i].db_next;
    }
}

/* Keep only batch entries whose partition is still owned. */
static void drop_unowned_entries(bz_eo_consumer *c)
{
    size_t kept = 0;
    for (size_t i = 0; i < c->nbatch; i++) {
        batch_entry *e = &c->batch[i];
        if (find_partition(c, rd_kafka_topic_name(e->rec.msg->rkt), e->rec.msg->partition))
            c->batch[kept++] = *e;
        else
            release_entry(c, e);
    }
    c->nbatch = kept;
}

/* Take ownership of msg: append it to the batch or destroy it if stale. */
static void accept_message(bz_eo_consumer *c, rd_kafka_message_t *msg)
{
    partition_state *p = find_partition(c, rd_kafka_topic_name(msg->rkt), msg->partition);
    if (!p || c->need_reload || (p->accept_from >= 0 && msg->offset < p->accept_from)) {
        rd_kafka_message_destroy(msg);
        return;
    }
    if (c->nbatch == c->capbatch) {
        size_t cap = c->capbatch ? c->capbatch * 2 : 256;
        batch_entry *grown = realloc(c->batch, cap * sizeof *grown);
        if (!grown) {
            /* Not accepting it is safe: the offset does not advance past it,
             * and the reload below re-reads it from the broker. */
            bz_error_log("batch: out of memory; re-reading from stored offsets");
            rd_kafka_message_destroy(msg);
            c->need_reload = 1;
            return;
        }
        c->batch = grown;
        c->capbatch = cap;
    }
    if (c->nbatch == 0)
        c->batch_started_ms = bz_monotonic_ms();
    c->batch[c->nbatch++] = (batch_entry){.rec = {.msg = msg}};
    p->accept_from = msg->offset + 1;
    p->batch_next = msg->offset + 1;
    atomic_fetch_add(&c->consumed, 1);
    add_to_counter(c->m.consumed, 1);
}

/* ---- offsets in PostgreSQL -------------------------------------------- */

static bz_status load_offset(bz_eo_consumer *c, const char *topic, int32_t partition,
                             int64_t *next, bz_error *err)
{
    char part[16];
    snprintf(part, sizeof part, "%" PRId32, partition);
    const char *params[] = {c->cfg.offsets_group_id, topic, part};
    PGresult *res;
    bz_status st = bz_pg_exec_prepared(bz_pg_conn(c->pg), "bz_eo_offset_load", 3, params, NULL,
                                       NULL, &res, err);
    if (st != BZ_OK)
        return bz_wrap(err, "load offset of %s[%" PRId32 "] for group %s", topic, partition,
                       c->cfg.offsets_group_id);
    *next = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    return BZ_OK;
}

/* Store the batch's next offset for partition p, compare-and-set against the
 * value we last saw and only forward. BZ_ERR_CONFLICT when someone else
 * moved it (or our view is so stale that the batch would move it back). */
static bz_status store_offset(bz_eo_consumer *c, partition_state *p, bz_error *err)
{
    char part[16], next[24], expected[24];
    snprintf(part, sizeof part, "%" PRId32, p->partition);
    snprintf(next, sizeof next, "%" PRId64, p->batch_next);
    snprintf(expected, sizeof expected, "%" PRId64, p->db_next);
    const char *params[] = {c->cfg.offsets_group_id, p->topic, part, next, expected};
    int insert = p->db_next < 0;
    PGresult *res;
    bz_status st = bz_pg_exec_prepared(bz_pg_conn(c->pg),
                                       insert ? "bz_eo_offset_insert" : "bz_eo_offset_update",
                                       insert ? 4 : 5, params, NULL, NULL, &res, err);
    if (st != BZ_OK)
        return bz_wrap(err, "store offset %s of %s[%" PRId32 "]", next, p->topic, p->partition);
    int changed = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (!changed)
        return bz_fail(err, BZ_ERR_CONFLICT,
                       "store offset %s of %s[%" PRId32 "]: expected %s in kafka_offsets for "
                       "group %s and a move forward; another consumer moved it",
                       next, p->topic, p->partition, insert ? "no row" : expected,
                       c->cfg.offsets_group_id);
    return BZ_OK;
}

/* Drop the batch and seek every owned partition to the offset stored in
 * PostgreSQL. */
static bz_status reload_offsets_and_seek(bz_eo_consumer *c, bz_error *err)
{
    clear_batch(c);
    bz_status st = bz_pg_ensure(c->pg, err);
    if (st != BZ_OK)
        return st;
    rd_kafka_topic_partition_list_t *seeks = rd_kafka_topic_partition_list_new((int)c->nparts);
    for (size_t i = 0; i < c->nparts && st == BZ_OK; i++) {
        partition_state *p = &c->parts[i];
        st = load_offset(c, p->topic, p->partition, &p->db_next, err);
        p->accept_from = p->db_next;
        rd_kafka_topic_partition_list_add(seeks, p->topic, p->partition)->offset =
            p->db_next >= 0 ? p->db_next : RD_KAFKA_OFFSET_BEGINNING;
    }
    if (st == BZ_OK && seeks->cnt > 0) {
        /* -1: wait for the seek; 2.0.2 mis-scales finite timeouts (#4230). */
        rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, seeks, -1);
        if (e) {
            st = bz_fail(err, BZ_ERR_TRANSIENT, "seek to stored offsets: %s",
                         rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    rd_kafka_topic_partition_list_destroy(seeks);
    if (st == BZ_OK) {
        c->need_reload = 0;
        bz_info("re-read offsets of %zu partitions from PostgreSQL and seeked there", c->nparts);
    }
    return st;
}

/* ---- applying a batch --------------------------------------------------- */

static void decode_pending(bz_eo_consumer *c)
{
    for (size_t i = 0; i < c->nbatch; i++) {
        batch_entry *e = &c->batch[i];
        if (e->decoded)
            continue;
        bz_error derr;
        bz_error_clear(&derr);
        e->decoded = 1;
        e->verdict = c->cfg.handler->decode(c->cfg.handler_ctx, e->rec.msg, &e->rec.decoded, &derr);
        if (e->verdict != BZ_OK) {
            e->verdict = BZ_ERR_INVALID;
            e->reason = derr.reason ? derr.reason : "decode_error";
            e->why = strdup(derr.msg);
        }
    }
}

/* Gather the records still to apply into a contiguous array. */
static size_t collect_valid(bz_eo_consumer *c, bz_eo_record *out)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nbatch; i++)
        if (c->batch[i].verdict == BZ_OK)
            out[n++] = c->batch[i].rec;
    return n;
}

static bz_status apply_one_by_one(bz_eo_consumer *c, PGconn *conn, bz_error *err)
{
    for (size_t i = 0; i < c->nbatch; i++) {
        batch_entry *e = &c->batch[i];
        if (e->verdict != BZ_OK)
            continue;
        bz_status st = bz_pg_exec(conn, "SAVEPOINT bz_record", err);
        if (st != BZ_OK)
            return st;
        bz_error rerr;
        bz_error_clear(&rerr);
        st = c->cfg.handler->apply(c->cfg.handler_ctx, conn, &e->rec, 1, &rerr);
        if (st == BZ_ERR_INVALID) {
            e->verdict = BZ_ERR_INVALID;
            e->by_apply = 1;
            e->reason = rerr.reason ? rerr.reason : "apply_rejected";
            e->why = strdup(rerr.msg);
            st = bz_pg_exec(conn, "ROLLBACK TO SAVEPOINT bz_record", err);
        } else if (st != BZ_OK) {
            *err = rerr;
            return st;
        } else {
            st = bz_pg_exec(conn, "RELEASE SAVEPOINT bz_record", err);
        }
        if (st != BZ_OK)
            return st;
    }
    return BZ_OK;
}

static const char *header_text(const rd_kafka_message_t *msg, const char *name, char *buf,
                               size_t cap)
{
    rd_kafka_headers_t *hdrs;
    const void *value;
    size_t size;
    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR || !value)
        return NULL;
    snprintf(buf, cap, "%.*s", (int)size, (const char *)value);
    return buf;
}

static bz_status send_dead_letters(bz_eo_consumer *c, bz_error *err)
{
    for (size_t i = 0; i < c->nbatch; i++) {
        batch_entry *e = &c->batch[i];
        if (e->verdict == BZ_OK)
            continue;
        char event_id[64];
        int64_t at = bz_wall_ms();
        bz_dead_letter_info info = {
            .error_code = e->reason,
            .error_message = e->why ? e->why : "",
            .service = c->cfg.service,
            .event_id = header_text(e->rec.msg, "event_id", event_id, sizeof event_id),
            .attempts = 1,
            .first_failed_at_ms = at,
            .last_failed_at_ms = at,
        };
        bz_status st = bz_dlq_send_sync(c->dlq, c->cfg.dlq_topic, e->rec.msg, &info,
                                        DLQ_ACK_TIMEOUT_MS, err);
        if (st != BZ_OK)
            return st;
        if (c->m.dead_lettered)
            bz_counter_inc(bz_counter_family_with(c->m.dead_lettered, info.error_code));
        bz_log_event(BZ_LOG_WARN, info.event_id, NULL,
                     "dead-lettered %s[%" PRId32 "]@%" PRId64 " (%s): %s",
                     rd_kafka_topic_name(e->rec.msg->rkt), e->rec.msg->partition,
                     e->rec.msg->offset, info.error_code, info.error_message);
    }
    return BZ_OK;
}

static bz_status store_batch_offsets(bz_eo_consumer *c, bz_error *err)
{
    for (size_t i = 0; i < c->nparts; i++) {
        partition_state *p = &c->parts[i];
        if (p->batch_next < 0)
            continue;
        bz_status st = store_offset(c, p, err);
        if (st != BZ_OK)
            return st;
    }
    return BZ_OK;
}

/* BEGIN, with the commit made asynchronous when configured (one round trip). */
static bz_status begin_transaction(const bz_eo_consumer *c, PGconn *conn, bz_error *err)
{
    if (!c->cfg.async_commit)
        return bz_pg_begin(conn, err);
    return bz_pg_exec(conn, "BEGIN; SET LOCAL synchronous_commit = off", err);
}

/* Everything inside BEGIN..COMMIT. On failure the transaction is left for
 * the caller to roll back. */
static bz_status apply_in_transaction(bz_eo_consumer *c, PGconn *conn, bz_eo_record *valid,
                                      size_t nvalid, bz_error *err)
{
    bz_status st = begin_transaction(c, conn, err);
    if (st != BZ_OK)
        return st;
    if (nvalid > 0) {
        st = c->cfg.handler->apply(c->cfg.handler_ctx, conn, valid, nvalid, err);
        if (st == BZ_ERR_INVALID) {
            bz_warn("batch of %zu rejected (%s); isolating the bad record", nvalid, err->msg);
            bz_pg_rollback(conn);
            if ((st = begin_transaction(c, conn, err)) == BZ_OK)
                st = apply_one_by_one(c, conn, err);
        }
        if (st != BZ_OK)
            return st;
    }
    if ((st = store_batch_offsets(c, err)) != BZ_OK)
        return st;
    return send_dead_letters(c, err);
}

static void commit_lag_offsets_to_kafka(bz_eo_consumer *c)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)c->nparts);
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].batch_next >= 0)
            rd_kafka_topic_partition_list_add(list, c->parts[i].topic, c->parts[i].partition)
                ->offset = c->parts[i].batch_next;
    if (list->cnt > 0)
        rd_kafka_commit(c->rk, list, 1);
    rd_kafka_topic_partition_list_destroy(list);
}

static void observe_record_ages(bz_eo_consumer *c)
{
    if (!c->m.record_age_seconds)
        return;
    int64_t now = bz_wall_ms();
    for (size_t i = 0; i < c->nbatch; i++) {
        int64_t ts = rd_kafka_message_timestamp(c->batch[i].rec.msg, NULL);
        if (ts > 0 && now >= ts)
            bz_histogram_observe(c->m.record_age_seconds, (double)(now - ts) / 1000.0);
    }
}

static void finish_batch(bz_eo_consumer *c)
{
    size_t dead = 0;
    for (size_t i = 0; i < c->nbatch; i++)
        dead += c->batch[i].verdict != BZ_OK;
    observe_record_ages(c);
    add_to_counter(c->m.applied, c->nbatch - dead);
    atomic_fetch_add(&c->applied, c->nbatch - dead);
    atomic_fetch_add(&c->dead_lettered, dead);
    atomic_fetch_add(&c->batches, 1);
    commit_lag_offsets_to_kafka(c);
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].batch_next >= 0)
            c->parts[i].db_next = c->parts[i].batch_next;
    clear_batch(c);
}

/* A rejection by apply is a verdict of the transaction it ran in: when that
 * transaction does not commit, the record is tried again, not dead-lettered
 * on the strength of a failure that may have been the server's (a
 * read-only node rejects every record). */
static void forget_apply_verdicts(bz_eo_consumer *c)
{
    for (size_t i = 0; i < c->nbatch; i++) {
        batch_entry *e = &c->batch[i];
        if (!e->by_apply)
            continue;
        free(e->why);
        e->why = NULL;
        e->reason = NULL;
        e->verdict = BZ_OK;
        e->by_apply = 0;
    }
}

/* Apply the batch: BZ_OK (applied, or dropped for a reload), or
 * BZ_ERR_TRANSIENT (kept; retry later). */
static bz_status flush_batch(bz_eo_consumer *c, bz_error *err)
{
    if (c->nbatch == 0)
        return BZ_OK;
    decode_pending(c);
    double started = bz_metrics_clock();
    bz_status st = bz_pg_ensure(c->pg, err);
    atomic_store(&c->db_up, st == BZ_OK);
    set_gauge(c->m.db_up, st == BZ_OK);
    if (st != BZ_OK)
        return st;
    PGconn *conn = bz_pg_conn(c->pg);
    bz_eo_record *valid = malloc(c->nbatch * sizeof *valid);
    if (!valid)
        return bz_fail(err, BZ_ERR_TRANSIENT, "apply batch: out of memory");
    size_t nvalid = collect_valid(c, valid);
    st = apply_in_transaction(c, conn, valid, nvalid, err);
    free(valid);
    if (st == BZ_OK)
        st = bz_pg_commit(conn, err);
    else
        bz_pg_rollback(conn);

    if (st == BZ_OK) {
        if (c->m.batch_seconds)
            bz_histogram_observe(c->m.batch_seconds, bz_metrics_clock() - started);
        finish_batch(c);
        return BZ_OK;
    }
    if (st == BZ_ERR_CONFLICT || PQstatus(conn) != CONNECTION_OK ||
        PQtransactionStatus(conn) == PQTRANS_UNKNOWN) {
        /* Someone else owns the partition now, or the COMMIT's outcome is
         * unknown: the table is the truth, so re-read it. */
        if (st == BZ_ERR_CONFLICT) {
            atomic_fetch_add(&c->conflicts, 1);
            add_to_counter(c->m.conflicts, 1);
        }
        bz_warn("apply batch of %zu: %s; dropping it and re-reading offsets", c->nbatch, err->msg);
        clear_batch(c);
        c->need_reload = 1;
        if (PQstatus(conn) != CONNECTION_OK)
            bz_pg_reset(c->pg);
        return st == BZ_ERR_CONFLICT ? BZ_OK : BZ_ERR_TRANSIENT;
    }
    /* Transient by contract; a permanent failure outside the handler (the
     * offsets table itself) is retried too: advancing past it would lose data. */
    forget_apply_verdicts(c);
    return BZ_ERR_TRANSIENT;
}

/* ---- pausing ------------------------------------------------------------- */

static void set_paused(bz_eo_consumer *c, int paused)
{
    if (c->paused == paused)
        return;
    bz_info(paused ? "pausing consumption until the retry" : "resuming consumption");
    rd_kafka_topic_partition_list_t *assignment = NULL;
    if (rd_kafka_assignment(c->rk, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR && assignment) {
        if (paused)
            rd_kafka_pause_partitions(c->rk, assignment);
        else
            rd_kafka_resume_partitions(c->rk, assignment);
        rd_kafka_topic_partition_list_destroy(assignment);
    }
    c->paused = paused;
}

static void schedule_retry(bz_eo_consumer *c, const bz_error *err)
{
    atomic_fetch_add(&c->retries, 1);
    add_to_counter(c->m.retries, 1);
    bz_warn("transient failure, retrying in %d ms: %s", c->backoff_ms, err->msg);
    set_paused(c, 1);
    c->retry_at_ms = bz_monotonic_ms() + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void clear_retry(bz_eo_consumer *c)
{
    c->backoff_ms = BACKOFF_MIN_MS;
    c->retry_at_ms = 0;
    set_paused(c, 0);
}

/* ---- rebalancing ----------------------------------------------------------- */

static int is_cooperative(rd_kafka_t *rk)
{
    return strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
}

/* Load stored offsets into parts' offsets, retrying while the database is
 * down. Returns 0 if we are shutting down before it succeeded. */
static int load_assigned_offsets(bz_eo_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    for (;;) {
        bz_error err;
        bz_status st = bz_pg_ensure(c->pg, &err);
        for (int i = 0; st == BZ_OK && i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int64_t next;
            st = load_offset(c, tp->topic, tp->partition, &next, &err);
            if (st != BZ_OK)
                break;
            partition_state *p = add_partition(c, tp->topic, tp->partition);
            if (!p) {
                st = bz_fail(&err, BZ_ERR_TRANSIENT, "assign: out of memory");
                break;
            }
            p->db_next = p->accept_from = next;
            tp->offset = next >= 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
        }
        /* Assignment talks to the database too: readiness should not have
         * to wait for the first batch to learn it is reachable. */
        atomic_store(&c->db_up, st == BZ_OK);
        set_gauge(c->m.db_up, st == BZ_OK);
        if (st == BZ_OK)
            return 1;
        if (should_stop(c))
            return 0;
        bz_warn("partition assignment waits for PostgreSQL: %s", err.msg);
        bz_sleep_ms(500);
    }
}

static void on_assign(bz_eo_consumer *c, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    if (!load_assigned_offsets(c, parts))
        return;
    rd_kafka_error_t *e = NULL;
    if (is_cooperative(rk))
        e = rd_kafka_incremental_assign(rk, parts);
    else
        rd_kafka_assign(rk, parts);
    if (e) {
        bz_error_log("incremental assign: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    /* librdkafka keeps a partition's pause flag across unassign/assign:
     * state it explicitly for every partition we take. */
    if (c->paused)
        rd_kafka_pause_partitions(rk, parts);
    else
        rd_kafka_resume_partitions(rk, parts);
    atomic_store(&c->assigned, (int)c->nparts);
    set_gauge(c->m.assigned, (double)c->nparts);
    bz_info("assigned %d partitions (now %zu)", parts->cnt, c->nparts);
}

static void on_revoke(bz_eo_consumer *c, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    if (!rd_kafka_assignment_lost(rk)) {
        bz_error err;
        if (flush_batch(c, &err) != BZ_OK)
            bz_warn("revoke: in-flight batch not applied (%s); the next owner re-reads it",
                    err.msg);
    }
    for (int i = 0; i < parts->cnt; i++)
        remove_partition(c, parts->elems[i].topic, parts->elems[i].partition);
    drop_unowned_entries(c);
    /* Do not hand a paused flag to this partition's next assignment. */
    rd_kafka_resume_partitions(rk, parts);
    if (is_cooperative(rk)) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e) {
            bz_error_log("incremental unassign: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_assign(rk, NULL);
    }
    atomic_store(&c->assigned, (int)c->nparts);
    set_gauge(c->m.assigned, (double)c->nparts);
    bz_info("revoked %d partitions (now %zu)", parts->cnt, c->nparts);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    bz_eo_consumer *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        c->ever_assigned = 1;
        on_assign(c, rk, parts);
    } else {
        on_revoke(c, rk, parts);
    }
}

/* ---- life cycle ---------------------------------------------------------- */

static bz_status prepare_offset_statements(bz_eo_consumer *c, bz_error *err)
{
    bz_status st = bz_pg_prepare(c->pg, "bz_eo_offset_load", SQL_OFFSET_LOAD, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(c->pg, "bz_eo_offset_insert", SQL_OFFSET_INSERT, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(c->pg, "bz_eo_offset_update", SQL_OFFSET_UPDATE, err);
    if (st == BZ_OK && c->cfg.handler->init)
        st = c->cfg.handler->init(c->cfg.handler_ctx, c->pg, err);
    return st;
}

/* The group session timeout conf will use, in milliseconds. */
static int64_t session_timeout_ms(const rd_kafka_conf_t *conf)
{
    char value[32];
    size_t size = sizeof value;
    if (rd_kafka_conf_get(conf, "session.timeout.ms", value, &size) != RD_KAFKA_CONF_OK)
        return 45000; /* librdkafka 2.0's default */
    return strtoll(value, NULL, 10);
}

static bz_status create_kafka_consumer(bz_eo_consumer *c, bz_error *err)
{
    static const char *const consumer_defaults[] = {
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "auto.offset.reset", "earliest",
        "isolation.level", "read_committed",
        "partition.assignment.strategy", "cooperative-sticky",
        "enable.partition.eof", "false",
        NULL};
    rd_kafka_conf_t *conf;
    bz_status st = bz_kafka_conf_new(&c->cfg.kafka, consumer_defaults, &conf, err);
    if (st == BZ_OK)
        st = bz_kafka_conf_set(conf, "group.id", c->cfg.group_id, err);
    if (st != BZ_OK) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        return st;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    c->first_assignment_wait_ms = session_timeout_ms(conf) + FIRST_ASSIGNMENT_MARGIN_MS;
    char errstr[256];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        return bz_fail(err, BZ_ERR_CONFIG, "create kafka consumer: %s", errstr);
    }
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)c->cfg.ntopics);
    for (size_t i = 0; i < c->cfg.ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, c->cfg.topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e)
        return bz_fail(err, BZ_ERR_CONFIG, "subscribe: %s", rd_kafka_err2str(e));
    return BZ_OK;
}

bz_status bz_eo_consumer_new(const bz_eo_consumer_config *cfg, bz_eo_consumer **out,
                             bz_error *err)
{
    if (!cfg->handler || !cfg->handler->decode || !cfg->handler->apply || !cfg->group_id ||
        !cfg->dlq_topic || !cfg->pg_dsn || cfg->ntopics == 0)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "exactly-once consumer: handler, group_id, topics, dlq_topic and pg_dsn "
                       "are required");
    bz_eo_consumer *c = calloc(1, sizeof *c);
    if (!c)
        return bz_fail(err, BZ_ERR_NOMEM, "exactly-once consumer: out of memory");
    c->cfg = *cfg;
    if (!c->cfg.offsets_group_id)
        c->cfg.offsets_group_id = cfg->group_id;
    if (c->cfg.batch_max <= 0)
        c->cfg.batch_max = 1000;
    if (c->cfg.batch_linger_ms <= 0)
        c->cfg.batch_linger_ms = 10;
    c->backoff_ms = BACKOFF_MIN_MS;
    bz_status st = register_metrics(c, err);
    if (st == BZ_OK)
        st = bz_pg_open(cfg->pg_dsn, &c->pg, err);
    if (st == BZ_OK)
        st = prepare_offset_statements(c, err);
    /* kafka.extra holds consumer properties; a producer would warn about each. */
    bz_kafka_settings dlq_settings = {.brokers = cfg->kafka.brokers,
                                      .client_id = cfg->kafka.client_id};
    if (st == BZ_OK)
        st = bz_producer_new(&dlq_settings, &c->dlq, err);
    if (st == BZ_OK)
        st = create_kafka_consumer(c, err);
    if (st != BZ_OK) {
        bz_eo_consumer_free(c);
        return bz_wrap(err, "create consumer for group %s", cfg->group_id);
    }
    *out = c;
    return BZ_OK;
}

static int batch_is_due(const bz_eo_consumer *c, int64_t now)
{
    if (c->nbatch == 0 || now < c->retry_at_ms)
        return 0;
    return c->nbatch >= (size_t)c->cfg.batch_max ||
           now - c->batch_started_ms >= c->cfg.batch_linger_ms;
}

static int poll_timeout_ms(const bz_eo_consumer *c, int64_t now)
{
    int64_t wait = 100;
    if (c->retry_at_ms > now)
        wait = c->retry_at_ms - now;
    else if (c->nbatch > 0)
        wait = c->batch_started_ms + c->cfg.batch_linger_ms - now;
    return wait < 0 ? 0 : wait > 100 ? 100 : (int)wait;
}

static bz_status handle_consumer_error(rd_kafka_message_t *msg, bz_error *err)
{
    rd_kafka_resp_err_t e = msg->err;
    bz_status st = BZ_OK;
    if (e == RD_KAFKA_RESP_ERR__FATAL)
        st = bz_fail(err, BZ_ERR_FATAL, "kafka consumer fatal error: %s", rd_kafka_message_errstr(msg));
    else if (e != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        bz_warn("kafka consumer: %s", rd_kafka_message_errstr(msg));
    rd_kafka_message_destroy(msg);
    return st;
}

/* librdkafka 2.0.2 aborts in rd_kafka_destroy when a cooperative-sticky
 * consumer has joined its group but not yet received its first assignment
 * (assertion `assignor_state` in rd_kafka_sticky_assignor_state_destroy,
 * librdkafka #4312, fixed in 2.3.0). A SIGTERM right after a start hit
 * that window in the crash tests. So a consumer that was never assigned
 * keeps polling (rebalance callbacks run inside the poll) until the
 * assignment arrives. The wait is bounded by the session timeout plus a
 * margin: a member that joins while the group still counts a killed one
 * gets its first assignment only once the broker has evicted that member,
 * a session timeout after its last heartbeat (CI hit this with 5 s in the
 * kill-and-restart test). Records polled meanwhile are not applied and
 * their offsets not stored: the next owner reads them. */
static void await_first_assignment(bz_eo_consumer *c)
{
    int64_t deadline = bz_monotonic_ms() + c->first_assignment_wait_ms;
    while (!c->ever_assigned && bz_monotonic_ms() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c->rk, 100);
        if (msg)
            rd_kafka_message_destroy(msg);
    }
}

static void close_group_membership(bz_eo_consumer *c)
{
    await_first_assignment(c);
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(c->rk, q);
    if (e) {
        bz_warn("close consumer: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else {
        /* A bounded wait: close can hang after a lost partition in 2.0.x. */
        int64_t deadline = bz_monotonic_ms() + CLOSE_DEADLINE_MS;
        while (!rd_kafka_consumer_closed(c->rk) && bz_monotonic_ms() < deadline) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
            if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
                rd_kafka_topic_partition_list_t *parts =
                    rd_kafka_event_topic_partition_list(ev);
                on_rebalance(c->rk, rd_kafka_event_error(ev), parts, c);
            }
            if (ev)
                rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_queue_destroy(q);
}

bz_status bz_eo_consumer_run(bz_eo_consumer *c, bz_error *err)
{
    while (!should_stop(c)) {
        int64_t now = bz_monotonic_ms();
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c->rk, poll_timeout_ms(c, now));
        if (msg && msg->err) {
            if (handle_consumer_error(msg, err) != BZ_OK)
                return err->code;
        } else if (msg) {
            accept_message(c, msg);
        }
        bz_producer_poll(c->dlq, 0);
        now = bz_monotonic_ms();
        sample_lag(c, now);
        if (c->need_reload) {
            if (now < c->retry_at_ms)
                continue;
            bz_error rerr;
            if (reload_offsets_and_seek(c, &rerr) != BZ_OK)
                schedule_retry(c, &rerr);
            else
                clear_retry(c);
            continue;
        }
        if (c->paused && c->nbatch == 0 && now >= c->retry_at_ms) {
            /* What failed was dropped (revoked partitions): nothing to retry. */
            clear_retry(c);
            continue;
        }
        if (!batch_is_due(c, now))
            continue;
        bz_error ferr;
        if (flush_batch(c, &ferr) == BZ_OK)
            clear_retry(c);
        else
            schedule_retry(c, &ferr);
    }
    bz_error ferr;
    if (!c->need_reload && flush_batch(c, &ferr) != BZ_OK)
        bz_warn("shutdown: last batch not applied (%s); it will be re-read", ferr.msg);
    clear_batch(c);
    close_group_membership(c);
    return BZ_OK;
}

void bz_eo_consumer_request_stop(bz_eo_consumer *c)
{
    atomic_store(&c->stop, 1);
}

void bz_eo_consumer_stats(const bz_eo_consumer *c, bz_eo_stats *out)
{
    out->consumed = atomic_load(&c->consumed);
    out->applied = atomic_load(&c->applied);
    out->dead_lettered = atomic_load(&c->dead_lettered);
    out->batches = atomic_load(&c->batches);
    out->transient_retries = atomic_load(&c->retries);
    out->offset_conflicts = atomic_load(&c->conflicts);
    out->assigned_partitions = atomic_load(&c->assigned);
    out->db_up = atomic_load(&c->db_up);
}

void bz_eo_consumer_report_readiness(const bz_eo_consumer *c, bz_readiness *r)
{
    bz_eo_stats stats;
    bz_eo_consumer_stats(c, &stats);
    bz_readiness_add(r, "postgresql", stats.db_up || stats.batches == 0, "%s",
                     stats.db_up ? "up" : stats.batches ? "down" : "no batch yet");
    bz_readiness_add(r, "partitions", stats.assigned_partitions > 0, "%d assigned",
                     stats.assigned_partitions);
}

void bz_eo_group_timing_init(bz_eo_group_timing *t, int64_t session_timeout_ms)
{
    snprintf(t->session_ms, sizeof t->session_ms, "%lld", (long long)session_timeout_ms);
    snprintf(t->heartbeat_ms, sizeof t->heartbeat_ms, "%lld", (long long)(session_timeout_ms / 3));
    t->extra[0] = "session.timeout.ms";
    t->extra[1] = t->session_ms;
    t->extra[2] = "heartbeat.interval.ms";
    t->extra[3] = t->heartbeat_ms;
    t->extra[4] = NULL;
}

void bz_eo_consumer_free(bz_eo_consumer *c)
{
    if (!c)
        return;
    clear_batch(c);
    free(c->batch);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    bz_producer_free(c->dlq, 5000);
    bz_pg_close(c->pg);
    for (size_t i = 0; i < c->nparts; i++)
        free(c->parts[i].topic);
    free(c->parts);
    free(c);
}
