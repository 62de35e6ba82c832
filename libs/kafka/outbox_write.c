/*
 * outbox_write.c - writing outbox rows in the caller's transaction (see
 * outbox.h): one row with bz_outbox_add, or many with one INSERT from
 * parallel arrays (a batch); the relay (outbox.c) publishes them.
 */
#include "kafka/outbox.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "pg/columns.h"
#include "pg/pg.h"

#define SQL_OUTBOX_INSERT                                                                        \
    "INSERT INTO outbox (event_id, topic, msg_key, payload, headers) "                          \
    "VALUES ($1::uuid, $2, $3, $4, $5::jsonb)"
#define SQL_OUTBOX_INSERT_MANY                                                                   \
    "INSERT INTO outbox (event_id, topic, msg_key, payload, headers) "                          \
    "SELECT e::uuid, t, k, p, h::jsonb "                                                          \
    "FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::text[]) "                 \
    "WITH ORDINALITY AS u(e, t, k, p, h, ord) ORDER BY ord"

/* ---- headers ---------------------------------------------------------------- */

/* Bytes of escaped JSON kept of one header name or value (whole characters). */
#define HEADER_TEXT_MAX 1024
/* Room for the headers jsonb text of a row with n headers besides event_id:
 * per header two quoted texts, ':' and ','; then the braces and the NUL. */
#define HEADERS_JSON_CAP(n) (((n) + 1) * (2 * (HEADER_TEXT_MAX + 1) + 2) + 2)

static size_t put_text(char *out, size_t used, const char *text)
{
    out[used++] = '"';
    used += bz_json_escape(out + used, HEADER_TEXT_MAX, text);
    out[used++] = '"';
    return used;
}

static size_t put_header(char *out, size_t used, const char *name, const char *value)
{
    used = put_text(out, used, name);
    out[used++] = ':';
    return put_text(out, used, value);
}

/* The headers jsonb of a row into out (HEADERS_JSON_CAP(nheaders) bytes):
 * event_id, then every header with a name and a value. Written by hand,
 * without allocating: a batch writes one per row. */
static void headers_json(char *out, const char *event_id, const bz_outbox_header *headers,
                         size_t nheaders)
{
    size_t used = 0;
    out[used++] = '{';
    used = put_header(out, used, "event_id", event_id);
    for (size_t i = 0; i < nheaders; i++) {
        if (!headers[i].name || !headers[i].value)
            continue;
        out[used++] = ',';
        used = put_header(out, used, headers[i].name, headers[i].value);
    }
    out[used++] = '}';
    out[used] = '\0';
}

/* ---- writer ----------------------------------------------------------------- */

bz_status bz_outbox_add(PGconn *conn, const char *topic, const char *event_id, const void *key,
                        size_t key_len, const void *payload, size_t payload_len,
                        const bz_outbox_header *headers, size_t nheaders, bz_error *err)
{
    char *headers_text = malloc(HEADERS_JSON_CAP(nheaders));
    if (!headers_text)
        return bz_fail(err, BZ_ERR_NOMEM, "outbox add %s: out of memory", event_id);
    headers_json(headers_text, event_id, headers, nheaders);
    const char *values[] = {event_id, topic, key, payload, headers_text};
    int lengths[] = {0, 0, (int)key_len, (int)payload_len, 0};
    int formats[] = {0, 0, 1, 1, 0};
    PGresult *res = PQexecParams(conn, SQL_OUTBOX_INSERT, 5, NULL, values, lengths, formats, 0);
    bz_status st = bz_pg_check(conn, res, "insert outbox row", err);
    PQclear(res);
    free(headers_text);
    if (st != BZ_OK)
        return bz_wrap(err, "outbox add event %s for %s", event_id, topic);
    return BZ_OK;
}

/* ---- batch writer ----------------------------------------------------------- */

/* The statement's parameters, appended to row by row: no allocation per
 * row beyond the arrays' own growth. */
enum { COL_EVENT_ID, COL_TOPIC, COL_KEY, COL_PAYLOAD, COL_HEADERS, NCOLS };

struct bz_outbox_batch {
    bz_pg_array col[NCOLS];
};

bz_status bz_outbox_batch_new(bz_outbox_batch **out, bz_error *err)
{
    *out = malloc(sizeof **out);
    if (!*out)
        return bz_fail(err, BZ_ERR_NOMEM, "outbox batch: out of memory");
    bz_pg_array_init_all((*out)->col, NCOLS);
    return BZ_OK;
}

static size_t rows_of(const bz_outbox_batch *b)
{
    return b->col[COL_EVENT_ID].n;
}

void bz_outbox_batch_free(bz_outbox_batch *b)
{
    if (!b)
        return;
    bz_pg_array_free_all(b->col, NCOLS);
    free(b);
}

bz_status bz_outbox_batch_add(bz_outbox_batch *b, const char *topic, const char *event_id,
                              const void *key, size_t key_len, const void *payload,
                              size_t payload_len, const char *trace_id, bz_error *err)
{
    bz_outbox_header trace = {"trace_id", trace_id};
    char headers[HEADERS_JSON_CAP(1)];
    headers_json(headers, event_id, &trace, trace_id && *trace_id ? 1 : 0);
    bz_pg_array_text(&b->col[COL_EVENT_ID], event_id);
    bz_pg_array_text(&b->col[COL_TOPIC], topic);
    if (key)
        bz_pg_array_bytea(&b->col[COL_KEY], key, key_len);
    else
        bz_pg_array_null(&b->col[COL_KEY]);
    bz_pg_array_bytea(&b->col[COL_PAYLOAD], payload, payload_len);
    bz_pg_array_text(&b->col[COL_HEADERS], headers);
    for (int c = 0; c < NCOLS; c++)
        if (b->col[c].oom)
            return bz_fail(err, BZ_ERR_NOMEM, "outbox batch add %s: out of memory", event_id);
    return BZ_OK;
}

bz_status bz_outbox_batch_write(PGconn *conn, bz_outbox_batch *b, bz_error *err)
{
    size_t rows = rows_of(b);
    if (rows == 0)
        return BZ_OK;
    bz_status st = bz_pg_arrays_exec(conn, "insert outbox rows", SQL_OUTBOX_INSERT_MANY, b->col,
                                     NCOLS, NULL, err);
    bz_pg_array_free_all(b->col, NCOLS);
    if (st != BZ_OK)
        return bz_wrap(err, "outbox batch of %zu rows", rows);
    return BZ_OK;
}
