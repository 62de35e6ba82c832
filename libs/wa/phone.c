/*
 * phone.c - E.164 normalization (see phone.h for the accepted forms).
 *
 * One pass collects the digits, dropping separators, remembering whether the
 * number opened with '+', and rejecting anything else at the byte where it
 * appears. The prefix is then interpreted on the collected digits: '+' or
 * "00" mean the digits start with a country code, a single leading 0 is a
 * national trunk prefix replaced by the caller's default country code, and
 * bare digits are taken as already international. The length rule (8..15
 * digits) is applied last, to the final number, so that it holds for every
 * path through the prefixes.
 */
#include "wa/phone.h"

#include <stdio.h>
#include <string.h>

#define COUNTRY_CODE_MAX_DIGITS 3

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_separator(char c)
{
    return c == ' ' || c == '\t' || c == '-' || c == '.' || c == '(' || c == ')';
}

/* Render one input byte for an error message without echoing raw bytes. */
static const char *describe_byte(char c, char *buf, size_t cap)
{
    unsigned char u = (unsigned char)c;
    if (u > 0x20 && u < 0x7f)
        snprintf(buf, cap, "'%c'", c);
    else
        snprintf(buf, cap, "byte 0x%02x", u);
    return buf;
}

/* Copy the digits of a caller-supplied default country code ("62", "+62")
 * into cc; an empty cc means the caller gave none. */
static bz_status parse_default_country_code(const char *text, char cc[COUNTRY_CODE_MAX_DIGITS + 1],
                                            bz_error *err)
{
    cc[0] = '\0';
    if (!text || !*text)
        return BZ_OK;
    const char *p = text[0] == '+' ? text + 1 : text;
    size_t n = strlen(p);
    bool ok = n >= 1 && n <= COUNTRY_CODE_MAX_DIGITS && p[0] != '0';
    for (size_t i = 0; ok && i < n; i++)
        ok = is_digit(p[i]);
    if (!ok)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "phone: default country code '%.8s' must be 1-3 digits, first not 0", text);
    memcpy(cc, p, n + 1);
    return BZ_OK;
}

/* A "(0)" written after the country code of an international number
 * ("+44 (0)20 ...") is a hint for national dialling, not part of the number. */
static bool is_trunk_hint_at(const char *input, size_t len, size_t i, bool plus, size_t ndigits)
{
    return plus && ndigits > 0 && i + 2 < len && input[i] == '(' && input[i + 1] == '0' &&
           input[i + 2] == ')';
}

/* Collect the digits of input into digits (which holds BZ_PHONE_INPUT_MAX + 1
 * bytes), noting a leading '+'. */
static bz_status collect_digits(const char *input, size_t len, char *digits, size_t *ndigits,
                                bool *plus, bz_error *err)
{
    char what[16];
    size_t n = 0;
    *plus = false;
    for (size_t i = 0; i < len; i++) {
        char c = input[i];
        if (is_digit(c)) {
            digits[n++] = c;
        } else if (c == '+') {
            if (*plus || n > 0)
                return bz_fail(err, BZ_ERR_INVALID, "phone: '+' at offset %zu must come first", i);
            *plus = true;
        } else if (is_trunk_hint_at(input, len, i, *plus, n)) {
            i += 2;
        } else if (c == '\0') {
            return bz_fail(err, BZ_ERR_INVALID, "phone: contains a NUL byte at offset %zu", i);
        } else if (!is_separator(c)) {
            return bz_fail(err, BZ_ERR_INVALID, "phone: unexpected character %s at offset %zu",
                           describe_byte(c, what, sizeof what), i);
        }
    }
    digits[n] = '\0';
    *ndigits = n;
    return BZ_OK;
}

/* Turn the collected digits into the international digits (no '+') in
 * number, resolving the "00" and trunk-0 prefixes. */
static bz_status resolve_prefix(const char *digits, bool plus, const char *cc, char *number,
                                size_t cap, bz_error *err)
{
    const char *national = NULL;
    if (!plus && digits[0] == '0' && digits[1] == '0')
        digits += 2;
    else if (!plus && digits[0] == '0')
        national = digits + 1;

    if (national) {
        if (!cc[0])
            return bz_fail(err, BZ_ERR_INVALID,
                           "phone: national number (leading 0) needs a default country code");
        snprintf(number, cap, "%s%s", cc, national);
        return BZ_OK;
    }
    if (!digits[0])
        return bz_fail(err, BZ_ERR_INVALID, "phone: no digits after the 00 prefix");
    if (digits[0] == '0')
        return bz_fail(err, BZ_ERR_INVALID, "phone: country code cannot start with 0");
    snprintf(number, cap, "%s", digits);
    return BZ_OK;
}

