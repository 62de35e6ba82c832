/*
 * test_topics.c - the topic catalogue: complete, consistent with the
 * architecture's table, and prefixed into legal Kafka names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kafka/topics.h"

static const char *const expected_bases[] = {
    "wa.inbound.raw",  "chat.sync",          "chat.events",      "session.events",
    "campaign.commands", "wa.outbound",      "campaign.receipts", "campaign.events",
    "wa.session.commands", "cleanup.requests", "crm.commands",   "wa.inbound.dlq",
    "chat.sync.dlq",   "webhook.dlq",      "campaign.dlq",     "cleanup.dlq",
    "outbox.dlq",      "wa.outbound.dlq",
};

static void catalogue_holds_exactly_the_architecture_topics(void **state)
{
    (void)state;
    size_t n = sizeof expected_bases / sizeof expected_bases[0];
    assert_int_equal(BZ_TOPIC_COUNT, n);
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (int t = 0; t < BZ_TOPIC_COUNT; t++)
            if (strcmp(bz_topic_base((bz_topic)t), expected_bases[i]) == 0)
                found++;
        assert_int_equal(found, 1);
    }
}

static void every_constant_has_its_own_base_name(void **state)
{
    (void)state;
    assert_string_equal(bz_topic_base(BZ_TOPIC_CHAT_SYNC), "chat.sync");
    assert_string_equal(bz_topic_base(BZ_TOPIC_WA_SESSION_COMMANDS), "wa.session.commands");
    assert_string_equal(bz_topic_base(BZ_TOPIC_CAMPAIGN_DLQ), "campaign.dlq");
    for (int a = 0; a < BZ_TOPIC_COUNT; a++) {
        assert_non_null(bz_topic_base((bz_topic)a));
        for (int b = a + 1; b < BZ_TOPIC_COUNT; b++)
            assert_string_not_equal(bz_topic_base((bz_topic)a), bz_topic_base((bz_topic)b));
    }
    assert_null(bz_topic_base(BZ_TOPIC_COUNT));
    assert_null(bz_topic_base((bz_topic)-1));
}

static void exactly_the_seven_dead_letter_topics_are_dlq(void **state)
{
    (void)state;
    int dlq = 0;
    for (int t = 0; t < BZ_TOPIC_COUNT; t++)
        dlq += bz_topic_is_dlq((bz_topic)t);
    assert_int_equal(dlq, 7);
    assert_true(bz_topic_is_dlq(BZ_TOPIC_WA_INBOUND_DLQ));
    assert_true(bz_topic_is_dlq(BZ_TOPIC_CHAT_SYNC_DLQ));
    assert_true(bz_topic_is_dlq(BZ_TOPIC_WEBHOOK_DLQ));
    assert_true(bz_topic_is_dlq(BZ_TOPIC_CAMPAIGN_DLQ));
    assert_true(bz_topic_is_dlq(BZ_TOPIC_OUTBOX_DLQ));
    assert_true(bz_topic_is_dlq(BZ_TOPIC_WA_OUTBOUND_DLQ));
    assert_false(bz_topic_is_dlq(BZ_TOPIC_CHAT_SYNC));
    assert_false(bz_topic_is_dlq(BZ_TOPIC_COUNT));
}

static void lookup_finds_each_base_and_rejects_strangers(void **state)
{
    (void)state;
    for (int t = 0; t < BZ_TOPIC_COUNT; t++) {
        bz_topic found = BZ_TOPIC_COUNT;
        assert_int_equal(bz_topic_lookup(bz_topic_base((bz_topic)t), &found, NULL), BZ_OK);
        assert_int_equal(found, t);
    }
    bz_error err;
    bz_topic found;
    assert_int_equal(bz_topic_lookup("chat.sync.extra", &found, &err), BZ_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "chat.sync.extra"));
}

static void name_applies_the_prefix(void **state)
{
    (void)state;
    char buf[BZ_TOPIC_NAME_MAX];
    assert_int_equal(bz_topic_name("staging.", "chat.sync", buf, sizeof buf), BZ_OK);
    assert_string_equal(buf, "staging.chat.sync");
    assert_int_equal(bz_topic_name("", "webhook.dlq", buf, sizeof buf), BZ_OK);
    assert_string_equal(buf, "webhook.dlq");
    assert_int_equal(bz_topic_name(NULL, "wa.outbound", buf, sizeof buf), BZ_OK);
    assert_string_equal(buf, "wa.outbound");
}

static void name_fits_exactly_or_fails_empty(void **state)
{
    (void)state;
    char buf[16];
    /* "t-chat.events" is 13 bytes + NUL */
    assert_int_equal(bz_topic_name("t-", "chat.events", buf, 14), BZ_OK);
    assert_string_equal(buf, "t-chat.events");
    assert_int_equal(bz_topic_name("t-", "chat.events", buf, 13), BZ_ERR_CONFIG);
    assert_string_equal(buf, "");
}

