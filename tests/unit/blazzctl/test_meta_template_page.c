/*
 * test_meta_template_page.c - one page of Meta's template list
 * (GET /{waba_id}/message_templates) as `blazzctl meta templates sync`
 * reads it (tools/blazzctl/meta_templates.h): each template's fields and
 * texts in Meta's documented shape, a media header kept as its type
 * without text, malformed templates refused, and the cursor of the next
 * page only while Meta says there is one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "meta_templates.h"
#include "status_asserts.h"

static const char PAGE[] =
    "{\"data\": [{\"name\": \"order_update\", \"language\": \"en_US\", \"status\": \"REJECTED\", "
    "\"category\": \"UTILITY\", \"id\": \"1234567890\", \"rejected_reason\": \"INVALID_FORMAT\", "
    "\"quality_score\": {\"score\": \"UNKNOWN\", \"date\": 1700000000}, \"components\": ["
    "{\"type\": \"HEADER\", \"format\": \"IMAGE\", \"example\": {\"header_handle\": [\"h\"]}}, "
    "{\"type\": \"BODY\", \"text\": \"Order {{1}} is on its way\"}, "
    "{\"type\": \"FOOTER\", \"text\": \"Thanks\"}, {\"type\": \"BUTTONS\", \"buttons\": []}]}, "
    "{\"name\": \"welcome\", \"language\": \"id\", \"status\": \"APPROVED\", \"id\": \"77\", "
    "\"components\": [{\"type\": \"HEADER\", \"format\": \"TEXT\", \"text\": \"Halo\"}, "
    "{\"type\": \"BODY\", \"text\": \"Selamat datang\"}]}], "
    "\"paging\": {\"cursors\": {\"before\": \"QVFI\", \"after\": \"QVFIUm9==\"}, "
    "\"next\": \"https://graph.facebook.com/v23.0/1/message_templates?after=QVFIUm9%3D%3D\"}}";

static void templates_read_in_metas_shape(void **state)
{
    (void)state;
    json_t *doc = json_loads(PAGE, 0, NULL);
    assert_non_null(doc);
    json_t *data = json_object_get(doc, "data");
    bz_ctl_meta_template t;
    bz_error err;
    assert_int_equal(bz_ctl_meta_template_read(json_array_get(data, 0), &t, &err), BZ_OK);
    assert_string_equal(t.name, "order_update");
    assert_string_equal(t.language, "en_US");
    assert_string_equal(t.status, "REJECTED");
    assert_string_equal(t.category, "UTILITY");
    assert_string_equal(t.id, "1234567890");
    assert_string_equal(t.reason, "INVALID_FORMAT");
    assert_string_equal(t.quality, "UNKNOWN");
    assert_true(t.has_components);
    assert_string_equal(t.header_type, "image");
    assert_null(t.header_text);
    assert_string_equal(t.body_text, "Order {{1}} is on its way");
    assert_string_equal(t.footer_text, "Thanks");

    assert_int_equal(bz_ctl_meta_template_read(json_array_get(data, 1), &t, &err), BZ_OK);
    assert_string_equal(t.header_type, "text");
    assert_string_equal(t.header_text, "Halo");
    assert_null(t.footer_text);
    assert_null(t.quality);
    assert_null(t.category);

    const char *after;
    assert_int_equal(bz_ctl_meta_page_after(doc, &after, &err), BZ_OK);
    assert_string_equal(after, "QVFIUm9==");
    json_decref(doc);
}

static void without_next_the_list_ends(void **state)
{
    (void)state;
    json_t *doc = json_loads("{\"data\": [], \"paging\": {\"cursors\": {\"before\": \"a\", "
                             "\"after\": \"b\"}, \"previous\": \"https://x\"}}",
                             0, NULL);
    const char *after = "x";
    bz_error err;
    assert_int_equal(bz_ctl_meta_page_after(doc, &after, &err), BZ_OK);
    assert_null(after);
    json_decref(doc);
    doc = json_loads("{\"data\": [], \"paging\": {\"next\": \"https://x\"}}", 0, NULL);
    assert_failure(bz_ctl_meta_page_after(doc, &after, &err), &err, BZ_ERR_INVALID,
                   "paging.cursors.after");
    json_decref(doc);
}

static void malformed_templates_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"language\": \"en\"}",
        "{\"name\": \"x\"}",
        "{\"name\": \"\", \"language\": \"en\"}",
        "{\"name\": \"x\", \"language\": \"en\", \"quality_score\": \"GREEN\"}",
        "{\"name\": \"x\", \"language\": \"en\", \"id\": 12}",
        "{\"name\": \"x\", \"language\": \"en\", \"components\": {}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *t = json_loads(bad[i], 0, NULL);
        bz_ctl_meta_template out;
        bz_error err;
        assert_non_null(t);
        if (bz_ctl_meta_template_read(t, &out, &err) != BZ_ERR_INVALID)
            fail_msg("accepted %s", bad[i]);
        json_decref(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(templates_read_in_metas_shape),
        cmocka_unit_test(without_next_the_list_ends),
        cmocka_unit_test(malformed_templates_are_refused),
    };
    return cmocka_run_group_tests_name("meta template page", tests, NULL, NULL);
}
