/*
 * test_webhook_fairness.c - a slow or dead endpoint costs only its own share
 * of blazz-webhook-dispatcher.
 *
 * An endpoint's own limit holds: with max_concurrency 2 and a receiver
 * that takes 300 ms per request, no request arrives while two others that
 * arrived less than 300 ms before it are still unanswered. (The worker
 * once filed every endpoint under a hash of id 0, so most lookups missed,
 * each claimed row got an endpoint of its own, and the endpoint's limits,
 * circuit and rate were each only one row's.)
 */
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"
#include "webhook_itest.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static wh_env env;
static bool env_live;

/* The receiver goes first: its hanging requests end with it, so the
 * dispatcher stops without waiting out five-minute attempts. */
static int stop_everything(void **state)
{
    (void)state;
    if (env_live) {
        env_live = false;
        wh_receiver_stop(&env);
        wh_env_teardown(&env);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_endpoint_concurrency_holds(void **state)
{
    (void)state;
    const int events = 20, slow_ms = 300;
    wh_env *e = &env;
    wh_env_setup(e, "conc");
    env_live = true;
    char path[1024], sql[2048];
    snprintf(path, sizeof path, "/slow/%d/conc-%s", slow_ms, e->token);
    int64_t ep = wh_endpoint_add(e, path, SECRET, "standard", "{*}", 1000, 2);
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              "BLAZZ_WEBHOOK_POLL_MS=100", NULL};
    wh_dispatcher_start(e, settings);
    wh_wait_consuming(e);
    bz_producer *p = itest_producer();
    char id[40];
    for (int i = 0; i < events; i++)
        wh_produce_message(p, e, e->workspace_id, id, "conc");
    bz_error err;
    if (bz_producer_flush(p, 30000, &err) != BZ_OK)
        fail_msg("flush: %s", err.msg);
    bz_producer_free(p, 1000);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'success'",
             (long long)ep);
    wh_wait_for(e, sql, events, 120000);
    json_t *all = wh_requests(e), *req[64];
    size_t n = wh_filter(all, path, req, 64);
    double t[64];
    for (size_t i = 0; i < n; i++)
        t[i] = json_real_value(json_object_get(req[i], "t_ms"));
    qsort(t, n, sizeof *t, cmp_double);
    /* a request that arrived less than slow_ms after another could not have
     * been sent after that one was answered */
    size_t most = 0;
    for (size_t i = 0; i < n; i++) {
        size_t open = 1;
        for (size_t k = 0; k < i; k++)
            open += t[i] - t[k] < slow_ms;
        most = open > most ? open : most;
    }
    print_message("max_concurrency 2: at most %zu requests were open at once (%zu requests)\n",
                  most, n);
    assert_int_equal(n, events);
    assert_true(most <= 2);
    json_decref(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_endpoint_concurrency_holds, stop_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
