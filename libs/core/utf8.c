/*
 * utf8.c - UTF-8 well-formedness (RFC 3629): one pass, decoding each
 * sequence to its code point so overlong forms and surrogates show. The
 * check and the sanitizer share sequence_length, so what the sanitizer
 * keeps is exactly what the check accepts.
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

/* Bytes of the well-formed, non-NUL sequence at p (avail > 0 bytes left),
 * or 0 when p does not start one. */
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

/* len without a sequence cut short at its end: a lead byte followed by
 * fewer continuation bytes than it announces, and nothing else. */
static size_t without_cut_tail(const unsigned char *p, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char b = p[len - back];
        if ((b & 0xc0) == 0x80)
            continue; /* a continuation byte: look further back for its lead */
        int extra = continuation_count(b);
        return extra > 0 && (size_t)extra >= back ? len - back : len;
    }
    return len;
}

size_t bz_utf8_sanitize(char *dst, size_t cap, const char *src, size_t len)
{
    static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
    if (cap == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)src;
    len = without_cut_tail(p, len);
    size_t out = 0, i = 0;
    while (i < len) {
        size_t n = sequence_length(p + i, len - i);
        const char *piece = src + i;
        size_t piece_len = n;
        if (n == 0) {
            piece = replacement;
            piece_len = sizeof replacement - 1;
            while (i < len && sequence_length(p + i, len - i) == 0)
                i++;
        } else {
            i += n;
        }
        if (out + piece_len > cap - 1)
            break;
        memcpy(dst + out, piece, piece_len);
        out += piece_len;
    }
    dst[out] = '\0';
    return out;
}
