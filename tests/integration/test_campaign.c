/*
 * test_campaign.c - campaign-sender end to end on the real stack: the
 * service and a test gateway (campaign_test_gateway) run as processes; test
 * data goes straight into PostgreSQL; commands go through campaign.commands
 * (and blazzctl).
 *
 *  - a BLAZZ_CAMPAIGN_CONTACTS-contact campaign (default 10,000) started with
 *    blazzctl completes with exactly one send per contact, personalized,
 *    each keyed by its log's uuid, and counters equal to the logs;
 *  - an unknown placeholder fails the campaign at start, before any send;
 *  - so does a message over the text limit (a 2 MB template) or one that
 *    could render over it, with the sizes in the error the CRM shows, in the
 *    FAILED event and in `blazzctl campaign status`;
 *  - pause mid-way then resume (each command sent twice): nobody is sent
 *    twice, nobody is skipped, one PAUSED and one RESUMED event;
 *  - scheduled campaigns with two sender instances running start once each;
 *  - a start that finds logs left by a failed start (audience.c commits the
 *    upper half of a large audience on its own) sends to the audience as it
 *    is at the successful start: once each, nobody who left the group;
 *  - in a restore's replay, a receipt read before the start that makes its
 *    log waits for it and is applied by the start's batch: its contact is
 *    not sent again, the counters stay exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "blazz/v1/campaign.pb-c.h"
#include "campaign_itest.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"
#include "pg/columns.h"
#include "pg/pg.h"
#include "wa/text_limits.h"

static camp_fx fx;

#define FAST_LIMITS "{\"per_second\": 100000, \"per_minute\": 0, \"per_hour\": 0}"

static int contacts_wanted(void)
{
    return itest_env_int("BLAZZ_CAMPAIGN_CONTACTS", 10000, 1, 10000000);
}

static void text_id(char *buf, size_t cap, int64_t id)
{
    snprintf(buf, cap, "%lld", (long long)id);
}

static int group_setup(void **state)
{
    (void)state;
    camp_fx_init(&fx, "campt");
    camp_start_test_gateway(&fx, NULL);
    camp_start_sender(&fx, 0, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    camp_fx_finish(&fx);
    return 0;
}

/* What `blazzctl campaign status` prints for campaign cid (with --json when
 * json), into text. */
static void campaign_status_text(const char *cid, int json, char *text, size_t cap)
{
    char out[700];
    snprintf(out, sizeof out, "%s/blazzctl-status-%s.%s", fx.dir, cid, json ? "json" : "txt");
    const char *status[] = {"campaign", "status", cid, json ? "--json" : NULL, NULL};
    assert_int_equal(camp_blazzctl(&fx, status, out), 0);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    size_t len = fread(text, 1, cap - 1, f);
    fclose(f);
    text[len] = '\0';
}

/* Every record's key is its log's uuid and its body the log's contact's
 * personalized text: returns how many records satisfy both. */
static int64_t sends_matching_logs(const camp_send *sends, size_t n)
{
    int64_t *ids = malloc((n ? n : 1) * sizeof *ids);
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    const char **bodies = malloc((n ? n : 1) * sizeof *bodies);
    assert_true(ids && keys && bodies);
    for (size_t i = 0; i < n; i++) {
        ids[i] = sends[i].log_id;
        keys[i] = sends[i].key;
        bodies[i] = sends[i].body;
    }
    char *a = bz_pg_int64_array(ids, n), *b = bz_pg_text_array(keys, n),
         *c = bz_pg_text_array(bodies, n);
    int64_t matching = camp_sql(
        &fx,
        "SELECT count(*) FROM unnest($1::bigint[], $2::text[], $3::text[]) u(id, k, body) "
        "JOIN campaign_logs l ON l.id = u.id AND l.uuid::text = u.k "
        "JOIN contacts c ON c.id = l.contact_id "
        "WHERE u.body = 'Hi ' || c.first_name || ', this is for ' || c.phone",
        3, a, b, c);
    free(a);
    free(b);
    free(c);
    free(ids);
    free(keys);
    free(bodies);
    return matching;
}

