/*
 * test_wa_jid.c - JID canonicalization: both providers' user forms meeting in
 * one canonical JID, device and agent parts stripped, every kind recognized,
 * malformed JIDs rejected with their message, buffer boundaries, and the
 * phone <-> JID mappings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "status_asserts.h"
#include "wa/jid.h"

typedef struct good_case {
    const char *input;
    const char *want;
    bz_jid_kind kind;
} good_case;

#define USER_JID "6281234567890@s.whatsapp.net"

static const good_case good_cases[] = {
    {"6281234567890@c.us", USER_JID, BZ_JID_USER},
    {"6281234567890@s.whatsapp.net", USER_JID, BZ_JID_USER},
    {"6281234567890:12@s.whatsapp.net", USER_JID, BZ_JID_USER},
    {"6281234567890.0:1@s.whatsapp.net", USER_JID, BZ_JID_USER},
    {"6281234567890.0@s.whatsapp.net", USER_JID, BZ_JID_USER},
    {"6281234567890:3@c.us", USER_JID, BZ_JID_USER},
    {"6281234567890@C.US", USER_JID, BZ_JID_USER},
    {"  6281234567890@S.WhatsApp.Net \r\n", USER_JID, BZ_JID_USER},
    {"+62 812-3456-7890", USER_JID, BZ_JID_USER}, /* bare phone */
    {"6281234567890", USER_JID, BZ_JID_USER},
    {"0062 812 3456 7890", USER_JID, BZ_JID_USER},
    {"12345678@c.us", "12345678@s.whatsapp.net", BZ_JID_USER},
    {"123456789012345@c.us", "123456789012345@s.whatsapp.net", BZ_JID_USER},
    {"120363025246125888@g.us", "120363025246125888@g.us", BZ_JID_GROUP},
    {"120363025246125888@G.Us", "120363025246125888@g.us", BZ_JID_GROUP},
    {"6281234567890-1612345678@g.us", "6281234567890-1612345678@g.us", BZ_JID_GROUP},
    {"123456789012345@lid", "123456789012345@lid", BZ_JID_LID},
    {"123456789012345:7@LID", "123456789012345@lid", BZ_JID_LID},
    {"status@broadcast", "status@broadcast", BZ_JID_BROADCAST},
    {"STATUS@Broadcast", "status@broadcast", BZ_JID_BROADCAST},
    {"1612345678@broadcast", "1612345678@broadcast", BZ_JID_BROADCAST},
    {"120363123456789012@newsletter", "120363123456789012@newsletter", BZ_JID_NEWSLETTER},
};

static void test_canonicalizes_every_kind(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        const good_case *c = &good_cases[i];
        char out[BZ_JID_SIZE];
        bz_jid_kind kind = (bz_jid_kind)-1;
        bz_error err = {0};
        if (bz_jid_canonicalize(c->input, out, sizeof out, &kind, &err) != BZ_OK)
            fail_msg("case %zu \"%s\": %s", i, c->input, err.msg);
        assert_string_equal(out, c->want);
        assert_int_equal(kind, c->kind);
    }
}

static void test_canonical_form_is_a_fixed_point(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        char once[BZ_JID_SIZE], twice[BZ_JID_SIZE];
        bz_jid_kind k1, k2;
        assert_int_equal(bz_jid_canonicalize(good_cases[i].input, once, sizeof once, &k1, NULL),
                         BZ_OK);
        assert_int_equal(bz_jid_canonicalize(once, twice, sizeof twice, &k2, NULL), BZ_OK);
        assert_string_equal(once, twice);
        assert_int_equal(k1, k2);
    }
}

typedef struct bad_case {
    const char *input;
    const char *want;
} bad_case;

