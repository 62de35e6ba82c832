/*
 * bench_agent.c - two-way messaging on the real stack, every service a
 * process (tests/integration/support/agent_itest.h):
 *
 *  1. agent latency: 20 accounts with limits high enough not to bind
 *     (100/s, no minute or hour limit), agents' messages POSTed to
 *     /v1/messages at 200 per second spread over the 20 accounts for
 *     AGENT_SECONDS, each to a contact of its own; for each, the time
 *     from ingest's 202 (the command acknowledged by the broker) to the
 *     gateway simulator receiving its SendMessage, both on this host's
 *     wall clock. p50 / p99 after a warm-up (goal: p99 < 50 ms), split at
 *     campaign-sender's release (send_ledger.released_at), and how many
 *     never arrived within a minute. One conversation per message:
 *     Meta's pair rate (ARCHITECTURE.md §11.3: one message per 6 s to a
 *     recipient past a burst) would otherwise hold all but the first
 *     burst of each account's messages, and the figure would measure that
 *     rule (test_pair_rate's) instead of the path;
 *  2. the shared budget's cost on campaigns: 10 unlimited accounts, one
 *     2,000-contact campaign each; sends/s queued to wa.outbound (logs
 *     pending -> queued with their outbox and send_ledger rows), first
 *     alone, then again while agents' messages flow at 200/s through the
 *     same accounts (they are released first and share each account's
 *     budget). The ratio of the two is the cost of agent traffic on
 *     campaign throughput; the absolute figure includes the budget's own
 *     cost (a send_ledger row per release) against bench_campaign's.
 *
 * Figures only: nothing here asserts a time.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"
#include "itest_bench.h"

#define ACCOUNTS 20
#define AGENT_RATE 200
#define AGENT_SECONDS 20
#define WARMUP_SECONDS 3
#define POSTERS 8
#define CAMPAIGN_ACCOUNTS 10
#define PER_CAMPAIGN 2000
/* the agents' messages while campaigns run, seconds */
#define SHARED_SECONDS 30
/* one per message of the longer phase */
#define CONVERSATIONS (AGENT_RATE * SHARED_SECONDS)

static agent_fx fx;

typedef struct accepted {
    char id[BZ_UUID_STR_SIZE];
    int64_t at_ms; /* wall clock when the 202 arrived; 0: not accepted */
} accepted;

typedef struct poster {
    int index;
    const char *key;
    const int64_t *accounts, *contacts;
    int naccounts;
    accepted *out; /* this poster's slots */
    int n;
    int64_t start_ms;
    const char *tag;
} poster;

/* Each poster sends every POSTERS-th message of a 200/s schedule. */
static void *post_paced(void *arg)
{
    poster *p = arg;
    for (int i = 0; i < p->n; i++) {
        int seq = i * POSTERS + p->index;
        int64_t due = p->start_ms + (int64_t)seq * 1000 / AGENT_RATE;
        int64_t now = bz_wall_ms();
        if (due > now)
            itest_sleep_ms((int)(due - now));
        char req[512], resp[512];
        snprintf(req, sizeof req,
                 "{\"idempotency_key\":\"%s-%d\",\"contact_id\":%lld,\"whatsapp_account_id\":%lld,"
                 "\"body\":\"bench %d\"}",
                 p->tag, seq, (long long)p->contacts[seq % CONVERSATIONS],
                 (long long)p->accounts[seq % p->naccounts], seq);
        long st = agent_post(&fx, "/v1/messages", p->key, req, resp, sizeof resp, NULL, 0);
        if (st == 202) {
            agent_message_id(resp, p->out[i].id);
            p->out[i].at_ms = bz_wall_ms();
        }
    }
    return NULL;
}

/* Post AGENT_RATE/s for seconds; the accepted messages go to out (heap,
 * total slots in *n). */
