/*
 * test_utf8.c - the UTF-8 check accepts every well-formed sequence length
 * and refuses what PostgreSQL text and JSON refuse: NUL, stray and missing
 * continuation bytes, overlong forms, surrogates, code points past U+10FFFF.
 * The sanitizer turns any bytes into text the check accepts: bad runs
 * become U+FFFD, a character is never cut at the size limit, random bytes
 * always come out valid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/utf8.h"

static bool valid(const char *bytes, size_t len)
{
    return bz_utf8_valid(bytes, len);
}

static void well_formed_text_of_every_length_is_accepted(void **state)
{
    (void)state;
    assert_true(valid("", 0));
    assert_true(valid("plain ascii", 11));
    assert_true(valid("caf\xc3\xa9", 5));                 /* U+00E9 */
    assert_true(valid("\xe2\x82\xac", 3));                /* U+20AC */
    assert_true(valid("\xf0\x9f\x98\x80", 4));            /* U+1F600 */
    assert_true(valid("\xf4\x8f\xbf\xbf", 4));            /* U+10FFFF */
    assert_true(valid("\xed\x9f\xbf", 3));                /* U+D7FF, just below surrogates */
    assert_true(valid("\xee\x80\x80", 3));                /* U+E000, just above */
}

static void nul_and_stray_bytes_are_refused(void **state)
{
    (void)state;
    assert_false(valid("a\0b", 3));
    assert_false(valid("\x80", 1));
    assert_false(valid("\xbf", 1));
    assert_false(valid("\xff", 1));
    assert_false(valid("\xfe", 1));
    assert_false(valid("a\xc3", 2));                      /* truncated at the end */
    assert_false(valid("\xe2\x82", 2));
    assert_false(valid("\xe2\x28\xa1", 3));               /* bad continuation */
}

static void overlong_surrogate_and_out_of_range_are_refused(void **state)
{
    (void)state;
    assert_false(valid("\xc0\xaf", 2));                   /* overlong '/' */
    assert_false(valid("\xc1\xbf", 2));
    assert_false(valid("\xe0\x80\xaf", 3));
    assert_false(valid("\xf0\x80\x80\xaf", 4));
    assert_false(valid("\xed\xa0\x80", 3));               /* U+D800 */
    assert_false(valid("\xed\xbf\xbf", 3));               /* U+DFFF */
    assert_false(valid("\xf4\x90\x80\x80", 4));           /* U+110000 */
    assert_false(valid("\xf5\x80\x80\x80", 4));
}

static void the_length_bounds_the_check(void **state)
{
    (void)state;
    /* Only the first len bytes count: a valid prefix of invalid text. */
    assert_true(valid("ok\xff", 2));
    assert_false(valid("\xe2\x82\xac", 2));
}

#define FFFD "\xef\xbf\xbd"

static void sanitize_keeps_valid_text_and_replaces_bad_runs(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(bz_utf8_sanitize(out, sizeof out, "caf\xc3\xa9", 5), 5);
    assert_string_equal(out, "caf\xc3\xa9");
    /* one U+FFFD per run of bad bytes, NUL included */
    bz_utf8_sanitize(out, sizeof out, "a\xff\xfe" "b\0c\xc0\xaf", 8);
    assert_string_equal(out, "a" FFFD "b" FFFD "c" FFFD);
    bz_utf8_sanitize(out, sizeof out, "\xed\xa0\x80!", 4); /* a surrogate */
    assert_string_equal(out, FFFD "!");
    bz_utf8_sanitize(out, sizeof out, "a\xe2\x82" "b", 4); /* cut short inside */
    assert_string_equal(out, "a" FFFD "b");
    assert_true(bz_utf8_valid(out, strlen(out)));
}

static void sanitize_never_cuts_a_character_at_the_limit(void **state)
{
    (void)state;
    char out[6];
    /* "ab" + EURO SIGN + EURO SIGN: 8 bytes into room for 5 */
    assert_int_equal(bz_utf8_sanitize(out, sizeof out, "ab\xe2\x82\xac\xe2\x82\xac", 8), 5);
    assert_string_equal(out, "ab\xe2\x82\xac");
    assert_int_equal(bz_utf8_sanitize(out, 4, "ab\xe2\x82\xac", 5), 2);
    assert_string_equal(out, "ab");
    /* a character cut short at the end of the input, as a byte-count
     * truncation leaves it, is left out rather than replaced */
    char wide[16];
    bz_utf8_sanitize(wide, sizeof wide, "end\xe2\x82", 5);
    assert_string_equal(wide, "end");
    bz_utf8_sanitize(wide, sizeof wide, "end\xf0\x9f\x98", 6);
    assert_string_equal(wide, "end");
    bz_utf8_sanitize(wide, sizeof wide, "end\x82", 4); /* a stray byte is not a cut one */
    assert_string_equal(wide, "end" FFFD);
    /* a replacement that does not fit is left out too */
    assert_int_equal(bz_utf8_sanitize(out, 4, "ab\xff", 3), 2);
    assert_int_equal(bz_utf8_sanitize(out, 1, "ab", 2), 0);
    assert_string_equal(out, "");
    assert_int_equal(bz_utf8_sanitize(NULL, 0, "ab", 2), 0);
}

static void sanitize_turns_random_bytes_into_valid_text(void **state)
{
    (void)state;
    uint32_t x = 2463534242u;
    char in[200], out[160];
    for (int round = 0; round < 10000; round++) {
        for (size_t i = 0; i < sizeof in; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32 */
            in[i] = (char)(x & 0xff);
        }
        size_t cap = 1 + (size_t)(x % sizeof out);
        size_t n = bz_utf8_sanitize(out, cap, in, sizeof in);
        assert_true(n < cap);
        assert_int_equal(strlen(out), n);
        assert_true(bz_utf8_valid(out, n));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(well_formed_text_of_every_length_is_accepted),
        cmocka_unit_test(nul_and_stray_bytes_are_refused),
        cmocka_unit_test(overlong_surrogate_and_out_of_range_are_refused),
        cmocka_unit_test(the_length_bounds_the_check),
        cmocka_unit_test(sanitize_keeps_valid_text_and_replaces_bad_runs),
        cmocka_unit_test(sanitize_never_cuts_a_character_at_the_limit),
        cmocka_unit_test(sanitize_turns_random_bytes_into_valid_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
