/*
 * test_wa_template_vars.c - a template text's variables as Meta reads them
 * (libs/wa/template_vars.h): positional {{1}}..{{n}} in number order,
 * named {{first_name}} in order of first use, one kind per text, no gaps;
 * a text filled with its variables' values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wa/template_vars.h"

static bz_wa_template_vars read_ok(const char *text)
{
    bz_wa_template_vars v;
    bz_error err;
    bz_error_clear(&err);
    if (bz_wa_template_vars_read(text, &v, &err) != BZ_OK)
        fail_msg("%s: refused: %s", text, err.msg);
    return v;
}

static void positional_in_number_order(void **state)
{
    (void)state;
    bz_wa_template_vars v = read_ok("Kode {{2}} untuk {{1}}, sekali lagi {{ 2 }}");
    assert_int_equal(v.format, BZ_WA_VARS_POSITIONAL);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.names[0], "1");
    assert_string_equal(v.names[1], "2");
}

static void named_in_order_of_first_use(void **state)
{
    (void)state;
    bz_wa_template_vars v = read_ok("Halo {{first_name}}, nomor {{phone}} ({{first_name}})");
    assert_int_equal(v.format, BZ_WA_VARS_NAMED);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.names[0], "first_name");
    assert_string_equal(v.names[1], "phone");
    assert_int_equal(bz_wa_template_var_index(&v, "phone", 5), 1);
    assert_int_equal(bz_wa_template_var_index(&v, "city", 4), -1);
}

static void what_is_not_a_variable(void **state)
{
    (void)state;
    bz_wa_template_vars v = read_ok("{Name} {{Name}} {{0}} {{12345}} {{first name}} {{}} {{a-b}}");
    assert_int_equal(v.format, BZ_WA_VARS_NONE);
    assert_int_equal(v.n, 0);
    v = read_ok(NULL);
    assert_int_equal(v.n, 0);
    const char *name;
    size_t len;
    assert_int_equal(bz_wa_template_var_at("{{ order_2 }}!", &name, &len), 13);
    assert_int_equal(len, 7);
    assert_memory_equal(name, "order_2", 7);
}

static void filled_by_variable(void **state)
{
    (void)state;
    bz_wa_template_vars v = read_ok("Kode {{2}} untuk {{ 1 }} ({{2}}), {{Name}} {{-x}}");
    const char *values[] = {"Ann", "K-7"};
    char *text = bz_wa_template_fill("Kode {{2}} untuk {{ 1 }} ({{2}}), {{Name}} {{-x}}", &v,
                                     values);
    assert_string_equal(text, "Kode K-7 untuk Ann (K-7), {{Name}} {{-x}}");
    free(text);
}

static void refused_texts(void **state)
{
    (void)state;
    bz_wa_template_vars v;
    bz_error err;
    assert_int_equal(bz_wa_template_vars_read("Hi {{1}} {{name}}", &v, &err), BZ_ERR_INVALID);
    assert_string_equal(err.reason, "bad_template");
    assert_int_equal(bz_wa_template_vars_read("Hi {{1}} and {{3}}", &v, &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "{{2}} is missing"));
    assert_int_equal(bz_wa_template_vars_read("{{40}}", &v, &err), BZ_ERR_INVALID);
    char many[1024] = "";
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "{{v%d}} ", i);
    assert_int_equal(bz_wa_template_vars_read(many, &v, &err), BZ_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(positional_in_number_order),
        cmocka_unit_test(named_in_order_of_first_use),
        cmocka_unit_test(what_is_not_a_variable),
        cmocka_unit_test(filled_by_variable),
        cmocka_unit_test(refused_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
