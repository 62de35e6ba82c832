/*
 * utf8.c - UTF-8 well-formedness (RFC 3629): one pass, decoding each
 * sequence to its code point so overlong forms and surrogates show.
 */
#include "core/utf8.h"

#include <stdint.h>

/* Continuation bytes after a lead byte, or -1 for a byte that cannot lead. */
static int continuation_count(unsigned char lead)
{
    if (lead < 0x80)
        return 0;
    if (lead >= 0xc2 && lead <= 0xdf)
        return 1;
    if ((lead & 0xf0) == 0xe0)
        return 2;
    if (lead >= 0xf0 && lead <= 0xf4)
        return 3;
    return -1;
}

static bool code_point_allowed(uint32_t cp, int extra)
{
    static const uint32_t smallest[] = {0, 0x80, 0x800, 0x10000};
    return cp >= smallest[extra] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
}

bool bz_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char lead = p[i];
        if (lead == 0)
            return false;
        int extra = continuation_count(lead);
        if (extra < 0 || len - i <= (size_t)extra)
            return false;
        uint32_t cp = extra ? lead & (0x3fu >> extra) : lead;
        for (int k = 1; k <= extra; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (!code_point_allowed(cp, extra))
            return false;
        i += (size_t)extra + 1;
    }
    return true;
}
