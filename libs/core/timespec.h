/*
 * timespec.h - points in time as operators type them on a command line.
 *
 * Two forms: ISO-8601 in UTC or with an offset ("2025-01-31",
 * "2025-01-31T10:00", "2025-01-31T10:00:00Z", "2025-01-31 10:00:00.250+02:00")
 * and relative durations back from now ("90s", "15m", "2h", "1d", "1w", and
 * "now"). A date or time without a zone is taken as UTC: ops compare with
 * UTC log lines, and a local zone would make the same command mean different
 * things on different hosts.
 */
#ifndef BZ_CORE_TIMESPEC_H
#define BZ_CORE_TIMESPEC_H

#include <stdint.h>

#include "core/status.h"

/* Parse text into milliseconds since the epoch; relative forms count back
 * from now_ms. BZ_ERR_CONFIG with the text quoted when it is neither form. */
bz_status bz_time_parse(const char *text, int64_t now_ms, int64_t *out_ms, bz_error *err);

/* 1 with *out_ms when text is an RFC 3339 date-time of a day that exists
 * ("2025-01-31T10:00:00.250+02:00", Z or an offset required; fractions
 * past the millisecond dropped), as an API takes one; else 0. */
int bz_time_parse_rfc3339(const char *text, int64_t *out_ms);

/* Write ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (at least 25 bytes). */
void bz_time_format(int64_t ms, char *buf, unsigned cap);

#endif
