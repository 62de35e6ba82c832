/*
 * utf8.c - UTF-8 well-formedness (RFC 3629): one pass, decoding each
 * sequence to its code point so overlong forms and surrogates show; the
 * scrubber walks the same way and overwrites what does not decode.
 */
#include "core/utf8.h"

#include <stdint.h>
#include <string.h>

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

/* The length of the well-formed sequence at p (avail bytes there), or 0. */
static size_t sequence_length(const unsigned char *p, size_t avail)
{
    unsigned char lead = p[0];
    if (lead == 0)
        return 0;
    int extra = continuation_count(lead);
    if (extra < 0 || avail <= (size_t)extra)
        return 0;
    uint32_t cp = extra ? lead & (0x3fu >> extra) : lead;
    for (int k = 1; k <= extra; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    return code_point_allowed(cp, extra) ? (size_t)extra + 1 : 0;
}

size_t bz_utf8_char_length(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t avail = 0;
    while (avail < 4 && p[avail])
        avail++;
    return avail ? sequence_length(p, avail) : 0;
}

bool bz_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = sequence_length(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

void bz_utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t len = strlen(s), i = 0;
    while (i < len) {
        size_t n = sequence_length(p + i, len - i);
        if (n == 0) {
            p[i] = '?';
            n = 1;
        }
        i += n;
    }
}

size_t bz_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}
