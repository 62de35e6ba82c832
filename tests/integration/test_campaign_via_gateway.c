/*
 * test_campaign_via_gateway.c - a campaign over the whole real pipeline,
 * answered by blazz-gateway-sim rather than campaign_test_gateway (issue 5
 * acceptance: "blazz-gateway-sim answering sends with receipts: a
 * 10,000-contact campaign completes with exactly 10,000 sends and exact
 * counters").
 *
 * Four processes run under one unique topic prefix:
 *   blazz-campaign-sender  SendMessage -> wa.outbound (outbox relay)
 *   blazz-gateway-sim      wa.outbound -> echo + MessageAck receipts as
 *                          InboundEvents on wa.inbound.raw (kafka mode,
 *                          no generated traffic, every send read)
 *   blazz-ingest           wa.inbound.raw -> chat.sync (Kafka path; the
 *                          session resolves to the campaign's account)
 *   blazz-chat-sync        chat.sync -> campaign.receipts for messages
 *                          whose client_reference is a campaign log's uuid
 * and campaign-sender consumes campaign.receipts to move logs and counters.
 *
 * The campaign has BLAZZ_CAMPAIGN_CONTACTS recipients (default 10,000). The
 * test proves: the campaign completes; the simulator saw exactly N
 * SendMessages, with N distinct idempotency keys that are exactly the
 * campaign's log uuids; every log ends read and messages_sent, _delivered
 * and _read equal N (the simulator answers every send sent -> delivered ->
 * read) and equal the per-status counts of campaign_logs; every process
 * stops on SIGTERM with exit 0 (ASan's leak check included).
 */
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "campaign_itest.h"
#include "core/clock.h"
#include "itest.h"
#include "pg/columns.h"
#include "pg/pg.h"

#define FAST_LIMITS "{\"per_second\": 100000, \"per_minute\": 0, \"per_hour\": 0}"
#define COMPLETION_TIMEOUT_S 300

typedef struct pipeline {
    camp_fx fx;
    char token[64];         /* the prefix without its dot: the sim's --tag */
    char sends_log[700];    /* what the simulator sent, one line per key */
    pid_t sim, ingest, chat_sync;
} pipeline;

static pipeline p;

static int contacts_wanted(void)
{
    return itest_env_int("BLAZZ_CAMPAIGN_CONTACTS", 10000, 1, 1000000);
}

/* Start argv with extra "KEY=VALUE" environment, output to dir/<name>.log. */
static pid_t spawn_logged(char *const argv[], const char *name, const char *const *env)
{
    char log_path[800];
    snprintf(log_path, sizeof log_path, "%s/%s.log", p.fx.dir, name);
    return itest_spawn_env(argv, env, log_path);
}

static void service_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/bin/%s", itest_env("BLAZZ_TEST_BIN_DIR"), name);
}

static void start_ingest(void)
{
    char bin[1024], prefix[128], group[160];
    service_path(bin, sizeof bin, "blazz-ingest");
    snprintf(prefix, sizeof prefix, "BLAZZ_KAFKA_TOPIC_PREFIX=%s", p.fx.prefix);
    snprintf(group, sizeof group, "BLAZZ_INGEST_GROUP_ID=blazz-ingest-%s", p.fx.prefix);
    /* Port 0 everywhere: other stacks on this machine use the defaults. */
    const char *env[] = {prefix, group, "BLAZZ_INGEST_LISTEN=127.0.0.1:0",
                         "BLAZZ_HTTP_LISTEN=127.0.0.1:0",
                         "BLAZZ_INGEST_CONSUMER_SESSION_TIMEOUT_MS=6000",
                         "BLAZZ_INGEST_TXN_MAX_MS=50", NULL};
    char *argv[] = {bin, NULL};
    p.ingest = spawn_logged(argv, "ingest", env);
}

