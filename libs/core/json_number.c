/*
 * json_number.c - a JSON number as a whole number (see json_number.h).
 */
#include "json_number.h"

#include <math.h>

/* Reals above this magnitude are not all whole numbers a double can tell
 * apart: 2^53 + 1 reads as 2^53. */
#define EXACT_LIMIT 9007199254740992.0

bool bz_json_whole_number(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (!json_is_real(v))
        return false;
    double d = json_real_value(v);
    if (!isfinite(d) || fabs(d) > EXACT_LIMIT || d != floor(d))
        return false;
    *out = (int64_t)d;
    return true;
}

json_t *bz_json_loadb_wide(const char *buf, size_t len, size_t flags, json_error_t *error)
{
    json_t *root = json_loadb(buf, len, flags, error);
    if (!root && json_error_code(error) == json_error_numeric_overflow)
        root = json_loadb(buf, len, flags | JSON_DECODE_INT_AS_REAL, error);
    return root;
}
