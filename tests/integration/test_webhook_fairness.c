/*
 * test_webhook_fairness.c - a slow or dead endpoint costs only its own share
 * of blazz-webhook-dispatcher.
 *
 * One workspace, one healthy endpoint and 100 endpoints that accept the
 * connection and never answer (their attempts time out only after 5
 * minutes). 200 events fan out to all 101. The healthy endpoint must get
 * every one of its 200 deliveries, exactly once, while not one attempt to
 * a dead endpoint has ended yet: an ordering, not a stopwatch. When the
 * claimed-jobs budget, the claim order or the connections were shared
 * first come first served, the dead endpoints' attempts and queues took
 * everything and the healthy endpoint waited for their timeouts. The
 * latencies themselves are measured by
 * tests/bench/webhook-dispatcher/bench_webhook.c.
 *
 * And an endpoint's own limit holds: with max_concurrency 2 and a receiver
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
#define DEAD 100
#define EVENTS 200

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

static void test_dead_endpoints_do_not_starve_a_healthy_one(void **state)
{
    (void)state;
    wh_env *e = &env;
    wh_env_setup(e, "fair");
    env_live = true;
    char path[1024], healthy_path[1024], sql[512];
    snprintf(healthy_path, sizeof healthy_path, "/ok/fair-%s", e->token);
    int64_t healthy = wh_endpoint_add(e, healthy_path, SECRET, "standard", "{*}", 1000, 4);
    for (int i = 0; i < DEAD; i++) {
        snprintf(path, sizeof path, "/hang/fair-%d-%s", i, e->token);
        wh_endpoint_add(e, path, SECRET, "standard", "{*}", 1000, 4);
    }
    snprintf(sql, sizeof sql,
             "UPDATE webhook_endpoints SET timeout_ms = 300000 WHERE workspace_id = %lld",
             (long long)e->workspace_id);
    itest_pg_exec(e->conn, sql);
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              "BLAZZ_WEBHOOK_TIMEOUT_MS=300000",
                              "BLAZZ_WEBHOOK_CLAIM_LEASE_MS=600000",
                              "BLAZZ_WEBHOOK_POLL_MS=200",
                              NULL};
    wh_dispatcher_start(e, settings);
    wh_wait_consuming(e);
    wh_produce_paced(e, EVENTS, 33);

    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'success'",
             (long long)healthy);
    wh_wait_for(e, sql, EVENTS, 120000);
    int64_t ended = itest_pg_int64f(e->conn,
                                    "SELECT count(*) FROM webhook_retry_queue "
                                    "WHERE workspace_id = %lld AND endpoint_id <> %lld "
                                    "AND (status <> 'pending' OR retry_count > 0 "
                                    "OR last_error IS NOT NULL)",
                                    (long long)e->workspace_id, (long long)healthy);
    json_t *all = wh_requests(e), *req[EVENTS + 1], *r;
    size_t hanging = 0, i;
    json_array_foreach(all, i, r)
    {
        hanging += strncmp(json_string_value(json_object_get(r, "path")), "/hang/", 6) == 0;
    }
    size_t delivered = wh_filter(all, healthy_path, req, EVENTS + 1);
    json_t *ids = json_object();
    for (i = 0; i < delivered; i++)
        json_object_set_new(ids, wh_header(req[i], "webhook-id"), json_true());
    print_message("fairness: healthy endpoint got %zu deliveries (%zu distinct) while %zu "
                  "attempts to dead endpoints hung and %lld had ended\n",
                  delivered, json_object_size(ids), hanging, (long long)ended);
    assert_int_equal(delivered, EVENTS);
    assert_int_equal(json_object_size(ids), EVENTS);
    assert_int_equal(ended, 0);
    json_decref(ids);
    json_decref(all);
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
    wh_produce_many(e, events, "conc");
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
        cmocka_unit_test_teardown(test_dead_endpoints_do_not_starve_a_healthy_one,
                                  stop_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