static const bad_case bad_cases[] = {
    {"", "jid: empty"},
    {" \t\n", "jid: empty"},
    {"@c.us", "empty user part"},
    {"6281234567890@", "empty server part"},
    {"6281234567890@example.com", "unknown server 'example.com'"},
    {"6281234567890@c.us.evil", "unknown server 'c.us.evil'"},
    {"6281234567890@whatsapp.net", "unknown server 'whatsapp.net'"},
    {"6281234567890@ex\x01", "unknown server 'ex?'"},
    {"1@0123456789012345678901234567890123456789", "unknown server '01234567890123456789012345678901...'"},
    {"a@b@c.us", "more than one '@'"},
    {"62812abc890@c.us", "user part has a non-digit at offset 5"},
    {"6281 234567890@c.us", "user part has a non-digit at offset 4"},
    {"+6281234567890@c.us", "user part has a non-digit at offset 0"},
    {"6281234567890:@s.whatsapp.net", "empty device suffix"},
    {"6281234567890:ab@s.whatsapp.net", "device suffix has a non-digit at offset 0"},
    {"6281234567890:1:2@s.whatsapp.net", "device suffix has a non-digit at offset 1"},
    {"6281234567890.x:1@s.whatsapp.net", "agent part has a non-digit"},
    {"6281234567890.@s.whatsapp.net", "empty agent part"},
    {":1@s.whatsapp.net", "empty user part"},
    {"0812345678@c.us", "user part cannot start with 0"},
    {"1234567@c.us", "user part has 7 digits, expected 8-15"},
    {"1234567890123456@c.us", "user part has 16 digits, expected 8-15"},
    {"120363025246125888:1@g.us", "group id has a non-digit at offset 18"},
    {"12036302524612588a@g.us", "group id has a non-digit"},
    {"6281234567890-@g.us", "empty group id time part"},
    {"-1612345678@g.us", "empty group id creator part"},
    {"1-2-3@g.us", "group id time part has a non-digit at offset 1"},
    {"12345678901234567890123456789012345678901234567890123456789012345@g.us",
     "group id too long (65 bytes, at most 64)"},
    {"abc@lid", "lid user part has a non-digit at offset 0"},
    {"1234567890123456789012345@lid", "lid user part too long (25 digits, at most 24)"},
    {"123:x@lid", "device suffix has a non-digit"},
    {"foo@broadcast", "broadcast id has a non-digit"},
    {"statuses@broadcast", "broadcast id has a non-digit"},
    {"abc@newsletter", "newsletter id has a non-digit"},
    {"0812 3456 7890", "jid: no '@' and not a phone number: phone: national number"},
    {"hello", "jid: no '@' and not a phone number: phone: unexpected character 'h'"},
    {"+1234567", "phone: too short"},
};

static void test_rejects_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        char out[BZ_JID_SIZE] = "garbage";
        bz_jid_kind kind = BZ_JID_NEWSLETTER;
        bz_error err = {0};
        bz_status st = bz_jid_canonicalize(c->input, out, sizeof out, &kind, &err);
        assert_failure(st, &err, BZ_ERR_INVALID, c->want);
        assert_string_equal(out, "");
        assert_int_equal(kind, BZ_JID_NEWSLETTER); /* untouched on failure */
    }
}

static void test_rejects_missing_and_overlong(void **state)
{
    (void)state;
    char out[BZ_JID_SIZE];
    char input[BZ_JID_INPUT_MAX + 2];
    bz_error err = {0};
    assert_failure(bz_jid_canonicalize(NULL, out, sizeof out, NULL, &err), &err, BZ_ERR_INVALID,
                   "jid: missing");

    /* Exactly the limit after trimming is read; one more byte is not. */
    memset(input, ' ', sizeof input - 1);
    input[sizeof input - 1] = '\0';
    memcpy(input, "6281234567890@c.us", 18);
    assert_int_equal(bz_jid_canonicalize(input, out, sizeof out, NULL, &err), BZ_OK);
    memset(input, '1', BZ_JID_INPUT_MAX + 1);
    memcpy(input + BZ_JID_INPUT_MAX + 1 - 5, "@g.us", 5);
    assert_failure(bz_jid_canonicalize(input, out, sizeof out, NULL, &err), &err, BZ_ERR_INVALID,
                   "jid: too long (129 bytes, at most 128)");
}

