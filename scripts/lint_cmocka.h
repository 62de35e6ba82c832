/*
 * lint_cmocka.h - cmocka's assertions restated for the static analyzer.
 *
 * scripts/lint.sh force-includes this header (clang-tidy only, never a real
 * build) into every C file that uses cmocka. A failed cmocka assertion ends
 * the test: it reaches _fail, which jumps out of the running test or exits.
 * cmocka does not declare _fail as not returning and hides the comparison in
 * _assert_true / _assert_int_equal, so the analyzer follows paths past a
 * failed assertion and reports leaks and NULL uses that cannot happen. Here
 * _fail is declared noreturn and the common assertions become plain
 * conditions that reach it, with cmocka's own casts. The string, memory and
 * float assertions stay as cmocka wrote them.
 */
#ifndef BZ_LINT_CMOCKA_H
#define BZ_LINT_CMOCKA_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

void _fail(const char *const file, const int line) __attribute__((noreturn));

#define BZ_LINT_CHECK(c) ((c) ? (void)0 : _fail(__FILE__, __LINE__))

#undef assert_true
#undef assert_false
#undef assert_non_null
#undef assert_null
#undef assert_int_equal
#undef assert_int_not_equal
#undef assert_ptr_equal
#undef assert_ptr_not_equal
#undef assert_in_range

#define assert_true(c) BZ_LINT_CHECK(c)
#define assert_false(c) BZ_LINT_CHECK(!(c))
#define assert_non_null(p) BZ_LINT_CHECK(p)
#define assert_null(p) BZ_LINT_CHECK(!(p))
#define assert_int_equal(a, b) \
    BZ_LINT_CHECK((LargestIntegralType)(a) == (LargestIntegralType)(b))
#define assert_int_not_equal(a, b) \
    BZ_LINT_CHECK((LargestIntegralType)(a) != (LargestIntegralType)(b))
#define assert_ptr_equal(a, b) BZ_LINT_CHECK((const void *)(a) == (const void *)(b))
#define assert_ptr_not_equal(a, b) BZ_LINT_CHECK((const void *)(a) != (const void *)(b))
#define assert_in_range(v, lo, hi)                                 \
    BZ_LINT_CHECK((LargestIntegralType)(v) >= (LargestIntegralType)(lo) && \
                  (LargestIntegralType)(v) <= (LargestIntegralType)(hi))

#endif