/* Campaign id sent exactly once to each of its n contacts, under one
 * idempotency key each; with check_bodies, every send's key and text also
 * match its log and contact. */
static void assert_one_send_per_contact(int64_t id, int n, int check_bodies)
{
    size_t nsends, keys, contacts, dups;
    camp_send *sends = camp_read_sends(&fx, id, &nsends);
    camp_assert_one_key_per_contact(sends, nsends, &keys, &contacts, &dups);
    assert_int_equal(nsends, n);
    assert_int_equal(keys, n);
    assert_int_equal(contacts, n);
    if (check_bodies)
        assert_int_equal(sends_matching_logs(sends, nsends), n);
    free(sends);
}

static void test_campaign_completes_with_exact_counters(void **state)
{
    (void)state;
    int n = contacts_wanted();
    int64_t ws = camp_workspace(&fx);
    int64_t acc = camp_account(&fx, ws, "main-", 1, 100, FAST_LIMITS);
    int64_t group = camp_audience(&fx, ws, n, 555);
    int64_t id = camp_campaign(&fx, ws, group, acc, "Hi {{first_name}}, this is for {{ phone }}",
                               "draft", NULL);
    char cid[24], out[700];
    text_id(cid, sizeof cid, id);
    snprintf(out, sizeof out, "%s/blazzctl-start.txt", fx.dir);
    int64_t t0 = bz_monotonic_ms();
    const char *start[] = {"campaign", "start", cid, "--actor", "tester", NULL};
    assert_int_equal(camp_blazzctl(&fx, start, out), 0);
    camp_wait_status(&fx, id, "completed", 180);
    int64_t elapsed = bz_monotonic_ms() - t0;
    camp_wait_outbox_empty(&fx, 60);

    print_message("campaign of %d contacts completed in %lld ms (%.0f sends/s incl. receipts)\n",
                  n, (long long)elapsed, n * 1000.0 / (double)(elapsed ? elapsed : 1));
    assert_one_send_per_contact(id, n, 1);

    assert_int_equal(camp_sql(&fx, "SELECT contacts_count FROM campaigns WHERE id = $1", 1, cid), n);
    assert_int_equal(camp_sql(&fx, "SELECT messages_sent FROM campaigns WHERE id = $1", 1, cid), n);
    assert_int_equal(camp_sql(&fx, "SELECT messages_delivered FROM campaigns WHERE id = $1", 1, cid),
                     n);
    assert_int_equal(camp_sql(&fx, "SELECT messages_read FROM campaigns WHERE id = $1", 1, cid), n);
    assert_int_equal(camp_sql(&fx, "SELECT messages_failed FROM campaigns WHERE id = $1", 1, cid), 0);
    camp_assert_counters_exact(&fx, id);
    assert_int_equal(camp_sql(&fx,
                              "SELECT count(*) FROM campaigns WHERE id = $1 AND "
                              "metadata->'last_command'->>'actor' = 'tester'",
                              1, cid),
                     1);
    assert_int_equal(camp_count_events(&fx, id, BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_STARTED,
                                       NULL, NULL, 0),
                     1);
    assert_int_equal(camp_count_events(&fx, id,
                                       BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_COMPLETED,
                                       NULL, NULL, 0),
                     1);

    char text[4096];
    campaign_status_text(cid, 1, text, sizeof text);
    assert_non_null(strstr(text, "\"status\": \"completed\""));
}

/* A campaign whose message can never be sent fails at start, before any
 * log or send, and everyone who looks can read why. */
