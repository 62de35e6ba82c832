/*
 * counter_handler.c - see counter_handler.h.
 */
#include "counter_handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/common.pb-c.h"
#include "pg/columns.h"

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

const bz_eo_handler counter_handler = {
    .init = counter_init,
    .decode = counter_decode,
    .apply = counter_apply,
    .release = counter_release,
};

void counter_ctx_init(counter_ctx *ctx, const char *table)
{
    snprintf(ctx->insert_sql, sizeof ctx->insert_sql,
             "INSERT INTO %s_applied (event_id, kafka_partition, kafka_offset) "
             "SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])",
             table);
    snprintf(ctx->count_sql, sizeof ctx->count_sql, "UPDATE %s_counter SET n = n + $1::bigint",
             table);
}

int counter_tables_create(PGconn *conn, const char *table)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SET client_min_messages TO warning;"
             "DROP TABLE IF EXISTS %s_applied; DROP TABLE IF EXISTS %s_counter;"
             "CREATE TABLE %s_applied (event_id text NOT NULL, kafka_partition int NOT NULL, "
             "kafka_offset bigint NOT NULL);"
             "CREATE TABLE %s_counter (n bigint NOT NULL); INSERT INTO %s_counter VALUES (0);",
             table, table, table, table, table);
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    return ok;
}