static void test_length_variant_rejects_embedded_nul(void **state)
{
    (void)state;
    static const char input[] = "62812\0" "34567890@c.us";
    char out[BZ_JID_SIZE];
    bz_error err = {0};
    assert_failure(bz_jid_canonicalize_n(input, sizeof input - 1, out, sizeof out, NULL, &err),
                   &err, BZ_ERR_INVALID, "NUL byte at offset 5");
    assert_int_equal(bz_jid_canonicalize_n(input + 6, 13, out, sizeof out, NULL, &err), BZ_OK);
    assert_string_equal(out, "34567890@s.whatsapp.net");
    assert_int_equal(bz_jid_canonicalize_n("6281234567890@c.usXYZ", 18, out, sizeof out, NULL,
                                           &err),
                     BZ_OK);
    assert_string_equal(out, USER_JID);
}

static void test_output_buffer_boundaries(void **state)
{
    (void)state;
    char out[BZ_JID_SIZE];
    bz_error err = {0};
    size_t need = strlen(USER_JID) + 1;
    assert_int_equal(bz_jid_canonicalize("6281234567890@c.us", out, need, NULL, &err), BZ_OK);
    assert_string_equal(out, USER_JID);
    assert_failure(bz_jid_canonicalize("6281234567890@c.us", out, need - 1, NULL, &err), &err,
                   BZ_ERR_INTERNAL, "output buffer too small (28 bytes, need 29)");
    assert_string_equal(out, "");
    assert_failure(bz_jid_canonicalize("6281234567890@c.us", out, 0, NULL, &err), &err,
                   BZ_ERR_INTERNAL, "no output buffer");
    assert_failure(bz_jid_canonicalize("6281234567890@c.us", NULL, 64, NULL, &err), &err,
                   BZ_ERR_INTERNAL, "no output buffer");

    /* BZ_JID_SIZE holds the longest canonical JID of every kind. */
    const char *longest[] = {
        "1234567890123456789012345678901234567890123456789012345678901234@g.us",
        "1234567890123456789012345678901234567890123456789012345678901-12@g.us",
        "123456789012345:99@c.us",
        "123456789012345678901234:99@lid",
        "123456789012345678901234@broadcast",
        "123456789012345678901234@newsletter",
    };
    for (size_t i = 0; i < sizeof longest / sizeof longest[0]; i++)
        if (bz_jid_canonicalize(longest[i], out, BZ_JID_SIZE, NULL, &err) != BZ_OK)
            fail_msg("%s: %s", longest[i], err.msg);
}

static void test_is_group(void **state)
{
    (void)state;
    assert_true(bz_jid_is_group("120363025246125888@g.us"));
    assert_true(bz_jid_is_group(" 6281234567890-1612345678@G.US "));
    assert_false(bz_jid_is_group("6281234567890@c.us"));
    assert_false(bz_jid_is_group("123456789012345@lid"));
    assert_false(bz_jid_is_group("status@broadcast"));
    assert_false(bz_jid_is_group("abc@g.us"));
    assert_false(bz_jid_is_group("@g.us"));
    assert_false(bz_jid_is_group(""));
    assert_false(bz_jid_is_group(NULL));
}

static void test_to_phone(void **state)
{
    (void)state;
    char out[BZ_JID_SIZE];
    bz_error err = {0};
    assert_int_equal(bz_jid_to_phone("6281234567890:3@c.us", out, sizeof out, &err), BZ_OK);
    assert_string_equal(out, "+6281234567890");
    assert_int_equal(bz_jid_to_phone(USER_JID, out, 15, &err), BZ_OK);
    assert_string_equal(out, "+6281234567890");
    assert_failure(bz_jid_to_phone(USER_JID, out, 14, &err), &err, BZ_ERR_INTERNAL,
                   "output buffer too small (14 bytes, need 15)");
    assert_failure(bz_jid_to_phone("123456789012345@lid", out, sizeof out, &err), &err,
                   BZ_ERR_INVALID, "@lid identity cannot be mapped to a phone number");
    assert_failure(bz_jid_to_phone("120363025246125888@g.us", out, sizeof out, &err), &err,
                   BZ_ERR_INVALID, "a group JID has no phone number");
    assert_failure(bz_jid_to_phone("status@broadcast", out, sizeof out, &err), &err,
                   BZ_ERR_INVALID, "a broadcast JID has no phone number");
    assert_failure(bz_jid_to_phone("1@newsletter", out, sizeof out, &err), &err, BZ_ERR_INVALID,
                   "a newsletter JID has no phone number");
    assert_failure(bz_jid_to_phone("62812@c.us", out, sizeof out, &err), &err, BZ_ERR_INVALID,
                   "user part has 5 digits");
    assert_string_equal(out, "");
}

