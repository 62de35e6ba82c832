/*
 * test_status.c - a failure's message grows as it travels up: bz_wrap puts
 * context in front of the message already there, whole, however long it
 * is, and bz_reclass gives the failure another code and reason without
 * touching the message. Together they are the one way to say "this inner
 * failure means that here" (formatting err->msg into itself garbles it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/status.h"

static void wrap_puts_context_in_front_of_the_whole_message(void **state)
{
    (void)state;
    bz_error err;
    bz_fail(&err, BZ_ERR_INVALID, "phone: too short (%d digits, need at least %d)", 5, 8);
    assert_int_equal(bz_wrap(&err, "field %s", "contact_phone"), BZ_ERR_INVALID);
    assert_string_equal(err.msg, "field contact_phone: phone: too short (5 digits, need at least 8)");
    assert_int_equal(err.code, BZ_ERR_INVALID);
}

static void wrap_of_a_full_message_keeps_its_start_and_truncates_the_end(void **state)
{
    (void)state;
    bz_error err;
    char inner[BZ_ERROR_MSG_MAX];
    memset(inner, 'x', sizeof inner - 1);
    inner[sizeof inner - 1] = '\0';
    bz_fail(&err, BZ_ERR_TRANSIENT, "%s", inner);
    bz_wrap(&err, "account %d", 7);
    assert_int_equal(strlen(err.msg), BZ_ERROR_MSG_MAX - 1);
    assert_memory_equal(err.msg, "account 7: xxx", 14);
    assert_int_equal(err.msg[BZ_ERROR_MSG_MAX - 2], 'x');
}

static void reclass_changes_code_and_reason_and_keeps_the_message(void **state)
{
    (void)state;
    bz_error err;
    bz_fail(&err, BZ_ERR_NOT_FOUND, "field template.name: no template 'x'");
    assert_int_equal(bz_reclass(&err, BZ_ERR_INVALID, "unknown_template"), BZ_ERR_INVALID);
    assert_int_equal(err.code, BZ_ERR_INVALID);
    assert_string_equal(err.reason, "unknown_template");
    assert_string_equal(err.msg, "field template.name: no template 'x'");

    bz_reject(&err, "invalid_field", "field x: bad");
    assert_int_equal(bz_reclass(&err, BZ_ERR_TRANSIENT, NULL), BZ_ERR_TRANSIENT);
    assert_null(err.reason);
    assert_string_equal(err.msg, "field x: bad");
}

static void a_missing_error_is_no_crash(void **state)
{
    (void)state;
    assert_int_equal(bz_reclass(NULL, BZ_ERR_CONFIG, NULL), BZ_ERR_CONFIG);
    assert_int_equal(bz_wrap(NULL, "context"), BZ_ERR_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wrap_puts_context_in_front_of_the_whole_message),
        cmocka_unit_test(wrap_of_a_full_message_keeps_its_start_and_truncates_the_end),
        cmocka_unit_test(reclass_changes_code_and_reason_and_keeps_the_message),
        cmocka_unit_test(a_missing_error_is_no_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