static void expect_failed_at_start(int64_t ws, int64_t acc, int tag, const char *body,
                                   const char *why)
{
    int64_t group = camp_audience(&fx, ws, 5, tag);
    int64_t id = camp_campaign(&fx, ws, group, acc, body, "draft", NULL);
    char cid[24], like[256], reason[512];
    text_id(cid, sizeof cid, id);
    camp_command(&fx, ws, id, "start", "tester");
    camp_wait_status(&fx, id, "failed", 60);
    snprintf(like, sizeof like, "%%%s%%", why);
    assert_int_equal(camp_sql(&fx, "SELECT count(*) FROM campaigns WHERE id = $1 AND "
                                   "error_message LIKE $2", 2, cid, like),
                     1);
    assert_int_equal(camp_sql(&fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1", 1,
                              cid),
                     0);
    camp_wait_outbox_empty(&fx, 60);
    assert_int_equal(camp_count_events(&fx, id, BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_FAILED,
                                       why, reason, sizeof reason),
                     1);
    size_t nsends;
    free(camp_read_sends(&fx, id, &nsends));
    assert_int_equal(nsends, 0);

    char text[4096];
    campaign_status_text(cid, 0, text, sizeof text);
    if (!strstr(text, why))
        fail_msg("blazzctl campaign status does not say '%s':\n%s", why, text);
}

static void test_unknown_placeholder_fails_at_start(void **state)
{
    (void)state;
    int64_t ws = camp_workspace(&fx);
    int64_t acc = camp_account(&fx, ws, "bad-", 1, 100, FAST_LIMITS);
    expect_failed_at_start(ws, acc, 556, "Hello {{nickname}}!", "unknown placeholder {{nickname}}");
}

static void test_oversized_message_fails_at_start(void **state)
{
    (void)state;
    int64_t ws = camp_workspace(&fx);
    int64_t acc = camp_account(&fx, ws, "huge-", 1, 100, FAST_LIMITS);
    size_t huge = 2 * 1024 * 1024;
    char *body = malloc(huge + 1);
    memset(body, 'x', huge);
    memcpy(body, "Hi {{first_name}} ", 18);
    body[huge] = '\0';
    char why[128];
    snprintf(why, sizeof why, "body is %zu bytes", huge);
    expect_failed_at_start(ws, acc, 558, body, why);

    /* Short enough as text, but a long name could render it past the limit. */
    size_t near = BZ_WA_TEXT_MAX_BYTES - 100;
    memset(body, 'y', near);
    memcpy(body + near, "{{full_name}}", 14);
    expect_failed_at_start(ws, acc, 559, body, "body could render");
    free(body);
}

static void test_pause_then_resume_sends_everyone_once(void **state)
{
    (void)state;
    int n = 4000;
    int64_t ws = camp_workspace(&fx);
    int64_t acc = camp_account(&fx, ws, "pause-", 1, 100,
                               "{\"per_second\": 800, \"per_minute\": 0, \"per_hour\": 0}");
    int64_t group = camp_audience(&fx, ws, n, 557);
    int64_t id = camp_campaign(&fx, ws, group, acc, "Hi {{first_name}}", "draft", NULL);
    char cid[24];
    text_id(cid, sizeof cid, id);
    camp_command(&fx, ws, id, "start", "tester");
    camp_wait_at_least(&fx, "a quarter of the campaign to be sent", n / 4, 120,
                       "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1 AND status <> "
                       "'pending'",
                       1, cid);
    camp_command(&fx, ws, id, "pause", "tester-pause");
    camp_command(&fx, ws, id, "pause", "tester-pause");
    camp_wait_status(&fx, id, "paused", 60);
    camp_wait_value(&fx, "in-flight sends to be answered", 0, 60,
                    "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1 AND status = "
                    "'queued'",
                    1, cid);
    int64_t pending = camp_sql(
        &fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1 AND status = 'pending'", 1,
        cid);
    print_message("paused with %lld of %d recipients still pending\n", (long long)pending, n);
    assert_true(pending > 0);

    camp_command(&fx, ws, id, "resume", "tester-resume");
    camp_command(&fx, ws, id, "resume", "tester-resume");
    camp_wait_status(&fx, id, "completed", 120);
    camp_wait_outbox_empty(&fx, 60);

    assert_one_send_per_contact(id, n, 0);
    camp_assert_counters_exact(&fx, id);
    assert_int_equal(camp_sql(&fx, "SELECT messages_read FROM campaigns WHERE id = $1", 1, cid), n);
    assert_int_equal(camp_count_events(&fx, id, BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_PAUSED,
                                       NULL, NULL, 0),
                     1);
    assert_int_equal(camp_count_events(&fx, id,
                                       BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_RESUMED,
                                       NULL, NULL, 0),
                     1);
}

