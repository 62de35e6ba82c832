/*
 * itest_bench.c - a benchmark's main(), and the sorting and quantiles the
 * benchmarks share (itest_bench.h).
 */
#include "itest_bench.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

/* BLAZZ_TEST_BIN_DIR from BLAZZ_BIN_DIR (build/bin -> build) when only the
 * latter is set. */
static void find_programs_beside_the_binaries(void)
{
    const char *bin = getenv("BLAZZ_BIN_DIR");
    if (getenv("BLAZZ_TEST_BIN_DIR") || !bin)
        return;
    char *copy = strdup(bin);
    if (copy)
        setenv("BLAZZ_TEST_BIN_DIR", dirname(copy), 1);
    free(copy);
}

int itest_bench_run(const char *name, CMUnitTestFunction bench, CMFixtureFunction teardown)
{
    find_programs_beside_the_binaries();
    const struct CMUnitTest tests[] = {
        {.name = name, .test_func = bench, .setup_func = NULL, .teardown_func = teardown,
         .initial_state = NULL},
    };
    return cmocka_run_group_tests_name(name, tests, NULL, NULL);
}

int itest_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int64_t itest_percentile(const int64_t *sorted, size_t n, double q)
{
    return n ? sorted[(size_t)(q * (double)(n - 1))] : -1;
}
