/*
 * sha256.c - SHA-256 as hex (see sha256.h).
 */
#include "core/sha256.h"

#include <openssl/evp.h>

#include "core/hex.h"

#define SHA256_BYTES 32

bz_status bz_sha256_hex(const void *data, size_t len, char out[BZ_SHA256_HEX_SIZE],
                        bz_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(len ? data : "", len, md, &md_len, EVP_sha256(), NULL) ||
        md_len != SHA256_BYTES)
        return bz_fail(err, BZ_ERR_INTERNAL, "sha256: digest failed");
    return bz_hex_encode(md, md_len, out, BZ_SHA256_HEX_SIZE, err);
}
