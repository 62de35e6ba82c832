/*
 * itest_bench.h - the main() of a benchmark written as one cmocka test
 * (tests/bench/<component>/bench_*.c), so that the integration helpers can
 * drive it as they drive a test.
 *
 * scripts/bench.sh gives the release binaries as BLAZZ_BIN_DIR (build/bin)
 * while the helpers look for bin/<program> under BLAZZ_TEST_BIN_DIR, which
 * is set here to BLAZZ_BIN_DIR's parent unless it is already given.
 */
#ifndef ITEST_BENCH_H
#define ITEST_BENCH_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Run bench as the cmocka test name, then teardown (NULL: none); returns
 * the exit status for main. */
int itest_bench_run(const char *name, CMUnitTestFunction bench, CMFixtureFunction teardown);

/* qsort's comparison of int64_t (latencies in ms). */
int itest_cmp_i64(const void *a, const void *b);
/* The q-quantile (0..1) of n sorted values, nearest rank below; -1 when n
 * is 0. */
int64_t itest_percentile(const int64_t *sorted, size_t n, double q);

#endif
