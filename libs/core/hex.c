/*
 * hex.c - the hex codec (see hex.h): a table lookup to encode, a digit at a
 * time to decode, refusing at the first character that is not hex.
 */
#include "hex.h"

#include <stdlib.h>
#include <string.h>

static const char hex_digits[] = "0123456789abcdef";

int bz_hex_digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bz_status bz_hex_encode(const void *in, size_t len, char *out, size_t cap, bz_error *err)
{
    const unsigned char *bytes = in;
    if (!out || cap < 2 * len + 1)
        return bz_fail(err, BZ_ERR_INTERNAL, "hex encode: output buffer too small (%zu bytes, need %zu)",
                       out ? cap : 0, 2 * len + 1);
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex_digits[bytes[i] >> 4];
        out[2 * i + 1] = hex_digits[bytes[i] & 0x0f];
    }
    out[2 * len] = '\0';
    return BZ_OK;
}

char *bz_hex_dup(const char *prefix, const void *in, size_t len)
{
    size_t skip = strlen(prefix), cap = skip + 2 * len + 1;
    char *out = malloc(cap);
    if (out) {
        memcpy(out, prefix, skip);
        bz_hex_encode(in, len, out + skip, cap - skip, NULL);
    }
    return out;
}

bz_status bz_hex_decode(const char *hex, size_t hexlen, unsigned char *out, size_t cap,
                        size_t *outlen, bz_error *err)
{
    *outlen = 0;
    if (hexlen % 2 != 0)
        return bz_fail(err, BZ_ERR_INVALID, "hex decode: odd length %zu", hexlen);
    if (hexlen / 2 > cap)
        return bz_fail(err, BZ_ERR_INVALID, "hex decode: %zu bytes do not fit in %zu",
                       hexlen / 2, cap);
    for (size_t i = 0; i < hexlen; i += 2) {
        int hi = bz_hex_digit_value((unsigned char)hex[i]);
        int lo = bz_hex_digit_value((unsigned char)hex[i + 1]);
        if (hi < 0 || lo < 0)
            return bz_fail(err, BZ_ERR_INVALID, "hex decode: non-hex character at offset %zu",
                           hi < 0 ? i : i + 1);
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    *outlen = hexlen / 2;
    return BZ_OK;
}
