/*
 * bench_webhook.c - webhook-dispatcher throughput and latency against the
 * local keep-alive test receiver.
 *
 *  1. deliveries/s: BENCH_N (default 20,000) ChatEvents produced at once to
 *     one endpoint; rate = deliveries / time from the first to the last
 *     request the receiver saw (fan-out, claim, send and outcome writes all
 *     inside that window). Target >= 5,000/s on 2 cores.
 *  2. latency: BENCH_RATE (default 2,000) events/s for BENCH_SECONDS
 *     (default 5); p50/p95/p99 from the event's produced_at to its first
 *     attempt arriving at the receiver. Target p95 < 50 ms.
 *  3. isolation: one healthy endpoint's latency (the same measure) at
 *     BENCH_ISO_RATE (default 50) events/s for BENCH_ISO_SECONDS (default
 *     20), first alone, then in a workspace that also has BENCH_ISO_DEAD
 *     (default 100) endpoints that accept the connection and never answer,
 *     every endpoint and the dispatcher on their defaults (10 s timeouts,
 *     concurrency 4, circuit breakers): p50/p99 of both and their ratio.
 *     A dead endpoint is to cost only its own share (issue 15).
 * Ratios are printed against BLAZZ_BENCH_RAW_KAFKA (msg/s) when set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "itest.h"
#include "itest_bench.h"
#include "webhook_itest.h"

static int env_int(const char *name, int def)
{
    return itest_env_int(name, def, 1, 100000000);
}

static const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                                 "BLAZZ_WEBHOOK_POLL_MS=200",
                                 "BLAZZ_WEBHOOK_MAX_LOCAL_JOBS=4000",
                                 "BLAZZ_WEBHOOK_CLAIM_BATCH=1000", NULL};

static double deliveries_per_second(void)
{
    int n = env_int("BENCH_N", 20000);
    wh_env e;
    wh_env_setup(&e, "bench-thru");
    char path[96], sql[256];
    snprintf(path, sizeof path, "/ok/thru-%s", e.token);
    int64_t ep = wh_endpoint_add(&e, path, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "standard",
                                 "{*}", 1000000, 32);
    wh_dispatcher_start(&e, settings);
    wh_wait_consuming(&e);
    wh_produce_many(&e, n, "0");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld AND status = 'success'",
             (long long)ep);
    wh_wait_for(&e, sql, n, 600000);
    json_t *all = wh_requests(&e);
    size_t total = json_array_size(all);
    double first = json_real_value(json_object_get(json_array_get(all, 0), "t_ms"));
    double last = json_real_value(json_object_get(json_array_get(all, total - 1), "t_ms"));
    json_decref(all);
    wh_env_teardown(&e);
    double rate = (double)n / ((last - first) / 1000.0);
    printf("%-44s %10d\n", "deliveries", n);
    printf("%-44s %10.1f s\n", "first to last request", (last - first) / 1000.0);
    return rate;
}

/* Start the dispatcher for e, produce n events at rate/s, wait until the
 * endpoint ep has them all and return the sorted first-attempt latencies
 * (ms) of the requests at path (all requests for NULL); *k receives how
 * many. The caller frees. */
static double *paced_latencies(wh_env *e, int64_t ep, const char *path,
                               const char *const *with, int n, int rate, size_t *k)
{
    char sql[256];
    wh_dispatcher_start(e, with);
    wh_wait_consuming(e);
    wh_produce_paced(e, n, rate);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld AND status = 'success'",
             (long long)ep);
    wh_wait_for(e, sql, n, 600000);
    double *lat = calloc((size_t)n, sizeof *lat);
    if (!lat)
        fail_msg("out of memory");
    *k = wh_first_attempt_latencies(e, path, lat, (size_t)n);
    if (*k == 0)
        fail_msg("no latencies at %s", path ? path : "any path");
    return lat;
}

static void first_attempt_latency(double *p50, double *p95, double *p99, int *rate_out)
{
    int rate = env_int("BENCH_RATE", 2000), seconds = env_int("BENCH_SECONDS", 5);
    wh_env e;
    wh_env_setup(&e, "bench-lat");
    char path[96];
    snprintf(path, sizeof path, "/ok/lat-%s", e.token);
    int64_t ep = wh_endpoint_add(&e, path, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "standard",
                                 "{*}", 1000000, 32);
    size_t k;
    double *lat = paced_latencies(&e, ep, NULL, settings, rate * seconds, rate, &k);
    *p50 = lat[k / 2];
    *p95 = lat[(k * 95) / 100];
    *p99 = lat[(k * 99) / 100];
    *rate_out = rate;
    free(lat);
    wh_env_teardown(&e);
}

