/*
 * columns.h - many rows in one statement, a column at a time.
 *
 * A write of n rows binds each column as one array parameter
 * ($1::bigint[], $2::text[], ... unnested by the SQL). bz_pg_columns holds
 * those columns while the caller fills them: each bz_pg_columns_int64 or
 * bz_pg_columns_text call adds the next parameter and returns its n slots
 * (NULL when out of memory, remembered until exec), bz_pg_columns_exec
 * renders them as array literals and runs the prepared statement, and
 * bz_pg_columns_free releases everything. Text slots point at the caller's
 * strings, which must live until exec returns.
 */
#ifndef BZ_PG_COLUMNS_H
#define BZ_PG_COLUMNS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define BZ_PG_COLUMNS_MAX 16

typedef struct bz_pg_columns {
    size_t n; /* rows */
    int count;
    struct {
        int64_t *ints;       /* one of the two */
        const char **texts;
    } col[BZ_PG_COLUMNS_MAX];
    bool nomem;
} bz_pg_columns;

void bz_pg_columns_init(bz_pg_columns *c, size_t rows);

/* The next parameter, a bigint[] / text[] of c->n slots, or NULL. */
int64_t *bz_pg_columns_int64(bz_pg_columns *c);
const char **bz_pg_columns_text(bz_pg_columns *c);

/* Run the prepared statement with the columns as its parameters, in the
 * order they were added; *res as bz_pg_exec_prepared (may be NULL). A
 * column that could not be allocated or rendered is BZ_ERR_NOMEM. */
bz_status bz_pg_columns_exec(const bz_pg_columns *c, PGconn *conn, const char *statement,
                             PGresult **res, bz_error *err);

void bz_pg_columns_free(bz_pg_columns *c);

#endif
