/*
 * log.c - JSON-lines logger (see log.h).
 *
 * The service name and minimum level are set once at start-up and only read
 * afterwards, so no lock is needed. Each line is assembled in a stack buffer
 * (long messages are truncated, never split) and emitted with one write(2).
 */
#include "log.h"
#include "utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static char log_service[64] = "blazz";
static bz_log_level log_min_level = BZ_LOG_INFO;
static int log_fd = 2;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void bz_log_init(const char *service, bz_log_level min_level)
{
    snprintf(log_service, sizeof log_service, "%s", service ? service : "blazz");
    log_min_level = min_level;
}

bz_status bz_log_level_parse(const char *text, bz_log_level *out, bz_error *err)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (text && strcasecmp(text, level_names[i]) == 0) {
            *out = (bz_log_level)i;
            return BZ_OK;
        }
    }
    return bz_fail(err, BZ_ERR_CONFIG, "log level '%s': expected debug, info, warn or error",
                   text ? text : "(null)");
}

static int log_enabled(bz_log_level level)
{
    return level >= log_min_level;
}

size_t bz_json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    if (cap == 0)
        return 0;
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        size_t len;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            len = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            len = 2;
        } else if (c == '\r') {
            memcpy(esc, "\\r", 2);
            len = 2;
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2);
            len = 2;
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            len = 6;
        } else if (c < 0x80) {
            esc[0] = (char)c;
            len = 1;
        } else if ((len = bz_utf8_char_length(s)) > 0) {
            memcpy(esc, s, len);
            s += len - 1;
        } else {
            esc[0] = '?';
            len = 1;
        }
        if (n + len >= cap)
            break;
        memcpy(out + n, esc, len);
        n += len;
    }
    out[n] = '\0';
    return n;
}

static size_t append_field(char *line, size_t used, const char *name, const char *value)
{
    if (!value || !*value || used >= LOG_LINE_MAX - 8)
        return used;
    int w = snprintf(line + used, LOG_LINE_MAX - used, ",\"%s\":\"", name);
    if (w < 0 || (size_t)w >= LOG_LINE_MAX - used)
        return used;
    used += (size_t)w;
    used += bz_json_escape(line + used, LOG_LINE_MAX - used - 3, value);
    line[used++] = '"';
    line[used] = '\0';
    return used;
}

static void log_write(bz_log_level level, const char *event_id, const char *trace_id,
                      const char *fmt, va_list ap)
{
    char message[LOG_LINE_MAX / 2];
    char line[LOG_LINE_MAX];
    struct timespec now;
    struct tm tm;

    vsnprintf(message, sizeof message, fmt, ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);

    size_t used = (size_t)snprintf(line, sizeof line,
                                   "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\","
                                   "\"level\":\"%s\"",
                                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                   tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000L,
                                   level_names[level]);
    used = append_field(line, used, "service", log_service);
    used = append_field(line, used, "event_id", event_id);
    used = append_field(line, used, "trace_id", trace_id);
    used = append_field(line, used, "msg", message);
    if (used > LOG_LINE_MAX - 3)
        used = LOG_LINE_MAX - 3;
    line[used++] = '}';
    line[used++] = '\n';
    ssize_t ignored = write(log_fd, line, used);
    (void)ignored;
}

void bz_log(bz_log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, NULL, NULL, fmt, ap);
    va_end(ap);
}

void bz_log_event(bz_log_level level, const char *event_id, const char *trace_id,
                  const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, event_id, trace_id, fmt, ap);
    va_end(ap);
}
