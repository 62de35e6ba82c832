/*
 * bench_meta.c - Meta Cloud API sends (ARCHITECTURE.md §12): blazz-meta-sender
 * against tests/integration/graph_test_server on loopback, 30 Meta numbers
 * at 80 messages/s each (Meta's top tier; 2,400/s in all), keep-alive
 * connections.
 *
 *  0. baseline, same run: this program drives the test server directly with
 *     libcurl's multi interface (64 kept-alive connections), the most the
 *     server and the loopback take on this host;
 *  1. throughput: MESSAGES SendMessages produced to wa.outbound at once
 *     (as campaign-sender's relay would publish a backlog), spread over the
 *     30 numbers; sends/s = messages accepted by the server over the time
 *     from its first to its last acceptance (goal >= 2,000/s), and the ratio
 *     to the baseline;
 *  2. latency: 600 messages/s for LATENCY_SECONDS, below the numbers'
 *     capacity; for each, the time from its record being acknowledged by the
 *     broker (what "accepted" means for every hop upstream) to the server
 *     receiving its request, both on this host's wall clock: p50 / p99.
 *
 * Figures only: nothing here asserts a time.
 */
#include <curl/curl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "blazz/v1/campaign.pb-c.h"
#include "campaign_itest.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/keyring.h"
#include "core/uuid.h"
#include "itest.h"
#include "itest_bench.h"
#include "meta_itest.h"
#include "webhook_itest.h"

#define NUMBERS 30
#define PER_NUMBER 80
#define LATENCY_RATE 600
#define BASELINE_REQUESTS 6000

static camp_fx fx;
static graph_fx graph;
static pid_t meta;
static char sessions[NUMBERS][96];
static int64_t *accepted_ms; /* by message index */

static int messages_wanted(void)
{
    return itest_env_int("BLAZZ_BENCH_META_MESSAGES", 20000, 1000, 1000000);
}

static int latency_seconds(void)
{
    return itest_env_int("BLAZZ_BENCH_META_LATENCY_SECONDS", 10, 2, 600);
}

/* Accounts with their sealed tokens, as blazzctl meta token stores them. */
static void make_accounts(void)
{
    int64_t ws = camp_workspace(&fx);
    bz_keyring ring;
    bz_error err;
    assert_int_equal(bz_keyring_parse(ITEST_SECRETS_KEYS, &ring, &err), BZ_OK);
    char wstext[24];
    snprintf(wstext, sizeof wstext, "%lld", (long long)ws);
    const char *pnids[NUMBERS], *tokens[NUMBERS];
    char token_text[NUMBERS][32];
    for (int i = 0; i < NUMBERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "pn%02d", i);
        int64_t id = camp_account(&fx, ws, name, i == 0, 100,
                                  "{\"per_second\": 80, \"per_minute\": 0, \"per_hour\": 0}");
        char idtext[24];
        const char *token = token_text[i];
        snprintf(idtext, sizeof idtext, "%lld", (long long)id);
        snprintf(token_text[i], sizeof token_text[i], "bench-token-%d", i);
        /* a Cloud API account's session_id is its phone number id: digits */
        snprintf(sessions[i], sizeof sessions[i], "1065%lld%02d", (long long)id, i);
        pnids[i] = sessions[i];
        tokens[i] = token;
        uint8_t *sealed = NULL;
        size_t len = 0;
        /* as blazzctl meta token seals it (core/keyring.h, bound to the row) */
        assert_int_equal(bz_keyring_seal_row(&ring, "meta_credentials", idtext, wstext, token,
                                             strlen(token), &sealed, &len, &err),
                         BZ_OK);
        const char *params[] = {idtext, (const char *)sealed, sessions[i]};
        int lengths[] = {0, (int)len, 0}, formats[] = {0, 1, 0};
        PGresult *res = PQexecParams(
            fx.pg,
            "WITH a AS (UPDATE whatsapp_accounts SET provider_type = 'meta', session_id = $3 "
            "WHERE id = $1::bigint RETURNING id, workspace_id) INSERT INTO meta_credentials "
            "(whatsapp_account_id, workspace_id, token_ciphertext) SELECT id, workspace_id, $2 "
            "FROM a",
            3, NULL, params, lengths, formats, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            fail_msg("store token: %s", PQerrorMessage(fx.pg));
        PQclear(res);
        free(sealed);
    }
    bz_keyring_free(&ring);
    graph_write_tokens(&graph, pnids, tokens, NUMBERS);
}

