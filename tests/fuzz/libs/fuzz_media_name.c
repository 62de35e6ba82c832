/*
 * fuzz_media_name.c - the check of a stored media object's name
 * (bz_media_name_check, libs/media/name.h), fed the decoded bytes of a
 * ?filename= query argument, NUL bytes included.
 *
 * Properties, against a UTF-8 decoder written here from RFC 3629 (not
 * libs/core/utf8.c's): the name is accepted exactly when it is 1 to
 * BZ_MEDIA_NAME_MAX bytes, every byte sequence is a shortest-form encoding
 * of a scalar value up to U+10FFFF (no surrogates), and no character is a
 * control (Cc: C0, DEL, C1) or a bidirectional formatting character; a refusal is BZ_ERR_INVALID with reason "invalid"
 * and a message naming the field. Accepted means the name is kept.
 */
#include <string.h>

#include "fuzz_target.h"
#include "media/name.h"

/* Bytes of the well-formed sequence at s (n left), its code point into
 * *cp; 0 when it is not one. */
static size_t sequence_length(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint32_t c = s[0];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                            : (c & 0xF8) == 0xF0   ? 4
                                                   : 0;
    if (len == 0 || len > n)
        return 0;
    if (len > 1)
        c &= 0xFFu >> (len + 1);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3Fu);
    }
    static const uint32_t shortest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < shortest[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* Unicode's Cc characters and the bidirectional formatting ones (UAX #9:
 * ALM, LRM, RLM, LRE..RLO, LRI..PDI). */
static int reorders_or_controls(uint32_t c)
{
    static const uint32_t bidi[] = {0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C,
                                    0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069};
    if (c <= 0x1F || (c >= 0x7F && c <= 0x9F))
        return 1;
    for (size_t i = 0; i < sizeof bidi / sizeof bidi[0]; i++)
        if (c == bidi[i])
            return 1;
    return 0;
}

static int keepable(const uint8_t *s, size_t n)
{
    if (n == 0 || n > BZ_MEDIA_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t len = sequence_length(s + i, n - i, &cp);
        if (len == 0 || reorders_or_controls(cp))
            return 0;
        i += len;
    }
    return 1;
}

static int fuzz_media_name(const uint8_t *data, size_t size)
{
    bz_error err;
    bz_status st = bz_media_name_check((const char *)data, size, &err);
    BZ_FUZZ_CHECK((st == BZ_OK) == keepable(data, size));
    if (st == BZ_OK)
        return BZ_FUZZ_ACCEPTED;
    BZ_FUZZ_CHECK(st == BZ_ERR_INVALID);
    BZ_FUZZ_CHECK(err.reason && strcmp(err.reason, "invalid") == 0);
    BZ_FUZZ_CHECK(strncmp(err.msg, "field filename: ", 16) == 0);
    return BZ_FUZZ_REJECTED;
}

BZ_FUZZ_TARGET(fuzz_media_name)
