/*
 * utf8.h - is this text well-formed UTF-8?
 *
 * Text crosses our boundaries as bytes: gateway payloads, rows read back
 * from PostgreSQL, bodies about to be sent to a customer's endpoint. JSON
 * and PostgreSQL text both demand UTF-8 without NUL, so the check refuses
 * overlong forms, surrogates, code points past U+10FFFF and NUL bytes; text
 * that must be shown whatever it holds can be scrubbed into shape.
 */
#ifndef BZ_CORE_UTF8_H
#define BZ_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when the len bytes at s are well-formed UTF-8 with no NUL. */
bool bz_utf8_valid(const char *s, size_t len);

/* Bytes of the well-formed character that starts the NUL-terminated s, or
 * 0 when s starts with NUL or with bytes that do not decode. */
size_t bz_utf8_char_length(const char *s);

/* Characters (code points) of the NUL-terminated UTF-8 s, as WhatsApp
 * counts a text's length: the bytes that do not continue a sequence. NULL
 * counts 0. */
size_t bz_utf8_chars(const char *s);

/* Make the NUL-terminated s well-formed in place, same length: each byte
 * that does not belong to a well-formed sequence (a character cut by a
 * byte limit, text in another encoding) becomes '?'. */
void bz_utf8_scrub(char *s);

#endif
