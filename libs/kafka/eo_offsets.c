/*
 * eo_offsets.c - the exactly-once consumer's offsets in PostgreSQL
 * (kafka_offsets, ARCHITECTURE.md §3.1).
 *
 * Three prepared statements: read a partition's next_offset, insert its
 * first row, and update the batch's partitions by compare-and-set against
 * the values last seen, only forward, in one statement (a batch at 1,000
 * records/s holds records of most partitions: one round trip each cost
 * chat-sync about a third of a small batch's, issue 52). A store that
 * changes fewer rows than it names is BZ_ERR_CONFLICT: another consumer
 * moved an offset, or our view is stale. The table is the truth
 * after such a conflict or a COMMIT of unknown outcome: the reload drops
 * the batch, re-reads every owned partition's offset and seeks there.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "kafka/eo_consumer_state.h"
#include "pg/columns.h"

#define SQL_OFFSET_LOAD                                                                          \
    "SELECT next_offset FROM kafka_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3"
#define SQL_OFFSET_INSERT                                                                        \
    "INSERT INTO kafka_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4) " \
    "ON CONFLICT DO NOTHING"
#define SQL_OFFSETS_UPDATE                                                                       \
    "UPDATE kafka_offsets k SET next_offset = u.next, updated_at = now() "                      \
    "FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[]) "                           \
    "AS u(topic, part, next, expected) WHERE k.group_id = $1 AND k.topic = u.topic "            \
    "AND k.partition = u.part AND k.next_offset = u.expected AND u.next > u.expected"
#define OFFSET_ARRAYS 4

bz_status bz_eo_prepare_offset_statements(bz_eo_consumer *c, bz_error *err)
{
    bz_status st = bz_pg_prepare(c->pg, "bz_eo_offset_load", SQL_OFFSET_LOAD, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(c->pg, "bz_eo_offset_insert", SQL_OFFSET_INSERT, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(c->pg, "bz_eo_offsets_update", SQL_OFFSETS_UPDATE, err);
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

static bz_status conflict(bz_eo_consumer *c, const char *what, bz_error *err)
{
    return bz_fail(err, BZ_ERR_CONFLICT,
                   "store %s for group %s: kafka_offsets did not hold what this consumer last "
                   "saw there, or the batch would move it back; another consumer moved it",
                   what, c->cfg.offsets_group_id);
}

/* The first row of partition p, at the batch's next offset. */
static bz_status insert_first_offset(bz_eo_consumer *c, bz_eo_partition_state *p, bz_error *err)
{
    char part[16], next[24];
    snprintf(part, sizeof part, "%" PRId32, p->partition);
    snprintf(next, sizeof next, "%" PRId64, p->batch_next);
    const char *params[] = {c->cfg.offsets_group_id, p->topic, part, next};
    PGresult *res;
    bz_status st = bz_pg_exec_prepared(bz_pg_conn(c->pg), "bz_eo_offset_insert", 4, params,
                                       NULL, NULL, &res, err);
    if (st != BZ_OK)
        return bz_wrap(err, "store offset %s of %s[%" PRId32 "]", next, p->topic, p->partition);
    int changed = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    char what[160];
    snprintf(what, sizeof what, "the first offset %s of %s[%" PRId32 "]", next, p->topic,
             p->partition);
    return changed ? BZ_OK : conflict(c, what, err);
}

/* The n partitions of a (topic, partition, next, expected), moved from
 * expected to next in one statement. */
static bz_status update_offsets(bz_eo_consumer *c, bz_pg_array *a, size_t n, bz_error *err)
{
    const char *params[1 + OFFSET_ARRAYS] = {c->cfg.offsets_group_id};
    for (int i = 0; i < OFFSET_ARRAYS; i++)
        if (!(params[1 + i] = bz_pg_array_finish(&a[i])))
            return bz_fail(err, BZ_ERR_NOMEM, "store offsets: out of memory");
    PGresult *res;
    bz_status st = bz_pg_exec_prepared(bz_pg_conn(c->pg), "bz_eo_offsets_update",
                                       1 + OFFSET_ARRAYS, params, NULL, NULL, &res, err);
    if (st != BZ_OK)
        return bz_wrap(err, "store the offsets of %zu partitions", n);
    size_t changed = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    char what[64];
    snprintf(what, sizeof what, "the offsets of %zu partitions (%zu moved)", n, changed);
    return changed == n ? BZ_OK : conflict(c, what, err);
}

bz_status bz_eo_store_offsets(bz_eo_consumer *c, bz_error *err)
{
    bz_pg_array a[OFFSET_ARRAYS];
    bz_pg_array_init_all(a, OFFSET_ARRAYS);
    size_t n = 0;
    bz_status st = BZ_OK;
    for (size_t i = 0; i < c->nparts && st == BZ_OK; i++) {
        bz_eo_partition_state *p = &c->parts[i];
        if (p->batch_next < 0)
            continue;
        if (p->db_next < 0) {
            st = insert_first_offset(c, p, err);
            continue;
        }
        bz_pg_array_text(&a[0], p->topic);
        bz_pg_array_int64(&a[1], p->partition);
        bz_pg_array_int64(&a[2], p->batch_next);
        bz_pg_array_int64(&a[3], p->db_next);
        n++;
    }
    if (st == BZ_OK && n > 0)
        st = update_offsets(c, a, n, err);
    bz_pg_array_free_all(a, OFFSET_ARRAYS);
    return st;
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
