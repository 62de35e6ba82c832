/*
 * test_hash.c - libs/core/hash.h is 64-bit FNV-1a: the published test
 * vectors, and the string and byte forms agree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/hash.h"

static void known_vectors(void **state)
{
    (void)state;
    assert_true(bz_hash_string("") == 0xcbf29ce484222325ULL);
    assert_true(bz_hash_string("a") == 0xaf63dc4c8601ec8cULL);
    assert_true(bz_hash_string("foobar") == 0x85944171f73967e8ULL);
}

static void bytes_and_strings_agree(void **state)
{
    (void)state;
    assert_true(bz_hash_bytes("foobar", 6) == bz_hash_string("foobar"));
    const unsigned char with_zero[] = {'a', 0, 'b'};
    assert_true(bz_hash_bytes(with_zero, 3) != bz_hash_string("a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_vectors),
        cmocka_unit_test(bytes_and_strings_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
