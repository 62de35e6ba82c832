/*
 * uuid.h - random (version 4) UUIDs for event ids and idempotency keys, and
 * a syntax check for UUIDs that arrive from outside.
 */
#ifndef BZ_UUID_H
#define BZ_UUID_H

#include <stdbool.h>

#include "status.h"

#define BZ_UUID_STR_SIZE 37 /* 36 characters and the NUL */

/* Write a new random UUID, lowercase canonical form, into out. Draws from
 * the OS random source; BZ_ERR_IO if that fails. */
bz_status bz_uuid_v4(char out[BZ_UUID_STR_SIZE], bz_error *err);

/* True when s is a UUID in canonical 8-4-4-4-12 hex form (any case). */
bool bz_uuid_is_valid(const char *s);

#endif
