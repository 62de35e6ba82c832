/*
 * uuid.c - version 4 UUIDs from getrandom(2), version 8 UUIDs over SHA-256
 * (see uuid.h).
 */
#include "uuid.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

void bz_uuid_format(const uint8_t b[16], char out[BZ_UUID_STR_SIZE])
{
    snprintf(out, BZ_UUID_STR_SIZE,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

bz_status bz_uuid_v4(char out[BZ_UUID_STR_SIZE], bz_error *err)
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return bz_fail(err, BZ_ERR_IO, "generate UUID: getrandom: %s", strerror(errno));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    bz_uuid_format(b, out);
    return BZ_OK;
}

void bz_uuid_derive(const void *name, size_t len, char out[BZ_UUID_STR_SIZE])
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_Digest(name, len, d, &dlen, EVP_sha256(), NULL);
    d[6] = (uint8_t)((d[6] & 0x0f) | 0x80); /* version 8 */
    d[8] = (uint8_t)((d[8] & 0x3f) | 0x80); /* RFC 9562 variant */
    bz_uuid_format(d, out);
}

bool bz_uuid_is_valid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}
