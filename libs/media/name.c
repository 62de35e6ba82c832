/*
 * name.c - the check of a stored media object's name (see name.h).
 */
#include "name.h"

#include <stdint.h>

#include "core/utf8.h"

/* The code point of the well-formed sequence at s, its bytes into *len. */
static uint32_t code_point_at(const unsigned char *s, size_t *len)
{
    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    *len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
    uint32_t c = s[0] & (0x7Fu >> *len);
    for (size_t i = 1; i < *len; i++)
        c = c << 6 | (s[i] & 0x3Fu);
    return c;
}

/* Controls (C0, DEL, C1) and the formatting characters that reorder text
 * (bidirectional marks, embeddings, overrides and isolates): a name holding
 * one can show as another ("invoice\u202Efdp.exe" reads "invoiceexe.pdf"). */
static int changes_what_is_shown(uint32_t c)
{
    return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x061C || c == 0x200E || c == 0x200F ||
           (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
}

bz_status bz_media_name_check(const char *name, size_t len, bz_error *err)
{
    if (len == 0)
        return bz_reject(err, "invalid", "field filename: empty");
    if (len > BZ_MEDIA_NAME_MAX)
        return bz_reject(err, "invalid", "field filename: %zu bytes, at most %d allowed",
                         len, BZ_MEDIA_NAME_MAX);
    if (!bz_utf8_valid(name, len))
        return bz_reject(err, "invalid",
                         "field filename: not UTF-8 text (or it holds a NUL byte)");
    for (size_t i = 0, n = 0; i < len; i += n)
        if (changes_what_is_shown(code_point_at((const unsigned char *)name + i, &n)))
            return bz_reject(err, "invalid",
                             "field filename: control and text-direction characters are not "
                             "taken");
    return BZ_OK;
}
