/*
 * test_campaign_crash.c - SIGKILL campaign-sender again and again while it
 * sends a campaign: every contact must still get exactly one idempotency
 * key (a repeated publish may repeat a key, never mint a second one), the
 * campaign must complete, and its counters must equal its logs.
 *
 * Size and kills: BLAZZ_CAMPAIGN_CRASH_CONTACTS (default 10000; the issue's
 * 50,000 is for a run by hand) and BLAZZ_CAMPAIGN_CRASH_KILLS (default 6).
 * The sender is killed each time another slice of the audience has been
 * queued, and restarted at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "campaign_itest.h"
#include "core/clock.h"
#include "itest.h"

static int env_int(const char *name, int fallback)
{
    return itest_env_int(name, fallback, 1, 10000000);
}

static camp_fx fx;

static int setup(void **state)
{
    (void)state;
    camp_fx_init(&fx, "campk");
    camp_start_test_gateway(&fx, NULL);
    camp_start_sender(&fx, 0, NULL);
    return 0;
}

/* Runs even when the test failed: no process may outlive the test. */
static int teardown(void **state)
{
    (void)state;
    camp_fx_finish(&fx);
    return 0;
}

static void test_sigkill_never_creates_a_second_send(void **state)
{
    (void)state;
    int n = env_int("BLAZZ_CAMPAIGN_CRASH_CONTACTS", 10000);
    int kills = env_int("BLAZZ_CAMPAIGN_CRASH_KILLS", 6);
    int64_t ws = camp_workspace(&fx);
    int64_t acc = camp_account(&fx, ws, "crash-", 1, 100,
                               "{\"per_second\": 1500, \"per_minute\": 0, \"per_hour\": 0}");
    int64_t group = camp_audience(&fx, ws, n, 560);
    int64_t id = camp_campaign(&fx, ws, group, acc, "Hello {{full_name}}", "draft", NULL);
    char cid[24];
    snprintf(cid, sizeof cid, "%lld", (long long)id);
    int64_t t0 = bz_monotonic_ms();
    camp_command(&fx, ws, id, "start", "tester");
    int done = 0;
    for (int k = 1; k <= kills; k++) {
        int64_t target = (int64_t)n * k / (kills + 1);
        camp_wait_at_least(&fx, "the next slice to be queued", target, 180,
                           "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1 AND "
                           "status <> 'pending'",
                           1, cid);
        camp_kill_sender(&fx, 0);
        camp_start_sender(&fx, 0, NULL);
        done = k;
    }
    camp_wait_status(&fx, id, "completed", 180);
    int64_t elapsed = bz_monotonic_ms() - t0;
    camp_wait_outbox_empty(&fx, 60);

    size_t nsends, keys, contacts, dups;
    camp_send *sends = camp_read_sends(&fx, id, &nsends);
    camp_assert_one_key_per_contact(sends, nsends, &keys, &contacts, &dups);
    free(sends);
    print_message("%d contacts, %d SIGKILLs: %zu records, %zu keys, %zu repeated publishes, "
                  "%lld ms\n",
                  n, done, nsends, keys, dups, (long long)elapsed);
    assert_int_equal(contacts, n);
    assert_int_equal(keys, n);
    assert_int_equal(camp_sql(&fx, "SELECT messages_read FROM campaigns WHERE id = $1", 1, cid), n);
    camp_assert_counters_exact(&fx, id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigkill_never_creates_a_second_send, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
