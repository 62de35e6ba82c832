/*
 * eo_offsets.c - the exactly-once consumer's offsets in PostgreSQL
 * (kafka_offsets, ARCHITECTURE.md §3.1).
 *
 * Three prepared statements: read a partition's next_offset, insert its
 * first row, and update it by compare-and-set against the value last seen,
 * only forward. A store that changes no row is BZ_ERR_CONFLICT: another
 * consumer moved the offset, or our view is stale. The table is the truth
 * after such a conflict or a COMMIT of unknown outcome: the reload drops
 * the batch, re-reads every owned partition's offset and seeks there.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "kafka/eo_consumer_state.h"

#define SQL_OFFSET_LOAD                                                                          \
    "SELECT next_offset FROM kafka_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3"
#define SQL_OFFSET_INSERT                                                                        \
    "INSERT INTO kafka_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4) " \
    "ON CONFLICT DO NOTHING"
#define SQL_OFFSET_UPDATE                                                                        \
    "UPDATE kafka_offsets SET next_offset = $4, updated_at = now() "                            \
    "WHERE group_id = $1 AND topic = $2 AND partition = $3 AND next_offset = $5 "               \
    "AND $4::bigint > $5::bigint"

bz_status bz_eo_prepare_offset_statements(bz_eo_consumer *c, bz_error *err)
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

bz_status bz_eo_load_offset(bz_eo_consumer *c, const char *topic, int32_t partition,
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
bz_status bz_eo_store_offset(bz_eo_consumer *c, bz_eo_partition_state *p, bz_error *err)
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
bz_status bz_eo_reload_offsets_and_seek(bz_eo_consumer *c, bz_error *err)
{
    bz_eo_clear_batch(c);
    bz_status st = bz_pg_ensure(c->pg, err);
    if (st != BZ_OK)
        return st;
    rd_kafka_topic_partition_list_t *seeks = rd_kafka_topic_partition_list_new((int)c->nparts);
    for (size_t i = 0; i < c->nparts && st == BZ_OK; i++) {
        bz_eo_partition_state *p = &c->parts[i];
        st = bz_eo_load_offset(c, p->topic, p->partition, &p->db_next, err);
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
