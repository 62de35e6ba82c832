/*
 * utf8.h - is this text well-formed UTF-8, and make it so.
 *
 * Text crosses our boundaries as bytes: gateway payloads, rows read back
 * from PostgreSQL, bodies about to be sent to a customer's endpoint, the
 * first bytes of a receiver's reply kept for an error message. JSON and
 * PostgreSQL text both demand UTF-8 without NUL, so the check refuses
 * overlong forms, surrogates, code points past U+10FFFF and NUL bytes, and
 * text from outside that must be stored anyway is passed through
 * bz_utf8_sanitize first: PostgreSQL refuses a whole statement (SQLSTATE
 * 22021) for one bad byte in one of its parameters.
 */
#ifndef BZ_CORE_UTF8_H
#define BZ_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when the len bytes at s are well-formed UTF-8 with no NUL. */
bool bz_utf8_valid(const char *s, size_t len);

/* Copy the len bytes at src to dst (cap bytes; nothing is written when cap
 * is 0) as well-formed UTF-8 without NUL: each run of bytes that are not
 * part of a well-formed sequence (NUL included) becomes one U+FFFD; a
 * character cut short at the very end of src (as a copy truncated by byte
 * count leaves it) is left out; and the copy ends on a character boundary
 * so that it fits in cap - 1 bytes. dst is NUL-terminated and must not
 * overlap src. Returns the bytes written, terminator excluded. */
size_t bz_utf8_sanitize(char *dst, size_t cap, const char *src, size_t len);

#endif