/* Insert pending logs of campaign for the limit members of group with the
 * highest contact ids, as a failed start leaves them; returns how many. */
static int64_t leave_logs_behind(int64_t ws, int64_t campaign, int64_t group, int limit)
{
    char w[24], c[24], g[24], l[24];
    text_id(w, sizeof w, ws);
    text_id(c, sizeof c, campaign);
    text_id(g, sizeof g, group);
    text_id(l, sizeof l, limit);
    return camp_sql(&fx,
                    "WITH left_behind AS (INSERT INTO campaign_logs (workspace_id, campaign_id, "
                    "contact_id) SELECT $1, $2, contact_id FROM contact_group_members "
                    "WHERE contact_group_id = $3 ORDER BY contact_id DESC LIMIT $4 RETURNING 1) "
                    "SELECT count(*) FROM left_behind",
                    4, w, c, g, l);
}

static void test_start_after_a_failed_start_sends_to_the_audience_once(void **state)
{
    (void)state;
    int n = 300;
    int64_t ws = camp_workspace(&fx);
    int64_t acc = camp_account(&fx, ws, "again-", 1, 100, FAST_LIMITS);
    int64_t group = camp_audience(&fx, ws, n, 561);
    int64_t departed_group = camp_audience(&fx, ws, 1, 562);
    int64_t id = camp_campaign(&fx, ws, group, acc, "Hi {{first_name}}, this is for {{phone}}",
                               "draft", NULL);
    char cid[24];
    text_id(cid, sizeof cid, id);
    /* Half the audience, and a contact who is not in the group (any more). */
    assert_int_equal(leave_logs_behind(ws, id, group, n / 2), n / 2);
    assert_int_equal(leave_logs_behind(ws, id, departed_group, 1), 1);

    camp_command(&fx, ws, id, "start", "tester");
    camp_wait_status(&fx, id, "completed", 120);
    camp_wait_outbox_empty(&fx, 60);

    assert_one_send_per_contact(id, n, 1);
    assert_int_equal(camp_sql(&fx, "SELECT contacts_count FROM campaigns WHERE id = $1", 1, cid), n);
    /* n logs in all: the departed contact's log is gone. */
    assert_int_equal(camp_sql(&fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1", 1,
                              cid),
                     n);
    camp_assert_counters_exact(&fx, id);
}

static void test_scheduled_campaigns_start_once_with_two_instances(void **state)
{
    (void)state;
    enum { CAMPAIGNS = 5, CONTACTS = 200 };
    camp_start_sender(&fx, 1, NULL);
    int64_t ws = camp_workspace(&fx);
    int64_t acc = camp_account(&fx, ws, "sched-", 1, 100, FAST_LIMITS);
    int64_t group = camp_audience(&fx, ws, CONTACTS, 558);
    int64_t ids[CAMPAIGNS];
    for (int i = 0; i < CAMPAIGNS; i++)
        ids[i] = camp_campaign(&fx, ws, group, acc, "Scheduled hello {{full_name}}", "scheduled",
                               NULL);
    for (int i = 0; i < CAMPAIGNS; i++)
        camp_wait_status(&fx, ids[i], "completed", 120);
    camp_wait_outbox_empty(&fx, 60);
    for (int i = 0; i < CAMPAIGNS; i++) {
        char cid[24];
        text_id(cid, sizeof cid, ids[i]);
        assert_int_equal(
            camp_count_events(&fx, ids[i],
                              BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_STARTED, NULL, NULL, 0),
            1);
        assert_int_equal(camp_sql(&fx,
                                  "SELECT count(*) FROM campaigns WHERE id = $1 AND "
                                  "metadata->'last_command'->>'actor' = 'scheduler'",
                                  1, cid),
                         1);
        assert_one_send_per_contact(ids[i], CONTACTS, 0);
        camp_assert_counters_exact(&fx, ids[i]);
    }
    camp_stop_sender(&fx, 1);
}

