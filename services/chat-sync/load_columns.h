/*
 * load_columns.h - reading a loaded row's columns into the batch, and the
 * out-of-memory error of a load, shared by load.c and campaign_logs.c.
 */
#ifndef CS_LOAD_COLUMNS_H
#define CS_LOAD_COLUMNS_H

#include <stdio.h>
#include <stdlib.h>

#include "chat_sync.h"

static inline int64_t col_int(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static inline char *col_text(cs_batch *b, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return cs_arena_strndup(&b->arena, PQgetvalue(res, row, col),
                            (size_t)PQgetlength(res, row, col));
}

static inline void col_uuid(const PGresult *res, int row, int col, char out[CS_UUID_LEN])
{
    snprintf(out, CS_UUID_LEN, "%s", PQgetvalue(res, row, col));
}

static inline bz_status oom(bz_error *err, const char *what)
{
    return bz_fail(err, BZ_ERR_TRANSIENT, "%s: out of memory", what);
}

#endif