static accepted *post_agents(const char *key, const int64_t *accounts, int naccounts,
                             const int64_t *contacts, int seconds, const char *tag, int *n)
{
    *n = AGENT_RATE * seconds;
    accepted *out = calloc((size_t)*n, sizeof *out);
    accepted *slots[POSTERS];
    poster posters[POSTERS];
    pthread_t threads[POSTERS];
    int64_t start = bz_wall_ms() + 200;
    for (int t = 0; t < POSTERS; t++) {
        int count = (*n - t + POSTERS - 1) / POSTERS;
        slots[t] = calloc((size_t)count, sizeof **slots);
        posters[t] = (poster){.index = t, .key = key, .accounts = accounts,
                              .contacts = contacts, .naccounts = naccounts, .out = slots[t],
                              .n = count, .start_ms = start, .tag = tag};
        pthread_create(&threads[t], NULL, post_paced, &posters[t]);
    }
    for (int t = 0; t < POSTERS; t++) {
        pthread_join(threads[t], NULL);
        for (int i = 0; i < posters[t].n; i++)
            out[i * POSTERS + t] = slots[t][i];
        free(slots[t]);
    }
    return out;
}

/* ---- 1. accepted -> received by the gateway -------------------------------------------- */

/* The two halves of the path, split where campaign-sender releases a
 * message (send_ledger.released_at, its clock when it took the message
 * out of the queue): 202 -> released (chat-sync's batch and transaction,
 * the queue's NOTIFY, the sender's round) and released -> at the gateway
 * (the release transaction, the relay, the broker, the gateway's fetch). */
typedef struct agent_halves {
    int64_t to_release_p50, to_release_p99, to_gateway_p50, to_gateway_p99;
} agent_halves;

/* Sorts the m figures of lat and returns their p50 and p99. */
static void quantiles_of(int64_t *lat, size_t m, int64_t *p50, int64_t *p99)
{
    qsort(lat, m, sizeof *lat, itest_cmp_i64);
    *p50 = itest_percentile(lat, m, 0.50);
    *p99 = itest_percentile(lat, m, 0.99);
}

static void agent_latency(const char *key, const int64_t *accounts, const int64_t *contacts,
                          int64_t *p50, int64_t *p99, agent_halves *h, size_t *measured,
                          int *unreceived)
{
    int n;
    accepted *acc = post_agents(key, accounts, ACCOUNTS, contacts, AGENT_SECONDS, "lat", &n);
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += acc[i].at_ms > 0;
    for (int i = 0; i < 600; i++) {
        size_t got;
        agent_send *s = agent_sends(&fx, &got);
        free(s);
        if ((int)got >= ok)
            break;
        itest_sleep_ms(100);
    }
    size_t nsends;
    agent_send *sends = agent_sends(&fx, &nsends);
    int64_t *lat = calloc((size_t)n, sizeof *lat);
    int64_t *to_release = calloc((size_t)n, sizeof *to_release);
    int64_t *to_gateway = calloc((size_t)n, sizeof *to_gateway);
    size_t m = 0;
    *unreceived = 0;
    for (int i = WARMUP_SECONDS * AGENT_RATE; i < n; i++) {
        if (!acc[i].at_ms)
            continue;
        size_t j = 0;
        while (j < nsends && strcmp(sends[j].key, acc[i].id) != 0)
            j++;
        if (j == nsends) {
            ++*unreceived;
            continue;
        }
        int64_t released = agent_released_ms(&fx, acc[i].id);
        lat[m] = sends[j].ms - acc[i].at_ms;
        to_release[m] = released - acc[i].at_ms;
        to_gateway[m++] = sends[j].ms - released;
    }
    quantiles_of(lat, m, p50, p99);
    quantiles_of(to_release, m, &h->to_release_p50, &h->to_release_p99);
    quantiles_of(to_gateway, m, &h->to_gateway_p50, &h->to_gateway_p99);
    *measured = m;
    printf("  agents: %d posted, %d accepted, %zu measured after a %d s warm-up, %d of those "
           "never reached the gateway\n",
           n, ok, m, WARMUP_SECONDS, *unreceived);
    free(to_gateway);
    free(to_release);
    free(lat);
    free(sends);
    free(acc);
}

/* ---- 2. campaign throughput with and without agents ------------------------------------ */

typedef struct campaign_run {
    int64_t ws, ids[CAMPAIGN_ACCOUNTS];
} campaign_run;

