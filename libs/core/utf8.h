/*
 * utf8.h - is this text well-formed UTF-8?
 *
 * Text crosses our boundaries as bytes: gateway payloads, rows read back
 * from PostgreSQL, bodies about to be sent to a customer's endpoint. JSON
 * and PostgreSQL text both demand UTF-8 without NUL, so the check refuses
 * overlong forms, surrogates, code points past U+10FFFF and NUL bytes.
 */
#ifndef BZ_CORE_UTF8_H
#define BZ_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when the len bytes at s are well-formed UTF-8 with no NUL. */
bool bz_utf8_valid(const char *s, size_t len);

#endif
