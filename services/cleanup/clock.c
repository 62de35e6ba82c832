/*
 * clock.c - the cleanup service's notion of "now".
 *
 * Every rule compares row timestamps with "now", and "now" is always passed
 * to PostgreSQL as a parameter (never SQL now()), so whoever controls this
 * clock controls what is stale. Two knobs, both documented in
 * cleanup.conf.example:
 *   cleanup.clock_offset_s  shift the wall clock (simulate "tomorrow");
 *   cleanup.clock_file      a file holding "now" as decimal milliseconds
 *                           since the epoch, re-read at every use, so a test
 *                           can move time while the service runs.
 * A clock file that is missing or unreadable fails the sweep with a message
 * instead of silently falling back to the wall clock: a test or an operator
 * who set it meant it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "core/clock.h"

static bz_status read_clock_file(const char *path, int64_t *now_ms, bz_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return bz_fail(err, BZ_ERR_TRANSIENT, "read clock file %s: %s", path, strerror(errno));
    char buf[64] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    while (end && (*end == '\n' || *end == ' ' || *end == '\r'))
        end++;
    if (errno != 0 || end == buf || (end && *end != '\0') || v <= 0)
        return bz_fail(err, BZ_ERR_TRANSIENT,
                       "read clock file %s: expected milliseconds since the epoch, got '%.20s'",
                       path, buf);
    *now_ms = v;
    return BZ_OK;
}

bz_status cl_clock_now_ms(const cl_clock *clock, int64_t *now_ms, bz_error *err)
{
    if (clock->file && *clock->file)
        return read_clock_file(clock->file, now_ms, err);
    *now_ms = bz_wall_ms() + clock->offset_ms;
    return BZ_OK;
}
