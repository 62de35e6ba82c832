/*
 * columns.c - array parameters (see columns.h). bz_pg_array is the only
 * writer of array literals: the whole-array renderers size its buffer up
 * front and append, bz_pg_columns renders its slots through them at exec,
 * and every allocation of a column is freed in one place.
 */
#include "pg/columns.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "pg/pg.h"

/* ---- bz_pg_array ------------------------------------------------------------ */

/* Room for more bytes, and the closing "}\0" after them. The buffer at
 * least doubles, so appends cost amortised O(1); a first reservation
 * bigger than the minimum is taken exactly (the whole-array renderers). */
static int reserve(bz_pg_array *a, size_t more)
{
    if (a->oom)
        return -1;
    size_t need = a->len + more + 2;
    if (need <= a->cap)
        return 0;
    size_t cap = a->cap ? 2 * a->cap : 256;
    if (cap < need)
        cap = need;
    char *grown = realloc(a->buf, cap);
    if (!grown) {
        a->oom = true;
        return -1;
    }
    a->buf = grown;
    a->cap = cap;
    return 0;
}

/* '{' before the first element, ',' before the others. */
static void separator(bz_pg_array *a)
{
    if (reserve(a, 1) == 0)
        a->buf[a->len++] = a->n++ ? ',' : '{';
}

static void append(bz_pg_array *a, const char *p, size_t n)
{
    if (reserve(a, n) == 0) {
        memcpy(a->buf + a->len, p, n);
        a->len += n;
    }
}

void bz_pg_array_init(bz_pg_array *a)
{
    memset(a, 0, sizeof *a);
}

void bz_pg_array_init_all(bz_pg_array *arrs, int n)
{
    for (int i = 0; i < n; i++)
        bz_pg_array_init(&arrs[i]);
}

void bz_pg_array_null(bz_pg_array *a)
{
    separator(a);
    append(a, "NULL", 4);
}

void bz_pg_array_text(bz_pg_array *a, const char *s)
{
    if (!s) {
        bz_pg_array_null(a);
        return;
    }
    separator(a);
    if (reserve(a, 2 * strlen(s) + 2) != 0)
        return;
    a->buf[a->len++] = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            a->buf[a->len++] = '\\';
        a->buf[a->len++] = *s;
    }
    a->buf[a->len++] = '"';
}

void bz_pg_array_int64(bz_pg_array *a, int64_t v)
{
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%" PRId64, v);
    separator(a);
    append(a, digits, (size_t)len);
}

void bz_pg_array_int64_or_null(bz_pg_array *a, int64_t v)
{
    if (v == 0)
        bz_pg_array_null(a);
    else
        bz_pg_array_int64(a, v);
}

void bz_pg_array_bool(bz_pg_array *a, bool v)
{
    separator(a);
    append(a, v ? "t" : "f", 1);
}

void bz_pg_array_bytea(bz_pg_array *a, const uint8_t *p, size_t n)
{
    separator(a);
    if (reserve(a, 2 * n + 5) != 0)
        return;
    /* "\\x...": the escaped backslash leaves \x<hex> for the ::bytea cast */
    memcpy(a->buf + a->len, "\"\\\\x", 4);
    a->len += 4;
    bz_hex_encode(p, n, a->buf + a->len, a->cap - a->len, NULL);
    a->len += 2 * n;
    a->buf[a->len++] = '"';
}

const char *bz_pg_array_finish(bz_pg_array *a)
{
    if (a->done)
        return a->oom ? NULL : a->buf;
    if (a->n == 0 && reserve(a, 1) == 0)
        a->buf[a->len++] = '{';
    if (reserve(a, 1) != 0)
        return NULL;
    a->buf[a->len++] = '}';
    a->buf[a->len] = '\0';
    a->done = true;
    return a->buf;
}

void bz_pg_array_free(bz_pg_array *a)
{
    free(a->buf);
    memset(a, 0, sizeof *a);
}

void bz_pg_array_free_all(bz_pg_array *arrs, int n)
{
    for (int i = 0; i < n; i++)
        bz_pg_array_free(&arrs[i]);
}

bz_status bz_pg_arrays_exec(PGconn *conn, const char *what, const char *sql, bz_pg_array *arrs,
                            int n, PGresult **out, bz_error *err)
{
    const char *params[BZ_PG_ARRAYS_MAX];
    if (n > BZ_PG_ARRAYS_MAX)
        return bz_fail(err, BZ_ERR_INTERNAL, "%s: %d parameters, at most %d", what, n,
                       BZ_PG_ARRAYS_MAX);
    for (int i = 0; i < n; i++)
        if (!(params[i] = bz_pg_array_finish(&arrs[i])))
            return bz_fail(err, BZ_ERR_NOMEM, "%s: out of memory", what);
    return bz_pg_exec_params(conn, what, sql, n, params, out, err);
}

/* ---- whole arrays ----------------------------------------------------------- */

/* The finished literal of a, handed to the caller (NULL when out of memory). */
static char *take_literal(bz_pg_array *a)
{
    if (bz_pg_array_finish(a))
        return a->buf;
    bz_pg_array_free(a);
    return NULL;
}

char *bz_pg_int64_array(const int64_t *values, size_t n)
{
    bz_pg_array a;
    bz_pg_array_init(&a);
    reserve(&a, 1 + n * 21); /* '{', then at most 20 digits and a separator each */
    for (size_t i = 0; i < n; i++)
        bz_pg_array_int64(&a, values[i]);
    return take_literal(&a);
}

char *bz_pg_text_array(const char *const *values, size_t n)
{
    size_t room = 1;
    for (size_t i = 0; i < n; i++)
        room += values[i] ? 3 + 2 * strlen(values[i]) : 5;
    bz_pg_array a;
    bz_pg_array_init(&a);
    reserve(&a, room);
    for (size_t i = 0; i < n; i++)
        bz_pg_array_text(&a, values[i]);
    return take_literal(&a);
}

/* ---- bz_pg_columns ---------------------------------------------------------- */

void bz_pg_columns_init(bz_pg_columns *c, size_t rows)
{
    memset(c, 0, sizeof *c);
    c->n = rows;
}

/* The slot of the next column, or -1 when there is none left. */
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

void bz_pg_columns_scalar(bz_pg_columns *c, const char *value)
{
    int k = next_column(c);
    if (k >= 0)
        c->col[k].scalar = value;
}

void bz_pg_columns_trim(bz_pg_columns *c, size_t rows)
{
    if (rows < c->n)
        c->n = rows;
}

bz_status bz_pg_columns_exec(const bz_pg_columns *c, PGconn *conn, const char *statement,
                             PGresult **res, bz_error *err)
{
    char *rendered[BZ_PG_COLUMNS_MAX] = {NULL};
    const char *params[BZ_PG_COLUMNS_MAX] = {NULL};
    bool built = !c->nomem;
    for (int k = 0; built && k < c->count; k++) {
        if (!c->col[k].ints && !c->col[k].texts) {
            params[k] = c->col[k].scalar;
            continue;
        }
        rendered[k] = c->col[k].ints ? bz_pg_int64_array(c->col[k].ints, c->n)
                                     : bz_pg_text_array(c->col[k].texts, c->n);
        params[k] = rendered[k];
        built = rendered[k] != NULL;
    }
    bz_status st = built ? bz_pg_exec_prepared(conn, statement, c->count, params, NULL, NULL,
                                               res, err)
                         : bz_fail(err, BZ_ERR_NOMEM, "out of memory");
    for (int k = 0; k < c->count; k++)
        free(rendered[k]);
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
