/*
 * test_webhook_outcomes.c - no reply, outcome or dead letter of one
 * delivery can stop blazz-webhook-dispatcher from recording the others.
 *
 *  - a receiver answering 500 with 200 random bytes (not UTF-8) for 1,000
 *    deliveries, beside a healthy Standard Webhooks endpoint of the same
 *    workspace: every healthy delivery succeeds exactly once; every failing
 *    one is tried exactly max_retries + 1 times, no sooner than the retry
 *    schedule allows, ends failed with its error stored as text (the bad
 *    bytes as '?') and is dead-lettered exactly once.
 *  - an outcome PostgreSQL refuses for its data (a trigger raising 22021
 *    when the error text carries a marker stands in for any such row): the
 *    other outcomes are written, the refused one is written without its
 *    text, and /readyz never calls PostgreSQL down meanwhile.
 *  - Kafka down while deliveries are exhausted, two dispatchers: the dead
 *    letters waiting for the broker stay within
 *    webhook.max_pending_dead_letters per dispatcher (the gauge is sampled
 *    throughout), healthy deliveries go on meanwhile, no delivery is
 *    attempted beyond max_retries however often its lease runs out, and
 *    once the broker is back each exhausted delivery has exactly one dead
 *    letter.
 *  - a stale holder: a dispatcher frozen (SIGSTOP) in the middle of a last
 *    attempt loses its lease to another one, which retries, exhausts and
 *    dead-letters the delivery; thawed, the first one's outcome is ignored
 *    and it sends no second dead letter.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "itest.h"
#include "itest_http.h"
#include "webhook_itest.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

/* The running test's processes, so that a failed test still stops them. */
static wh_env env;
static bool env_live;
static pid_t second;

static wh_env *setup_env(const char *name)
{
    wh_env_setup(&env, name);
    env_live = true;
    second = 0;
    return &env;
}

static void remove_poison(wh_env *e);

/* Bring Kafka back, thaw and stop every process, drop the test trigger. */
static int stop_everything(void **state)
{
    (void)state;
    itest_stack("start-kafka");
    if (second > 0) {
        kill(second, SIGCONT);
        kill(second, SIGTERM);
        itest_wait(second);
        second = 0;
    }
    if (env_live) {
        if (env.dispatcher > 0)
            kill(env.dispatcher, SIGCONT);
        remove_poison(&env);
        env_live = false;
        wh_env_teardown(&env);
    }
    return 0;
}

static int64_t count_where(wh_env *e, int64_t endpoint, const char *condition)
{
    return itest_pg_int64f(e->conn,
                           "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
                           "AND %s",
                           (long long)endpoint, condition);
}

static void wait_rows(wh_env *e, int64_t endpoint, const char *condition, int64_t want,
                      int timeout_ms)
{
    char sql[2048];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld AND %s",
             (long long)endpoint, condition);
    wh_wait_for(e, sql, want, timeout_ms);
}

/* Requests at path, grouped by webhook-id: a JSON object id -> array of
 * arrival times (ms), in arrival order. Caller decrefs. */
static json_t *attempts_by_event(wh_env *e, const char *path)
{
    json_t *all = wh_requests(e), *by_id = json_object(), *r;
    size_t i;
    json_array_foreach(all, i, r)
    {
        const char *p = json_string_value(json_object_get(r, "path"));
        const char *id = wh_header(r, "webhook-id");
        if (!p || strcmp(p, path) != 0 || !id)
            continue;
        json_t *times = json_object_get(by_id, id);
        if (!times) {
            times = json_array();
            json_object_set_new(by_id, id, times);
        }
        json_array_append_new(times, json_real(json_real_value(json_object_get(r, "t_ms"))));
    }
    json_decref(all);
    return by_id;
}

static size_t requests_at(wh_env *e, const char *path)
{
    json_t *by_id = attempts_by_event(e, path), *times;
    const char *id;
    size_t n = 0;
    json_object_foreach(by_id, id, times) n += json_array_size(times);
    json_decref(by_id);
    return n;
}

/* Every event at path was tried exactly `attempts` times, and attempt k+1
 * came no sooner than min_gap_ms[k] after attempt k. */
