/*
 * test_text_head.c - the start of a stream kept as text: chunks append
 * until the buffer is full, the rest is taken and dropped (a transfer never
 * fails for a long body), and the text is always NUL-terminated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/text_head.h"

static size_t keep(bz_text_head *h, const char *s)
{
    char chunk[64];
    snprintf(chunk, sizeof chunk, "%s", s);
    return bz_text_head_keep(chunk, 1, strlen(s), h);
}

static void chunks_append_until_full(void **state)
{
    (void)state;
    char buf[8];
    bz_text_head h;
    bz_text_head_init(&h, buf, sizeof buf);
    assert_string_equal(h.text, "");
    assert_int_equal(keep(&h, "abc"), 3);
    assert_int_equal(keep(&h, "de"), 2);
    assert_string_equal(h.text, "abcde");
    assert_int_equal(h.len, 5);
}

static void what_does_not_fit_is_taken_and_dropped(void **state)
{
    (void)state;
    char buf[8];
    bz_text_head h;
    bz_text_head_init(&h, buf, sizeof buf);
    assert_int_equal(keep(&h, "0123456789"), 10);
    assert_string_equal(h.text, "0123456");
    assert_int_equal(keep(&h, "more"), 4);
    assert_string_equal(h.text, "0123456");
    char block[6] = "xyzxyz";
    assert_int_equal(bz_text_head_keep(block, 3, 2, &h), 6); /* size * n, as libcurl counts */
}

static void init_starts_over(void **state)
{
    (void)state;
    char buf[4];
    bz_text_head h;
    bz_text_head_init(&h, buf, sizeof buf);
    keep(&h, "abcdef");
    bz_text_head_init(&h, buf, sizeof buf);
    assert_string_equal(h.text, "");
    keep(&h, "z");
    assert_string_equal(h.text, "z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chunks_append_until_full),
        cmocka_unit_test(what_does_not_fit_is_taken_and_dropped),
        cmocka_unit_test(init_starts_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
