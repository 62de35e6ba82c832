/*
 * test_media_link.c - libs/media/link.h: a link checks only for the object,
 * workspace and expiry it was made for, under its secret, and not after it
 * expires; a tampered signature is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "media/link.h"

#define SECRET "a-long-enough-media-link-secret-for-tests"
#define UUID "0b8f2f6e-6a0e-4a39-9d1c-5a3c9f2e7b11"
#define OTHER_UUID "0b8f2f6e-6a0e-4a39-9d1c-5a3c9f2e7b12"
#define NOW 1700000000

static void check_reason(bz_status st, const bz_error *err, const char *reason)
{
    assert_int_equal(st, BZ_ERR_INVALID);
    assert_string_equal(err->reason, reason);
}

static void a_link_checks_for_what_it_was_made(void **state)
{
    (void)state;
    bz_error err;
    char sig[BZ_MEDIA_LINK_SIGNATURE_HEX + 1];
    assert_int_equal(bz_media_link_sign(SECRET, UUID, 7, NOW + 60, sig, &err), BZ_OK);
    assert_int_equal(strlen(sig), 64);
    assert_int_equal(bz_media_link_check(SECRET, UUID, 7, NOW + 60, sig, NOW, &err), BZ_OK);
    check_reason(bz_media_link_check(SECRET, UUID, 8, NOW + 60, sig, NOW, &err), &err,
                 "bad_link_signature");
    check_reason(bz_media_link_check(SECRET, OTHER_UUID, 7, NOW + 60, sig, NOW, &err), &err,
                 "bad_link_signature");
    check_reason(bz_media_link_check(SECRET, UUID, 7, NOW + 3600, sig, NOW, &err), &err,
                 "bad_link_signature");
    check_reason(bz_media_link_check("another-secret-entirely-for-tests", UUID, 7, NOW + 60, sig,
                                     NOW, &err),
                 &err, "bad_link_signature");
}

static void a_tampered_signature_is_refused(void **state)
{
    (void)state;
    bz_error err;
    char sig[BZ_MEDIA_LINK_SIGNATURE_HEX + 1];
    assert_int_equal(bz_media_link_sign(SECRET, UUID, 7, NOW + 60, sig, &err), BZ_OK);
    for (size_t i = 0; i < 64; i += 21) {
        char bad[sizeof sig];
        memcpy(bad, sig, sizeof sig);
        bad[i] = bad[i] == '0' ? '1' : '0';
        check_reason(bz_media_link_check(SECRET, UUID, 7, NOW + 60, bad, NOW, &err), &err,
                     "bad_link_signature");
    }
    check_reason(bz_media_link_check(SECRET, UUID, 7, NOW + 60, "abc", NOW, &err), &err,
                 "bad_link_signature");
    sig[10] = 'g';
    check_reason(bz_media_link_check(SECRET, UUID, 7, NOW + 60, sig, NOW, &err), &err,
                 "bad_link_signature");
    check_reason(bz_media_link_check(SECRET, UUID, 7, NOW + 60, NULL, NOW, &err), &err,
                 "bad_link_signature");
}

static void an_expired_link_is_refused(void **state)
{
    (void)state;
    bz_error err;
    char sig[BZ_MEDIA_LINK_SIGNATURE_HEX + 1];
    assert_int_equal(bz_media_link_sign(SECRET, UUID, 7, NOW + 60, sig, &err), BZ_OK);
    assert_int_equal(bz_media_link_check(SECRET, UUID, 7, NOW + 60, sig, NOW + 59, &err), BZ_OK);
    check_reason(bz_media_link_check(SECRET, UUID, 7, NOW + 60, sig, NOW + 60, &err), &err,
                 "link_expired");
}

static void make_builds_the_url_check_accepts(void **state)
{
    (void)state;
    bz_error err;
    char *url = NULL;
    assert_int_equal(bz_media_link_make(SECRET, "https://ingest.example", UUID, 7, NOW, 900, &url,
                                        &err),
                     BZ_OK);
    char expect_prefix[160];
    snprintf(expect_prefix, sizeof expect_prefix,
             "https://ingest.example/v1/media/%s/content?workspace=7&expires=%d&signature=", UUID,
             NOW + 900);
    assert_memory_equal(url, expect_prefix, strlen(expect_prefix));
    const char *sig = url + strlen(expect_prefix);
    assert_int_equal(bz_media_link_check(SECRET, UUID, 7, NOW + 900, sig, NOW, &err), BZ_OK);
    free(url);
    assert_int_equal(bz_media_link_make(NULL, "https://x", UUID, 7, NOW, 900, &url, &err),
                     BZ_ERR_CONFIG);
    assert_null(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_link_checks_for_what_it_was_made),
        cmocka_unit_test(a_tampered_signature_is_refused),
        cmocka_unit_test(an_expired_link_is_refused),
        cmocka_unit_test(make_builds_the_url_check_accepts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
