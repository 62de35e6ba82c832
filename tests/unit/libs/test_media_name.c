/*
 * test_media_name.c - libs/media/name.h: the names kept with stored media
 * are UTF-8 text of 1 to 255 bytes without NUL or control characters; a
 * name that is not is refused whole, never cut (issue 49: a "%FF" name
 * reached PostgreSQL and came back as its error, "a%00b" was kept as "a").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "media/name.h"

static bz_status check(const char *name, size_t len, bz_error *err)
{
    return bz_media_name_check(name, len, err);
}

#define CHECK(lit, err) check((lit), sizeof(lit) - 1, (err))

static void text_names_are_kept(void **state)
{
    (void)state;
    bz_error err;
    assert_int_equal(CHECK("invoice 2026-11.pdf", &err), BZ_OK);
    assert_int_equal(CHECK("foto profil \xF0\x9F\x98\x80.jpg", &err), BZ_OK); /* an emoji */
    assert_int_equal(CHECK("\xE6\x96\x87\xE6\x9B\xB8.docx", &err), BZ_OK);
    char longest[BZ_MEDIA_NAME_MAX];
    memset(longest, 'a', sizeof longest);
    assert_int_equal(check(longest, sizeof longest, &err), BZ_OK);
}

static void bytes_that_are_not_text_are_refused(void **state)
{
    (void)state;
    bz_error err;
    assert_int_equal(CHECK("\xFF.png", &err), BZ_ERR_INVALID);
    assert_string_equal(err.reason, "invalid");
    assert_non_null(strstr(err.msg, "field filename: "));
    assert_int_equal(CHECK("a\0b", &err), BZ_ERR_INVALID);       /* "%00": never cut to "a" */
    assert_int_equal(CHECK("\xC0\xAF.png", &err), BZ_ERR_INVALID); /* an overlong "/" */
    assert_int_equal(CHECK("\xED\xA0\x80.png", &err), BZ_ERR_INVALID); /* a surrogate */
    assert_int_equal(CHECK("caf\xC3", &err), BZ_ERR_INVALID);     /* a cut character */
}

/* Controls, C1 included, and the characters that reorder text (a name
 * shown as another: "invoice<RLO>fdp.exe" reads "invoiceexe.pdf"). */
static void control_characters_and_lengths_are_refused(void **state)
{
    (void)state;
    bz_error err;
    assert_int_equal(CHECK("line\nbreak.txt", &err), BZ_ERR_INVALID);
    assert_int_equal(CHECK("bell\x07", &err), BZ_ERR_INVALID);
    assert_int_equal(CHECK("del\x7f", &err), BZ_ERR_INVALID);
    assert_int_equal(CHECK("c1\xC2\x85", &err), BZ_ERR_INVALID);              /* U+0085 */
    assert_int_equal(CHECK("invoice\xE2\x80\xAE" "fdp.exe", &err), BZ_ERR_INVALID); /* RLO */
    assert_int_equal(CHECK("a\xE2\x81\xA6" "b", &err), BZ_ERR_INVALID);         /* LRI */
    assert_int_equal(CHECK("\xE2\x80\x8Fname", &err), BZ_ERR_INVALID);       /* RLM */
    assert_int_equal(CHECK("\xC2\xA0" "nbsp ok", &err), BZ_OK);                  /* U+00A0 */
    assert_int_equal(check("", 0, &err), BZ_ERR_INVALID);
    char over[BZ_MEDIA_NAME_MAX + 1];
    memset(over, 'a', sizeof over);
    assert_int_equal(check(over, sizeof over, &err), BZ_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_names_are_kept),
        cmocka_unit_test(bytes_that_are_not_text_are_refused),
        cmocka_unit_test(control_characters_and_lengths_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
