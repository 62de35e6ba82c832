/*
 * test_webhook_instances.c - two blazz-webhook-dispatcher instances on one
 * queue: one (event, endpoint) pair is never delivered twice, and an
 * endpoint's rate limit holds for both together.
 *
 * One endpoint (answers 200 at once) with rate_limit_per_sec 20 and
 * max_concurrency 8; two dispatchers in one consumer group; 300 events.
 * When every delivery succeeded:
 *  - the receiver saw each webhook-id exactly once: the claims (FOR UPDATE
 *    SKIP LOCKED, a lease, the claim counter) never let both instances
 *    send one row;
 *  - each instance made some of the attempts (both took part);
 *  - in no 5-second span did more requests arrive than the limit allows
 *    one sender: the rate times 5 s plus one second's burst, plus 10 % for
 *    the network's jitter (130). Each instance with a bucket of its own
 *    sends up to twice that (the limit held per instance, not per
 *    endpoint). An upper bound on arrivals: a slower machine only makes
 *    it easier to meet.
 */
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"
#include "webhook_itest.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define EVENTS 300
#define RATE 20
#define SPAN_MS 5000

static wh_env env;
static bool env_live;
static pid_t second;

static int stop_everything(void **state)
{
    (void)state;
    if (second > 0) {
        kill(second, SIGKILL);
        itest_wait(second);
        second = 0;
    }
    if (env_live) {
        env_live = false;
        wh_env_teardown(&env);
    }
    return 0;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The most arrivals within any SPAN_MS of sorted times t[0..n). */
static size_t busiest_span(const double *t, size_t n)
{
    size_t best = 0;
    for (size_t i = 0, j = 0; i < n; i++) {
        while (j < n && t[j] < t[i] + SPAN_MS)
            j++;
        if (j - i > best)
            best = j - i;
    }
    return best;
}

static void test_two_dispatchers_share_an_endpoint_and_its_rate(void **state)
{
    (void)state;
    wh_env *e = &env;
    wh_env_setup(e, "inst");
    env_live = true;
    char path[1024], second_log[1400];
    snprintf(path, sizeof path, "/ok/inst-%s", e->token);
    snprintf(second_log, sizeof second_log, "%s.second", e->dispatcher_log);
    int64_t ep = wh_endpoint_add(e, path, SECRET, "standard", "{*}", RATE, 8);
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              "BLAZZ_WEBHOOK_POLL_MS=100", NULL};
    wh_dispatcher_start(e, settings);
    int second_port = 0;
    second = wh_dispatcher_spawn(e, settings, second_log, &second_port);
    wh_wait_consuming(e);

    wh_produce_many(e, EVENTS, "two dispatchers");
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'success'",
             (long long)ep);
    wh_wait_for(e, sql, EVENTS, 240000);

    json_t *all = wh_requests(e);
    json_t *reqs[EVENTS + 64];
    size_t n = wh_filter(all, path, reqs, sizeof reqs / sizeof reqs[0]);
    double t[EVENTS + 64];
    const char *ids[EVENTS + 64];
    for (size_t i = 0; i < n; i++) {
        t[i] = json_real_value(json_object_get(reqs[i], "t_ms"));
        ids[i] = wh_header(reqs[i], "webhook-id");
        assert_non_null(ids[i]);
    }
    size_t repeated = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            repeated += strcmp(ids[i], ids[j]) == 0;
    qsort(t, n, sizeof *t, compare_double);
    size_t busiest = busiest_span(t, n);
    double first = wh_metric(e->admin_port, "blazz_webhook_dispatcher_attempts_total");
    double other = wh_metric(second_port, "blazz_webhook_dispatcher_attempts_total");
    json_decref(all);
    size_t allowed = (size_t)(RATE * SPAN_MS / 1000 + RATE) * 11 / 10;
    print_message("%zu requests, %zu repeated; attempts %.0f + %.0f; busiest %d s: %zu "
                  "(allowed %zu; %.1f/s overall)\n",
                  n, repeated, first, other, SPAN_MS / 1000, busiest, allowed,
                  n > 1 ? (double)(n - 1) * 1000.0 / (t[n - 1] - t[0]) : 0.0);
    assert_int_equal(n, EVENTS);
    assert_int_equal(repeated, 0);
    assert_true(first > 0 && other > 0);
    assert_in_range(busiest, 1, allowed);

    kill(second, SIGTERM);
    assert_int_equal(itest_wait(second), 0);
    second = 0;
    wh_dispatcher_stop(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_two_dispatchers_share_an_endpoint_and_its_rate,
                                  stop_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