static void check_attempts(wh_env *e, const char *path, size_t events, size_t attempts,
                           const double *min_gap_ms)
{
    json_t *by_id = attempts_by_event(e, path), *times;
    const char *id;
    assert_int_equal(json_object_size(by_id), events);
    double shortest[8] = {0};
    json_object_foreach(by_id, id, times)
    {
        if (json_array_size(times) != attempts)
            fail_msg("event %s: %zu attempts at %s, expected %zu", id, json_array_size(times),
                     path, attempts);
        for (size_t k = 0; k + 1 < attempts && k < 8; k++) {
            double gap = json_real_value(json_array_get(times, k + 1)) -
                         json_real_value(json_array_get(times, k));
            if (shortest[k] == 0 || gap < shortest[k])
                shortest[k] = gap;
            if (gap < min_gap_ms[k])
                fail_msg("event %s: attempt %zu came %.0f ms after attempt %zu (schedule: %.0f)",
                         id, k + 2, gap, k + 1, min_gap_ms[k]);
        }
    }
    for (size_t k = 0; k + 1 < attempts && k < 8; k++)
        print_message("%s: shortest gap before attempt %zu = %.0f ms\n", path, k + 2, shortest[k]);
    json_decref(by_id);
}

/* Start the dispatcher with the retry schedule setting given, 10% jitter,
 * and no circuit breaker: every failing attempt is to follow the schedule,
 * not wait out an open circuit. Waits until it consumes. */
static void start_on_schedule(wh_env *e, const char *schedule)
{
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              schedule,
                              "BLAZZ_WEBHOOK_RETRY_JITTER=0.1",
                              "BLAZZ_WEBHOOK_TIMEOUT_MS=5000",
                              "BLAZZ_WEBHOOK_CLAIM_LEASE_MS=10000",
                              "BLAZZ_WEBHOOK_POLL_MS=100",
                              "BLAZZ_WEBHOOK_CIRCUIT_ENABLED=false",
                              NULL};
    wh_dispatcher_start(e, settings);
    wh_wait_consuming(e);
    /* "delivery postgresql" is up from the worker's first claim on; until
     * then /readyz rightly says not ready, which is no outcome's doing */
    itest_wait_ready(e->admin_port, e->dispatcher, e->dispatcher_log, 60000);
}

/* ---- a reply that is not UTF-8 ------------------------------------------- */

static void test_non_utf8_replies_block_nothing(void **state)
{
    (void)state;
    int events = itest_env_int("BLAZZ_WEBHOOK_UTF8_EVENTS", 1000, 1, 100000);
    wh_env *e = setup_env("utf8");
    char healthy_path[1024], garbage_path[1024];
    snprintf(healthy_path, sizeof healthy_path, "/ok/healthy-%s", e->token);
    snprintf(garbage_path, sizeof garbage_path, "/garbage/500/%s", e->token);
    int64_t healthy = wh_endpoint_add(e, healthy_path, SECRET, "standard", "{*}", 100000, 8);
    int64_t garbage = wh_endpoint_add(e, garbage_path, SECRET, "standard", "{*}", 100000, 8);
    start_on_schedule(e, "BLAZZ_WEBHOOK_RETRY_SCHEDULE=0,1s,2s");
    wh_produce_many(e, events, "utf8");

    wait_rows(e, healthy, "status = 'success'", events, 90000);
    wait_rows(e, garbage, "status = 'failed'", events, 180000);
    check_attempts(e, healthy_path, (size_t)events, 1, NULL);
    const double gaps[] = {900, 1800};
    check_attempts(e, garbage_path, (size_t)events, 3, gaps);
    assert_int_equal(count_where(e, garbage,
                                 "retry_count = 3 AND last_status_code = 500 "
                                 "AND last_error LIKE 'exhausted after 3 attempts: HTTP 500: ?%'"),
                     events);
    char *sample = itest_pg_textf(e->conn,
                                  "SELECT last_error FROM webhook_retry_queue "
                                  "WHERE endpoint_id = %lld LIMIT 1",
                                  (long long)garbage);
    print_message("a stored error: %.60s...\n", sample);
    free(sample);
    size_t distinct = 0;
    assert_int_equal(wh_dead_letters(e, garbage, &distinct), events);
    assert_int_equal(distinct, events);
}

/* ---- an outcome PostgreSQL refuses ----------------------------------------- */

static void install_poison(wh_env *e)
{
    char sql[4096];
    snprintf(sql, sizeof sql,
             "CREATE FUNCTION itest_poison_%s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
             "IF NEW.last_error LIKE '%%poison-%s%%' THEN "
             "RAISE EXCEPTION 'poisoned outcome' USING ERRCODE = '22021'; END IF; "
             "RETURN NEW; END $$;"
             "CREATE TRIGGER itest_poison_%s BEFORE UPDATE ON webhook_retry_queue "
             "FOR EACH ROW EXECUTE FUNCTION itest_poison_%s()",
             e->token, e->token, e->token, e->token);
    itest_pg_exec(e->conn, sql);
}

static void remove_poison(wh_env *e)
{
    char sql[2048];
    snprintf(sql, sizeof sql,
             "DROP TRIGGER IF EXISTS itest_poison_%s ON webhook_retry_queue;"
             "DROP FUNCTION IF EXISTS itest_poison_%s()",
             e->token, e->token);
    itest_pg_exec(e->conn, sql);
}

