/*
 * test_bytes.c - libs/core/bytes.h: a body collected piece by piece grows
 * by doubling up to its most and never past it, stays NUL-terminated, and
 * a piece that would pass the most is refused whole; the next capacity a
 * guarded caller takes ahead is the one the buffer then grows to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/bytes.h"

static void pieces_grow_by_doubling_up_to_the_most(void **state)
{
    (void)state;
    bz_bytes b = {0};
    bz_error err;
    char piece[1000];
    memset(piece, 'x', sizeof piece);
    size_t reallocations = 0, last_cap = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(bz_bytes_append(&b, piece, sizeof piece, 100000, &err), BZ_OK);
        if (b.cap != last_cap)
            reallocations++;
        last_cap = b.cap;
    }
    assert_int_equal(b.len, 100000);
    assert_int_equal(b.cap, 100000); /* doubling stopped at the most */
    assert_true(reallocations <= 6); /* 4096 .. 65536, then the most */
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(bz_bytes_append(&b, "y", 1, 100000, &err), BZ_ERR_INVALID);
    assert_int_equal(b.len, 100000);
    bz_bytes_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len + b.cap, 0);
}

static void a_piece_past_the_most_is_refused_whole(void **state)
{
    (void)state;
    bz_bytes b = {0};
    bz_error err;
    assert_int_equal(bz_bytes_append(&b, "hello", 5, 8, &err), BZ_OK);
    assert_int_equal(bz_bytes_append(&b, "world", 5, 8, &err), BZ_ERR_INVALID);
    assert_string_equal(b.data, "hello");
    assert_int_equal(bz_bytes_append(&b, "!!!", 3, 8, &err), BZ_OK);
    assert_string_equal(b.data, "hello!!!");
    assert_int_equal(b.cap, 8);
    bz_bytes_free(&b);
}

static void the_next_capacity_is_what_reserve_takes(void **state)
{
    (void)state;
    bz_bytes b = {0};
    bz_error err;
    size_t cap = 0;
    /* an empty body still gets its NUL */
    assert_true(bz_bytes_next_cap(&b, 0, 0, &cap));
    assert_int_equal(cap, 0);
    assert_int_equal(bz_bytes_reserve(&b, cap, &err), BZ_OK);
    assert_string_equal(b.data, "");
    assert_true(bz_bytes_next_cap(&b, 10, 1 << 20, &cap));
    assert_int_equal(cap, 4096);
    assert_int_equal(bz_bytes_reserve(&b, cap, &err), BZ_OK);
    assert_true(bz_bytes_next_cap(&b, 10, 1 << 20, &cap));
    assert_int_equal(cap, 4096); /* it fits: no growth to take */
    assert_false(bz_bytes_next_cap(&b, (1 << 20) + 1, 1 << 20, &cap));
    assert_false(bz_bytes_next_cap(&b, SIZE_MAX, SIZE_MAX - 1, &cap));
    bz_bytes_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pieces_grow_by_doubling_up_to_the_most),
        cmocka_unit_test(a_piece_past_the_most_is_refused_whole),
        cmocka_unit_test(the_next_capacity_is_what_reserve_takes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
