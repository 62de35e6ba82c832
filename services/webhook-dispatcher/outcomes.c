/*
 * outcomes.c - the outcome buffer and its writer (see outcomes.h).
 *
 * Batches of at most BATCH_MAX rows go to PostgreSQL as arrays; a batch
 * refused for its data falls back to one statement per row, so the cost of
 * a bad row is a few extra round trips for its batch only.
 */
#include "outcomes.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/utf8.h"
#include "pg/columns.h"

#define BATCH_MAX 512
#define STATEMENT "wh_outcomes"

/* 'keep' leaves the status alone: a claim handed back unattempted, or a
 * dead letter's claim confirmed. Final rows are excluded with NOT IN, which
 * no index can serve, so each outcome is found through the primary key;
 * with "status IN (open)" a planner misled by stale statistics read every
 * open row through the due index for each flush. */
static const char outcome_sql[] =
    "UPDATE webhook_retry_queue q SET "
    "  status = CASE WHEN u.status = 'keep' THEN q.status ELSE u.status END, "
    "  retry_count = q.retry_count + u.failed, "
    "  next_retry_at = CASE WHEN u.status IN ('success', 'failed') THEN q.next_retry_at "
    "    ELSE now() + u.delay_ms * interval '1 millisecond' END, "
    "  last_error = CASE WHEN u.status = 'keep' THEN q.last_error ELSE nullif(u.error, '') END, "
    "  last_status_code = CASE WHEN u.status = 'keep' THEN q.last_status_code "
    "    ELSE nullif(u.code, 0) END, "
    "  delivered_at = CASE WHEN u.status = 'success' THEN now() ELSE q.delivered_at END "
    "FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::int[], "
    "  $7::int[]) AS u(id, status, failed, delay_ms, error, code, claims) "
    "WHERE q.id = u.id AND q.claims = u.claims AND q.status NOT IN ('success', 'failed') "
    "RETURNING q.id";

bz_status wh_outcomes_prepare(bz_pg *pg, bz_error *err)
{
    return bz_pg_prepare(pg, STATEMENT, outcome_sql, err);
}

bz_status wh_outcomes_add(wh_outcomes *o, const wh_outcome_row *row, const char *error,
                             bz_error *err)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 64;
        wh_outcome_row *grown = realloc(o->rows, cap * sizeof *grown);
        if (!grown)
            return bz_fail(err, BZ_ERR_NOMEM, "outcome of delivery %" PRId64 ": out of memory",
                           row->id);
        o->rows = grown;
        o->cap = cap;
    }
    char *text = strdup(error ? error : "");
    if (!text)
        return bz_fail(err, BZ_ERR_NOMEM, "outcome of delivery %" PRId64 ": out of memory",
                       row->id);
    bz_utf8_scrub(text);
    if (o->n == 0)
        o->oldest_ms = bz_monotonic_ms();
    o->rows[o->n] = *row;
    o->rows[o->n].error = text;
    o->n++;
    return BZ_OK;
}

/* One statement for rows[0..n); without_text stores no error text. On
 * success *res holds the ids applied (caller clears it). */
static bz_status write_rows(PGconn *conn, const wh_outcome_row *rows, size_t n,
                            bool without_text, PGresult **res, bz_error *err)
{
    bz_pg_columns c;
    bz_pg_columns_init(&c, n);
    int64_t *ids = bz_pg_columns_int64(&c);
    const char **status = bz_pg_columns_text(&c);
    int64_t *failed = bz_pg_columns_int64(&c), *delay = bz_pg_columns_int64(&c);
    const char **errors = bz_pg_columns_text(&c);
    int64_t *codes = bz_pg_columns_int64(&c), *claims = bz_pg_columns_int64(&c);
    for (size_t i = 0; !c.nomem && i < n; i++) {
        ids[i] = rows[i].id;
        status[i] = rows[i].status;
        failed[i] = rows[i].failed;
        delay[i] = rows[i].delay_ms;
        errors[i] = without_text ? "" : rows[i].error;
        codes[i] = rows[i].code;
        claims[i] = rows[i].claims;
    }
    bz_status st = bz_pg_columns_exec(&c, conn, STATEMENT, res, err);
    if (st == BZ_ERR_NOMEM)
        bz_wrap(err, "write %zu delivery outcomes", n);
    bz_pg_columns_free(&c);
    return st;
}