static void test_refused_outcome_blocks_nothing(void **state)
{
    (void)state;
    const int events = 30;
    wh_env *e = setup_env("poison");
    char healthy_path[1024], poison_path[1024];
    snprintf(healthy_path, sizeof healthy_path, "/ok/poison-ok-%s", e->token);
    snprintf(poison_path, sizeof poison_path, "/echo/500/poison-%s", e->token);
    int64_t healthy = wh_endpoint_add(e, healthy_path, SECRET, "standard", "{*}", 100000, 4);
    int64_t poisoned = wh_endpoint_add(e, poison_path, SECRET, "standard", "{*}", 100000, 4);
    install_poison(e);
    start_on_schedule(e, "BLAZZ_WEBHOOK_RETRY_SCHEDULE=0,500ms,1s");
    wh_produce_many(e, events, "poison");

    /* sample /readyz until both endpoints are settled */
    int samples = 0, answered = 0, down = 0;
    int64_t deadline = bz_monotonic_ms() + 90000;
    while (count_where(e, healthy, "status = 'success'") < events ||
           count_where(e, poisoned, "status = 'failed'") < events) {
        if (bz_monotonic_ms() > deadline)
            fail_msg("healthy %lld/%d delivered, refused %lld/%d failed after 90 s; see %s",
                     (long long)count_where(e, healthy, "status = 'success'"), events,
                     (long long)count_where(e, poisoned, "status = 'failed'"), events,
                     e->dispatcher_log);
        int ready = wh_postgres_ready(e->admin_port);
        samples++;
        answered += ready != -1;
        down += ready == 0;
        itest_sleep_ms(100);
    }
    print_message("/readyz sampled %d times, answered %d, PostgreSQL called down %d times\n",
                  samples, answered, down);
    assert_true(answered > 0);
    assert_int_equal(down, 0);
    check_attempts(e, healthy_path, events, 1, NULL);
    const double gaps[] = {450, 900};
    check_attempts(e, poison_path, events, 3, gaps);
    assert_int_equal(count_where(e, poisoned,
                                 "retry_count = 3 AND last_status_code = 500 "
                                 "AND last_error IS NULL"),
                     events);
    size_t distinct = 0;
    assert_int_equal(wh_dead_letters(e, poisoned, &distinct), events);
    assert_int_equal(distinct, events);
}

/* ---- dead letters while Kafka is down ---------------------------------------- */

#define PENDING_BOUND 5

static void sample_pending(int port, double *peak)
{
    double v = wh_metric(port, "blazz_webhook_dispatcher_dead_letters_pending");
    if (v > *peak)
        *peak = v;
}

