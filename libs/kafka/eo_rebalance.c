/*
 * eo_rebalance.c - the exactly-once consumer's rebalance callback: the
 * partitions it is given and those taken away (ARCHITECTURE.md §3.1).
 *
 * librdkafka runs the callback inside rd_kafka_consumer_poll, on the
 * consumer's own thread, so it touches the partitions and the batch without
 * locks. An assignment reads each partition's stored offset (waiting while
 * PostgreSQL is down) and assigns the partitions at those offsets, paused or
 * not as the consumer is. A revocation first applies the batch, unless the
 * partitions were lost (their next owner may have moved on), then forgets
 * the partitions and their records. Both the cooperative (incremental) and
 * the eager protocol are served.
 */
#include <stdatomic.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "kafka/eo_consumer_state.h"

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
            st = bz_eo_load_offset(c, tp->topic, tp->partition, &next, &err);
            if (st != BZ_OK)
                break;
            bz_eo_partition_state *p = bz_eo_add_partition(c, tp->topic, tp->partition);
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
        bz_eo_set_gauge(c->m.db_up, st == BZ_OK);
        if (st == BZ_OK)
            return 1;
        if (bz_eo_should_stop(c))
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
    bz_eo_set_gauge(c->m.assigned, (double)c->nparts);
    bz_info("assigned %d partitions (now %zu)", parts->cnt, c->nparts);
}

static void on_revoke(bz_eo_consumer *c, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    if (!rd_kafka_assignment_lost(rk)) {
        bz_error err;
        if (bz_eo_flush_batch(c, &err) != BZ_OK)
            bz_warn("revoke: in-flight batch not applied (%s); the next owner re-reads it",
                    err.msg);
    }
    for (int i = 0; i < parts->cnt; i++)
        bz_eo_remove_partition(c, parts->elems[i].topic, parts->elems[i].partition);
    bz_eo_drop_unowned_entries(c);
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
    bz_eo_set_gauge(c->m.assigned, (double)c->nparts);
    bz_info("revoked %d partitions (now %zu)", parts->cnt, c->nparts);
}

void bz_eo_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
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
