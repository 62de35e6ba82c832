/*
 * test_warmup.c - the warm-up of a whatsapp-web.js number (issue 35;
 * ARCHITECTURE.md §11.3) on the real stack: campaign-sender and the test
 * gateway as processes, data straight into PostgreSQL, commands through
 * campaign.commands. campaign-sender's schedule gives a number of day 0 a
 * cap of CAP new recipients, its window is shortened to WINDOW_S seconds
 * and its jitter to JITTER_MIN_MS..JITTER_MAX_MS by configuration
 * (warmup.*), not by a test clock.
 *  - new_number_reaches_cap_new_recipients_a_window: a number created now
 *    runs a CONTACTS-contact campaign of whom the last KNOWN already wrote
 *    to it (behind the new ones the cap holds: they must not wait with
 *    them): the first window releases exactly CAP new recipients plus the
 *    KNOWN, no window holds more than CAP new ones, the rest go in the next
 *    windows, across a SIGKILL of campaign-sender while the cap holds;
 *    `blazzctl campaign status` shows the hold, and no longer once the
 *    campaign completed with one message per contact; the gaps between the
 *    number's campaign releases (send_ledger) are never under the jitter's
 *    minimum and not all equal.
 *  - old_number_has_no_cap: a number whose account row is new but whose
 *    operator set metadata.warmup_since years back sends the same campaign
 *    within one window, unjittered, and records no new recipient.
 * Every wait polls PostgreSQL with a deadline; the figures come from
 * campaign_logs.queued_at and send_ledger.released_at (the release
 * transaction's time, the one warmup_recipients keeps).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "campaign_itest.h"
#include "itest.h"

static camp_fx fx;

#define CONTACTS 16
#define KNOWN 4
#define CAP 5
#define WINDOW_S 8
#define JITTER_MIN_MS 150
#define JITTER_MAX_MS 400
#define FAST_LIMITS "{\"per_second\": 100000, \"per_minute\": 0, \"per_hour\": 0}"

static const char *const sender_env[] = {
    "BLAZZ_WARMUP_SCHEDULE=0:5,30:0", "BLAZZ_WARMUP_WINDOW_S=8",
    "BLAZZ_WARMUP_JITTER_MIN_MS=150", "BLAZZ_WARMUP_JITTER_MAX_MS=400", NULL};

#define q(...) itest_pg_int64f(fx.pg, __VA_ARGS__)

static int group_setup(void **state)
{
    (void)state;
    camp_fx_init(&fx, "warm");
    camp_start_test_gateway(&fx, NULL);
    camp_start_sender(&fx, 0, sender_env);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    camp_fx_finish(&fx);
    return 0;
}

/* A webjs account of ws created now, with warmup_since ("" for none) in
 * its metadata. */
static int64_t young_account(int64_t ws, const char *session, const char *warmup_since)
{
    int64_t acct = camp_account(&fx, ws, session, 1, 100, FAST_LIMITS);
    q("UPDATE whatsapp_accounts SET created_at = now(), metadata = CASE WHEN '%s' = '' THEN "
      "metadata ELSE metadata || jsonb_build_object('warmup_since', '%s'::text) END WHERE id = "
      "%lld RETURNING id",
      warmup_since, warmup_since, (long long)acct);
    return acct;
}

/* The contact of the group's i-th member (id order). */
static int64_t member(int64_t group, int i)
{
    return q("SELECT contact_id FROM contact_group_members WHERE contact_group_id = %lld ORDER BY "
             "contact_id OFFSET %d LIMIT 1",
             (long long)group, i);
}

/* The campaign's logs released within WINDOW_S seconds of its first. */
static int64_t first_window(int64_t campaign)
{
    return q("SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND queued_at < (SELECT "
             "min(queued_at) FROM campaign_logs WHERE campaign_id = %lld) + make_interval(secs => "
             "%d)",
             (long long)campaign, (long long)campaign, WINDOW_S);
}

/* `blazzctl campaign status --json` says the warm-up holds the campaign's
 * next messages, naming the cap and the age (waiting for campaign-sender
 * to note it; 0 once the campaign completed). */
static int held_shown(int64_t campaign)
{
    return camp_wait_held(&fx, campaign, "warmup_cap", "warmup", "cap 5 at day 0", 30);
}

static void assert_one_message_per_contact(int64_t campaign)
{
    size_t n, keys, contacts, duplicates;
    camp_send *sends = camp_read_sends(&fx, campaign, &n);
    camp_assert_one_key_per_contact(sends, n, &keys, &contacts, &duplicates);
    free(sends);
    assert_int_equal(contacts, CONTACTS);
    assert_int_equal(duplicates, 0);
    assert_int_equal(q("SELECT messages_failed FROM campaigns WHERE id = %lld", (long long)campaign),
                     0);
}