static void start_processes(void)
{
    graph_start(&graph, &fx, NULL);
    const char *env[] = {"BLAZZ_META_RATE_GUARD_MS=50", NULL};
    meta = meta_sender_start(&fx, fx.prefix, graph.port, env);
}

/* ---- the baseline: the server alone ---------------------------------------------- */

static size_t discard(char *d, size_t s, size_t n, void *u)
{
    (void)d;
    (void)u;
    return s * n;
}

static double baseline_rate(void)
{
    char url[256], auth[128], body[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v23.0/%s/messages", graph.port, sessions[0]);
    snprintf(auth, sizeof auth, "Authorization: Bearer bench-token-0");
    snprintf(body, sizeof body, "{\"messaging_product\":\"whatsapp\",\"to\":\"6281300000000\","
                                "\"type\":\"text\",\"text\":{\"body\":\"baseline\"}}");
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 64L);
    int started = 0, done = 0, running = 0;
    double t0 = bz_metrics_clock();
    while (done < BASELINE_REQUESTS) {
        while (started < BASELINE_REQUESTS && started - done < 64) {
            CURL *e = curl_easy_init();
            curl_easy_setopt(e, CURLOPT_URL, url);
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
            curl_easy_setopt(e, CURLOPT_PROXY, "");
            curl_multi_add_handle(multi, e);
            started++;
        }
        curl_multi_perform(multi, &running);
        curl_multi_poll(multi, NULL, 0, 50, NULL);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left)))
            if (m->msg == CURLMSG_DONE) {
                curl_multi_remove_handle(multi, m->easy_handle);
                curl_easy_cleanup(m->easy_handle);
                done++;
            }
    }
    double rate = BASELINE_REQUESTS / (bz_metrics_clock() - t0);
    curl_multi_cleanup(multi);
    curl_slist_free_all(h);
    return rate;
}

/* ---- producing sends ---------------------------------------------------------------- */

static void produce(bz_producer *p, const char *topic, const char *phase, int i)
{
    char ref[48], key[160], phone[24];
    snprintf(ref, sizeof ref, "%s-%d", phase, i);
    snprintf(key, sizeof key, "bench-%s-%s", fx.prefix, ref);
    snprintf(phone, sizeof phone, "+62813%07d", i % 10000000);
    const char *session = sessions[i % NUMBERS];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    char event_id[BZ_UUID_STR_SIZE];
    bz_uuid_derive(key, strlen(key), event_id);
    env.event_id = event_id;
    env.occurred_at_ms = env.produced_at_ms = bz_wall_ms();
    env.session_id = (char *)session;
    Blazz__V1__SendMessage m = BLAZZ__V1__SEND_MESSAGE__INIT;
    m.envelope = &env;
    m.kind = BLAZZ__V1__SEND_KIND__SEND_KIND_MESSAGE;
    m.idempotency_key = key;
    m.client_reference = ref;
    m.session_id = (char *)session;
    m.to_phone = phone;
    m.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    m.body = "Halo dari bench";
    uint8_t buf[512];
    size_t len = blazz__v1__send_message__pack(&m, buf);
    bz_error err;
    if (bz_producer_send(p, topic, -1, session, strlen(session), buf, len, NULL, 0, NULL, &err) !=
        BZ_OK)
        fail_msg("produce: %s", err.msg);
}

/* Server records of phase, as (index, receive ms); returns how many. */
static int read_phase(const char *phase, int64_t *ms_by_index, int n, int64_t *first,
                      int64_t *last)
{
    size_t nr;
    graph_record *r = graph_records(&graph, &nr);
    int count = 0;
    size_t plen = strlen(phase);
    *first = INT64_MAX;
    *last = 0;
    for (size_t k = 0; k < nr; k++)
        if (strncmp(r[k].ref, phase, plen) == 0 && r[k].ref[plen] == '-') {
            int i = (int)strtol(r[k].ref + plen + 1, NULL, 10);
            int64_t ms = r[k].ms;
            if (i >= 0 && i < n && !ms_by_index[i]) {
                ms_by_index[i] = ms;
                count++;
                *first = ms < *first ? ms : *first;
                *last = ms > *last ? ms : *last;
            }
        }
    free(r);
    return count;
}