static void start_chat_sync(void)
{
    char bin[1024], prefix[128], group[160];
    service_path(bin, sizeof bin, "blazz-chat-sync");
    snprintf(prefix, sizeof prefix, "BLAZZ_KAFKA_TOPIC_PREFIX=%s", p.fx.prefix);
    snprintf(group, sizeof group, "BLAZZ_CONSUMER_GROUP_ID=blazz-chat-sync-%s", p.fx.prefix);
    const char *env[] = {prefix, group, "BLAZZ_HTTP_LISTEN=127.0.0.1:0",
                         "BLAZZ_KAFKA_SESSION_TIMEOUT_MS=6000", "BLAZZ_OUTBOX_IDLE_POLL_MS=100",
                         NULL};
    char *argv[] = {bin, NULL};
    p.chat_sync = spawn_logged(argv, "chat-sync", env);
}

/* The simulator only answers wa.outbound: no generated traffic (--rate 0),
 * a one-account world of its own, every delivered send also read, and a
 * duration far beyond the test (it is stopped with SIGTERM). */
static void start_sim(void)
{
    char bin[1024], prefix[128], group[160];
    service_path(bin, sizeof bin, "blazz-gateway-sim");
    snprintf(prefix, sizeof prefix, "BLAZZ_KAFKA_TOPIC_PREFIX=%s", p.fx.prefix);
    snprintf(group, sizeof group, "blazz-gateway-sim.%s", p.fx.prefix);
    const char *env[] = {prefix, NULL};
    char *argv[] = {bin,           "--mode",          "kafka",     "--rate",
                    "0",           "--duration",      "3600",      "--workspaces",
                    "1",           "--accounts-per-workspace", "1", "--instances",
                    "1",           "--tag",           p.token,     "--answer-outbound",
                    "--read-ratio", "1",              "--fail-ratio", "0",
                    "--ack-delay-ms", "200",          "--outbound-group", group,
                    "--sends-log", p.sends_log,       NULL};
    p.sim = spawn_logged(argv, "gateway-sim", env);
}

/* SIGTERM pid and wait; fails the test unless it exits 0. */
static void stop_cleanly(pid_t *pid, const char *name)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    int rc = itest_wait(*pid);
    *pid = 0;
    if (rc != 0)
        fail_msg("%s exited with %d after SIGTERM (log in %s)", name, rc, p.fx.dir);
}

static int setup(void **state)
{
    (void)state;
    camp_fx_init(&p.fx, "campgw");
    snprintf(p.token, sizeof p.token, "%.*s", (int)strlen(p.fx.prefix) - 1, p.fx.prefix);
    snprintf(p.sends_log, sizeof p.sends_log, "%s/gateway-sends.txt", p.fx.dir);
    start_ingest();
    start_chat_sync();
    start_sim();
    camp_start_sender(&p.fx, 0, NULL);
    return 0;
}

/* Whatever happened, stop everything (a failing test must not leave a
 * relay running that would publish another test's outbox rows). */
static int teardown(void **state)
{
    (void)state;
    pid_t *pids[] = {&p.sim, &p.chat_sync, &p.ingest};
    for (size_t i = 0; i < 3; i++)
        if (*pids[i] > 0) {
            kill(*pids[i], SIGTERM);
            itest_wait(*pids[i]);
            *pids[i] = 0;
        }
    camp_fx_finish(&p.fx);
    return 0;
}

/* The idempotency keys of the simulator's sends log, in order (heap; the caller
 * frees each key and the array). Returns the line count. */
static size_t read_sim_keys(char ***keys_out)
{
    FILE *f = fopen(p.sends_log, "r");
    assert_non_null(f);
    size_t n = 0, cap = 1024;
    char **keys = malloc(cap * sizeof *keys);
    assert_non_null(keys);
    char line[512], session[160], key[160];
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%*s %159s %159s", session, key) != 2) /* "<ms> <session> <key>" */
            fail_msg("unreadable line in %s: %s", p.sends_log, line);
        if (n == cap) {
            cap *= 2;
            keys = realloc(keys, cap * sizeof *keys);
            assert_non_null(keys);
        }
        keys[n] = strdup(key);
        assert_non_null(keys[n]);
        n++;
    }
    fclose(f);
    *keys_out = keys;
    return n;
}