static const char *iso_settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true", NULL};

/* First-attempt latency of one healthy endpoint beside `dead` endpoints
 * that never answer, all in one workspace; p50 and p99 in ms. */
static void healthy_latency(int dead, double *p50, double *p99)
{
    int rate = env_int("BENCH_ISO_RATE", 50), seconds = env_int("BENCH_ISO_SECONDS", 20);
    wh_env e;
    wh_env_setup(&e, dead ? "bench-iso-dead" : "bench-iso-alone");
    char path[96];
    snprintf(path, sizeof path, "/ok/iso-%s", e.token);
    int64_t ep = wh_endpoint_add(&e, path, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "standard",
                                 "{*}", 500, 4);
    for (int i = 0; i < dead; i++) {
        char hang[96];
        snprintf(hang, sizeof hang, "/hang/iso-%d-%s", i, e.token);
        wh_endpoint_add(&e, hang, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "standard", "{*}",
                        500, 4);
    }
    size_t k;
    double *lat = paced_latencies(&e, ep, path, iso_settings, rate * seconds, rate, &k);
    *p50 = lat[k / 2];
    *p99 = lat[(k * 99) / 100];
    free(lat);
    /* the receiver first: the dead endpoints' hanging requests end with it */
    wh_receiver_stop(&e);
    wh_env_teardown(&e);
}

static void bench(void **state)
{
    (void)state;
    double rate = deliveries_per_second();
    double p50, p95, p99;
    int offered;
    first_attempt_latency(&p50, &p95, &p99, &offered);
    int dead = env_int("BENCH_ISO_DEAD", 100);
    double alone50, alone99, beside50, beside99;
    healthy_latency(0, &alone50, &alone99);
    healthy_latency(dead, &beside50, &beside99);
    /* The raw produce baseline of an earlier bench, when there was one. */
    const char *raw = getenv("BLAZZ_BENCH_RAW_KAFKA");
    double raw_rate = raw ? strtod(raw, NULL) : 0;
    printf("%-44s %10.0f /s   (target >= 5000)\n", "deliveries/s, 1 keep-alive endpoint", rate);
    if (raw_rate > 0)
        printf("%-44s %10.3f\n", "  ratio to raw Kafka produce rate", rate / raw_rate);
    else
        printf("%-44s %10s\n", "  ratio to raw Kafka produce rate", "n/a");
    printf("%-44s %10.1f ms\n", "produced -> first attempt p50", p50);
    printf("%-44s %10.1f ms  (target < 50, at %d events/s)\n", "produced -> first attempt p95",
           p95, offered);
    printf("%-44s %10.1f ms\n", "produced -> first attempt p99", p99);
    char label[64];
    printf("%-44s %10.1f ms\n", "healthy endpoint alone p50", alone50);
    printf("%-44s %10.1f ms\n", "healthy endpoint alone p99", alone99);
    snprintf(label, sizeof label, "  beside %d dead endpoints p50", dead);
    printf("%-44s %10.1f ms  (ratio %.2f)\n", label, beside50,
           alone50 > 0 ? beside50 / alone50 : 0);
    snprintf(label, sizeof label, "  beside %d dead endpoints p99", dead);
    printf("%-44s %10.1f ms  (ratio %.2f)\n", label, beside99,
           alone99 > 0 ? beside99 / alone99 : 0);
    printf("BENCH webhook_deliveries_per_s %.0f msg/s\n", rate);
    printf("BENCH webhook_healthy_alone_p50 %.1f ms\n", alone50);
    printf("BENCH webhook_healthy_alone_p99 %.1f ms\n", alone99);
    printf("BENCH webhook_healthy_beside_dead_p50 %.1f ms\n", beside50);
    printf("BENCH webhook_healthy_beside_dead_p99 %.1f ms\n", beside99);
    printf("BENCH webhook_healthy_beside_dead_p50_ratio %.2f x\n",
           alone50 > 0 ? beside50 / alone50 : 0);
    printf("BENCH webhook_healthy_beside_dead_p99_ratio %.2f x\n",
           alone99 > 0 ? beside99 / alone99 : 0);
    printf("BENCH webhook_first_attempt_p95 %.1f ms\n", p95);
    printf("BENCH webhook_first_attempt_p99 %.1f ms\n", p99);
}

int main(void)
{
    return itest_bench_run("bench_webhook", bench, NULL);
}
