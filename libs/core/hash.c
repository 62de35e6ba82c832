/*
 * hash.c - 64-bit FNV-1a (see hash.h).
 */
#include "core/hash.h"

#define FNV_OFFSET_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

uint64_t bz_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = FNV_OFFSET_BASIS;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

uint64_t bz_hash_string(const char *s)
{
    uint64_t h = FNV_OFFSET_BASIS;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        h = (h ^ *c) * FNV_PRIME;
    return h;
}
