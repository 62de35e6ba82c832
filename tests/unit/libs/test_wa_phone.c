/*
 * test_wa_phone.c - E.164 normalization: every accepted input form, every
 * rejection with its code and message, output buffer boundaries, and the
 * invariant that normalizing is idempotent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "status_asserts.h"
#include "wa/phone.h"

typedef struct good_case {
    const char *input;
    const char *default_cc;
    const char *want;
} good_case;

static const good_case good_cases[] = {
    {"+62 812-3456-7890", "62", "+6281234567890"},
    {"+62 812-3456-7890", NULL, "+6281234567890"},
    {"0812 3456 7890", "62", "+6281234567890"},
    {"0812-3456-7890", "+62", "+6281234567890"},
    {"(0812) 3456.7890", "62", "+6281234567890"},
    {"6281234567890", NULL, "+6281234567890"},
    {"6281234567890", "62", "+6281234567890"},
    {"00 62 812 3456 7890", NULL, "+6281234567890"},
    {"0062.812.3456.7890", "62", "+6281234567890"},
    {"+6281234567890", "62", "+6281234567890"},
    {"  +6281234567890\t", NULL, "+6281234567890"},
    {"+44 (0)20 7946 0958", NULL, "+442079460958"},
    {"+1 (415) 555-2671", NULL, "+14155552671"},
    {"020 7946 0958", "44", "+442079460958"},
    {"0415 555 2671", "1", "+14155552671"},
    {"+12345678", NULL, "+12345678"},               /* 8 digits: the minimum */
    {"+123456789012345", NULL, "+123456789012345"}, /* 15 digits: the maximum */
    {"01234567", "1", "+11234567"},                  /* trunk 0 + cc reaching exactly 8 */
};

static void test_accepts_common_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        const good_case *c = &good_cases[i];
        char out[BZ_PHONE_E164_SIZE];
        bz_error err = {0};
        bz_status st = bz_phone_normalize(c->input, c->default_cc, out, sizeof out, &err);
        if (st != BZ_OK)
            fail_msg("case %zu \"%s\": %s", i, c->input, err.msg);
        assert_string_equal(out, c->want);
        assert_true(bz_phone_is_e164(out));
    }
}

static void test_normalizing_is_idempotent(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        char once[BZ_PHONE_E164_SIZE], twice[BZ_PHONE_E164_SIZE];
        assert_int_equal(bz_phone_normalize(good_cases[i].input, good_cases[i].default_cc, once,
                                            sizeof once, NULL),
                         BZ_OK);
        /* A different default country must not change an E.164 number. */
        assert_int_equal(bz_phone_normalize(once, "1", twice, sizeof twice, NULL), BZ_OK);
        assert_string_equal(once, twice);
    }
}

typedef struct bad_case {
    const char *input;
    const char *default_cc;
    bz_status code;
    const char *want;
} bad_case;