static void prepare_campaigns(campaign_run *r, int64_t ws, const int64_t *accounts, int tag)
{
    r->ws = ws;
    for (int i = 0; i < CAMPAIGN_ACCOUNTS; i++) {
        int64_t group = camp_audience(&fx.camp, ws, PER_CAMPAIGN, tag + i);
        r->ids[i] = camp_campaign(&fx.camp, ws, group, accounts[i], "Hi {{first_name}}", "draft",
                                  NULL);
    }
}

static int64_t queued(const campaign_run *r)
{
    return agent_int(&fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id BETWEEN %lld AND "
                          "%lld AND status <> 'pending'",
                     (long long)r->ids[0], (long long)r->ids[CAMPAIGN_ACCOUNTS - 1]);
}

/* Sends/s between 10% and 90% of the campaigns' logs. */
static double campaign_rate(const campaign_run *r)
{
    for (int i = 0; i < CAMPAIGN_ACCOUNTS; i++)
        camp_command(&fx.camp, r->ws, r->ids[i], "start", "bench");
    const int64_t total = (int64_t)CAMPAIGN_ACCOUNTS * PER_CAMPAIGN;
    int64_t t10 = 0, t90 = 0, n10 = 0, n90 = 0, deadline = bz_monotonic_ms() + 600000;
    while (!t90 && bz_monotonic_ms() < deadline) {
        int64_t n = queued(r), now = bz_monotonic_ms();
        if (!t10 && n >= total / 10)
            t10 = now, n10 = n;
        if (t10 && n >= total * 9 / 10)
            t90 = now, n90 = n;
        itest_sleep_ms(20);
    }
    assert_true(t90 > t10);
    return (double)(n90 - n10) * 1000.0 / (double)(t90 - t10);
}

typedef struct agent_load {
    const char *key;
    const int64_t *accounts, *contacts;
    int naccounts, seconds;
} agent_load;

static void *agents_in_background(void *arg)
{
    agent_load *l = arg;
    int n;
    free(post_agents(l->key, l->accounts, l->naccounts, l->contacts, l->seconds, "load", &n));
    return NULL;
}

/* The CONVERSATIONS contacts of an audience, written in one statement by
 * camp_audience, into out. */
