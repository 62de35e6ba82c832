/*
 * uuid.h - random (version 4) UUIDs for event ids and idempotency keys,
 * UUIDs derived from names (the same facts always give the same id), and a
 * syntax check for UUIDs that arrive from outside.
 */
#ifndef BZ_UUID_H
#define BZ_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define BZ_UUID_STR_SIZE 37 /* 36 characters and the NUL */

/* Write a new random UUID, lowercase canonical form, into out. Draws from
 * the OS random source; BZ_ERR_IO if that fails. */
bz_status bz_uuid_v4(char out[BZ_UUID_STR_SIZE], bz_error *err);

/* A UUID derived from the first len bytes of name: SHA-256 of them, laid
 * out as version 8 (RFC 9562 "custom"), lowercase canonical form. Callers
 * put a domain tag first and separate their fields unambiguously (length
 * prefixes), so ids of different kinds of fact never collide. */
void bz_uuid_derive(const void *name, size_t len, char out[BZ_UUID_STR_SIZE]);

/* The canonical lowercase text of a UUID's 16 bytes, as they are: callers
 * that derive a UUID of their own set its version and variant bits. */
void bz_uuid_format(const uint8_t bytes[16], char out[BZ_UUID_STR_SIZE]);

/* True when s is a UUID in canonical 8-4-4-4-12 hex form (any case). */
bool bz_uuid_is_valid(const char *s);

#endif
