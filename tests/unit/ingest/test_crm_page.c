/*
 * test_crm_page.c - a keyset page of the CRM's reads (services/ingest/crm/
 * crm_page.h) and the query arguments it is read from (crm_request.h):
 *  - a cursor formatted is parsed back to the same row, at the ends of its
 *    range too, and has one spelling: a sign, a leading zero, a space, a
 *    missing or extra part, an id of 0 or a number past int64 is refused
 *    naming the argument;
 *  - a page's size is 50 by default, 1 to 200 when given, else refused;
 *  - an argument is found by its name, counted when given more than once,
 *    "" when given without "=", absent as NULL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crm/crm_page.h"
#include "crm/crm_request.h"

static void assert_round_trip(int64_t created_us, int64_t id)
{
    char text[ING_CRM_CURSOR_SIZE];
    ing_crm_cursor_format((ing_crm_cursor){created_us, id}, text, sizeof text);
    ing_crm_cursor back = {0, 0};
    bz_error err;
    assert_int_equal(ing_crm_cursor_parse(text, "before", &back, &err), BZ_OK);
    assert_true(back.created_us == created_us);
    assert_true(back.id == id);
}

static void a_cursor_parses_back_to_its_row(void **state)
{
    (void)state;
    assert_round_trip(1732437000123456, 98765);
    assert_round_trip(0, 1);
    assert_round_trip(INT64_MAX, INT64_MAX);
    char text[ING_CRM_CURSOR_SIZE];
    ing_crm_cursor_format((ing_crm_cursor){1732437000123456, 98765}, text, sizeof text);
    assert_string_equal(text, "c1_1732437000123456_98765");
}

static void assert_cursor_refused(const char *text)
{
    ing_crm_cursor cur = {7, 7};
    bz_error err;
    if (ing_crm_cursor_parse(text, "before", &cur, &err) != BZ_ERR_INVALID)
        fail_msg("cursor '%s' was taken", text);
    assert_string_equal(err.reason, "invalid_field");
    assert_non_null(strstr(err.msg, "field before:"));
    assert_true(cur.created_us == 7 && cur.id == 7);
}

static void a_cursor_has_one_spelling(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "", "c1_", "c1_1_", "c1__1", "1_1", "c2_1_1", "c1_1_0", "c1_-1_5", "c1_+1_5",
        "c1_01_5", "c1_1_05", "c1_1 _5", "c1_1_5 ", "c1_1_5_6", "c1_1_5x",
        "c1_9223372036854775808_1", "c1_1_9223372036854775808", "C1_1_5",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_cursor_refused(refused[i]);
}

static void assert_limit(const char *text, bz_status want, int want_limit)
{
    int limit = -1;
    bz_error err;
    if (ing_crm_page_limit(text, "limit", &limit, &err) != want)
        fail_msg("limit '%s': not the status expected", text ? text : "(absent)");
    if (want == BZ_OK)
        assert_int_equal(limit, want_limit);
    else
        assert_non_null(strstr(err.msg, "field limit:"));
}

static void a_page_holds_50_by_default_and_at_most_200(void **state)
{
    (void)state;
    assert_limit(NULL, BZ_OK, ING_CRM_PAGE_DEFAULT);
    assert_int_equal(ING_CRM_PAGE_DEFAULT, 50);
    assert_limit("1", BZ_OK, 1);
    assert_limit("200", BZ_OK, 200);
    assert_limit("37", BZ_OK, 37);
    static const char *const refused[] = {"", "0", "201", "-1", "+5", "05", "5 ", "abc",
                                          "99999999999999999999", "1.5"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_limit(refused[i], BZ_ERR_INVALID, 0);
}

static void an_argument_is_found_by_name_and_counted(void **state)
{
    (void)state;
    static const char args[] = "phone\0+6281\0limit\0\0phone\0x\0bsuid\0US.1";
    ing_crm_request rq = {.args = args, .args_len = sizeof args - 1}; /* not the literal's NUL */
    int times = 0;
    assert_string_equal(ing_crm_request_arg(&rq, "phone", &times), "+6281");
    assert_int_equal(times, 2);
    assert_string_equal(ing_crm_request_arg(&rq, "limit", &times), "");
    assert_int_equal(times, 1);
    assert_string_equal(ing_crm_request_arg(&rq, "bsuid", NULL), "US.1");
    assert_null(ing_crm_request_arg(&rq, "lid", &times));
    assert_int_equal(times, 0);
    ing_crm_request none = {0};
    assert_null(ing_crm_request_arg(&none, "phone", &times));
    assert_int_equal(times, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_cursor_parses_back_to_its_row),
        cmocka_unit_test(a_cursor_has_one_spelling),
        cmocka_unit_test(a_page_holds_50_by_default_and_at_most_200),
        cmocka_unit_test(an_argument_is_found_by_name_and_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