static void name_refuses_illegal_characters_and_lengths(void **state)
{
    (void)state;
    char buf[BZ_TOPIC_NAME_MAX * 2];
    bz_error err;
    assert_int_equal(bz_topic_name_checked("bad prefix/", "chat.sync", buf, sizeof buf, &err),
                     BZ_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "bad prefix/"));
    assert_int_equal(bz_topic_name("ok_", "", buf, sizeof buf), BZ_ERR_CONFIG);

    char long_prefix[250];
    memset(long_prefix, 'p', sizeof long_prefix - 1);
    long_prefix[sizeof long_prefix - 1] = '\0';
    assert_int_equal(bz_topic_name_checked(long_prefix, "chat.sync", buf, sizeof buf, &err),
                     BZ_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "249"));
}

static void every_catalogue_name_with_a_prefix_is_legal(void **state)
{
    (void)state;
    char buf[BZ_TOPIC_NAME_MAX];
    for (int t = 0; t < BZ_TOPIC_COUNT; t++) {
        assert_int_equal(bz_topic_name("tenant-a_1.", bz_topic_base((bz_topic)t), buf, sizeof buf),
                         BZ_OK);
        assert_int_equal(strncmp(buf, "tenant-a_1.", 11), 0);
        assert_string_equal(buf + 11, bz_topic_base((bz_topic)t));
    }
}

/* The tools' prefix: the services' variable first, an empty one counting
 * as unset, then the older name, then none. */
static void prefix_from_env_prefers_the_services_variable(void **state)
{
    (void)state;
    unsetenv("BLAZZ_KAFKA_TOPIC_PREFIX");
    unsetenv("BLAZZ_TOPIC_PREFIX");
    assert_string_equal(bz_topic_prefix_from_env(), "");
    setenv("BLAZZ_TOPIC_PREFIX", "old.", 1);
    assert_string_equal(bz_topic_prefix_from_env(), "old.");
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", "", 1);
    assert_string_equal(bz_topic_prefix_from_env(), "old.");
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", "new.", 1);
    assert_string_equal(bz_topic_prefix_from_env(), "new.");
    unsetenv("BLAZZ_KAFKA_TOPIC_PREFIX");
    unsetenv("BLAZZ_TOPIC_PREFIX");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prefix_from_env_prefers_the_services_variable),
        cmocka_unit_test(catalogue_holds_exactly_the_architecture_topics),
        cmocka_unit_test(every_constant_has_its_own_base_name),
        cmocka_unit_test(exactly_the_seven_dead_letter_topics_are_dlq),
        cmocka_unit_test(lookup_finds_each_base_and_rejects_strangers),
        cmocka_unit_test(name_applies_the_prefix),
        cmocka_unit_test(name_fits_exactly_or_fails_empty),
        cmocka_unit_test(name_refuses_illegal_characters_and_lengths),
        cmocka_unit_test(every_catalogue_name_with_a_prefix_is_legal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