static void read_contacts(int64_t group, int64_t *out)
{
    PGresult *res = itest_pg_rowsf(
        fx.camp.pg,
        "SELECT contact_id FROM contact_group_members WHERE contact_group_id = %lld "
        "ORDER BY contact_id",
        (long long)group);
    assert_int_equal(PQntuples(res), CONVERSATIONS);
    for (int i = 0; i < CONVERSATIONS; i++)
        out[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    PQclear(res);
}

/* Runs even when the benchmark failed: no process may outlive it. */
static int stop_processes(void **state)
{
    (void)state;
    if (fx.camp.pg)
        agent_fx_finish(&fx);
    return 0;
}

static void bench_agent(void **state)
{
    (void)state;
    agent_fx_init(&fx, "agentb");
    int64_t ws = agent_int(&fx, "INSERT INTO workspaces (name, metadata) VALUES ('%s', "
                                "'{\"rate_limits\": {\"per_second\": 0}}') RETURNING id",
                           fx.wh.prefix);
    const char *fast = "{\"per_second\": 100, \"per_minute\": 0, \"per_hour\": 0}";
    int64_t accounts[ACCOUNTS];
    for (int i = 0; i < ACCOUNTS; i++) {
        char session[32];
        snprintf(session, sizeof session, "agb-%02d-", i);
        accounts[i] = camp_account(&fx.camp, ws, session, i == 0, 100, fast);
    }
    static int64_t contacts[CONVERSATIONS];
    read_contacts(camp_audience(&fx.camp, ws, CONVERSATIONS, 700), contacts);
    /* The statistics of a system whose contacts were imported more than a
     * minute ago (autovacuum analyzes them): bench.sh analyzed an empty
     * table, and with those the services' generic plans found a contact by
     * id through an index of the workspace's names, walking all its
     * contacts (1.6 ms in ingest and 3.1 ms in chat-sync per message,
     * pg_stat_statements) until autovacuum came round, after the
     * measurement. */
    itest_pg_exec(fx.camp.pg, "ANALYZE contacts");
    char *key = agent_api_key(&fx, ws);
    const char *ingest_env[] = {"BLAZZ_CRM_RATE_PER_SECOND=100000", "BLAZZ_CRM_RATE_BURST=100000",
                                "BLAZZ_CRM_WORKERS=8", NULL};
    const char *sender_env[] = {"BLAZZ_SENDER_BATCH_MAX=1000", NULL};
    agent_start_chat_sync(&fx);
    camp_start_sender(&fx.camp, 0, sender_env);
    agent_start_sim(&fx);
    agent_start_ingest(&fx, ingest_env);

    int64_t p50, p99;
    agent_halves halves;
    size_t measured;
    int unreceived;
    agent_latency(key, accounts, contacts, &p50, &p99, &halves, &measured, &unreceived);

    /* campaigns need no gateway: what they queue is what they release */
    agent_kill(&fx.sim);
    const char *unlimited = "{\"per_second\": 0, \"per_minute\": 0, \"per_hour\": 0}";
    int64_t camp_accounts[CAMPAIGN_ACCOUNTS];
    for (int i = 0; i < CAMPAIGN_ACCOUNTS; i++) {
        char session[32];
        snprintf(session, sizeof session, "agc-%02d-", i);
        camp_accounts[i] = camp_account(&fx.camp, ws, session, 0, 90, unlimited);
    }
    campaign_run alone, shared;
    prepare_campaigns(&alone, ws, camp_accounts, 800);
    double rate_alone = campaign_rate(&alone);
    prepare_campaigns(&shared, ws, camp_accounts, 850);
    agent_load load = {key, camp_accounts, contacts, CAMPAIGN_ACCOUNTS, SHARED_SECONDS};
    pthread_t agents;
    pthread_create(&agents, NULL, agents_in_background, &load);
    itest_sleep_ms(2000); /* the agents' flow is steady before the campaigns start */
    double rate_shared = campaign_rate(&shared);
    pthread_join(agents, NULL);

    printf("\ntwo-way messaging benchmark\n");
    printf("  %-52s %8lld ms p50 %8lld ms p99  (goal p99 < 50)\n",
           "agent message accepted -> received by the gateway", (long long)p50, (long long)p99);
    printf("  %-52s %8lld ms p50 %8lld ms p99\n", "  of which 202 -> released by campaign-sender",
           (long long)halves.to_release_p50, (long long)halves.to_release_p99);
    printf("  %-52s %8lld ms p50 %8lld ms p99\n", "  of which released -> received by the gateway",
           (long long)halves.to_gateway_p50, (long long)halves.to_gateway_p99);
    printf("  %-52s %8d msg/s over %d accounts, %zu measured\n", "agent load", AGENT_RATE,
           ACCOUNTS, measured);
    printf("  %-52s %8.0f sends/s\n", "campaign sends queued, alone", rate_alone);
    printf("  %-52s %8.0f sends/s  (%.2f of alone)\n",
           "campaign sends queued, with agents at 200/s", rate_shared,
           rate_alone > 0 ? rate_shared / rate_alone : 0);
    printf("BENCH agent_accept_to_gateway_p50 %lld ms\n", (long long)p50);
    printf("BENCH agent_accept_to_gateway_p99 %lld ms\n", (long long)p99);
    printf("BENCH agent_accept_to_release_p50 %lld ms\n", (long long)halves.to_release_p50);
    printf("BENCH agent_accept_to_release_p99 %lld ms\n", (long long)halves.to_release_p99);
    printf("BENCH agent_release_to_gateway_p50 %lld ms\n", (long long)halves.to_gateway_p50);
    printf("BENCH agent_release_to_gateway_p99 %lld ms\n", (long long)halves.to_gateway_p99);
    printf("BENCH agent_unreceived %d messages\n", unreceived);
    printf("BENCH campaign_sends_alone %.0f sends/s\n", rate_alone);
    printf("BENCH campaign_sends_with_agents %.0f sends/s\n", rate_shared);
    free(key);
}

int main(void)
{
    return itest_bench_run("bench_agent", bench_agent, stop_processes);
}
