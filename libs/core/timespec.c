/*
 * timespec.c - command-line time arguments (see timespec.h).
 *
 * The ISO parser reads fixed-width fields left to right and stops at the
 * first part that is absent, so each optional tail (time, seconds,
 * fraction, zone) is one step; timegm turns the broken-down UTC time into
 * seconds without consulting the local zone.
 */
#include "core/timespec.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS_PER_SECOND 1000LL

static int64_t unit_ms(char unit)
{
    switch (unit) {
    case 's': return MS_PER_SECOND;
    case 'm': return 60 * MS_PER_SECOND;
    case 'h': return 3600 * MS_PER_SECOND;
    case 'd': return 86400 * MS_PER_SECOND;
    case 'w': return 7 * 86400 * MS_PER_SECOND;
    default: return 0;
    }
}

/* "15m" -> 1 with *ago_ms = 900000; 0 when text is not a duration. */
static int parse_relative(const char *text, int64_t *ago_ms)
{
    if (strcmp(text, "now") == 0) {
        *ago_ms = 0;
        return 1;
    }
    if (!isdigit((unsigned char)text[0]))
        return 0;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno != 0 || end[0] == '\0' || end[1] != '\0' || unit_ms(end[0]) == 0)
        return 0;
    if (n > INT64_MAX / unit_ms(end[0]))
        return 0;
    *ago_ms = n * unit_ms(end[0]);
    return 1;
}

/* Read exactly `width` digits at *p into *out and advance. */
static int read_digits(const char **p, int width, int *out)
{
    int v = 0;
    for (int i = 0; i < width; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return 0;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += width;
    *out = v;
    return 1;
}

/* Fractional seconds after '.', as milliseconds (extra digits ignored). */
static int read_fraction_ms(const char **p, int *ms)
{
    int digits = 0, v = 0;
    while (isdigit((unsigned char)**p)) {
        if (digits < 3)
            v = v * 10 + (**p - '0');
        digits++;
        (*p)++;
    }
    for (int d = digits; d < 3; d++)
        v *= 10;
    *ms = v;
    return digits > 0;
}

/* "", "Z", "+HH:MM", "+HHMM", "-HH" -> seconds east of UTC; strict: "Z"
 * or "+HH:MM" alone (RFC 3339). */
static int read_zone(const char *p, int strict, long *offset_s)
{
    *offset_s = 0;
    if ((*p == '\0' && !strict) || strcmp(p, "Z") == 0 || strcmp(p, "z") == 0)
        return 1;
    if (*p != '+' && *p != '-')
        return 0;
    int sign = *p == '-' ? -1 : 1, hh = 0, mm = 0;
    p++;
    if (!read_digits(&p, 2, &hh))
        return 0;
    if (*p == ':')
        p++;
    else if (strict)
        return 0;
    if ((*p || strict) && !read_digits(&p, 2, &mm))
        return 0;
    if (*p || hh > 23 || mm > 59)
        return 0;
    *offset_s = sign * (hh * 3600L + mm * 60L);
    return 1;
}

/* text as ISO-8601 into *out_ms; strict: an RFC 3339 date-time, each
 * part present ("2025-01-31T10:00:00Z", a fraction optional). */
static int parse_iso(const char *text, int strict, int64_t *out_ms)
{
    const char *p = text;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int year, mon, day, ms = 0;
    if (!read_digits(&p, 4, &year) || *p++ != '-' || !read_digits(&p, 2, &mon) ||
        *p++ != '-' || !read_digits(&p, 2, &day))
        return 0;
    if (strict && *p != 'T' && *p != 't')
        return 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!read_digits(&p, 2, &tm.tm_hour) || *p++ != ':' || !read_digits(&p, 2, &tm.tm_min))
            return 0;
        if (strict && *p != ':')
            return 0;
        if (*p == ':') {
            p++;
            if (!read_digits(&p, 2, &tm.tm_sec))
                return 0;
            if (*p == '.') {
                p++;
                if (!read_fraction_ms(&p, &ms))
                    return 0;
            }
        }
    }
    long offset_s;
    /* strict takes no leap second: timegm would carry it into the next minute */
    if (!read_zone(p, strict, &offset_s) || year < 1 || mon < 1 || mon > 12 || day < 1 ||
        day > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > (strict ? 59 : 60))
        return 0;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    time_t secs = timegm(&tm);
    if (tm.tm_mday != day)
        return 0; /* timegm normalised an impossible date such as 02-30 */
    *out_ms = ((int64_t)secs - offset_s) * MS_PER_SECOND + ms;
    return 1;
}

bz_status bz_time_parse(const char *text, int64_t now_ms, int64_t *out_ms, bz_error *err)
{
    int64_t ago;
    if (text && parse_relative(text, &ago)) {
        *out_ms = now_ms - ago;
        return BZ_OK;
    }
    if (text && parse_iso(text, 0, out_ms))
        return BZ_OK;
    return bz_fail(err, BZ_ERR_CONFIG,
                   "time '%s': expected ISO-8601 (2025-01-31T10:00:00Z) or a duration back "
                   "from now (90s, 15m, 2h, 1d, 1w)",
                   text ? text : "(null)");
}

int bz_time_parse_rfc3339(const char *text, int64_t *out_ms)
{
    return parse_iso(text, 1, out_ms);
}

void bz_time_format(int64_t ms, char *buf, unsigned cap)
{
    time_t secs = (time_t)(ms / MS_PER_SECOND);
    int rest = (int)(ms % MS_PER_SECOND);
    if (rest < 0) {
        rest += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rest);
}
