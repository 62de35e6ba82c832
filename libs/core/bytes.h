/*
 * bytes.h - the one growable byte buffer with a ceiling: an HTTP body
 * collected as it arrives (a request at ingest or the test receiver, an
 * answer from Meta's Graph API).
 *
 * Every such body has a most it may hold, past which the caller refuses or
 * drops the rest; below it the buffer grows by doubling, so a body that
 * arrives in many small pieces costs a few reallocations, not one per
 * piece. The data is kept NUL-terminated for the parsers that read it as
 * text. A caller that must account for memory before it is taken (ingest's
 * guard) asks what the next growth would be, takes it, then reserves.
 */
#ifndef BZ_CORE_BYTES_H
#define BZ_CORE_BYTES_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

typedef struct bz_bytes {
    char *data; /* NULL until the first byte or reservation; then NUL-terminated */
    size_t len; /* bytes held, the NUL not counted */
    size_t cap; /* bytes data can hold, the NUL not counted */
} bz_bytes;

/* Whether len + more bytes stay within max; if so *cap is the capacity
 * that holds them: the current one when it does, else double it (4096
 * first), at most max and never less than len + more. */
bool bz_bytes_next_cap(const bz_bytes *b, size_t more, size_t max, size_t *cap);

/* Make data hold cap bytes and the NUL (nothing when it does already).
 * BZ_ERR_NOMEM, with b unchanged, when memory ran out. */
bz_status bz_bytes_reserve(bz_bytes *b, size_t cap, bz_error *err);

/* Append n bytes at src, growing as bz_bytes_next_cap says. Past max:
 * BZ_ERR_INVALID and nothing appended; BZ_ERR_NOMEM likewise. */
bz_status bz_bytes_append(bz_bytes *b, const void *src, size_t n, size_t max, bz_error *err);

/* Free data; b is empty again. */
void bz_bytes_free(bz_bytes *b);

#endif
