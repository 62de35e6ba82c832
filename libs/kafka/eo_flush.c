/*
 * eo_flush.c - applying the exactly-once consumer's batch: one PostgreSQL
 * transaction holds the records' effects, their partitions' offsets and
 * the acknowledgement of their dead letters (ARCHITECTURE.md §3.1, §3.4).
 *
 * Each record is decoded once, without the database. Inside BEGIN..COMMIT
 * the valid records go to the handler's apply in one call, then each
 * partition's offset is stored (eo_offsets.c), then the rejected records
 * are dead-lettered, each acknowledged by the broker before the COMMIT.
 * When apply rejects a record, the transaction is rolled back and the batch
 * applied again one record at a time under savepoints, to isolate it. Once
 * committed, the same offsets go to Kafka asynchronously, for lag
 * monitoring only (at most once a second, and when the consumer goes
 * idle). A lost compare-and-set or a COMMIT of unknown outcome
 * drops the batch and asks for a reload; any other failure keeps it for a
 * retry, without apply's verdicts (they count only in a transaction that
 * commits).
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "kafka/dlq.h"
#include "kafka/eo_consumer_state.h"

#define DLQ_ACK_TIMEOUT_MS 10000

static void decode_pending(bz_eo_consumer *c)
{
    for (size_t i = 0; i < c->nbatch; i++) {
        bz_eo_batch_entry *e = &c->batch[i];
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
        bz_eo_batch_entry *e = &c->batch[i];
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
        bz_eo_batch_entry *e = &c->batch[i];
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

/* BEGIN, with the commit made asynchronous when configured (one round trip). */
static bz_status begin_transaction(const bz_eo_consumer *c, PGconn *conn, bz_error *err)
{
    if (!c->cfg.async_commit)
        return bz_pg_begin(conn, err);
    return bz_pg_exec(conn, "BEGIN; SET LOCAL synchronous_commit = off", err);
}

static void tell_finished(const bz_eo_consumer *c, int committed)
{
    if (c->cfg.handler->finished)
        c->cfg.handler->finished(c->cfg.handler_ctx, committed);
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
            tell_finished(c, 0);
            if ((st = begin_transaction(c, conn, err)) == BZ_OK)
                st = apply_one_by_one(c, conn, err);
        }
        if (st != BZ_OK)
            return st;
    }
    if ((st = bz_eo_store_offsets(c, err)) != BZ_OK)
        return st;
    return send_dead_letters(c, err);
}

/* An OffsetCommit request after every batch was, at 1,000 events/s, one
 * broker request in three of a consumer's; a second's delay, or the
 * consumer going idle, is soon enough for a lag gauge. */
#define BZ_EO_LAG_COMMIT_MS 1000

void bz_eo_commit_lag_offsets(bz_eo_consumer *c, int force)
{
    int64_t now = bz_monotonic_ms();
    if (!force && now - c->lag_committed_ms < BZ_EO_LAG_COMMIT_MS)
        return;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)c->nparts);
    for (size_t i = 0; i < c->nparts; i++) {
        bz_eo_partition_state *p = &c->parts[i];
        if (p->lag_dirty && p->db_next >= 0)
            rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset = p->db_next;
        p->lag_dirty = 0;
    }
    if (list->cnt > 0)
        rd_kafka_commit(c->rk, list, 1);
    rd_kafka_topic_partition_list_destroy(list);
    c->lag_committed_ms = now;
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
    bz_eo_add_to_counter(c->m.applied, c->nbatch - dead);
    atomic_fetch_add(&c->applied, c->nbatch - dead);
    atomic_fetch_add(&c->dead_lettered, dead);
    atomic_fetch_add(&c->batches, 1);
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].batch_next >= 0) {
            c->parts[i].db_next = c->parts[i].batch_next;
            c->parts[i].lag_dirty = 1;
        }
    bz_eo_commit_lag_offsets(c, 0);
    bz_eo_clear_batch(c);
}

/* A rejection by apply is a verdict of the transaction it ran in: when that
 * transaction does not commit, the record is tried again, not dead-lettered
 * on the strength of a failure that may have been the server's (a
 * read-only node rejects every record). */
static void forget_apply_verdicts(bz_eo_consumer *c)
{
    for (size_t i = 0; i < c->nbatch; i++) {
        bz_eo_batch_entry *e = &c->batch[i];
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
bz_status bz_eo_flush_batch(bz_eo_consumer *c, bz_error *err)
{
    if (c->nbatch == 0)
        return BZ_OK;
    decode_pending(c);
    double started = bz_metrics_clock();
    bz_status st = bz_pg_ensure(c->pg, err);
    atomic_store(&c->db_up, st == BZ_OK);
    bz_eo_set_gauge(c->m.db_up, st == BZ_OK);
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
    tell_finished(c, st == BZ_OK);

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
            bz_eo_add_to_counter(c->m.conflicts, 1);
        }
        bz_warn("apply batch of %zu: %s; dropping it and re-reading offsets", c->nbatch, err->msg);
        bz_eo_clear_batch(c);
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
