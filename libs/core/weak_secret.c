/*
 * weak_secret.c - refusing example, short and typed secrets (see
 * weak_secret.h).
 */
#include "weak_secret.h"

#include <string.h>

#define KEY_DISTINCT_BYTES_MIN 16

bz_status bz_secret_refuse_short(const char *what, const char *secret, size_t min_len,
                                 bz_error *err)
{
    size_t len = secret ? strlen(secret) : 0;
    if (len >= min_len)
        return BZ_OK;
    return bz_fail(err, BZ_ERR_CONFIG,
                   "%s: %zu characters, fewer than the %zu required (an example value such as "
                   ".env.example's is refused); use a random one: `openssl rand -hex 24`, or a "
                   "whole .env with `make secrets`",
                   what, len, min_len);
}

bz_status bz_secret_refuse_weak_key(const char *what, const uint8_t *key, size_t len,
                                    bz_error *err)
{
    uint8_t seen[256] = {0};
    int distinct = 0;
    for (size_t i = 0; i < len; i++)
        if (!seen[key[i]]++)
            distinct++;
    if (distinct >= KEY_DISTINCT_BYTES_MIN)
        return BZ_OK;
    return bz_fail(err, BZ_ERR_CONFIG,
                   "%s: weak (%d distinct bytes of %zu: all-zero, one byte repeated or a short "
                   "pattern, like the example in .env.example); make a random one with "
                   "`openssl rand -hex 32`, or a whole .env with `make secrets`",
                   what, distinct, len);
}
