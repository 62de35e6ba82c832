/*
 * pgarray.c - PostgreSQL array literal builder (see pgarray.h).
 */
#include "pgarray.h"

#include "core/hex.h"
#include "pg/pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(cs_pgarr *a, size_t more)
{
    if (a->oom)
        return -1;
    if (a->len + more + 2 <= a->cap)
        return 0;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + more + 2)
        cap *= 2;
    char *grown = realloc(a->buf, cap);
    if (!grown) {
        a->oom = 1;
        return -1;
    }
    a->buf = grown;
    a->cap = cap;
    return 0;
}

static void separator(cs_pgarr *a)
{
    if (reserve(a, 1) == 0) {
        a->buf[a->len++] = a->n++ ? ',' : '{';
    }
}

void cs_pgarr_init(cs_pgarr *a)
{
    memset(a, 0, sizeof *a);
}

void cs_pgarr_text(cs_pgarr *a, const char *s)
{
    if (!s) {
        cs_pgarr_null(a);
        return;
    }
    separator(a);
    size_t slen = strlen(s);
    if (reserve(a, 2 * slen + 2) != 0)
        return;
    a->buf[a->len++] = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            a->buf[a->len++] = '\\';
        a->buf[a->len++] = *s;
    }
    a->buf[a->len++] = '"';
}

void cs_pgarr_int64(cs_pgarr *a, int64_t v)
{
    separator(a);
    if (reserve(a, 24) == 0)
        a->len += (size_t)snprintf(a->buf + a->len, 24, "%" PRId64, v);
}

void cs_pgarr_int64_or_null(cs_pgarr *a, int64_t v)
{
    if (v == 0)
        cs_pgarr_null(a);
    else
        cs_pgarr_int64(a, v);
}

void cs_pgarr_bool(cs_pgarr *a, int v)
{
    separator(a);
    if (reserve(a, 1) == 0)
        a->buf[a->len++] = v ? 't' : 'f';
}

void cs_pgarr_null(cs_pgarr *a)
{
    separator(a);
    if (reserve(a, 4) == 0) {
        memcpy(a->buf + a->len, "NULL", 4);
        a->len += 4;
    }
}

void cs_pgarr_bytea(cs_pgarr *a, const uint8_t *p, size_t n)
{
    separator(a);
    if (reserve(a, 2 * n + 5) != 0)
        return;
    memcpy(a->buf + a->len, "\"\\\\x", 4);
    a->len += 4;
    bz_hex_encode(p, n, a->buf + a->len, a->cap - a->len, NULL);
    a->len += 2 * n;
    a->buf[a->len++] = '"';
}

const char *cs_pgarr_finish(cs_pgarr *a)
{
    if (a->done)
        return a->oom ? NULL : a->buf;
    if (a->n == 0 && reserve(a, 1) == 0)
        a->buf[a->len++] = '{';
    if (reserve(a, 1) != 0)
        return NULL;
    a->buf[a->len++] = '}';
    a->buf[a->len] = '\0';
    a->done = 1;
    return a->buf;
}

void cs_pgarr_free(cs_pgarr *a)
{
    free(a->buf);
    memset(a, 0, sizeof *a);
}

void cs_pgarr_init_all(cs_pgarr *arrs, int n)
{
    for (int i = 0; i < n; i++)
        cs_pgarr_init(&arrs[i]);
}

void cs_pgarr_free_all(cs_pgarr *arrs, int n)
{
    for (int i = 0; i < n; i++)
        cs_pgarr_free(&arrs[i]);
}

bz_status cs_pg_run(PGconn *conn, const char *what, const char *sql, cs_pgarr *arrs, int n,
                    PGresult **out, bz_error *err)
{
    const char *params[CS_PG_RUN_MAX_PARAMS];
    if (n > CS_PG_RUN_MAX_PARAMS)
        return bz_fail(err, BZ_ERR_INTERNAL, "%s: %d parameters, at most %d", what, n,
                       CS_PG_RUN_MAX_PARAMS);
    for (int i = 0; i < n; i++)
        if (!(params[i] = cs_pgarr_finish(&arrs[i])))
            return bz_fail(err, BZ_ERR_TRANSIENT, "%s: out of memory", what);
    return bz_pg_exec_params(conn, what, sql, n, params, out, err);
}
