/*
 * test_utf8.c - the UTF-8 check accepts every well-formed sequence length
 * and refuses what PostgreSQL text and JSON refuse: NUL, stray and missing
 * continuation bytes, overlong forms, surrogates, code points past U+10FFFF;
 * scrubbing replaces exactly the bytes that do not decode.
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

/* Scrubbing keeps well-formed text and replaces each stray byte. */
static void scrub_replaces_only_what_does_not_decode(void **state)
{
    (void)state;
    char ok[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x8d";
    bz_utf8_scrub(ok);
    assert_string_equal(ok, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x8d");
    char cut[] = "detail \xe2\x82";                     /* a character cut by a limit */
    bz_utf8_scrub(cut);
    assert_string_equal(cut, "detail ??");
    char latin1[] = "caf\xe9!\xed\xa0\x80";             /* Latin-1, then a surrogate */
    bz_utf8_scrub(latin1);
    assert_string_equal(latin1, "caf?!???");
    assert_true(bz_utf8_valid(latin1, strlen(latin1)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(well_formed_text_of_every_length_is_accepted),
        cmocka_unit_test(nul_and_stray_bytes_are_refused),
        cmocka_unit_test(overlong_surrogate_and_out_of_range_are_refused),
        cmocka_unit_test(the_length_bounds_the_check),
        cmocka_unit_test(scrub_replaces_only_what_does_not_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