static const bad_case bad_cases[] = {
    {"", "62", BZ_ERR_INVALID, "empty"},
    {"   ", "62", BZ_ERR_INVALID, "empty"},
    {"+", "62", BZ_ERR_INVALID, "empty"},
    {"-().", "62", BZ_ERR_INVALID, "empty"},
    {"abc", "62", BZ_ERR_INVALID, "unexpected character 'a' at offset 0"},
    {"+62 812 3456 789O", "62", BZ_ERR_INVALID, "unexpected character 'O' at offset 16"},
    {"+62 812_3456_7890", "62", BZ_ERR_INVALID, "unexpected character '_' at offset 7"},
    {"+62\x01" "81234567890", "62", BZ_ERR_INVALID, "byte 0x01 at offset 3"},
    {"+62\n81234567890", "62", BZ_ERR_INVALID, "byte 0x0a at offset 3"},
    {"\xd9\xa1\xd9\xa2", "62", BZ_ERR_INVALID, "byte 0xd9 at offset 0"}, /* Arabic digits */
    {"tel:+6281234567890", "62", BZ_ERR_INVALID, "unexpected character 't'"},
    {"62+81234567890", "62", BZ_ERR_INVALID, "'+' at offset 2 must come first"},
    {"++6281234567890", "62", BZ_ERR_INVALID, "'+' at offset 1 must come first"},
    {"0812 3456 7890", NULL, BZ_ERR_INVALID, "needs a default country code"},
    {"0812 3456 7890", "", BZ_ERR_INVALID, "needs a default country code"},
    {"+0812345678", "62", BZ_ERR_INVALID, "country code cannot start with 0"},
    {"+00 62 81234567890", "62", BZ_ERR_INVALID, "country code cannot start with 0"},
    {"000812345678", "62", BZ_ERR_INVALID, "country code cannot start with 0"},
    {"00", "62", BZ_ERR_INVALID, "no digits after the 00 prefix"},
    {"00 ", "62", BZ_ERR_INVALID, "no digits after the 00 prefix"},
    {"+1234567", NULL, BZ_ERR_INVALID, "too short (7 digits, need at least 8)"},
    {"0812", "62", BZ_ERR_INVALID, "too short (5 digits"},
    {"0", "62", BZ_ERR_INVALID, "too short (2 digits"},
    {"+1234567890123456", NULL, BZ_ERR_INVALID, "too long (16 digits, at most 15)"},
    {"0812 3456 7890 1234", "62", BZ_ERR_INVALID, "too long (17 digits"},
    {"+62 (0)", "62", BZ_ERR_INVALID, "too short (2 digits"},
    {"0812 3456 7890", "0", BZ_ERR_CONFIG, "default country code '0' must be 1-3 digits"},
    {"0812 3456 7890", "1234", BZ_ERR_CONFIG, "must be 1-3 digits"},
    {"0812 3456 7890", "6a", BZ_ERR_CONFIG, "must be 1-3 digits"},
    {"0812 3456 7890", "+", BZ_ERR_CONFIG, "must be 1-3 digits"},
    {"0812 3456 7890", "062", BZ_ERR_CONFIG, "must be 1-3 digits"},
};

static void test_rejects_bad_input(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        char out[BZ_PHONE_E164_SIZE] = "garbage";
        bz_error err = {0};
        bz_status st = bz_phone_normalize(c->input, c->default_cc, out, sizeof out, &err);
        assert_failure(st, &err, c->code, c->want);
        assert_string_equal(out, "");
    }
}

static void test_rejects_null_input(void **state)
{
    (void)state;
    char out[BZ_PHONE_E164_SIZE];
    bz_error err = {0};
    assert_failure(bz_phone_normalize(NULL, "62", out, sizeof out, &err), &err, BZ_ERR_INVALID,
                   "phone: missing");
}

static void test_rejects_overlong_input_unread(void **state)
{
    (void)state;
    char input[BZ_PHONE_INPUT_MAX + 2];
    char out[BZ_PHONE_E164_SIZE];
    bz_error err = {0};
    /* Separators only pad; the limit is on raw bytes, not digits. */
    memset(input, ' ', sizeof input - 1);
    memcpy(input, "+6281234567890", 14);
    input[BZ_PHONE_INPUT_MAX] = '\0';
    assert_int_equal(bz_phone_normalize(input, NULL, out, sizeof out, &err), BZ_OK);
    input[BZ_PHONE_INPUT_MAX] = ' ';
    input[BZ_PHONE_INPUT_MAX + 1] = '\0';
    assert_failure(bz_phone_normalize(input, NULL, out, sizeof out, &err), &err, BZ_ERR_INVALID,
                   "input too long");
}

static void test_length_variant_rejects_embedded_nul(void **state)
{
    (void)state;
    static const char input[] = "+6281\0" "234567890";
    char out[BZ_PHONE_E164_SIZE];
    bz_error err = {0};
    assert_failure(bz_phone_normalize_n(input, sizeof input - 1, NULL, out, sizeof out, &err),
                   &err, BZ_ERR_INVALID, "NUL byte at offset 5");
}

static void test_length_variant_reads_only_len_bytes(void **state)
{
    (void)state;
    static const char input[] = "+62 812 3456 7890 and trailing text";
    char out[BZ_PHONE_E164_SIZE];
    bz_error err = {0};
    assert_int_equal(bz_phone_normalize_n(input, 17, NULL, out, sizeof out, &err), BZ_OK);
    assert_string_equal(out, "+6281234567890");
}