static void free_keys(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

static int64_t campaign_value(const char *column, const char *cid)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT %s FROM campaigns WHERE id = $1", column);
    return camp_sql(&p.fx, sql, 1, cid);
}

static void test_campaign_completes_through_gateway_sim(void **state)
{
    (void)state;
    int n = contacts_wanted();
    int64_t ws = camp_workspace(&p.fx);
    int64_t acc = camp_account(&p.fx, ws, "gw-", 1, 100, FAST_LIMITS);
    int64_t group = camp_audience(&p.fx, ws, n, 777);
    int64_t id = camp_campaign(&p.fx, ws, group, acc, "Hello {{first_name}}", "draft", NULL);
    char cid[24];
    snprintf(cid, sizeof cid, "%lld", (long long)id);

    int64_t t0 = bz_monotonic_ms();
    camp_command(&p.fx, ws, id, "start", "e2e-tester");
    camp_wait_status(&p.fx, id, "completed", COMPLETION_TIMEOUT_S);
    int64_t completed_ms = bz_monotonic_ms() - t0;
    /* Completion may come with logs final at "delivered"; reads follow. */
    camp_wait_value(&p.fx, "every campaign log to be read", n, COMPLETION_TIMEOUT_S,
                    "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1 AND status = 'read'",
                    1, cid);
    camp_wait_value(&p.fx, "messages_read to reach the audience", n, COMPLETION_TIMEOUT_S,
                    "SELECT messages_read FROM campaigns WHERE id = $1", 1, cid);
    int64_t all_read_ms = bz_monotonic_ms() - t0;
    /* chat-sync's chat.events for every message and receipt drain last. */
    camp_wait_outbox_empty(&p.fx, COMPLETION_TIMEOUT_S);
    int64_t drained_ms = bz_monotonic_ms() - t0;
    print_message("campaign of %d contacts through gateway-sim: completed in %lld ms, all read "
                  "in %lld ms (%.0f contacts/s end to end), outbox drained in %lld ms\n",
                  n, (long long)completed_ms, (long long)all_read_ms,
                  n * 1000.0 / (double)(all_read_ms ? all_read_ms : 1), (long long)drained_ms);

    /* Exactly N sends: N lines, N distinct keys, exactly the log uuids. */
    char **keys;
    size_t lines = read_sim_keys(&keys);
    char *array = bz_pg_text_array((const char *const *)keys, lines);
    assert_non_null(array);
    int64_t distinct = camp_sql(&p.fx, "SELECT count(DISTINCT k) FROM unnest($1::text[]) k", 1,
                                array);
    int64_t logs_once = camp_sql(
        &p.fx,
        "SELECT count(*) FROM campaign_logs l JOIN (SELECT k, count(*) AS times "
        "FROM unnest($1::text[]) k GROUP BY k) s ON s.k = l.uuid::text "
        "WHERE l.campaign_id = $2 AND s.times = 1",
        2, array, cid);
    free(array);
    free_keys(keys, lines);
    assert_int_equal(lines, n);
    assert_int_equal(distinct, n);
    assert_int_equal(logs_once, n);
    assert_int_equal(camp_sql(&p.fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1",
                              1, cid),
                     n);

    /* Exact counters: the sim answers every send sent -> delivered -> read. */
    assert_int_equal(campaign_value("contacts_count", cid), n);
    assert_int_equal(campaign_value("messages_sent", cid), n);
    assert_int_equal(campaign_value("messages_delivered", cid), n);
    assert_int_equal(campaign_value("messages_read", cid), n);
    assert_int_equal(campaign_value("messages_failed", cid), 0);
    camp_assert_counters_exact(&p.fx, id);

    stop_cleanly(&p.sim, "blazz-gateway-sim");
    camp_stop_sender(&p.fx, 0);
    stop_cleanly(&p.chat_sync, "blazz-chat-sync");
    stop_cleanly(&p.ingest, "blazz-ingest");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_campaign_completes_through_gateway_sim),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
