/*
 * hex.h - hexadecimal text to bytes and back, the one codec every part of
 * Blazz uses (signatures, sealed secrets, keys, stored hashes).
 *
 * Encoding writes lowercase; decoding takes either case and is strict: an
 * odd length or a character that is not a hex digit is refused with its
 * offset, never skipped. Constant-time comparison stays with the caller
 * (wa/signature.c decodes digit by digit with bz_hex_digit_value for that).
 */
#ifndef BZ_HEX_H
#define BZ_HEX_H

#include <stddef.h>

#include "status.h"

/* The value of one hex digit (either case), or -1 when c is not one. */
int bz_hex_digit_value(int c);

/* Lowercase hex of in (len bytes) into out; needs 2 * len + 1 bytes. */
bz_status bz_hex_encode(const void *in, size_t len, char *out, size_t cap, bz_error *err);

/* prefix ("" or "\\x", PostgreSQL's bytea input form) then the lowercase
 * hex of in (len bytes), NUL-terminated: heap memory the caller frees, NULL
 * when memory ran out. */
char *bz_hex_dup(const char *prefix, const void *in, size_t len);

/* Decode hexlen hex digits (either case) into out, setting *outlen. An odd
 * length or a non-hex character is BZ_ERR_INVALID. */
bz_status bz_hex_decode(const char *hex, size_t hexlen, unsigned char *out, size_t cap,
                        size_t *outlen, bz_error *err);

#endif
