/*
 * test_meta_throttle.c - Meta's throttling reaches the send budget
 * (issue 35; ARCHITECTURE.md §11.3, §12.1), on the chain of
 * test_meta_sender (support/meta_world.c):
 *  - throttling_slows_the_release_budget: a campaign to
 *    BLAZZ_META_CAMPAIGN_CONTACTS (1,200) contacts from an account paced at
 *    META_WORLD_RATE a second, both by campaign-sender's budget and by
 *    meta-sender. After BEFORE releases the Graph test server answers 20% of
 *    the requests 130429 (its POST /_throttle) until meta-sender has
 *    finished THROTTLED_SENDS more sends, with campaign-sender SIGKILLed and
 *    restarted and meta-sender stopped and restarted halfway (when
 *    `blazzctl campaign status` must say the account is throttled by
 *    Meta), then stops throttling. From PostgreSQL, no clock in the assertions: the release
 *    rate of the account in send_ledger while throttled is at most half of
 *    what it was before; the meta_sends backlog (rows queued or in flight)
 *    never exceeds BACKLOG_MAX seconds' worth of the account's rate; the
 *    rate of the last AFTER releases is back near the rate before; every
 *    contact got one message; meta_throttle holds the account's 130429s.
 * Every wait polls PostgreSQL with a deadline that only guards a hang.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "itest.h"
#include "itest_http.h"
#include "meta_itest.h"
#include "meta_world.h"

#define fx agent_test_fx
#define mw meta_test_world

/* Releases before Meta throttles: the rate the budget allows unthrottled. */
#define BEFORE 200
/* Sends meta-sender finishes while Meta throttles: a period of tens of
 * seconds at the throttled pace, long enough for the unthrottled budget
 * (the code before issue 35) to release several hundred more. */
#define THROTTLED_SENDS 150
/* The last releases of the campaign, long after Meta stopped: the
 * recovered rate. */
#define AFTER 300
/* The backlog allowed in meta_sends, in seconds of the account's rate.
 * Not zero: the budget follows meta-sender's pace, and meta-sender spends
 * the throttled share of that pace on retries, so while Meta throttles the
 * backlog still grows by that share (a message or two a second at the
 * floor), plus what was released in the refresh before campaign-sender saw
 * the first throttle. Unthrottled, the budget left it near a thousand. */
#define BACKLOG_MAX 6
#define SHARE_PERCENT 20

#define NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
#define MS_OF(t) "(extract(epoch FROM " t ") * 1000)::bigint"

/* POST /_throttle to the Graph test server: share% of the requests from
 * now on answer 130429. */
