/*
 * test_wa_bsuid.c - the shape of Meta's business-scoped user ids: the
 * examples in Meta's BSUID documentation pass, the bounds of the id (1 and
 * 128 characters), and every way a string can miss the shape fails; a
 * parent BSUID is never a BSUID and the reverse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "wa/bsuid.h"

/* "CC." (or "CC.ENT.") followed by n copies of c. */
static const char *id_of(char *buf, const char *prefix, size_t n, char c)
{
    size_t p = strlen(prefix);
    memcpy(buf, prefix, p);
    memset(buf + p, c, n);
    buf[p + n] = '\0';
    return buf;
}

static void test_meta_examples_pass(void **state)
{
    (void)state;
    assert_true(bz_bsuid_valid("US.13491208655302741918"));
    assert_true(bz_bsuid_valid("BR.1502576394655843"));
    assert_true(bz_bsuid_valid("IN.1648738043044942"));
    assert_true(bz_parent_bsuid_valid("US.ENT.11815799212886844830"));
}

static void test_id_length_bounds(void **state)
{
    (void)state;
    char buf[160];
    assert_true(bz_bsuid_valid(id_of(buf, "US.", 1, '7')));
    assert_true(bz_bsuid_valid(id_of(buf, "US.", 128, 'a')));
    assert_false(bz_bsuid_valid(id_of(buf, "US.", 129, 'a')));
    assert_false(bz_bsuid_valid(id_of(buf, "US.", 0, 'a')));
    assert_true(bz_parent_bsuid_valid(id_of(buf, "US.ENT.", 128, 'Z')));
    assert_false(bz_parent_bsuid_valid(id_of(buf, "US.ENT.", 129, 'Z')));
    assert_false(bz_parent_bsuid_valid(id_of(buf, "US.ENT.", 0, 'Z')));
}

static void test_misshapen_fail(void **state)
{
    (void)state;
    const char *bad[] = {NULL, "", "US", "US.", "us.123", "U.123", "USA.123", "US-123",
                         "US.12 3", "US.12-3", "US.12.3", " US.123", "US.123 ", "+15551234567",
                         "15551234567", "US.123\n", "1234567@lid", "US.12_3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bz_bsuid_valid(bad[i]))
            fail_msg("case %zu accepted as a BSUID", i);
        if (bz_parent_bsuid_valid(bad[i]))
            fail_msg("case %zu accepted as a parent BSUID", i);
    }
}

static void test_kinds_do_not_mix(void **state)
{
    (void)state;
    assert_false(bz_bsuid_valid("US.ENT.11815799212886844830"));
    assert_false(bz_parent_bsuid_valid("US.13491208655302741918"));
    assert_false(bz_parent_bsuid_valid("US.ENT11815799212886844830"));
    assert_false(bz_parent_bsuid_valid("US.ENT."));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_examples_pass),
        cmocka_unit_test(test_id_length_bounds),
        cmocka_unit_test(test_misshapen_fail),
        cmocka_unit_test(test_kinds_do_not_mix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
