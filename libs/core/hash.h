/*
 * hash.h - the one non-cryptographic hash of the project: 64-bit FNV-1a,
 * for choosing a bucket of an in-memory hash map (never for anything an
 * adversary must not steer: those maps bound their chains or their size).
 */
#ifndef BZ_CORE_HASH_H
#define BZ_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a over len bytes of data. */
uint64_t bz_hash_bytes(const void *data, size_t len);

/* FNV-1a over the bytes of a NUL-terminated string. */
uint64_t bz_hash_string(const char *s);

#endif
