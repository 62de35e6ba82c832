/*
 * log.h - structured logging: one JSON object per line on stderr.
 *
 * Every line carries ts (UTC, milliseconds), level, service and msg; lines
 * about one event also carry event_id and trace_id so a message can be
 * followed across services with grep or a log pipeline. A line is formatted
 * into a local buffer and written with a single write(2), so lines from
 * several threads never interleave. Secrets must never be passed in.
 */
#ifndef BZ_LOG_H
#define BZ_LOG_H

#include <stdio.h>

#include "status.h"

typedef enum bz_log_level {
    BZ_LOG_DEBUG = 0,
    BZ_LOG_INFO,
    BZ_LOG_WARN,
    BZ_LOG_ERROR
} bz_log_level;

/* Set the service name and the lowest level written. Call once from main
 * before starting threads; the name is copied. */
void bz_log_init(const char *service, bz_log_level min_level);

/* Parse "debug" | "info" | "warn" | "error". */
bz_status bz_log_level_parse(const char *text, bz_log_level *out, bz_error *err);

void bz_log(bz_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Same, tagged with the event it is about (either id may be NULL). */
void bz_log_event(bz_log_level level, const char *event_id, const char *trace_id,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define bz_debug(...) bz_log(BZ_LOG_DEBUG, __VA_ARGS__)
#define bz_info(...) bz_log(BZ_LOG_INFO, __VA_ARGS__)
#define bz_warn(...) bz_log(BZ_LOG_WARN, __VA_ARGS__)
#define bz_error_log(...) bz_log(BZ_LOG_ERROR, __VA_ARGS__)

/* Append s to out as the body of a JSON string (no quotes), escaping as
 * RFC 8259 requires; never writes more than cap bytes including the NUL.
 * The result is well-formed UTF-8 whatever s holds: a character that does
 * not fit is left out whole, a byte that does not decode becomes '?'.
 * Returns the number of bytes written, excluding the NUL. Shared with other
 * hand-built JSON writers. */
size_t bz_json_escape(char *out, size_t cap, const char *s);

#endif