/* The gaps between an account's campaign releases (send_ledger). */
#define GAPS                                                                                      \
    "WITH r AS (SELECT released_at - lag(released_at) OVER (ORDER BY released_at) AS gap FROM "   \
    "send_ledger WHERE whatsapp_account_id = %lld AND kind = 'campaign') "

static void new_number_reaches_cap_new_recipients_a_window(void **state)
{
    (void)state;
    int64_t ws = camp_workspace(&fx);
    int64_t acct = young_account(ws, "warm-new-", "");
    int64_t group = camp_audience(&fx, ws, CONTACTS, 801);
    /* the last KNOWN members wrote to the number: it knows them */
    for (int i = CONTACTS - KNOWN; i < CONTACTS; i++)
        q("INSERT INTO chats (workspace_id, whatsapp_account_id, contact_id, wam_id, type, "
          "provider_type, message_status, status, is_read, metadata, created_at) VALUES (%lld, "
          "%lld, %lld, 'wam-known-' || %lld, 'inbound', 'webjs', 'delivered', 'delivered', true, "
          "'{\"body\": \"halo\"}', now() - interval '3 days') RETURNING id",
          (long long)ws, (long long)acct, (long long)member(group, i),
          (long long)member(group, i));
    int64_t campaign = camp_campaign(&fx, ws, group, acct, "Promo {{first_name}}", "draft", NULL);
    camp_command(&fx, ws, campaign, "start", "itest");

    /* the first window: the known and the cap's new ones; then the cap
     * holds the rest, and campaign-sender dies while it does */
    char cid[24];
    snprintf(cid, sizeof cid, "%lld", (long long)campaign);
    camp_wait_value(&fx, "released in the first window", CAP + KNOWN, 60,
                    "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1 AND queued_at IS "
                    "NOT NULL",
                    1, cid);
    assert_true(held_shown(campaign));
    camp_kill_sender(&fx, 0);
    camp_start_sender(&fx, 0, sender_env);
    camp_wait_status(&fx, campaign, "completed", 120);
    assert_false(held_shown(campaign));

    assert_int_equal(first_window(campaign), CAP + KNOWN);
    /* no WINDOW_S seconds ending at a release hold more than CAP new ones */
    assert_int_equal(q("WITH r AS (SELECT l.queued_at AS at FROM campaign_logs l WHERE "
                       "l.campaign_id = %lld AND NOT EXISTS (SELECT 1 FROM chats m WHERE "
                       "m.contact_id = l.contact_id AND m.type = 'inbound')) SELECT "
                       "max((SELECT count(*) FROM r r2 WHERE r2.at > r1.at - make_interval(secs "
                       "=> %d) AND r2.at <= r1.at)) FROM r r1",
                       (long long)campaign, WINDOW_S),
                     CAP);
    assert_int_equal(q("SELECT count(*) FROM warmup_recipients WHERE whatsapp_account_id = %lld",
                       (long long)acct),
                     CONTACTS - KNOWN);
    assert_one_message_per_contact(campaign);

    /* one release at a time, a random gap apart, never under the minimum */
    assert_int_equal(q(GAPS "SELECT count(*) FROM r WHERE gap IS NOT NULL", (long long)acct),
                     CONTACTS - 1);
    int64_t shortest =
        q(GAPS "SELECT (extract(epoch FROM min(gap)) * 1000)::bigint FROM r", (long long)acct);
    print_message("shortest gap between the number's releases: %lld ms\n", (long long)shortest);
    assert_true(shortest >= JITTER_MIN_MS);
    assert_true(q(GAPS "SELECT count(DISTINCT gap) FROM r", (long long)acct) > 1);
}

static void old_number_has_no_cap(void **state)
{
    (void)state;
    int64_t ws = camp_workspace(&fx);
    int64_t acct = young_account(ws, "warm-old-", "2020-01-01");
    int64_t group = camp_audience(&fx, ws, CONTACTS, 802);
    int64_t campaign = camp_campaign(&fx, ws, group, acct, "Promo {{first_name}}", "draft", NULL);
    camp_command(&fx, ws, campaign, "start", "itest");
    camp_wait_status(&fx, campaign, "completed", 60);
    assert_int_equal(first_window(campaign), CONTACTS);
    assert_int_equal(q("SELECT count(*) FROM warmup_recipients WHERE whatsapp_account_id = %lld",
                       (long long)acct),
                     0);
    /* out of warm-up the releases are not spaced one by one */
    assert_true(q("SELECT count(DISTINCT released_at) FROM send_ledger WHERE whatsapp_account_id "
                  "= %lld",
                  (long long)acct) < CONTACTS);
    assert_one_message_per_contact(campaign);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_number_reaches_cap_new_recipients_a_window),
        cmocka_unit_test(old_number_has_no_cap),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