static void test_output_buffer_boundaries(void **state)
{
    (void)state;
    char out[BZ_PHONE_E164_SIZE];
    bz_error err = {0};
    /* "+6281234567890" is 14 characters: 15 bytes fit, 14 do not. */
    assert_int_equal(bz_phone_normalize("6281234567890", NULL, out, 15, &err), BZ_OK);
    assert_string_equal(out, "+6281234567890");
    strcpy(out, "garbage");
    assert_failure(bz_phone_normalize("6281234567890", NULL, out, 14, &err), &err,
                   BZ_ERR_INTERNAL, "output buffer too small (14 bytes, need 15)");
    assert_string_equal(out, "");
    assert_failure(bz_phone_normalize("6281234567890", NULL, out, 0, &err), &err,
                   BZ_ERR_INTERNAL, "no output buffer");
    assert_failure(bz_phone_normalize("6281234567890", NULL, NULL, 16, &err), &err,
                   BZ_ERR_INTERNAL, "no output buffer");
    /* The documented size holds the longest number. */
    assert_int_equal(bz_phone_normalize("+123456789012345", NULL, out, BZ_PHONE_E164_SIZE, &err),
                     BZ_OK);
}

static void test_digits_form_drops_the_plus(void **state)
{
    (void)state;
    char out[BZ_PHONE_E164_SIZE];
    bz_error err = {0};
    assert_int_equal(bz_phone_digits("0812-3456-7890", "62", out, sizeof out, &err), BZ_OK);
    assert_string_equal(out, "6281234567890");
    assert_int_equal(bz_phone_digits("+62 812 3456 7890", NULL, out, 14, &err), BZ_OK);
    assert_string_equal(out, "6281234567890");
    assert_failure(bz_phone_digits("+62 812 3456 7890", NULL, out, 13, &err), &err,
                   BZ_ERR_INTERNAL, "too small");
    assert_failure(bz_phone_digits("0812 3456 7890", NULL, out, sizeof out, &err), &err,
                   BZ_ERR_INVALID, "needs a default country code");
}

static void test_null_error_is_allowed(void **state)
{
    (void)state;
    char out[BZ_PHONE_E164_SIZE];
    assert_int_equal(bz_phone_normalize("abc", "62", out, sizeof out, NULL), BZ_ERR_INVALID);
    assert_int_equal(bz_phone_normalize("0812", "bad", out, sizeof out, NULL), BZ_ERR_CONFIG);
}

static void test_is_e164(void **state)
{
    (void)state;
    assert_true(bz_phone_is_e164("+6281234567890"));
    assert_true(bz_phone_is_e164("+12345678"));
    assert_true(bz_phone_is_e164("+123456789012345"));
    assert_false(bz_phone_is_e164(NULL));
    assert_false(bz_phone_is_e164(""));
    assert_false(bz_phone_is_e164("+"));
    assert_false(bz_phone_is_e164("6281234567890"));
    assert_false(bz_phone_is_e164("+0812345678"));
    assert_false(bz_phone_is_e164("+1234567"));
    assert_false(bz_phone_is_e164("+1234567890123456"));
    assert_false(bz_phone_is_e164("+62 81234567890"));
    assert_false(bz_phone_is_e164("+62812345678a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_common_forms),
        cmocka_unit_test(test_normalizing_is_idempotent),
        cmocka_unit_test(test_rejects_bad_input),
        cmocka_unit_test(test_rejects_null_input),
        cmocka_unit_test(test_rejects_overlong_input_unread),
        cmocka_unit_test(test_length_variant_rejects_embedded_nul),
        cmocka_unit_test(test_length_variant_reads_only_len_bytes),
        cmocka_unit_test(test_output_buffer_boundaries),
        cmocka_unit_test(test_digits_form_drops_the_plus),
        cmocka_unit_test(test_null_error_is_allowed),
        cmocka_unit_test(test_is_e164),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