static bz_status check_length(size_t n, bz_error *err)
{
    if (n < BZ_PHONE_MIN_DIGITS)
        return bz_fail(err, BZ_ERR_INVALID, "phone: too short (%zu digits, need at least %d)", n,
                       BZ_PHONE_MIN_DIGITS);
    if (n > BZ_PHONE_MAX_DIGITS)
        return bz_fail(err, BZ_ERR_INVALID, "phone: too long (%zu digits, at most %d)", n,
                       BZ_PHONE_MAX_DIGITS);
    return BZ_OK;
}

/* The shared core: the international digits of input, without '+', in
 * number (at least BZ_PHONE_INPUT_MAX + COUNTRY_CODE_MAX_DIGITS + 1 bytes). */
static bz_status normalize_to_digits(const char *input, size_t len, const char *default_cc,
                                     char *number, size_t cap, bz_error *err)
{
    char cc[COUNTRY_CODE_MAX_DIGITS + 1];
    char digits[BZ_PHONE_INPUT_MAX + 1];
    size_t ndigits = 0;
    bool plus = false;
    bz_status st;

    if ((st = parse_default_country_code(default_cc, cc, err)) != BZ_OK)
        return st;
    if (!input)
        return bz_fail(err, BZ_ERR_INVALID, "phone: missing");
    if (len > BZ_PHONE_INPUT_MAX)
        return bz_fail(err, BZ_ERR_INVALID, "phone: input too long (%zu bytes, at most %d)", len,
                       BZ_PHONE_INPUT_MAX);
    if ((st = collect_digits(input, len, digits, &ndigits, &plus, err)) != BZ_OK)
        return st;
    if (ndigits == 0)
        return bz_fail(err, BZ_ERR_INVALID, "phone: empty (no digits)");
    if ((st = resolve_prefix(digits, plus, cc, number, cap, err)) != BZ_OK)
        return st;
    return check_length(strlen(number), err);
}

/* Write prefix + number into out, or fail if it does not fit. */
static bz_status emit(const char *prefix, const char *number, char *out, size_t cap, bz_error *err)
{
    size_t need = strlen(prefix) + strlen(number) + 1;
    if (need > cap)
        return bz_fail(err, BZ_ERR_INTERNAL, "phone: output buffer too small (%zu bytes, need %zu)",
                       cap, need);
    snprintf(out, cap, "%s%s", prefix, number);
    return BZ_OK;
}

static bz_status normalize_into(const char *input, size_t len, const char *default_cc,
                                const char *prefix, char *out, size_t cap, bz_error *err)
{
    char number[BZ_PHONE_INPUT_MAX + COUNTRY_CODE_MAX_DIGITS + 1];
    if (!out || cap == 0)
        return bz_fail(err, BZ_ERR_INTERNAL, "phone: no output buffer");
    out[0] = '\0';
    bz_status st = normalize_to_digits(input, len, default_cc, number, sizeof number, err);
    if (st != BZ_OK)
        return st;
    return emit(prefix, number, out, cap, err);
}

bz_status bz_phone_normalize_n(const char *input, size_t len, const char *default_cc, char *out,
                               size_t cap, bz_error *err)
{
    return normalize_into(input, len, default_cc, "+", out, cap, err);
}

bz_status bz_phone_normalize(const char *input, const char *default_cc, char *out, size_t cap,
                             bz_error *err)
{
    size_t len = input ? strnlen(input, BZ_PHONE_INPUT_MAX + 1) : 0;
    return normalize_into(input, len, default_cc, "+", out, cap, err);
}

bz_status bz_phone_digits(const char *input, const char *default_cc, char *out, size_t cap,
                          bz_error *err)
{
    size_t len = input ? strnlen(input, BZ_PHONE_INPUT_MAX + 1) : 0;
    return normalize_into(input, len, default_cc, "", out, cap, err);
}

bool bz_phone_is_e164(const char *s)
{
    if (!s || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    size_t n = 0;
    for (const char *p = s + 1; *p; p++, n++)
        if (!is_digit(*p) || n >= BZ_PHONE_MAX_DIGITS)
            return false;
    return n >= BZ_PHONE_MIN_DIGITS;
}