static void test_from_phone(void **state)
{
    (void)state;
    char out[BZ_JID_SIZE];
    bz_error err = {0};
    assert_int_equal(bz_jid_from_phone("+6281234567890", out, sizeof out, &err), BZ_OK);
    assert_string_equal(out, USER_JID);
    assert_int_equal(bz_jid_from_phone("+62 812-3456-7890", out, sizeof out, &err), BZ_OK);
    assert_string_equal(out, USER_JID);
    assert_failure(bz_jid_from_phone("0812 3456 7890", out, sizeof out, &err), &err,
                   BZ_ERR_INVALID, "jid from phone: phone: national number");
    assert_failure(bz_jid_from_phone("", out, sizeof out, &err), &err, BZ_ERR_INVALID,
                   "jid from phone: phone: empty");
    assert_failure(bz_jid_from_phone(NULL, out, sizeof out, &err), &err, BZ_ERR_INVALID,
                   "phone: missing");
    assert_failure(bz_jid_from_phone("+6281234567890", out, strlen(USER_JID), &err), &err,
                   BZ_ERR_INTERNAL, "too small");
    assert_string_equal(out, "");
    assert_int_equal(bz_jid_from_phone("+6281234567890", out, strlen(USER_JID) + 1, &err),
                     BZ_OK);
}

static void test_phone_round_trip(void **state)
{
    (void)state;
    const char *jids[] = {"6281234567890@c.us", "14155552671:2@s.whatsapp.net",
                          "442079460958.0:5@s.whatsapp.net"};
    for (size_t i = 0; i < sizeof jids / sizeof jids[0]; i++) {
        char phone[BZ_JID_SIZE], back[BZ_JID_SIZE], canonical[BZ_JID_SIZE];
        assert_int_equal(bz_jid_to_phone(jids[i], phone, sizeof phone, NULL), BZ_OK);
        assert_int_equal(bz_jid_from_phone(phone, back, sizeof back, NULL), BZ_OK);
        assert_int_equal(bz_jid_canonicalize(jids[i], canonical, sizeof canonical, NULL, NULL),
                         BZ_OK);
        assert_string_equal(back, canonical);
    }
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(bz_jid_kind_name(BZ_JID_USER), "user");
    assert_string_equal(bz_jid_kind_name(BZ_JID_GROUP), "group");
    assert_string_equal(bz_jid_kind_name(BZ_JID_LID), "lid");
    assert_string_equal(bz_jid_kind_name(BZ_JID_BROADCAST), "broadcast");
    assert_string_equal(bz_jid_kind_name(BZ_JID_NEWSLETTER), "newsletter");
    assert_string_equal(bz_jid_kind_name((bz_jid_kind)42), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonicalizes_every_kind),
        cmocka_unit_test(test_canonical_form_is_a_fixed_point),
        cmocka_unit_test(test_rejects_malformed),
        cmocka_unit_test(test_rejects_missing_and_overlong),
        cmocka_unit_test(test_length_variant_rejects_embedded_nul),
        cmocka_unit_test(test_output_buffer_boundaries),
        cmocka_unit_test(test_is_group),
        cmocka_unit_test(test_to_phone),
        cmocka_unit_test(test_from_phone),
        cmocka_unit_test(test_phone_round_trip),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
