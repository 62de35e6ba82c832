/*
 * bench_campaign.c - campaign-sender throughput on the real stack, with the
 * service and the test gateway as processes (tests/integration/support/
 * campaign_itest.h):
 *
 *  1. audience expansion: a 100,000-contact group expanded into
 *     campaign_logs by a start command (target >= 50,000 contacts/s); the
 *     workspace has no connected account, so nothing is sent afterwards;
 *  2. sustained sends: 20 accounts with high limits (1,000/s each), one
 *     5,000-contact campaign per account; sends/s = logs moved pending ->
 *     queued together with their outbox rows, measured between 10% and 90%
 *     of the 100,000 (target >= 5,000/s), plus the rate at which the test gateway
 *     received them from wa.outbound.gw.sim (answering "sent" only).
 *
 * Ratios are printed against bench_foundation's raw figures
 * (BLAZZ_BENCH_RAW_PG rows/s, BLAZZ_BENCH_RAW_KAFKA msg/s) when set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "campaign_itest.h"
#include "core/clock.h"
#include "itest.h"
#include "itest_bench.h"

#define AUDIENCE 100000
#define ACCOUNTS 20
#define PER_CAMPAIGN 5000

static void print_ratio(const char *name, double value, const char *env)
{
    const char *raw = getenv(env);
    double base = raw ? strtod(raw, NULL) : 0;
    if (base > 0)
        printf("  %-34s %.3f of %s (%s)\n", name, value / base, env, raw);
    else
        printf("  %-34s n/a (%s unset)\n", name, env);
}

static double expansion_rate(camp_fx *fx)
{
    int64_t ws = camp_workspace(fx);
    int64_t group = camp_audience(fx, ws, AUDIENCE, 600);
    int64_t id = camp_campaign(fx, ws, group, 0, "Hello {{first_name}}", "draft", NULL);
    char cid[24];
    snprintf(cid, sizeof cid, "%lld", (long long)id);
    int64_t t0 = bz_monotonic_ms();
    camp_command(fx, ws, id, "start", "bench");
    camp_wait_value(fx, "the audience to be expanded", AUDIENCE, 300,
                    "SELECT contacts_count FROM campaigns WHERE id = $1", 1, cid);
    double seconds = (double)(bz_monotonic_ms() - t0) / 1000.0;
    return AUDIENCE / seconds;
}

static int64_t queued_total(camp_fx *fx, const char *first, const char *last)
{
    return camp_sql(fx,
                    "SELECT count(*) FROM campaign_logs WHERE campaign_id BETWEEN $1 AND $2 AND "
                    "status <> 'pending'",
                    2, first, last);
}

static void sustained_rates(camp_fx *fx, double *queued_per_s, double *received_per_s)
{
    int64_t ws = camp_workspace(fx);
    int64_t ids[ACCOUNTS];
    for (int i = 0; i < ACCOUNTS; i++) {
        char session[32];
        snprintf(session, sizeof session, "bench-%02d-", i);
        int64_t acc = camp_account(fx, ws, session, i == 0, 100 - i,
                                   "{\"per_second\": 1000, \"per_minute\": 0, \"per_hour\": 0}");
        int64_t group = camp_audience(fx, ws, PER_CAMPAIGN, 700 + i);
        ids[i] = camp_campaign(fx, ws, group, acc, "Hi {{first_name}} ({{phone}})", "draft", NULL);
    }
    char first[24], last[24];
    snprintf(first, sizeof first, "%lld", (long long)ids[0]);
    snprintf(last, sizeof last, "%lld", (long long)ids[ACCOUNTS - 1]);
    for (int i = 0; i < ACCOUNTS; i++)
        camp_command(fx, ws, ids[i], "start", "bench");
    const int64_t total = (int64_t)ACCOUNTS * PER_CAMPAIGN;
    int64_t t10 = 0, t90 = 0, n10 = 0, n90 = 0;
    int64_t deadline = bz_monotonic_ms() + 600000;
    while (!t90 && bz_monotonic_ms() < deadline) {
        int64_t n = queued_total(fx, first, last), now = bz_monotonic_ms();
        if (!t10 && n >= total / 10) {
            t10 = now;
            n10 = n;
        }
        if (t10 && n >= total * 9 / 10) {
            t90 = now;
            n90 = n;
        }
        itest_sleep_ms(20);
    }
    assert_true(t90 > t10);
    *queued_per_s = (double)(n90 - n10) * 1000.0 / (double)(t90 - t10);
    camp_wait_value(fx, "every log to be queued", total, 300,
                    "SELECT count(*) FROM campaign_logs WHERE campaign_id BETWEEN $1 AND $2 AND "
                    "status <> 'pending'",
                    2, first, last);
    camp_wait_outbox_empty(fx, 300);
    size_t nsends;
    camp_send *sends = camp_read_sends(fx, 0, &nsends);
    size_t lo = nsends / 10, hi = nsends * 9 / 10;
    *received_per_s = hi > lo && sends[hi].ms > sends[lo].ms
                          ? (double)(hi - lo) * 1000.0 / (double)(sends[hi].ms - sends[lo].ms)
                          : 0;
    free(sends);
}

static camp_fx fx;

/* Runs even when the benchmark failed: no process may outlive it. */
static int stop_processes(void **state)
{
    (void)state;
    camp_fx_finish(&fx);
    return 0;
}

static void bench_campaign(void **state)
{
    (void)state;
    camp_fx_init(&fx, "campb");
    const char *gateway_args[] = {"--statuses", "sent", NULL};
    camp_start_test_gateway(&fx, gateway_args);
    const char *env[] = {"BLAZZ_SENDER_BATCH_MAX=1000", "BLAZZ_OUTBOX_BATCH_MAX=5000",
                         "BLAZZ_CONSUMER_BATCH_MAX=2000", NULL};
    camp_start_sender(&fx, 0, env);
    double expand = expansion_rate(&fx);
    double queued, received;
    sustained_rates(&fx, &queued, &received);

    printf("\ncampaign-sender benchmark\n");
    printf("  %-34s %12.0f contacts/s  (target >= 50000)\n", "audience expansion (100k group)",
           expand);
    printf("  %-34s %12.0f sends/s     (target >= 5000)\n", "queued to wa.outbound, 20 accounts",
           queued);
    printf("  %-34s %12.0f sends/s\n", "received by the test gateway", received);
    print_ratio("expansion vs raw PostgreSQL", expand, "BLAZZ_BENCH_RAW_PG");
    print_ratio("sends vs raw PostgreSQL", queued, "BLAZZ_BENCH_RAW_PG");
    print_ratio("sends vs raw Kafka", queued, "BLAZZ_BENCH_RAW_KAFKA");
    printf("BENCH campaign_audience_expansion %.0f contacts/s\n", expand);
    printf("BENCH campaign_sustained_sends %.0f sends/s\n", queued);
    printf("BENCH campaign_gateway_received %.0f sends/s\n", received);
}

int main(void)
{
    return itest_bench_run("bench_campaign", bench_campaign, stop_processes);
}
