/*
 * test_json_escape.c - the one hand-built JSON string escaper: what RFC 8259
 * asks is escaped, and the output is well-formed UTF-8 whatever goes in. A
 * client's bytes reach error bodies and log lines through it, and a reader
 * (a Standard Webhooks library, Schemathesis, jq) refuses a whole document
 * for one character cut in half.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"
#include "core/utf8.h"

static void quotes_backslashes_and_controls_are_escaped(void **state)
{
    (void)state;
    char out[64];
    size_t n = bz_json_escape(out, sizeof out, "a\"b\\c\nd\te\x01");
    assert_string_equal(out, "a\\\"b\\\\c\\nd\\te\\u0001");
    assert_int_equal(n, strlen(out));
}

static void well_formed_characters_pass_unchanged(void **state)
{
    (void)state;
    char out[64];
    bz_json_escape(out, sizeof out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    assert_string_equal(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

/* A byte that does not decode (Latin-1, a lone continuation, a surrogate,
 * the tail of a character cut by an earlier limit) is shown as '?'. */
static void bytes_that_do_not_decode_become_question_marks(void **state)
{
    (void)state;
    char out[64];
    bz_json_escape(out, sizeof out, "caf\xe9 \x80 \xed\xa0\x80 end\xf0\x9f\x98");
    assert_string_equal(out, "caf? ? ??? end???");
    assert_true(bz_utf8_valid(out, strlen(out)));
}

/* The output limit never cuts a character: one that does not fit whole is
 * left out, at every limit across it. */
static void the_limit_never_cuts_a_character(void **state)
{
    (void)state;
    const char *text = "ab\xf0\x9f\x98\x80";
    for (size_t cap = 1; cap <= 7; cap++) {
        char out[8];
        size_t n = bz_json_escape(out, cap, text);
        assert_true(bz_utf8_valid(out, n));
        assert_int_equal(n, cap < 7 ? (cap > 2 ? 2 : cap - 1) : 6);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quotes_backslashes_and_controls_are_escaped),
        cmocka_unit_test(well_formed_characters_pass_unchanged),
        cmocka_unit_test(bytes_that_do_not_decode_become_question_marks),
        cmocka_unit_test(the_limit_never_cuts_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
