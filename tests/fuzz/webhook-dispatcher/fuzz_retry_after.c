/*
 * fuzz_retry_after.c - the Retry-After header parser
 * (wh_parse_retry_after, classify.c), fed what delivery.c's header
 * callback hands it: the value as a C string of at most 127 bytes.
 *
 * Properties: the result is -1 (malformed) or a delay in [0, 10 years];
 * delta-seconds ("120", surrounding spaces allowed) give exactly that many
 * seconds, capped at 10 years, and anything else starting with a digit is
 * malformed; an HTTP-date is relative to the clock passed in (a second later,
 * the same date is a second closer). Accepted means the value parsed.
 */
#include <ctype.h>
#include <string.h>

#include "classify.h"
#include "fuzz_target.h"

#define NOW_MS 1800000000000LL
#define TEN_YEARS_S (10LL * 365 * 86400)

/* The delta-seconds reading of value, independently: -1 when it is not
 * one, else the seconds (saturated at TEN_YEARS_S + 1). */
static long long delta_seconds(const char *value)
{
    while (isspace((unsigned char)*value))
        value++;
    if (!isdigit((unsigned char)*value))
        return -2; /* not this form */
    long long s = 0;
    while (isdigit((unsigned char)*value)) {
        if (s <= TEN_YEARS_S)
            s = s * 10 + (*value - '0');
        value++;
    }
    while (isspace((unsigned char)*value))
        value++;
    return *value ? -1 : s;
}

static int fuzz_retry_after(const uint8_t *data, size_t size)
{
    char value[128];
    bz_fuzz_text(data, size, value, sizeof value);
    int64_t ms = wh_parse_retry_after(value, NOW_MS);
    BZ_FUZZ_CHECK(ms >= -1 && ms <= TEN_YEARS_S * 1000);
    long long s = delta_seconds(value);
    if (s >= 0)
        BZ_FUZZ_CHECK(ms == (s > TEN_YEARS_S ? TEN_YEARS_S : s) * 1000);
    else if (s == -1)
        BZ_FUZZ_CHECK(ms == -1);
    else if (ms > 1000 && ms < TEN_YEARS_S * 1000)
        BZ_FUZZ_CHECK(wh_parse_retry_after(value, NOW_MS + 1000) == ms - 1000);
    return ms >= 0 ? BZ_FUZZ_ACCEPTED : BZ_FUZZ_REJECTED;
}

static const bz_fuzz_expect expect[] = {
    {"seconds", BZ_FUZZ_ACCEPTED},
    {"http_date", BZ_FUZZ_ACCEPTED},
    {"year_int_max", BZ_FUZZ_ACCEPTED},
    {"seconds_garbage", BZ_FUZZ_REJECTED},
    {"negative", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_retry_after, expect)
