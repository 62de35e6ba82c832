/*
 * test_wa_meta_group.c - the shape of a group's key: the group_id of Meta's
 * group messages webhook reference passes as a Meta id and as a key, a
 * canonical group JID is a key and no Meta id, the bounds of a Meta id
 * (1 and 128 characters) hold, and what is neither fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "wa/meta_group.h"

#define META_SAMPLE "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD"

static void test_meta_sample_and_jids(void **state)
{
    (void)state;
    assert_true(bz_meta_group_id_valid(META_SAMPLE));
    assert_true(bz_group_key_valid(META_SAMPLE));
    assert_true(bz_meta_group_id_valid("a_b-c=="));
    assert_true(bz_group_key_valid("120363012345678901@g.us"));
    assert_false(bz_meta_group_id_valid("120363012345678901@g.us"));
}

static void test_bounds_and_misshapen(void **state)
{
    (void)state;
    char buf[160];
    memset(buf, 'A', 128);
    buf[128] = '\0';
    assert_true(bz_meta_group_id_valid(buf));
    buf[128] = 'A';
    buf[129] = '\0';
    assert_false(bz_meta_group_id_valid(buf));
    const char *bad[] = {NULL, "", "a b", "abc/def", "abc+", "6281234567890@s.whatsapp.net",
                         "1234567@lid", "@g.us", "abc\n", "abc.def"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bz_meta_group_id_valid(bad[i]))
            fail_msg("case %zu accepted as a Meta group id", i);
        if (bz_group_key_valid(bad[i]))
            fail_msg("case %zu accepted as a group key", i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_sample_and_jids),
        cmocka_unit_test(test_bounds_and_misshapen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
