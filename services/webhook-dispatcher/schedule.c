/*
 * schedule.c - parsing and applying the retry schedule (see schedule.h).
 */
#include "schedule.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bz_status parse_entry(const char *p, size_t len, int64_t *out, bz_error *err)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return bz_fail(err, BZ_ERR_CONFIG, "retry schedule: empty or overlong entry");
    memcpy(buf, p, len);
    buf[len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (end == buf || v < 0)
        return bz_fail(err, BZ_ERR_CONFIG, "retry schedule: '%s' is not a delay", buf);
    double unit = 1000;
    if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        unit = 1000;
    else if (strcmp(end, "m") == 0)
        unit = 60000;
    else if (strcmp(end, "h") == 0)
        unit = 3600000;
    else
        return bz_fail(err, BZ_ERR_CONFIG, "retry schedule: '%s' has an unknown unit (ms, s, m, h)",
                       buf);
    *out = (int64_t)(v * unit);
    return BZ_OK;
}

bz_status wh_schedule_parse(const char *text, wh_schedule *s, bz_error *err)
{
    s->count = 0;
    const char *p = text ? text : "";
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        const char *start = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p))
            p++;
        size_t len = (size_t)(p - start);
        while (isspace((unsigned char)*p))
            p++;
        if (*p == ',')
            p++;
        if (s->count == WH_SCHEDULE_MAX)
            return bz_fail(err, BZ_ERR_CONFIG, "retry schedule: more than %d entries",
                           WH_SCHEDULE_MAX);
        if (parse_entry(start, len, &s->delay_ms[s->count], err) != BZ_OK)
            return err ? err->code : BZ_ERR_CONFIG;
        s->count++;
    }
    if (s->count == 0)
        return bz_fail(err, BZ_ERR_CONFIG, "retry schedule: no entries");
    return BZ_OK;
}

int64_t wh_schedule_delay_ms(const wh_schedule *s, int failures, double rand01,
                                int64_t retry_after_ms)
{
    size_t k = failures < 0 ? 0 : (size_t)failures;
    if (k >= s->count)
        k = s->count - 1;
    double base = (double)s->delay_ms[k];
    double delay = base * (1.0 + s->jitter * (2.0 * rand01 - 1.0));
    int64_t d = delay < 0 ? 0 : (int64_t)delay;
    return retry_after_ms > d ? retry_after_ms : d;
}