static void test_dead_letters_wait_bounded_while_kafka_is_down(void **state)
{
    (void)state;
    const int exhausted = 20, healthy_n = 10;
    wh_env *e = setup_env("kdown");
    char dead_path[1024], ok_path[1024], second_log[1400];
    snprintf(dead_path, sizeof dead_path, "/status/500/kdown-%s", e->token);
    snprintf(ok_path, sizeof ok_path, "/ok/kdown-%s", e->token);
    snprintf(second_log, sizeof second_log, "%s.second", e->dispatcher_log);
    int64_t dead = wh_endpoint_add(e, dead_path, SECRET, "standard", "{*}", 100000, 4);
    int64_t ok = wh_endpoint_add(e, ok_path, SECRET, "standard", "{*}", 100000, 4);
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              "BLAZZ_WEBHOOK_RETRY_SCHEDULE=0,200ms",
                              "BLAZZ_WEBHOOK_RETRY_JITTER=0",
                              "BLAZZ_WEBHOOK_TIMEOUT_MS=1000",
                              "BLAZZ_WEBHOOK_CONNECT_TIMEOUT_MS=1000",
                              "BLAZZ_WEBHOOK_CLAIM_LEASE_MS=2000",
                              "BLAZZ_WEBHOOK_POLL_MS=100",
                              "BLAZZ_WEBHOOK_CIRCUIT_ENABLED=false",
                              "BLAZZ_WEBHOOK_MAX_PENDING_DEAD_LETTERS=5",
                              NULL};
    wh_dispatcher_start(e, settings);
    int second_port = 0;
    second = wh_dispatcher_spawn(e, settings, second_log, &second_port);
    wh_wait_consuming(e);

    itest_stack("stop-kafka");
    char id[40];
    for (int i = 0; i < exhausted; i++)
        wh_insert_delivery(e, dead, 1, id);
    double peak = 0;
    /* a bound on a stall, not a speed: a quiet host makes the 40 attempts
     * well within 60 s, and a CI run with six programs beside (load
     * average 10) once made 38 of them in 60 s */
    int64_t deadline = bz_monotonic_ms() + 180000;
    while (requests_at(e, dead_path) < 2 * (size_t)exhausted) {
        if (bz_monotonic_ms() > deadline)
            fail_msg("%zu attempts at the failing endpoint after 180 s, expected %d",
                     requests_at(e, dead_path), 2 * exhausted);
        sample_pending(e->admin_port, &peak);
        sample_pending(second_port, &peak);
        itest_sleep_ms(100);
    }
    /* healthy deliveries go on meanwhile */
    for (int i = 0; i < healthy_n; i++)
        wh_insert_delivery(e, ok, 1, id);
    wait_rows(e, ok, "status = 'success'", healthy_n, 60000);
    /* three leases pass with the broker still away */
    for (int waited = 0; waited < 6000; waited += 200) {
        sample_pending(e->admin_port, &peak);
        sample_pending(second_port, &peak);
        itest_sleep_ms(200);
    }
    size_t attempts = requests_at(e, dead_path);
    print_message("Kafka down: %zu attempts at the failing endpoint (max_retries 1, %d "
                  "deliveries), pending dead letters peaked at %.0f per dispatcher\n",
                  attempts, exhausted, peak);
    assert_int_equal(attempts, 2 * exhausted);
    assert_true(peak >= 1 && peak <= PENDING_BOUND);

    itest_stack("start-kafka");
    wait_rows(e, dead, "status = 'failed' AND retry_count = 2", exhausted, 120000);
    size_t distinct = 0;
    assert_int_equal(wh_dead_letters(e, dead, &distinct), exhausted);
    assert_int_equal(distinct, exhausted);
    assert_int_equal(requests_at(e, dead_path), 2 * exhausted);
    check_attempts(e, ok_path, healthy_n, 1, NULL);
    kill(second, SIGTERM);
    assert_int_equal(itest_wait(second), 0);
    second = 0;
}

/* ---- a stale holder --------------------------------------------------------- */

static void test_stale_holder_sends_no_second_dead_letter(void **state)
{
    (void)state;
    wh_env *e = setup_env("stale");
    char path[1024], second_log[1400], id[40];
    snprintf(path, sizeof path, "/hang/stale-%s", e->token);
    snprintf(second_log, sizeof second_log, "%s.second", e->dispatcher_log);
    int64_t ep = wh_endpoint_add(e, path, SECRET, "standard", "{*}", 100000, 4);
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              "BLAZZ_WEBHOOK_RETRY_SCHEDULE=0",
                              "BLAZZ_WEBHOOK_TIMEOUT_MS=4000",
                              "BLAZZ_WEBHOOK_CLAIM_LEASE_MS=5000",
                              "BLAZZ_WEBHOOK_POLL_MS=100",
                              NULL};
    wh_dispatcher_start(e, settings);
    wh_wait_consuming(e);
    wh_insert_delivery(e, ep, 0, id);
    int64_t deadline = bz_monotonic_ms() + 60000;
    while (requests_at(e, path) < 1) {
        if (bz_monotonic_ms() > deadline)
            fail_msg("the delivery was never attempted; see %s", e->dispatcher_log);
        itest_sleep_ms(10);
    }
    /* frozen in the middle of its only attempt, holding the lease */
    kill(e->dispatcher, SIGSTOP);
    int second_port = 0;
    second = wh_dispatcher_spawn(e, settings, second_log, &second_port);
    wait_rows(e, ep, "status = 'failed'", 1, 60000);
    assert_int_equal(requests_at(e, path), 2); /* the second took over after the lease */
    assert_int_equal(wh_dead_letters(e, ep, NULL), 1);
    kill(second, SIGTERM);
    assert_int_equal(itest_wait(second), 0);
    second = 0;

    /* thawed: its attempt has timed out; its outcome and dead letter are
     * those of a lease it no longer holds */
    kill(e->dispatcher, SIGCONT);
    itest_sleep_ms(2000);
    wh_dispatcher_stop(e);
    assert_int_equal(count_where(e, ep, "status = 'failed' AND retry_count = 1"), 1);
    assert_int_equal(wh_dead_letters(e, ep, NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_non_utf8_replies_block_nothing, stop_everything),
        cmocka_unit_test_teardown(test_refused_outcome_blocks_nothing, stop_everything),
        cmocka_unit_test_teardown(test_dead_letters_wait_bounded_while_kafka_is_down,
                                  stop_everything),
        cmocka_unit_test_teardown(test_stale_holder_sends_no_second_dead_letter, stop_everything),
    };
    const char *filter = getenv("BLAZZ_WEBHOOK_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
