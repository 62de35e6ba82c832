/*
 * ratelimit.c - the limits of an account or workspace from its metadata
 * (see ratelimit.h).
 */
#include "ratelimit.h"

#include <jansson.h>
#include <string.h>

static double limit_from(json_t *obj, const char *key, double fallback)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || !json_is_number(v) || json_number_value(v) < 0)
        return fallback;
    return json_number_value(v);
}

cmp_limits cmp_limits_from_metadata(const char *metadata_json, const cmp_limits *defaults,
                                    double max_per_second)
{
    cmp_limits out = *defaults;
    json_t *root = metadata_json ? json_loads(metadata_json, 0, NULL) : NULL;
    json_t *rl = root ? json_object_get(root, "rate_limits") : NULL;
    if (rl && json_is_object(rl)) {
        out.per_second = limit_from(rl, "per_second", out.per_second);
        out.per_minute = limit_from(rl, "per_minute", out.per_minute);
        out.per_hour = limit_from(rl, "per_hour", out.per_hour);
    }
    json_decref(root);
    if (max_per_second > 0 && (out.per_second <= 0 || out.per_second > max_per_second))
        out.per_second = max_per_second;
    return out;
}
