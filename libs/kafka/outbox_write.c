/*
 * outbox_write.c - writing outbox rows in the caller's transaction (see
 * outbox.h): one row with bz_outbox_add, or many with one INSERT from
 * parallel arrays (a batch); the relay (outbox.c) publishes them.
 */
#include "kafka/outbox.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "pg/pg.h"

#define SQL_OUTBOX_INSERT                                                                        \
    "INSERT INTO outbox (event_id, topic, msg_key, payload, headers) "                          \
    "VALUES ($1::uuid, $2, $3, $4, $5::jsonb)"
#define SQL_OUTBOX_INSERT_MANY                                                                   \
    "INSERT INTO outbox (event_id, topic, msg_key, payload, headers) "                          \
    "SELECT e::uuid, t, k, p, h::jsonb "                                                          \
    "FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::text[]) "                 \
    "WITH ORDINALITY AS u(e, t, k, p, h, ord) ORDER BY ord"
/* ---- writer ----------------------------------------------------------------- */

static char *headers_to_json(const char *event_id, const bz_outbox_header *headers,
                             size_t nheaders)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "event_id", json_string(event_id));
    for (size_t i = 0; i < nheaders; i++)
        if (headers[i].name && headers[i].value)
            json_object_set_new(obj, headers[i].name, json_string(headers[i].value));
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return text;
}

bz_status bz_outbox_add(PGconn *conn, const char *topic, const char *event_id, const void *key,
                        size_t key_len, const void *payload, size_t payload_len,
                        const bz_outbox_header *headers, size_t nheaders, bz_error *err)
{
    char *headers_json = headers_to_json(event_id, headers, nheaders);
    if (!headers_json)
        return bz_fail(err, BZ_ERR_NOMEM, "outbox add %s: out of memory", event_id);
    const char *values[] = {event_id, topic, key, payload, headers_json};
    int lengths[] = {0, 0, (int)key_len, (int)payload_len, 0};
    int formats[] = {0, 0, 1, 1, 0};
    PGresult *res = PQexecParams(conn, SQL_OUTBOX_INSERT, 5, NULL, values, lengths, formats, 0);
    bz_status st = bz_pg_check(conn, res, "insert outbox row", err);
    PQclear(res);
    free(headers_json);
    if (st != BZ_OK)
        return bz_wrap(err, "outbox add event %s for %s", event_id, topic);
    return BZ_OK;
}

/* ---- batch writer ----------------------------------------------------------- */

/* Columns as parallel text arrays; bytea travels hex-encoded. */
struct bz_outbox_batch {
    char **event_ids, **topics, **keys, **payloads, **headers;
    size_t n, cap;
};

bz_status bz_outbox_batch_new(bz_outbox_batch **out, bz_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? BZ_OK : bz_fail(err, BZ_ERR_NOMEM, "outbox batch: out of memory");
}

static void clear_rows(bz_outbox_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->event_ids[i]);
        free(b->topics[i]);
        free(b->keys[i]);
        free(b->payloads[i]);
        free(b->headers[i]);
    }
    b->n = 0;
}

void bz_outbox_batch_free(bz_outbox_batch *b)
{
    if (!b)
        return;
    clear_rows(b);
    free(b->event_ids);
    free(b->topics);
    free(b->keys);
    free(b->payloads);
    free(b->headers);
    free(b);
}

static int grow_columns(bz_outbox_batch *b)
{
    size_t cap = b->cap ? b->cap * 2 : 64;
    char ***columns[] = {&b->event_ids, &b->topics, &b->keys, &b->payloads, &b->headers};
    for (size_t c = 0; c < sizeof columns / sizeof columns[0]; c++) {
        char **grown = realloc(*columns[c], cap * sizeof *grown);
        if (!grown)
            return 0;
        *columns[c] = grown;
    }
    b->cap = cap;
    return 1;
}

bz_status bz_outbox_batch_add(bz_outbox_batch *b, const char *topic, const char *event_id,
                              const void *key, size_t key_len, const void *payload,
                              size_t payload_len, const char *trace_id, bz_error *err)
{
    if (b->n == b->cap && !grow_columns(b))
        return bz_fail(err, BZ_ERR_NOMEM, "outbox batch add %s: out of memory", event_id);
    bz_outbox_header trace = {"trace_id", trace_id};
    size_t i = b->n;
    b->event_ids[i] = strdup(event_id);
    b->topics[i] = strdup(topic);
    b->keys[i] = key ? bz_hex_dup("\\x", key, key_len) : NULL;
    b->payloads[i] = bz_hex_dup("\\x", payload, payload_len);
    b->headers[i] = headers_to_json(event_id, &trace, trace_id ? 1 : 0);
    if (!b->event_ids[i] || !b->topics[i] || (key && !b->keys[i]) || !b->payloads[i] ||
        !b->headers[i]) {
        free(b->event_ids[i]);
        free(b->topics[i]);
        free(b->keys[i]);
        free(b->payloads[i]);
        free(b->headers[i]);
        return bz_fail(err, BZ_ERR_NOMEM, "outbox batch add %s: out of memory", event_id);
    }
    b->n++;
    return BZ_OK;
}

/* A PostgreSQL array literal of the column; NULL elements for NULL keys. */
static char *column_array(char *const *values, size_t n)
{
    return bz_pg_text_array((const char *const *)values, n);
}

bz_status bz_outbox_batch_write(PGconn *conn, bz_outbox_batch *b, bz_error *err)
{
    if (b->n == 0)
        return BZ_OK;
    char *arrays[5] = {column_array(b->event_ids, b->n), column_array(b->topics, b->n),
                       column_array(b->keys, b->n), column_array(b->payloads, b->n),
                       column_array(b->headers, b->n)};
    size_t rows = b->n;
    clear_rows(b);
    bz_status st = BZ_OK;
    for (int i = 0; i < 5; i++)
        if (!arrays[i])
            st = bz_fail(err, BZ_ERR_NOMEM, "outbox batch write: out of memory");
    if (st == BZ_OK) {
        PGresult *res = PQexecParams(conn, SQL_OUTBOX_INSERT_MANY, 5, NULL,
                                     (const char *const *)arrays, NULL, NULL, 0);
        st = bz_pg_check(conn, res, "insert outbox rows", err);
        PQclear(res);
        if (st != BZ_OK)
            bz_wrap(err, "outbox batch of %zu rows", rows);
    }
    for (int i = 0; i < 5; i++)
        free(arrays[i]);
    return st;
}
