/*
 * columns.c - many rows in one statement, a column at a time (see
 * columns.h): calloc'd slots per column, rendered with bz_pg_int64_array
 * and bz_pg_text_array at exec, every allocation freed in one place.
 */
#include "columns.h"

#include <stdlib.h>
#include <string.h>

#include "pg/pg.h"

void bz_pg_columns_init(bz_pg_columns *c, size_t rows)
{
    memset(c, 0, sizeof *c);
    c->n = rows;
}

/* The slot of the next column, or NULL when there is none left. */
static int next_column(bz_pg_columns *c)
{
    if (c->count >= BZ_PG_COLUMNS_MAX) {
        c->nomem = true;
        return -1;
    }
    return c->count++;
}

int64_t *bz_pg_columns_int64(bz_pg_columns *c)
{
    int k = next_column(c);
    if (k < 0)
        return NULL;
    c->col[k].ints = calloc(c->n ? c->n : 1, sizeof *c->col[k].ints);
    c->nomem = c->nomem || !c->col[k].ints;
    return c->col[k].ints;
}

const char **bz_pg_columns_text(bz_pg_columns *c)
{
    int k = next_column(c);
    if (k < 0)
        return NULL;
    c->col[k].texts = calloc(c->n ? c->n : 1, sizeof *c->col[k].texts);
    c->nomem = c->nomem || !c->col[k].texts;
    return c->col[k].texts;
}

bz_status bz_pg_columns_exec(const bz_pg_columns *c, PGconn *conn, const char *statement,
                             PGresult **res, bz_error *err)
{
    char *text[BZ_PG_COLUMNS_MAX] = {NULL};
    bool built = !c->nomem;
    for (int k = 0; built && k < c->count; k++) {
        text[k] = c->col[k].ints ? bz_pg_int64_array(c->col[k].ints, c->n)
                                 : bz_pg_text_array(c->col[k].texts, c->n);
        built = text[k] != NULL;
    }
    bz_status st = built ? bz_pg_exec_prepared(conn, statement, c->count,
                                               (const char *const *)text, NULL, NULL, res, err)
                         : bz_fail(err, BZ_ERR_NOMEM, "out of memory");
    for (int k = 0; k < c->count; k++)
        free(text[k]);
    return st;
}

void bz_pg_columns_free(bz_pg_columns *c)
{
    for (int k = 0; k < c->count; k++) {
        free(c->col[k].ints);
        free(c->col[k].texts);
    }
    memset(c, 0, sizeof *c);
}
