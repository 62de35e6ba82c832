/*
 * test_pg_columns.c - the one writer of PostgreSQL array literals
 * (bz_pg_array, libs/pg/columns.h) and the whole-array renderers built on
 * it. Every multi-row statement sends its rows through these literals, so
 * a text element must reach PostgreSQL as the bytes it was: '"' and '\'
 * escaped, commas, braces, blanks and the word NULL kept as data inside
 * the quotes, and only a NULL pointer sent as SQL NULL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pg/columns.h"

static void text_elements_are_quoted_and_escaped(void **state)
{
    (void)state;
    bz_pg_array a;
    bz_pg_array_init(&a);
    bz_pg_array_text(&a, "plain");
    bz_pg_array_text(&a, "say \"hi\"");
    bz_pg_array_text(&a, "C:\\dir\\");
    bz_pg_array_text(&a, "a,b {c} d");
    bz_pg_array_text(&a, "NULL");
    bz_pg_array_text(&a, "");
    bz_pg_array_text(&a, NULL);
    assert_string_equal(bz_pg_array_finish(&a), "{\"plain\",\"say \\\"hi\\\"\",\"C:\\\\dir\\\\\","
                                                 "\"a,b {c} d\",\"NULL\",\"\",NULL}");
    assert_int_equal(a.n, 7);
    bz_pg_array_free(&a);
}

static void numbers_booleans_and_nulls_are_bare(void **state)
{
    (void)state;
    bz_pg_array a;
    bz_pg_array_init(&a);
    bz_pg_array_int64(&a, 0);
    bz_pg_array_int64(&a, INT64_MIN);
    bz_pg_array_int64(&a, INT64_MAX);
    bz_pg_array_int64_or_null(&a, 0);
    bz_pg_array_int64_or_null(&a, -7);
    bz_pg_array_bool(&a, true);
    bz_pg_array_bool(&a, false);
    bz_pg_array_null(&a);
    assert_string_equal(bz_pg_array_finish(&a), "{0,-9223372036854775808,9223372036854775807,"
                                                 "NULL,-7,t,f,NULL}");
    bz_pg_array_free(&a);
}

/* "\\x<hex>" inside the quotes: PostgreSQL unescapes it to \x<hex>, which
 * ::bytea[] decodes to the bytes. */
static void bytea_elements_travel_as_escaped_hex(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0x00, 0x22, 0x5c, 0xff};
    bz_pg_array a;
    bz_pg_array_init(&a);
    bz_pg_array_bytea(&a, bytes, sizeof bytes);
    bz_pg_array_bytea(&a, NULL, 0);
    assert_string_equal(bz_pg_array_finish(&a), "{\"\\\\x00225cff\",\"\\\\x\"}");
    bz_pg_array_free(&a);
}

static void an_empty_array_is_braces_and_finish_is_idempotent(void **state)
{
    (void)state;
    bz_pg_array a;
    bz_pg_array_init(&a);
    const char *first = bz_pg_array_finish(&a);
    assert_string_equal(first, "{}");
    assert_ptr_equal(bz_pg_array_finish(&a), first);
    bz_pg_array_free(&a);
}

/* Many elements, long ones too: the buffer grows past its first size and
 * every element comes through whole. */
static void a_long_array_grows_and_keeps_every_element(void **state)
{
    (void)state;
    enum { N = 2000 };
    char big[1000];
    memset(big, '"', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    bz_pg_array a;
    bz_pg_array_init(&a);
    for (int i = 0; i < N; i++)
        bz_pg_array_text(&a, i % 100 == 0 ? big : "x");
    const char *lit = bz_pg_array_finish(&a);
    assert_non_null(lit);
    size_t quotes_escaped = 0;
    for (const char *p = lit; *p; p++)
        quotes_escaped += p[0] == '\\' && p[1] == '"';
    assert_int_equal(quotes_escaped, (N / 100) * (sizeof big - 1));
    assert_int_equal(strlen(lit), 2 + (N - 1) + (N - N / 100) * 3 + (N / 100) * (2 * 999 + 2));
    bz_pg_array_free(&a);
}

/* The whole-array renderers write what the appender writes. */
static void whole_arrays_match_the_appender(void **state)
{
    (void)state;
    const char *texts[] = {"a\"b", NULL, "c\\d", "", "e,f"};
    char *rendered = bz_pg_text_array(texts, 5);
    assert_string_equal(rendered, "{\"a\\\"b\",NULL,\"c\\\\d\",\"\",\"e,f\"}");
    free(rendered);
    const int64_t ints[] = {1, -2, INT64_MIN, 0};
    rendered = bz_pg_int64_array(ints, 4);
    assert_string_equal(rendered, "{1,-2,-9223372036854775808,0}");
    free(rendered);
    rendered = bz_pg_text_array(NULL, 0);
    assert_string_equal(rendered, "{}");
    free(rendered);
    rendered = bz_pg_int64_array(NULL, 0);
    assert_string_equal(rendered, "{}");
    free(rendered);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_elements_are_quoted_and_escaped),
        cmocka_unit_test(numbers_booleans_and_nulls_are_bare),
        cmocka_unit_test(bytea_elements_travel_as_escaped_hex),
        cmocka_unit_test(an_empty_array_is_braces_and_finish_is_idempotent),
        cmocka_unit_test(a_long_array_grows_and_keeps_every_element),
        cmocka_unit_test(whole_arrays_match_the_appender),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