/* issue 55: a restore's replay re-reads campaign.receipts and
 * campaign.commands in no order between them; a receipt read before the
 * start that makes its log was dead-lettered (unknown_campaign_log), its
 * log never moved and its campaign never completed (the restore drill's
 * "campaign 2" waits). While a fence is up it waits, and the start's batch
 * applies it: the log keeps the receipt's status, and is not sent again. */
static void test_receipts_before_their_start_wait_in_a_replay(void **state)
{
    (void)state;
    int64_t ws = camp_workspace(&fx);
    int64_t acc = camp_account(&fx, ws, "early-", 1, 100, FAST_LIMITS);
    int64_t group = camp_audience(&fx, ws, 3, 559);
    int64_t id = camp_campaign(&fx, ws, group, acc, "Hi {{first_name}}", "draft", NULL);
    char cid[24], gid[24];
    text_id(cid, sizeof cid, id);
    text_id(gid, sizeof gid, group);
    int64_t contact = camp_sql(&fx, "SELECT min(contact_id) FROM contact_group_members WHERE "
                                    "contact_group_id = $1", 1, gid);
    char sql[256], log_uuid[BZ_UUID_STR_SIZE];
    snprintf(sql, sizeof sql, "SELECT blazz_campaign_log_uuid(%lld, %lld)::text", (long long)id,
             (long long)contact);
    PGresult *r = PQexec(fx.pg, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    snprintf(log_uuid, sizeof log_uuid, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    itest_restore_fence_raise(fx.pg);

    camp_receipt(&fx, ws, id, contact, log_uuid, BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ,
                 "wamid.before-restore");
    camp_wait_value(&fx, "the early receipt to wait for its log", 1, 60,
                    "SELECT count(*) FROM campaign_receipts_waiting WHERE log_uuid = $1::uuid", 1,
                    log_uuid);
    camp_command(&fx, ws, id, "start", "tester");
    camp_wait_value(&fx, "the early receipt taken back once its log exists", 0, 60,
                    "SELECT count(*) FROM campaign_receipts_waiting WHERE log_uuid = $1::uuid", 1,
                    log_uuid);
    /* no log leaves while the fence is up (0054): a receipt of the replay
     * may still be on its way; rounds pass meanwhile (sender.refresh_ms) */
    itest_sleep_ms(1500);
    assert_int_equal(camp_sql(&fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1 "
                                   "AND status NOT IN ('pending', 'read')", 1, cid),
                     0);
    itest_pg_exec(fx.pg, "UPDATE restore_fences SET lifted_at = now()");
    camp_wait_status(&fx, id, "completed", 120);
    camp_wait_outbox_empty(&fx, 60);

    const char *u[] = {log_uuid};
    assert_int_equal(camp_sql(&fx, "SELECT count(*) FROM campaign_receipts_waiting", 0), 0);
    assert_int_equal(camp_sql(&fx, "SELECT count(*) FROM campaign_logs WHERE uuid = $1::uuid "
                                   "AND status = 'read' AND wam_id = 'wamid.before-restore'",
                              1, u[0]),
                     1);
    size_t nsends = 0;
    camp_send *sends = camp_read_sends(&fx, id, &nsends);
    for (size_t i = 0; i < nsends; i++)
        if (sends[i].contact_id == contact)
            fail_msg("the contact whose receipt came first was sent to again (%s)", sends[i].key);
    assert_int_equal(nsends, 2);
    free(sends);
    camp_assert_counters_exact(&fx, id);
    assert_int_equal(camp_sql(&fx, "SELECT messages_read FROM campaigns WHERE id = $1", 1, cid), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_campaign_completes_with_exact_counters),
        cmocka_unit_test(test_unknown_placeholder_fails_at_start),
        cmocka_unit_test(test_oversized_message_fails_at_start),
        cmocka_unit_test(test_pause_then_resume_sends_everyone_once),
        cmocka_unit_test(test_scheduled_campaigns_start_once_with_two_instances),
        cmocka_unit_test(test_start_after_a_failed_start_sends_to_the_audience_once),
        cmocka_unit_test(test_receipts_before_their_start_wait_in_a_replay),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