static void meta_throttles(int share)
{
    char url[128], body[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_throttle", mw.graph.port);
    snprintf(body, sizeof body, "{\"share_percent\": %d}", share);
    const char *headers[] = {"Content-Type: application/json", NULL};
    itest_http_reply reply;
    itest_http("POST", url, body, strlen(body), headers, 10000, &reply);
    if (reply.status != 200)
        fail_msg("the Graph test server's /_throttle answered %ld: %s", reply.status, reply.body);
}

static int64_t finished_sends(void)
{
    return agent_int(fx, "SELECT count(*) FROM meta_sends WHERE whatsapp_account_id = %lld AND "
                         "state = 'sent'", (long long)mw.account);
}

static int64_t backlog(void)
{
    return agent_int(fx, "SELECT count(*) FROM meta_sends WHERE whatsapp_account_id = %lld AND "
                         "state IN ('queued', 'in_flight')", (long long)mw.account);
}

/* Releases a second of the account in send_ledger over (from_ms, to_ms]. */
static double rate_between(int64_t from_ms, int64_t to_ms)
{
    int64_t n = agent_int(fx, "SELECT count(*) FROM send_ledger WHERE whatsapp_account_id = %lld "
                              "AND " MS_OF("released_at") " > %lld AND " MS_OF("released_at")
                              " <= %lld", (long long)mw.account, (long long)from_ms,
                          (long long)to_ms);
    return to_ms > from_ms ? (double)n * 1000.0 / (double)(to_ms - from_ms) : 0;
}

/* Releases a second over the first (oldest) or last n releases of the
 * account: n - 1 intervals between the first and the last of them. */
static double rate_of_releases(int n, const char *order)
{
    int64_t span = agent_int(fx, "SELECT " MS_OF("max(released_at)") " - " MS_OF("min(released_at)")
                                 " FROM (SELECT released_at FROM send_ledger WHERE "
                                 "whatsapp_account_id = %lld ORDER BY released_at %s LIMIT %d) l",
                             (long long)mw.account, order, n);
    return span > 0 ? (double)(n - 1) * 1000.0 / (double)span : 0;
}

/* `blazzctl campaign status --json` says why the campaign's account is
 * slowed while Meta throttles it. */
static void operator_sees_the_throttle(int64_t campaign)
{
    json_t *out = camp_status_json(&fx->camp, campaign);
    json_t *pace = json_object_get(out, "pace");
    print_message("blazzctl campaign status: pace %s x%.2f (%s)\n",
                  json_string_value(json_object_get(pace, "reason")),
                  json_real_value(json_object_get(pace, "factor")),
                  json_string_value(json_object_get(pace, "last_code")));
    assert_string_equal(json_string_value(json_object_get(pace, "reason")), "meta_throttled");
    assert_true(json_real_value(json_object_get(pace, "factor")) < 1.0);
    assert_int_equal(json_integer_value(json_object_get(pace, "account_id")), mw.account);
    json_decref(out);
}

static void throttling_slows_the_release_budget(void **state)
{
    (void)state;
    /* meta-sender's pace counts windows of 1,000 ms like the budget's
     * per-second window: unthrottled, meta_sends does not grow */
    meta_world_rate_guard = "BLAZZ_META_RATE_GUARD_MS=0";
    meta_world_start("mt", META_WORLD_PACED, NULL);
    meta_world_rate_guard = "BLAZZ_META_RATE_GUARD_MS=500";
    int n = meta_world_contacts_wanted(1200);
    int64_t campaign = meta_world_start_campaign(n);
    agent_wait(fx, 1, 300, "SELECT (count(*) >= %d)::int FROM send_ledger WHERE "
               "whatsapp_account_id = %lld", BEFORE, (long long)mw.account);

    int64_t on_ms = agent_int(fx, "SELECT " NOW_MS);
    meta_throttles(SHARE_PERCENT);
    int64_t sent_at_on = finished_sends(), worst = 0, sent = sent_at_on;
    int restarted = 0;
    for (int i = 0; i < 6000 && sent - sent_at_on < THROTTLED_SENDS; i++) {
        int64_t b = backlog();
        worst = b > worst ? b : worst;
        if (!restarted && sent - sent_at_on >= THROTTLED_SENDS / 2) {
            operator_sees_the_throttle(campaign);
            /* the state is PostgreSQL's: neither restart forgets Meta */
            camp_kill_sender(&fx->camp, 0);
            camp_start_sender(&fx->camp, 0, NULL);
            char log[700];
            snprintf(log, sizeof log, "%s/meta-sender.log", fx->camp.dir);
            itest_terminate(&mw.meta, "meta-sender", log);
            meta_world_start_meta_sender();
            restarted = 1;
        }
        itest_sleep_ms(100);
        sent = finished_sends();
    }
    assert_true(sent - sent_at_on >= THROTTLED_SENDS);
    int64_t off_ms = agent_int(fx, "SELECT " NOW_MS);
    meta_throttles(0);

    double before = rate_of_releases(BEFORE, "ASC");
    double throttled = rate_between(on_ms, off_ms);
    int64_t released_throttled =
        agent_int(fx, "SELECT count(*) FROM send_ledger WHERE whatsapp_account_id = %lld AND "
                      MS_OF("released_at") " > %lld AND " MS_OF("released_at") " <= %lld",
                  (long long)mw.account, (long long)on_ms, (long long)off_ms);
    print_message("releases/s before: %.1f; with %d%% of requests throttled: %.1f (%lld released "
                  "while meta-sender finished %lld); meta_sends backlog at most %lld\n",
                  before, SHARE_PERCENT, throttled, (long long)released_throttled,
                  (long long)(sent - sent_at_on), (long long)worst);
    assert_true(throttled * 2 <= before);
    assert_true(worst <= BACKLOG_MAX * META_WORLD_RATE);

    meta_world_wait_completed(campaign, 900);
    double after = rate_of_releases(AFTER, "DESC");
    print_message("releases/s over the last %d releases: %.1f\n", AFTER, after);
    assert_true(after >= before * 0.7);
    assert_int_equal(meta_world_check_one_per_contact(campaign, n), 0);
    int64_t recorded = agent_int(fx, "SELECT throttles FROM meta_throttle WHERE "
                                     "whatsapp_account_id = %lld AND last_code = '130429'",
                                 (long long)mw.account);
    print_message("meta_throttle: %lld throttling answers recorded\n", (long long)recorded);
    assert_true(recorded >= THROTTLED_SENDS * SHARE_PERCENT / 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(throttling_slows_the_release_budget, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
