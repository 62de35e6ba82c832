/*
 * bsuid.c - the shape of Meta's business-scoped user ids (see bsuid.h):
 * a country code, then an alphanumeric run, checked byte by byte.
 */
#include "wa/bsuid.h"

#include <string.h>

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_alnum(char c)
{
    return is_upper(c) || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* "CC." at s: the number of bytes it takes, 0 when absent. */
static size_t country_prefix(const char *s)
{
    return s && is_upper(s[0]) && is_upper(s[1]) && s[2] == '.' ? 3 : 0;
}

static bool alnum_run_to_end(const char *s)
{
    size_t n = 0;
    while (n <= BZ_BSUID_ID_MAX && is_alnum(s[n]))
        n++;
    return n >= 1 && n <= BZ_BSUID_ID_MAX && s[n] == '\0';
}

bool bz_bsuid_valid(const char *s)
{
    size_t p = country_prefix(s);
    return p > 0 && alnum_run_to_end(s + p);
}

bool bz_parent_bsuid_valid(const char *s)
{
    size_t p = country_prefix(s);
    return p > 0 && strncmp(s + p, "ENT.", 4) == 0 && alnum_run_to_end(s + p + 4);
}
