/*
 * phone.h - phone numbers normalized to E.164.
 *
 * Every phone number that enters Blazz (gateway payloads, Meta webhooks, the
 * CRM's contact forms) is turned into one canonical form before it is used as
 * a key: E.164, i.e. '+' followed by 8..15 digits, the first of which is not 0
 * ("+6281234567890"). Contacts are unique per (workspace, phone), so two
 * spellings of one number must never survive as two strings.
 *
 * Accepted input forms (ASCII only; spaces, tabs, '-', '.', '(' and ')' are
 * separators and are dropped):
 *   "+62 812-3456-7890"    international with '+'
 *   "+44 (0)20 7946 0958"  a "(0)" trunk hint after the country code is dropped
 *   "0062 812 3456 7890"   international with the 00 prefix
 *   "0812 3456 7890"       national with trunk prefix 0: the caller's default
 *                          country calling code replaces the 0
 *   "6281234567890"        bare digits are taken to already start with the
 *                          country code (this is how whatsapp-web.js and the
 *                          seeds' rows store numbers)
 * Rejected with BZ_ERR_INVALID and a message naming the problem: NULL or
 * empty input, letters or other characters, a '+' that is not first, an
 * embedded NUL byte (only detectable through the _n variant), a trunk 0 with
 * no default country code, a country code starting with 0, fewer than 8 or
 * more than 15 digits, raw input longer than BZ_PHONE_INPUT_MAX bytes.
 * Messages never echo the whole input: phone numbers are personal data.
 */
#ifndef BZ_WA_PHONE_H
#define BZ_WA_PHONE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

#define BZ_PHONE_MIN_DIGITS 8
#define BZ_PHONE_MAX_DIGITS 15
/* Bytes needed for "+<15 digits>" plus the NUL. */
#define BZ_PHONE_E164_SIZE (1 + BZ_PHONE_MAX_DIGITS + 1)
/* Longest raw input considered; longer strings are rejected unread. */
#define BZ_PHONE_INPUT_MAX 64

/* Normalize input to E.164 into out (cap bytes, BZ_PHONE_E164_SIZE is always
 * enough). default_cc is the country calling code used for national numbers
 * written with a trunk 0, e.g. "62" or "+62"; NULL or "" means national
 * numbers are rejected. A default_cc that is not 1..3 digits (first not 0) is
 * BZ_ERR_CONFIG; an out buffer that is too small is BZ_ERR_INTERNAL. On any
 * failure out (if cap > 0) holds "". */
bz_status bz_phone_normalize(const char *input, const char *default_cc, char *out, size_t cap,
                             bz_error *err);

/* Same, for input of len bytes that need not be NUL-terminated and may
 * contain NUL bytes (JSON strings can), which are rejected. */
bz_status bz_phone_normalize_n(const char *input, size_t len, const char *default_cc, char *out,
                               size_t cap, bz_error *err);

/* Same as bz_phone_normalize but writes only the digits, without the '+'
 * ("6281234567890"), the form used in WhatsApp JIDs. */
bz_status bz_phone_digits(const char *input, const char *default_cc, char *out, size_t cap,
                          bz_error *err);

/* True when s is already canonical E.164 ('+', 8..15 digits, first not 0). */
bool bz_phone_is_e164(const char *s);

#endif