static bool applied(const PGresult *res, int64_t id)
{
    for (int r = 0; r < PQntuples(res); r++)
        if (strtoll(PQgetvalue(res, r, 0), NULL, 10) == id)
            return true;
    return false;
}

static void report(const wh_outcome_row *rows, size_t n, const PGresult *res,
                   wh_outcome_written_fn written, void *ctx, size_t *stale)
{
    if (stale)
        *stale += n - (size_t)PQntuples(res);
    for (size_t i = 0; i < n; i++)
        if (rows[i].then)
            written(ctx, rows[i].then, applied(res, rows[i].id));
}

/* The fallback for a batch refused for its data: one statement per row,
 * then one without the error text. Returns how many rows were settled
 * (written or given up) before a failure that is not about the data. */
static size_t write_one_by_one(const wh_outcome_row *rows, size_t n, PGconn *conn,
                               wh_outcome_written_fn written, void *ctx, size_t *stale,
                               size_t *dropped, bz_status *st, bz_error *err)
{
    for (size_t i = 0; i < n; i++) {
        PGresult *res = NULL;
        *st = write_rows(conn, &rows[i], 1, false, &res, err);
        if (*st == BZ_ERR_INVALID) {
            bz_log(BZ_LOG_WARN, "outcome of delivery %" PRId64 " refused: %s; writing it "
                   "without its error text", rows[i].id, err->msg);
            *st = write_rows(conn, &rows[i], 1, true, &res, err);
        }
        if (*st == BZ_ERR_INVALID) {
            bz_error_log("outcome of delivery %" PRId64 " refused even without its error text: "
                         "%s; given up (the delivery is tried again when its lease runs out)",
                         rows[i].id, err->msg);
            if (dropped)
                (*dropped)++;
            if (rows[i].then)
                written(ctx, rows[i].then, false);
            continue;
        }
        if (*st != BZ_OK)
            return i;
        report(&rows[i], 1, res, written, ctx, stale);
        PQclear(res);
    }
    *st = BZ_OK;
    return n;
}

bz_status wh_outcomes_flush(wh_outcomes *o, PGconn *conn, wh_outcome_written_fn written,
                               void *ctx, size_t *stale, size_t *dropped, bz_error *err)
{
    size_t done = 0;
    bz_status st = BZ_OK;
    while (done < o->n && st == BZ_OK) {
        size_t k = o->n - done < BATCH_MAX ? o->n - done : BATCH_MAX;
        PGresult *res = NULL;
        st = write_rows(conn, o->rows + done, k, false, &res, err);
        if (st == BZ_OK) {
            report(o->rows + done, k, res, written, ctx, stale);
            PQclear(res);
            done += k;
        } else if (st == BZ_ERR_INVALID) {
            bz_log(BZ_LOG_WARN, "%zu delivery outcomes refused together (%s); writing them one "
                   "by one", k, err->msg);
            done += write_one_by_one(o->rows + done, k, conn, written, ctx, stale, dropped, &st,
                                     err);
        }
    }
    if (done > 0) {
        for (size_t i = 0; i < done; i++)
            free(o->rows[i].error);
        memmove(o->rows, o->rows + done, (o->n - done) * sizeof *o->rows);
        o->n -= done;
        o->oldest_ms = bz_monotonic_ms();
    }
    return st == BZ_OK ? BZ_OK : bz_wrap(err, "write %zu delivery outcomes", o->n);
}

void wh_outcomes_free(wh_outcomes *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->rows[i].error);
    free(o->rows);
    o->rows = NULL;
    o->n = o->cap = 0;
}
