/*
 * bytes.c - the growable byte buffer with a ceiling (see bytes.h).
 */
#include "core/bytes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_CAP 4096

bool bz_bytes_next_cap(const bz_bytes *b, size_t more, size_t max, size_t *cap)
{
    if (more > max || b->len > max - more)
        return false;
    size_t need = b->len + more;
    if (b->data && need <= b->cap) {
        *cap = b->cap;
        return true;
    }
    size_t next = b->cap ? (b->cap > max / 2 ? max : b->cap * 2) : FIRST_CAP;
    if (next > max)
        next = max;
    *cap = next < need ? need : next;
    return true;
}

bz_status bz_bytes_reserve(bz_bytes *b, size_t cap, bz_error *err)
{
    if (b->data && cap <= b->cap)
        return BZ_OK;
    if (cap == SIZE_MAX)
        return bz_fail(err, BZ_ERR_NOMEM, "no buffer holds %zu bytes and a NUL", cap);
    char *grown = realloc(b->data, cap + 1);
    if (!grown)
        return bz_fail(err, BZ_ERR_NOMEM, "out of memory for a buffer of %zu bytes", cap);
    b->data = grown;
    b->data[b->len] = '\0';
    b->cap = cap;
    return BZ_OK;
}

bz_status bz_bytes_append(bz_bytes *b, const void *src, size_t n, size_t max, bz_error *err)
{
    if (n == 0)
        return BZ_OK;
    size_t cap = 0;
    if (!bz_bytes_next_cap(b, n, max, &cap))
        return bz_fail(err, BZ_ERR_INVALID, "%zu bytes more would pass the most, %zu", n, max);
    bz_status st = bz_bytes_reserve(b, cap, err);
    if (st != BZ_OK)
        return st;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    b->data[b->len] = '\0';
    return BZ_OK;
}

void bz_bytes_free(bz_bytes *b)
{
    free(b->data);
    *b = (bz_bytes){0};
}
