/*
 * crm_page.c - a keyset page's size and cursor (see crm_page.h).
 *
 * Both are read strictly: plain decimal digits, no sign, no spaces, no
 * leading zeros, within range, so that one cursor has one spelling and a
 * mistyped one is refused rather than taken as another page.
 */
#include "crm/crm_page.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define CURSOR_PREFIX "c1_"

/* The decimal at *text (digits up to the first non-digit) into *out,
 * *text moved past it; 0 when there are none, a leading zero (but "0"
 * alone) or more than max. */
static int read_decimal(const char **text, int64_t max, int64_t *out)
{
    const char *p = *text;
    int64_t value = 0;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
        return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        int digit = *p - '0';
        if (value > (max - digit) / 10)
            return 0;
        value = value * 10 + digit;
    }
    *text = p;
    *out = value;
    return 1;
}

bz_status ing_crm_page_limit(const char *text, const char *field, int *limit, bz_error *err)
{
    int64_t value = ING_CRM_PAGE_DEFAULT;
    if (text && (!read_decimal(&text, ING_CRM_PAGE_MAX, &value) || *text || value < 1))
        return bz_reject(err, "invalid_field", "field %s: a whole number from 1 to %d", field,
                         ING_CRM_PAGE_MAX);
    *limit = (int)value;
    return BZ_OK;
}

void ing_crm_cursor_format(ing_crm_cursor cur, char *out, size_t cap)
{
    snprintf(out, cap, CURSOR_PREFIX "%" PRId64 "_%" PRId64, cur.created_us, cur.id);
}

bz_status ing_crm_cursor_parse(const char *text, const char *field, ing_crm_cursor *cur,
                               bz_error *err)
{
    size_t n = strlen(CURSOR_PREFIX);
    ing_crm_cursor c;
    const char *p = text;
    int ok = strncmp(p, CURSOR_PREFIX, n) == 0;
    p += ok ? n : 0;
    ok = ok && read_decimal(&p, INT64_MAX, &c.created_us) && *p++ == '_';
    ok = ok && read_decimal(&p, INT64_MAX, &c.id) && !*p && c.id > 0;
    if (!ok)
        return bz_reject(err, "invalid_field",
                         "field %s: not a cursor this API answered (pass next_cursor back as "
                         "it came)", field);
    *cur = c;
    return BZ_OK;
}