static int wait_phase(const char *phase, int64_t *ms_by_index, int n, int64_t *first,
                      int64_t *last)
{
    int got = 0;
    for (int i = 0; i < 6000 && got < n; i++) {
        memset(ms_by_index, 0, (size_t)n * sizeof *ms_by_index);
        got = read_phase(phase, ms_by_index, n, first, last);
        if (got < n)
            itest_sleep_ms(100);
    }
    return got;
}

static void bench_meta(void **state)
{
    (void)state;
    camp_fx_init(&fx, "bm");
    graph_fx_init(&graph, &fx);
    make_accounts();
    start_processes();
    double raw = baseline_rate();
    char topic[256];
    snprintf(topic, sizeof topic, "%swa.outbound", fx.prefix);
    bz_producer *p = itest_producer();

    int n = messages_wanted();
    int64_t *ms = calloc((size_t)n, sizeof *ms);
    for (int i = 0; i < n; i++)
        produce(p, topic, "t", i);
    bz_error err;
    assert_int_equal(bz_producer_flush(p, 60000, &err), BZ_OK);
    int64_t first, last;
    int got = wait_phase("t", ms, n, &first, &last);
    assert_int_equal(got, n);
    double rate = (double)(n - 1) * 1000.0 / (double)(last - first > 0 ? last - first : 1);

    int ln = LATENCY_RATE * latency_seconds();
    accepted_ms = calloc((size_t)ln, sizeof *accepted_ms);
    int64_t *lms = calloc((size_t)ln, sizeof *lms);
    int64_t start = bz_monotonic_ms();
    for (int i = 0; i < ln; i++) {
        int64_t due = start + (int64_t)i * 1000 / LATENCY_RATE;
        while (bz_monotonic_ms() < due)
            bz_producer_poll(p, 1);
        produce(p, topic, "l", i);
        bz_producer_poll(p, 0);
        accepted_ms[i] = bz_wall_ms();
    }
    assert_int_equal(bz_producer_flush(p, 60000, &err), BZ_OK);
    assert_int_equal(wait_phase("l", lms, ln, &first, &last), ln);
    int64_t *lat = calloc((size_t)ln, sizeof *lat);
    for (int i = 0; i < ln; i++)
        lat[i] = lms[i] - accepted_ms[i];
    qsort(lat, (size_t)ln, sizeof *lat, itest_cmp_i64);
    int64_t p50 = lat[ln / 2], p99 = lat[ln * 99 / 100];
    bz_producer_free(p, 5000);

    printf("meta-sender, %d numbers at %d/s each, keep-alive, loopback Graph API server\n",
           NUMBERS, PER_NUMBER);
    printf("  %-44s %10.0f req/s\n", "baseline: the server driven directly", raw);
    printf("  %-44s %10.0f sends/s  (%.2f x baseline, goal >= 2000)\n",
           "throughput, a backlog of sends", rate, rate / raw);
    printf("  %-44s %7lld / %lld ms (p50 / p99)\n", "accepted -> request received at 600/s",
           (long long)p50, (long long)p99);
    printf("BENCH meta_graph_baseline %.0f req/s\n", raw);
    printf("BENCH meta_sends_per_second %.0f sends/s\n", rate);
    printf("BENCH meta_accept_to_request_p50 %lld ms\n", (long long)p50);
    printf("BENCH meta_accept_to_request_p99 %lld ms\n", (long long)p99);
    free(ms);
    free(lms);
    free(lat);
    free(accepted_ms);
}

static int stop_processes(void **state)
{
    (void)state;
    if (meta > 0) {
        kill(meta, SIGTERM);
        itest_wait(meta);
    }
    graph_stop(&graph);
    camp_fx_finish(&fx);
    return 0;
}

int main(void)
{
    return itest_bench_run("bench_meta", bench_meta, stop_processes);
}
