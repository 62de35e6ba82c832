/*
 * test_meta_sender_faults.c - Meta sends under faults, exactly once and
 * within the account's pace (ARCHITECTURE.md §12.1, §12.2), on the chain
 * of test_meta_sender (support/meta_world.c):
 *  - campaign_with_faults: BLAZZ_META_CAMPAIGN_CONTACTS (500) campaign
 *    messages against 5% 130429/131056 answers and a dropped connection
 *    every 100 requests: every contact receives exactly one message, no
 *    1-second window of requests at the server (answered or not) holds
 *    more than the account's rate, the campaign completes with exact
 *    counters;
 *  - sigkill_mid_campaign (300 contacts): meta-sender is SIGKILLed while
 *    sending and restarted; contacts that got two messages are counted and
 *    must be at most the sends that were in flight at the kill (the
 *    ambiguous window, counted in meta_sends.ambiguous_resends).
 * (Answers lost after Meta took a message: test_meta_lost_answers.)
 * Every wait polls PostgreSQL or a file with a deadline.
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
#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"
#include "meta_itest.h"
#include "meta_world.h"
#include "webhook_itest.h"

#define fx agent_test_fx
#define mw meta_test_world
/* ---- campaigns ----------------------------------------------------------------------- */

static void campaign_with_faults(void **state)
{
    (void)state;
    const char *faults[] = {"--throttle-every", "20", "--drop-every", "100", NULL};
    meta_world_start("mc", META_WORLD_PACED, faults);
    /* 25 throttled and 5 dropped requests: the pace halves and recovers
     * many times over, which is the point; more contacts only repeat it */
    int n = meta_world_contacts_wanted(500);
    int64_t campaign = meta_world_start_campaign(n);
    camp_wait_status(&fx->camp, campaign, "completed", 600);
    assert_int_equal(meta_world_check_one_per_contact(campaign, n), 0);
    int busiest = meta_world_busiest_second();
    print_message("%d messages, busiest second at the server: %d (rate %d/s)\n", n, busiest,
                  META_WORLD_RATE);
    assert_true(busiest <= META_WORLD_RATE);
    /* faults were met and absorbed: throttled sends retried; a dropped
     * connection comes back as ambiguous (held, checked for a status
     * webhook, sent again; libcurl's own re-send on a fresh connection is
     * refused, §12.2) */
    int64_t retried = agent_int(fx, "SELECT count(*) FROM meta_sends WHERE whatsapp_account_id = "
                                    "%lld AND attempts > 1", (long long)mw.account);
    int64_t ambiguous = agent_int(fx, "SELECT coalesce(sum(ambiguous_resends), 0) FROM "
                                      "meta_sends WHERE whatsapp_account_id = %lld",
                                  (long long)mw.account);
    print_message("%lld sends needed more than one request, %lld answers were lost\n",
                  (long long)retried, (long long)ambiguous);
    assert_true(retried >= n / 40);
    agent_wait(fx, n, 120,
               "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND status = 'read'",
               (long long)campaign);
    camp_assert_counters_exact(&fx->camp, campaign);
}

static void sigkill_mid_campaign(void **state)
{
    (void)state;
    const char *faults[] = {"--slow-every", "3", "--slow-ms", "300", NULL};
    meta_world_start("ms", META_WORLD_PACED, faults);
    /* the kill comes after a third; what counts is what was in flight then */
    int n = meta_world_contacts_wanted(300);
    int64_t campaign = meta_world_start_campaign(n);
    for (int i = 0; i < 1200 && meta_world_count_kind("text") < n / 3; i++)
        itest_sleep_ms(50);
    int64_t in_flight = agent_int(fx, "SELECT count(*) FROM meta_sends WHERE "
                                      "whatsapp_account_id = %lld AND state = 'in_flight'",
                                  (long long)mw.account);
    char *backends = itest_pg_backends_of(fx->camp.pg, mw.meta);
    agent_kill(&mw.meta);
    /* a round's COMMIT it had sent may land after the kill */
    itest_pg_wait_backends_gone(fx->camp.pg, backends, 60);
    free(backends);
    int64_t at_kill = agent_int(fx, "SELECT count(*) FROM meta_sends WHERE whatsapp_account_id = "
                                    "%lld AND state = 'in_flight'",
                                (long long)mw.account);
    meta_world_start_meta_sender();
    camp_wait_status(&fx->camp, campaign, "completed", 600);
    long duplicates = meta_world_check_one_per_contact(campaign, n);
    int64_t ambiguous = agent_int(fx, "SELECT coalesce(sum(ambiguous_resends), 0) FROM meta_sends "
                                      "WHERE whatsapp_account_id = %lld",
                                  (long long)mw.account);
    print_message("SIGKILL: %lld sends in flight at the kill (%lld a moment before), %lld "
                  "recovered as ambiguous, %ld contacts got a second message\n",
                  (long long)at_kill, (long long)in_flight, (long long)ambiguous, duplicates);
    assert_true(duplicates <= at_kill);
    assert_true(ambiguous >= at_kill);
    camp_assert_counters_exact(&fx->camp, campaign);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(campaign_with_faults, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(sigkill_mid_campaign, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
