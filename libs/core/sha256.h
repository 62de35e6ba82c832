/*
 * sha256.h - the SHA-256 of a buffer as 64 lower-case hex digits, the form
 * the project writes digests in (migration checksums, SigV4's hashes,
 * media keys, a gateway's declared digest). One implementation, over
 * OpenSSL's EVP interface.
 */
#ifndef BZ_CORE_SHA256_H
#define BZ_CORE_SHA256_H

#include <stddef.h>

#include "core/status.h"

/* 64 hex digits and the NUL. */
#define BZ_SHA256_HEX_SIZE 65

/* SHA-256 of len bytes of data (NULL when len is 0) into out. */
bz_status bz_sha256_hex(const void *data, size_t len, char out[BZ_SHA256_HEX_SIZE],
                        bz_error *err);

#endif
