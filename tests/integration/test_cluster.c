/*
 * test_cluster.c - the backbone on a cluster (issue 22 acceptance): three
 * Kafka brokers (replication 3, min.insync.replicas 2) and a PostgreSQL
 * primary with a hot standby, started for this program alone by
 * scripts/stack.sh in cluster mode (BLAZZ_KAFKA_BROKERS_COUNT=3,
 * BLAZZ_PG_STANDBY=1) in <state>-cluster on ports of its own
 * (BLAZZ_CLUSTER_TEST_PG_PORT 19437 and the next one,
 * BLAZZ_CLUSTER_TEST_KAFKA_PORT 19492.., _KAFKA_CONTROLLER_PORT 19495..),
 * and stopped at the end. Services are the sanitizer build, two instances
 * where the test says so; every service's log is in <state>-cluster/logs.
 *
 *  - the topics the stack made have three replicas, min.insync.replicas 2,
 *    and the internal topics three replicas too;
 *  - a broker dies under an HTTP burst: two ingest instances and a
 *    chat-sync take signed POST /v1/events from 16 client threads; after a
 *    third of the requests were answered, the broker that leads the most
 *    partitions of chat.sync (where the HTTP path writes, ARCHITECTURE.md
 *    §8) is SIGKILLed; once the cluster has moved its partitions the burst
 *    goes on, the broker is started again, and the rest is sent. Every
 *    request answered 202 is then on chat.sync (read_committed) and once
 *    in chats, and nothing else is stored; nothing is dead-lettered; both
 *    ingest instances stop cleanly. A 503 (no acknowledgement within
 *    ingest.produce_timeout_ms while partitions had no leader) is allowed:
 *    the gateway retries it;
 *  - the standby is promoted under chat-sync and campaign traffic: ingest,
 *    two chat-sync and two campaign-sender instances, a test gateway
 *    answering sends. Mid-traffic `stack.sh switchover` demotes the
 *    primary (read-only, sessions ended: clients meet SQLSTATE 25006 or a
 *    lost connection), lets the standby catch up, promotes it and stops
 *    the old primary. Then: every message stored
 *    once with exact unread counters, the campaign completed with one
 *    idempotency key per contact and exact counters, no dead letter on any
 *    topic, every service still running and stopping cleanly.
 *
 * Waits poll the topics or PostgreSQL with deadlines that fail the test;
 * nothing asserts on time. For a developer: BLAZZ_CLUSTER_TEST_FILTER runs
 * the tests whose name matches (cmocka's pattern), BLAZZ_CLUSTER_TEST_KEEP=1
 * leaves the cluster up to be inspected (source <state>-cluster/stack.env).
 */
#include <curl/curl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "blazz/v1/inbound.pb-c.h"
#include "campaign_itest.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"
#include "itest_http.h"
#include "kafka/admin.h"
#include "pg/columns.h"
#include "pg/pg.h"
#include "itest_http.h"

#define SECRET "cluster-gateway-secret-0123456789abcdef"
#define WAIT_LIMIT_MS (300 * 1000)
#define BASE_MS 1700000000000LL
#define CLIENT_THREADS 16
#define SESSIONS 12
#define MAX_INGEST 2

/* ---- the cluster stack --------------------------------------------------------------- */

static char cluster_state[600];

static void set_port_env(const char *name, const char *knob, int def, int offset)
{
    char value[16];
    snprintf(value, sizeof value, "%d", itest_env_int(knob, def, 1024, 65000) + offset);
    setenv(name, value, 1);
}

/* Take over the environment that stack.sh and every child read: the
 * cluster's state folder and ports, then the DSN and brokers it wrote. */
static void use_cluster_stack(void)
{
    const char *main_state = itest_env("BLAZZ_STATE_DIR");
    const char *given = getenv("BLAZZ_CLUSTER_TEST_STATE_DIR");
    snprintf(cluster_state, sizeof cluster_state, "%s", given && *given ? given : main_state);
    if (!(given && *given))
        strncat(cluster_state, "-cluster", sizeof cluster_state - strlen(cluster_state) - 1);
    setenv("BLAZZ_STATE_DIR", cluster_state, 1);
    set_port_env("BLAZZ_PG_PORT", "BLAZZ_CLUSTER_TEST_PG_PORT", 19437, 0);
    set_port_env("BLAZZ_PG_STANDBY_PORT", "BLAZZ_CLUSTER_TEST_PG_PORT", 19437, 1);
    set_port_env("BLAZZ_KAFKA_PORT", "BLAZZ_CLUSTER_TEST_KAFKA_PORT", 19492, 0);
    set_port_env("BLAZZ_KAFKA_CONTROLLER_PORT", "BLAZZ_CLUSTER_TEST_KAFKA_CONTROLLER_PORT", 19495,
                 0);
    setenv("BLAZZ_KAFKA_BROKERS_COUNT", "3", 1);
    setenv("BLAZZ_PG_STANDBY", "1", 1);
    setenv("BLAZZ_TOPIC_REPLICATION", "3", 1);
}

/* Apply the cluster's stack.env to this process. */
static void load_stack_env(void)
{
    itest_stack_env_apply(cluster_state);
    /* stack.env names blazzctl's principal; the test acts as the cluster's
     * admin, as scripts/test.sh makes it on the single-node stack */
    const char *credentials = getenv("BLAZZ_KAFKA_CREDENTIALS_DIR");
    if (credentials && *credentials) {
        char password[700];
        snprintf(password, sizeof password, "%s/admin.password", credentials);
        setenv("BLAZZ_KAFKA_SASL_USERNAME", "admin", 1);
        setenv("BLAZZ_KAFKA_SASL_PASSWORD_FILE", password, 1);
    }
}

/* `stack.sh down` on the cluster's state folder; its exit status. */
static int stop_cluster(void)
{
    char *argv[] = {(char *)itest_env("BLAZZ_STACK_SCRIPT"), "down", NULL};
    return itest_wait(itest_spawn(argv, "/dev/null"));
}

static int cluster_up(void **state)
{
    (void)state;
    use_cluster_stack();
    char logs[700];
    char *rm[] = {"/bin/rm", "-rf", cluster_state, NULL};
    if (stop_cluster() != 0 || itest_wait(itest_spawn(rm, "/dev/null")) != 0)
        fail_msg("could not clear %s", cluster_state);
    snprintf(logs, sizeof logs, "%s/logs", cluster_state);
    mkdir(cluster_state, 0755);
    mkdir(logs, 0755);
    itest_stack("up");
    load_stack_env();
    return 0;
}

static int cluster_down(void **state)
{
    (void)state;
    const char *keep = getenv("BLAZZ_CLUSTER_TEST_KEEP");
    if (keep && strcmp(keep, "1") == 0) {
        printf("the cluster stays up (BLAZZ_CLUSTER_TEST_KEEP=1): source %s/stack.env\n",
               cluster_state);
        return 0;
    }
    return stop_cluster() == 0 ? 0 : -1;
}

/* ---- Kafka metadata ------------------------------------------------------------------ */

static rd_kafka_t *metadata_client(void)
{
    char errstr[256];
    bz_kafka_settings settings = {.brokers = itest_env("BLAZZ_KAFKA_BROKERS"),
                                  .client_id = "itest-cluster"};
    rd_kafka_conf_t *conf;
    bz_error err;
    if (bz_kafka_conf_new(&settings, NULL, &conf, &err) != BZ_OK)
        fail_msg("metadata client: %s", err.msg);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk)
        fail_msg("metadata client: %s", errstr);
    return rk;
}

/* Partitions of topic led by each broker id (index 1..3); returns the
 * partition count. Leaders the cluster has not settled yet count for none. */
static int leaders_of(const char *topic, int led[4])
{
    rd_kafka_t *rk = metadata_client();
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1)
        fail_msg("no metadata for %s", topic);
    memset(led, 0, 4 * sizeof *led);
    int n = md->topics[0].partition_cnt;
    for (int p = 0; p < n; p++) {
        int32_t leader = md->topics[0].partitions[p].leader;
        if (leader >= 1 && leader <= 3)
            led[leader]++;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return n;
}

static int partitions_led_by(const char *topic, int broker)
{
    int led[4];
    leaders_of(topic, led);
    return led[broker];
}

static int busiest_leader(const char *topic)
{
    int led[4], best = 1;
    leaders_of(topic, led);
    for (int b = 2; b <= 3; b++)
        if (led[b] > led[best])
            best = b;
    return best;
}

/* ---- processes ------------------------------------------------------------------------- */

typedef struct proc {
    const char *name; /* log file name */
    pid_t pid;
} proc;

/* The services a test runs; its teardown kills what a failed test left. */
static proc procs[3];

static void log_path(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/logs/%s.log", cluster_state, name);
}

/* Start bin with extra "KEY=VALUE" environment. */
static void start_proc(proc *p, const char *bin_name, const char *const *env)
{
    char bin[1024], log[800];
    snprintf(bin, sizeof bin, "%s/bin/%s", itest_env("BLAZZ_TEST_BIN_DIR"), bin_name);
    log_path(p->name, log, sizeof log);
    char *argv[] = {bin, NULL};
    p->pid = itest_spawn_env(argv, env, log);
}

static void assert_running(proc *p)
{
    int status;
    if (p->pid > 0 && waitpid(p->pid, &status, WNOHANG) == p->pid) {
        p->pid = 0;
        char log[800];
        log_path(p->name, log, sizeof log);
        fail_msg("%s died (status %d); see %s", p->name, status, log);
    }
}

/* SIGTERM and wait; fails the test unless it exits 0 (ASan's leak check
 * included). */
static void stop_proc(proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGTERM);
    int rc = itest_wait(p->pid);
    p->pid = 0;
    if (rc != 0) {
        char log[800];
        log_path(p->name, log, sizeof log);
        fail_msg("%s exited with %d after SIGTERM; see %s", p->name, rc, log);
    }
}

static int kill_leftovers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++)
        if (procs[i].pid > 0) {
            kill(procs[i].pid, SIGKILL);
            itest_wait(procs[i].pid);
            procs[i].pid = 0;
        }
    return 0;
}

static void wait_ready(const proc *p, int admin_port)
{
    char log[800];
    log_path(p->name, log, sizeof log);
    itest_wait_ready(admin_port, p->pid, log, WAIT_LIMIT_MS);
}

/* ---- topics as the test reads them --------------------------------------------------------- */

typedef struct id_count {
    char **ids; /* event_id header of each record (heap) */
    size_t n, cap;
} id_count;

static void collect_event_id(void *ctx, const rd_kafka_message_t *m)
{
    id_count *c = ctx;
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL;
    size_t len = 0;
    char id[64] = "-";
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, "event_id", &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        len < sizeof id) {
        memcpy(id, v, len);
        id[len] = '\0';
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->ids = realloc(c->ids, c->cap * sizeof *c->ids);
        assert_non_null(c->ids);
    }
    c->ids[c->n++] = strdup(id);
}

static void read_ids(const char *prefix, const char *base, id_count *out)
{
    char topic[256];
    snprintf(topic, sizeof topic, "%s%s", prefix, base);
    memset(out, 0, sizeof *out);
    itest_consume_all(topic, collect_event_id, out);
}

static void free_ids(id_count *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->ids[i]);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

static size_t records_on(const char *prefix, const char *base)
{
    id_count c;
    read_ids(prefix, base, &c);
    size_t n = c.n;
    free_ids(&c);
    return n;
}

static int compare_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Distinct event ids on a topic. */
static size_t distinct_ids_on(const char *prefix, const char *base)
{
    id_count c;
    read_ids(prefix, base, &c);
    qsort(c.ids, c.n, sizeof *c.ids, compare_text);
    size_t n = 0;
    for (size_t i = 0; i < c.n; i++)
        n += i == 0 || strcmp(c.ids[i], c.ids[i - 1]) != 0;
    free_ids(&c);
    return n;
}

/* The dead-letter topics must hold nothing for this prefix. */
static void assert_no_dead_letters(const char *prefix)
{
    static const char *const dlqs[] = {"wa.inbound.dlq", "chat.sync.dlq", "campaign.dlq",
                                       "webhook.dlq", "cleanup.dlq", "outbox.dlq"};
    for (size_t i = 0; i < sizeof dlqs / sizeof dlqs[0]; i++) {
        size_t n = records_on(prefix, dlqs[i]);
        if (n != 0)
            fail_msg("%zu dead letter(s) on %s%s (blazzctl dlq tail shows why)", n, prefix,
                     dlqs[i]);
    }
}

/* The value of one configuration entry of topic, as the cluster reports it
 * (DescribeConfigs: the topic's own setting or the broker default). */
static void topic_config(const char *topic, const char *name, char *out, size_t cap)
{
    rd_kafka_t *rk = metadata_client();
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    snprintf(out, cap, "(none)");
    const rd_kafka_DescribeConfigs_result_t *result =
        ev ? rd_kafka_event_DescribeConfigs_result(ev) : NULL;
    size_t nres = 0, nentries = 0;
    const rd_kafka_ConfigResource_t **resources =
        result ? rd_kafka_DescribeConfigs_result_resources(result, &nres) : NULL;
    const rd_kafka_ConfigEntry_t **entries =
        nres == 1 ? rd_kafka_ConfigResource_configs(resources[0], &nentries) : NULL;
    for (size_t i = 0; i < nentries; i++)
        if (strcmp(rd_kafka_ConfigEntry_name(entries[i]), name) == 0)
            snprintf(out, cap, "%s", rd_kafka_ConfigEntry_value(entries[i]) ?
                                         rd_kafka_ConfigEntry_value(entries[i]) : "(null)");
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_destroy(rk);
}

/* ---- 1. replication settings ------------------------------------------------------------- */

static void test_topics_are_replicated_three_times(void **state)
{
    (void)state;
    bz_kafka_cluster_info info;
    bz_error err;
    /* the broker killed earlier may still be catching up */
    int64_t deadline = bz_monotonic_ms() + WAIT_LIMIT_MS;
    for (;;) {
        if (bz_kafka_cluster_describe(itest_env("BLAZZ_KAFKA_BROKERS"), 10000, &info, &err) != BZ_OK)
            fail_msg("describe the cluster: %s", err.msg);
        if ((info.count == 3 && info.under_replicated == 0) || bz_monotonic_ms() > deadline)
            break;
        bz_kafka_cluster_info_free(&info);
        itest_sleep_ms(500);
    }
    assert_int_equal(info.count, 3);
    assert_int_equal(info.under_replicated, 0);
    assert_int_equal(info.leaderless, 0);
    /* every partition of every topic, __consumer_offsets included once a
     * group exists, has a replica on each of the three brokers */
    for (size_t i = 0; i < info.count; i++)
        assert_int_equal(info.brokers[i].replicas, info.partitions);
    bz_kafka_cluster_info_free(&info);

    static const char *const topics[] = {"chat.sync", "wa.inbound.raw", "__consumer_offsets",
                                         "__transaction_state"};
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        int led[4];
        assert_true(leaders_of(topics[i], led) > 0);
        char value[32];
        topic_config(topics[i], "min.insync.replicas", value, sizeof value);
        if (strcmp(value, "2") != 0)
            fail_msg("%s: min.insync.replicas is %s, not 2", topics[i], value);
    }
}

/* ---- 2. a broker dies under an HTTP burst ------------------------------------------------- */

typedef struct burst {
    char prefix[64], token[32], gateway[48];
    int64_t workspace;
    char sessions[SESSIONS][64];
    int ports[MAX_INGEST];
    int n;
    char (*event_ids)[BZ_UUID_STR_SIZE];
    long *status;
    atomic_int next;     /* next request index to send */
    atomic_int gate;     /* requests below this index may go */
    atomic_int answered; /* requests that got an answer (any) */
    atomic_int stop;     /* a failed test's teardown ends the clients */
    pthread_t threads[CLIENT_THREADS];
    int nthreads;
} burst;

static burst B;

static size_t ignore_body(char *data, size_t size, size_t n, void *ctx)
{
    (void)data;
    (void)ctx;
    return size * n;
}

/* The protobuf InboundEvent of request i: a private message from a contact
 * of its own to session i % SESSIONS, event_id chosen here. */
static uint8_t *burst_event(int i, size_t *len)
{
    char wam[64], phone[32];
    snprintf(wam, sizeof wam, "BURST%s%06d", B.token, i);
    snprintf(phone, sizeof phone, "+6281%08d", i % 500);
    Blazz__V1__InboundMessage m = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    m.wam_id = wam;
    m.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    m.contact_phone = phone;
    m.contact_name = "Burst";
    m.body = "burst";
    m.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    m.timestamp_ms = BASE_MS + i;
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = B.event_ids[i];
    env.occurred_at_ms = BASE_MS + i;
    env.produced_at_ms = env.occurred_at_ms;
    env.source = "itest-cluster";
    env.session_id = B.sessions[i % SESSIONS];
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    env.trace_id = B.event_ids[i];
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.envelope = &env;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev.message = &m;
    *len = blazz__v1__inbound_event__get_packed_size(&ev);
    uint8_t *bytes = malloc(*len);
    if (bytes)
        blazz__v1__inbound_event__pack(&ev, bytes);
    return bytes;
}

static long post_once(CURL *c, int i)
{
    size_t len;
    uint8_t *bytes = burst_event(i, &len);
    if (!bytes)
        return -1;
    char url[128];
    itest_gateway_headers h;
    if (itest_gateway_sign(B.gateway, SECRET, bytes, len, "Content-Type: application/x-protobuf",
                           &h) != BZ_OK) {
        free(bytes);
        return -1;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/events", B.ports[i % MAX_INGEST]);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
    for (size_t n = 0; h.lines[n]; n++)
        hdrs = curl_slist_append(hdrs, h.lines[n]);
    long status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, bytes);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ignore_body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    free(bytes);
    return status;
}

/* A client thread: sends requests by index while the gate allows, once
 * each (no retry: a 503 stays a 503). */
static void *client_main(void *arg)
{
    (void)arg;
    CURL *c = curl_easy_init();
    for (;;) {
        int i = atomic_load(&B.next);
        if (i >= B.n || atomic_load(&B.stop))
            break;
        if (i >= atomic_load(&B.gate)) {
            itest_sleep_ms(5);
            continue;
        }
        if (!atomic_compare_exchange_weak(&B.next, &i, i + 1))
            continue;
        B.status[i] = post_once(c, i);
        atomic_fetch_add(&B.answered, 1);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static void open_gate_and_wait(int upto)
{
    atomic_store(&B.gate, upto);
    int64_t deadline = bz_monotonic_ms() + WAIT_LIMIT_MS;
    while (atomic_load(&B.answered) < upto) {
        for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++)
            assert_running(&procs[i]);
        if (bz_monotonic_ms() > deadline)
            fail_msg("only %d of %d requests answered", atomic_load(&B.answered), upto);
        itest_sleep_ms(50);
    }
}

static void start_ingest(proc *p, int slot, int admin_port)
{
    char prefix[128], group[128], listen[64], admin[64];
    snprintf(prefix, sizeof prefix, "BLAZZ_KAFKA_TOPIC_PREFIX=%s", B.prefix);
    snprintf(group, sizeof group, "BLAZZ_INGEST_GROUP_ID=blazz-ingest-%s", B.prefix);
    snprintf(listen, sizeof listen, "BLAZZ_INGEST_LISTEN=127.0.0.1:%d", B.ports[slot]);
    snprintf(admin, sizeof admin, "BLAZZ_HTTP_LISTEN=127.0.0.1:%d", admin_port);
    const char *env[] = {prefix, group, listen, admin,
                         "BLAZZ_INGEST_CONSUMER_SESSION_TIMEOUT_MS=6000",
                         "BLAZZ_INGEST_TXN_MAX_MS=50", NULL};
    start_proc(p, "blazz-ingest", env);
}

static void start_chat_sync(proc *p, const char *prefix)
{
    char prefix_env[128], group[128];
    snprintf(prefix_env, sizeof prefix_env, "BLAZZ_KAFKA_TOPIC_PREFIX=%s", prefix);
    snprintf(group, sizeof group, "BLAZZ_CONSUMER_GROUP_ID=blazz-chat-sync-%s", prefix);
    const char *env[] = {prefix_env, group, "BLAZZ_HTTP_LISTEN=127.0.0.1:0",
                         "BLAZZ_KAFKA_SESSION_TIMEOUT_MS=6000", "BLAZZ_OUTBOX_IDLE_POLL_MS=100",
                         NULL};
    start_proc(p, "blazz-chat-sync", env);
}

/* Wait until chat-sync stored every event on chat.sync (which may hold an
 * event twice: see assert_accepted_once) and the outbox is empty. */
static void wait_until_settled(PGconn *conn, const char *prefix, int64_t workspace)
{
    int64_t deadline = bz_monotonic_ms() + WAIT_LIMIT_MS;
    for (;;) {
        for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++)
            assert_running(&procs[i]);
        size_t sync = distinct_ids_on(prefix, "chat.sync");
        int64_t applied = itest_pg_int64f(conn, "SELECT count(*) FROM chats WHERE workspace_id = %lld",
                                          (long long)workspace);
        if ((size_t)applied >= sync && itest_pg_int64f(conn, "SELECT count(*) FROM outbox") == 0)
            return;
        if (bz_monotonic_ms() > deadline)
            fail_msg("not settled: %zu events on chat.sync, %lld stored", sync,
                     (long long)applied);
        itest_sleep_ms(500);
    }
}

/* Every 202 is on chat.sync and once in chats. chat.sync itself may hold
 * a record twice: when a produce request times out, librdkafka's
 * idempotent producer bumps its epoch and sends what was in flight again,
 * which the broker cannot recognise as a repeat (the request's answer is a
 * 503, yet both copies may land); chat-sync's unique keys store it once. */
static void assert_accepted_once(PGconn *conn, id_count *sync)
{
    size_t accepted = 0, refused = 0;
    char *ids_array;
    {
        const char **ids = calloc((size_t)B.n, sizeof *ids);
        assert_non_null(ids);
        for (int i = 0; i < B.n; i++) {
            if (B.status[i] == 202)
                ids[accepted++] = B.event_ids[i];
            else
                refused++;
        }
        ids_array = bz_pg_text_array(ids, accepted);
        free(ids);
    }
    char *sync_array = bz_pg_text_array((const char *const *)sync->ids, sync->n);
    assert_non_null(ids_array);
    assert_non_null(sync_array);
    const char *params[] = {ids_array, sync_array};
    PGresult *res = PQexecParams(
        conn,
        "WITH acc AS (SELECT DISTINCT unnest($1::text[]) AS id), "
        "sync AS (SELECT id, count(*) AS n FROM unnest($2::text[]) id GROUP BY id) "
        "SELECT (SELECT count(*) FROM acc a JOIN sync s USING (id)), "
        "       (SELECT count(*) FROM sync WHERE n > 1), (SELECT count(*) FROM sync)",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("compare ids: %s", PQresultErrorMessage(res));
    long long sync_found = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    long long sync_twice = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    long long sync_distinct = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    PQclear(res);
    free(ids_array);
    free(sync_array);
    print_message("burst: %zu answered 202, %zu not (503 while partitions had no leader); "
                  "%zu chat.sync records (%lld events twice)\n",
                  accepted, refused, sync->n, sync_twice);
    assert_true(accepted > 0);
    assert_int_equal(sync_found, accepted);

    /* chats: each accepted message once; nothing else but chat.sync's events */
    int64_t stored_once = 0;
    for (int i = 0; i < B.n; i++) {
        if (B.status[i] != 202)
            continue;
        int64_t n = itest_pg_int64f(conn, "SELECT count(*) FROM chats WHERE workspace_id = %lld "
                                          "AND wam_id = 'BURST%s%06d'",
                                    (long long)B.workspace, B.token, i);
        if (n != 1)
            fail_msg("message %d (event %s, answered 202) stored %lld times", i, B.event_ids[i],
                     (long long)n);
        stored_once++;
    }
    assert_int_equal(stored_once, accepted);
    assert_int_equal(itest_pg_int64f(conn, "SELECT count(*) FROM chats WHERE workspace_id = %lld",
                                     (long long)B.workspace),
                     (int64_t)sync_distinct);
}

static void test_broker_killed_during_http_burst(void **state)
{
    (void)state;
    memset(&B, 0, sizeof B);
    itest_unique("", B.token, sizeof B.token);
    snprintf(B.prefix, sizeof B.prefix, "itest-cl-%s.", B.token);
    itest_topics_create(B.prefix, 6);
    /* the gateway posting the burst, with its own key, serving the sessions */
    itest_unique("clgw", B.gateway, sizeof B.gateway);
    itest_gateway_create(B.prefix, B.gateway, "webjs", "gateway-sim", SECRET);
    PGconn *conn = itest_pg_connect();
    B.workspace = itest_pg_int64f(conn, "INSERT INTO workspaces (name) VALUES ('cluster %s') "
                                        "RETURNING id", B.token);
    for (int s = 0; s < SESSIONS; s++) {
        snprintf(B.sessions[s], sizeof B.sessions[s], "cl%d-%s", s, B.token);
        itest_pg_int64f(conn, "INSERT INTO whatsapp_accounts (workspace_id, session_id, status, "
                              "gateway_id) VALUES (%lld, '%s', 'connected', '%s') RETURNING id",
                        (long long)B.workspace, B.sessions[s], B.gateway);
    }
    B.n = itest_env_int("BLAZZ_CLUSTER_BURST", 1500, 300, 1000000);
    B.event_ids = calloc((size_t)B.n, sizeof *B.event_ids);
    B.status = calloc((size_t)B.n, sizeof *B.status);
    assert_non_null(B.event_ids);
    assert_non_null(B.status);
    for (int i = 0; i < B.n; i++)
        assert_int_equal(bz_uuid_v4(B.event_ids[i], NULL), BZ_OK);

    procs[0] = (proc){.name = "burst-ingest-1"};
    procs[1] = (proc){.name = "burst-ingest-2"};
    procs[2] = (proc){.name = "burst-chat-sync"};
    int admin[MAX_INGEST];
    for (int k = 0; k < MAX_INGEST; k++) {
        B.ports[k] = itest_free_port();
        admin[k] = itest_free_port();
        start_ingest(&procs[k], k, admin[k]);
    }
    start_chat_sync(&procs[2], B.prefix);
    for (int k = 0; k < MAX_INGEST; k++)
        wait_ready(&procs[k], admin[k]);

    for (; B.nthreads < CLIENT_THREADS; B.nthreads++)
        assert_int_equal(pthread_create(&B.threads[B.nthreads], NULL, client_main, NULL), 0);
    open_gate_and_wait(B.n / 3);

    char sync_topic[200], action[64];
    snprintf(sync_topic, sizeof sync_topic, "%schat.sync", B.prefix);
    int victim = busiest_leader(sync_topic);
    snprintf(action, sizeof action, "kill-broker %d", victim);
    print_message("SIGKILL broker %d (leads the most partitions of %s)\n", victim, sync_topic);
    itest_stack(action);
    atomic_store(&B.gate, B.n * 2 / 3);
    int64_t deadline = bz_monotonic_ms() + WAIT_LIMIT_MS;
    while (partitions_led_by(sync_topic, victim) > 0) {
        if (bz_monotonic_ms() > deadline)
            fail_msg("the partitions of broker %d never moved", victim);
        itest_sleep_ms(200);
    }
    open_gate_and_wait(B.n * 2 / 3);
    snprintf(action, sizeof action, "start-broker %d", victim);
    atomic_store(&B.gate, B.n * 5 / 6);
    itest_stack(action);
    open_gate_and_wait(B.n);
    for (; B.nthreads > 0; B.nthreads--)
        pthread_join(B.threads[B.nthreads - 1], NULL);

    wait_until_settled(conn, B.prefix, B.workspace);
    id_count sync;
    read_ids(B.prefix, "chat.sync", &sync);
    assert_accepted_once(conn, &sync);
    free_ids(&sync);
    assert_no_dead_letters(B.prefix);
    for (size_t i = 0; i < 3; i++)
        stop_proc(&procs[i]);
    free(B.event_ids);
    free(B.status);
    B.event_ids = NULL;
    B.status = NULL;
    PQfinish(conn);
}

/* After a failure: the client threads, then the services. */
static int end_burst(void **state)
{
    atomic_store(&B.stop, 1);
    for (; B.nthreads > 0; B.nthreads--)
        pthread_join(B.threads[B.nthreads - 1], NULL);
    free(B.event_ids);
    free(B.status);
    return kill_leftovers(state);
}

/* ---- 3. the standby is promoted under chat-sync and campaign traffic ----------------------- */

#define FAILOVER_MESSAGES 1200
#define FAILOVER_CONTACTS 60
#define FAILOVER_AUDIENCE 600

typedef struct traffic {
    camp_fx fx;
    char token[64], sessions[4][96];
    int64_t workspace;
    bz_producer *producer;
    atomic_int produced;
    atomic_int stop;
    pthread_t thread;
    int thread_started;
    char failure[BZ_ERROR_MSG_MAX + 256]; /* why the traffic thread stopped early */
} traffic;

static traffic T;

/* One private inbound message, straight to wa.inbound.raw (ingest's Kafka
 * path resolves its session through PostgreSQL). Runs on the traffic
 * thread, so it reports failures in T.failure instead of failing the test. */
static int produce_message(int i)
{
    char wam[96], phone[32], event_id[BZ_UUID_STR_SIZE], topic[200];
    snprintf(wam, sizeof wam, "FO%s%06d", T.token, i);
    snprintf(phone, sizeof phone, "+6282%08d", i % FAILOVER_CONTACTS);
    if (bz_uuid_v4(event_id, NULL) != BZ_OK) {
        snprintf(T.failure, sizeof T.failure, "no UUID for message %d", i);
        return 0;
    }
    const char *session = T.sessions[i % 4];
    Blazz__V1__InboundMessage m = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    m.wam_id = wam;
    m.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    m.contact_phone = phone;
    m.contact_name = "Failover";
    m.body = "during a failover";
    m.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    m.timestamp_ms = BASE_MS + i;
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = BASE_MS + i;
    env.produced_at_ms = env.occurred_at_ms;
    env.source = "itest-cluster";
    env.session_id = (char *)session;
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    env.trace_id = event_id;
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.envelope = &env;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev.message = &m;
    uint8_t buf[1024];
    size_t len = blazz__v1__inbound_event__pack(&ev, buf);
    /* the accounts camp_account makes are served by the gateway sim, whose
     * stamp a record written straight to wa.inbound.raw must carry */
    bz_kafka_header hdrs[3] = {{"event_id", event_id, strlen(event_id)},
                               {"trace_id", event_id, strlen(event_id)},
                               {ITEST_GATEWAY_HEADER, "sim", 3}};
    snprintf(topic, sizeof topic, "%swa.inbound.raw", T.fx.prefix);
    bz_error err;
    if (bz_producer_send(T.producer, topic, RD_KAFKA_PARTITION_UA, session, strlen(session), buf,
                         len, hdrs, 3, NULL, &err) != BZ_OK) {
        snprintf(T.failure, sizeof T.failure, "produce to %s: %s", topic, err.msg);
        return 0;
    }
    return 1;
}

/* Chat traffic at about 100 messages a second until all are out. */
static void *traffic_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < FAILOVER_MESSAGES && !atomic_load(&T.stop); i++) {
        if (!produce_message(i))
            break;
        atomic_store(&T.produced, i + 1);
        bz_producer_poll(T.producer, 0);
        if (i % 10 == 9)
            itest_sleep_ms(100);
    }
    return NULL;
}

static void start_failover_services(void)
{
    char prefix[128], group[128];
    snprintf(prefix, sizeof prefix, "BLAZZ_KAFKA_TOPIC_PREFIX=%s", T.fx.prefix);
    snprintf(group, sizeof group, "BLAZZ_INGEST_GROUP_ID=blazz-ingest-%s", T.fx.prefix);
    const char *ingest_env[] = {prefix, group, "BLAZZ_INGEST_LISTEN=127.0.0.1:0",
                                "BLAZZ_HTTP_LISTEN=127.0.0.1:0",
                                "BLAZZ_INGEST_CONSUMER_SESSION_TIMEOUT_MS=6000",
                                "BLAZZ_INGEST_TXN_MAX_MS=50", NULL};
    start_proc(&procs[0], "blazz-ingest", ingest_env);
    start_chat_sync(&procs[1], T.fx.prefix);
    start_chat_sync(&procs[2], T.fx.prefix);
    camp_start_sender(&T.fx, 0, NULL);
    camp_start_sender(&T.fx, 1, NULL);
    camp_start_test_gateway(&T.fx, NULL);
}

static void wait_failover_settled(int64_t campaign)
{
    char cid[24], ws[24];
    snprintf(cid, sizeof cid, "%lld", (long long)campaign);
    snprintf(ws, sizeof ws, "%lld", (long long)T.workspace);
    int64_t deadline = bz_monotonic_ms() + WAIT_LIMIT_MS;
    for (;;) {
        for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++)
            assert_running(&procs[i]);
        int64_t stored = camp_sql(&T.fx,
                                  "SELECT count(*) FROM chats WHERE workspace_id = $1 "
                                  "AND wam_id LIKE 'FO%'", 1, ws);
        int64_t read = camp_sql(&T.fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1 "
                                       "AND status = 'read'", 1, cid);
        int64_t outbox = camp_sql(&T.fx, "SELECT count(*) FROM outbox", 0);
        if (stored == FAILOVER_MESSAGES && read == FAILOVER_AUDIENCE && outbox == 0)
            return;
        if (bz_monotonic_ms() > deadline)
            fail_msg("not settled: %lld of %d messages, %lld of %d logs read, %lld outbox rows",
                     (long long)stored, FAILOVER_MESSAGES, (long long)read, FAILOVER_AUDIENCE,
                     (long long)outbox);
        itest_sleep_ms(500);
    }
}

static void test_standby_promoted_during_chat_sync_and_campaign(void **state)
{
    (void)state;
    memset(&T, 0, sizeof T);
    camp_fx_init(&T.fx, "clfo");
    snprintf(T.token, sizeof T.token, "%.*s", (int)strlen(T.fx.prefix) - 1, T.fx.prefix);
    T.workspace = camp_workspace(&T.fx);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s", T.fx.prefix);
    for (int s = 0; s < 4; s++) {
        char given[16];
        snprintf(given, sizeof given, "fo%d-", s);
        camp_account(&T.fx, T.workspace, given, 0, 50, "{}");
        /* camp_account appends the prefix to the session it is given */
        snprintf(T.sessions[s], sizeof T.sessions[s], "%s%s", given, prefix);
    }
    /* the campaign's own account: 80 sends a second, so it runs ~8 s */
    int64_t account = camp_account(&T.fx, T.workspace, "fo-sender-", 1, 100,
                                   "{\"per_second\": 80, \"per_minute\": 0, \"per_hour\": 0}");
    int64_t group = camp_audience(&T.fx, T.workspace, FAILOVER_AUDIENCE, 422);
    int64_t campaign = camp_campaign(&T.fx, T.workspace, group, account, "Hi {{first_name}}",
                                     "draft", NULL);
    T.producer = itest_producer();

    procs[0] = (proc){.name = "failover-ingest"};
    procs[1] = (proc){.name = "failover-chat-sync-1"};
    procs[2] = (proc){.name = "failover-chat-sync-2"};
    start_failover_services();
    camp_command(&T.fx, T.workspace, campaign, "start", "cluster-test");
    assert_int_equal(pthread_create(&T.thread, NULL, traffic_main, NULL), 0);
    T.thread_started = 1;

    char cid[24];
    snprintf(cid, sizeof cid, "%lld", (long long)campaign);
    camp_wait_at_least(&T.fx, "a third of the campaign sent", FAILOVER_AUDIENCE / 3, WAIT_LIMIT_MS / 1000,
                       "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1 "
                       "AND status <> 'pending'", 1, cid);
    int64_t deadline = bz_monotonic_ms() + WAIT_LIMIT_MS;
    while (atomic_load(&T.produced) < FAILOVER_MESSAGES / 3 && bz_monotonic_ms() < deadline)
        itest_sleep_ms(50);
    print_message("failover after %d messages and a third of the campaign\n",
                  atomic_load(&T.produced));
    /* demote, wait until the standby has replayed everything, promote it,
     * stop the old primary */
    itest_stack("switchover");
    PQreset(T.fx.pg);
    pthread_join(T.thread, NULL);
    T.thread_started = 0;
    if (T.failure[0])
        fail_msg("chat traffic: %s", T.failure);
    bz_error err;
    if (bz_producer_flush(T.producer, 60000, &err) != BZ_OK)
        fail_msg("flush: %s", err.msg);
    assert_int_equal(bz_producer_failed(T.producer), 0);

    camp_wait_status(&T.fx, campaign, "completed", WAIT_LIMIT_MS / 1000);
    wait_failover_settled(campaign);

    /* chats: every message once; unread counters exact */
    char ws[24];
    snprintf(ws, sizeof ws, "%lld", (long long)T.workspace);
    assert_int_equal(camp_sql(&T.fx, "SELECT count(DISTINCT wam_id) FROM chats WHERE "
                                     "workspace_id = $1 AND wam_id LIKE 'FO%'", 1, ws),
                     FAILOVER_MESSAGES);
    assert_int_equal(camp_sql(&T.fx,
                              "SELECT count(*) FROM contacts ct WHERE ct.workspace_id = $1 AND "
                              "ct.phone LIKE '+6282%' AND ct.unread_messages <> (SELECT count(*) "
                              "FROM chats c WHERE c.contact_id = ct.id AND c.type = 'inbound' "
                              "AND NOT c.is_read)", 1, ws),
                     0);
    assert_int_equal(camp_sql(&T.fx, "SELECT sum(unread_messages) FROM contacts WHERE "
                                     "workspace_id = $1 AND phone LIKE '+6282%'", 1, ws),
                     FAILOVER_MESSAGES);
    /* the campaign: one key per contact, exact counters */
    size_t n, keys, contacts, duplicates;
    camp_send *sends = camp_read_sends(&T.fx, campaign, &n);
    camp_assert_one_key_per_contact(sends, n, &keys, &contacts, &duplicates);
    free(sends);
    print_message("campaign: %zu sends, %zu keys, %zu contacts, %zu repeated publishes\n", n,
                  keys, contacts, duplicates);
    assert_int_equal(contacts, FAILOVER_AUDIENCE);
    assert_int_equal(keys, FAILOVER_AUDIENCE);
    camp_assert_counters_exact(&T.fx, campaign);
    assert_int_equal(camp_sql(&T.fx, "SELECT messages_read FROM campaigns WHERE id = $1", 1, cid),
                     FAILOVER_AUDIENCE);
    assert_no_dead_letters(T.fx.prefix);

    for (size_t i = 0; i < 3; i++)
        stop_proc(&procs[i]);
    bz_producer_free(T.producer, 5000);
    T.producer = NULL;
    camp_fx_finish(&T.fx);
}

/* After a failure: the traffic thread, the campaign processes (a relay left
 * running would publish the next test's outbox rows under this prefix),
 * then the services. */
static int end_failover(void **state)
{
    atomic_store(&T.stop, 1);
    if (T.thread_started)
        pthread_join(T.thread, NULL);
    T.thread_started = 0;
    pid_t *campaign_pids[CAMP_MAX_SENDERS + 1] = {&T.fx.gateway};
    for (int i = 0; i < CAMP_MAX_SENDERS; i++)
        campaign_pids[i + 1] = &T.fx.senders[i];
    for (size_t i = 0; i < sizeof campaign_pids / sizeof campaign_pids[0]; i++)
        if (*campaign_pids[i] > 0) {
            kill(*campaign_pids[i], SIGKILL);
            itest_wait(*campaign_pids[i]);
            *campaign_pids[i] = 0;
        }
    if (T.fx.pg)
        PQfinish(T.fx.pg);
    T.fx.pg = NULL;
    bz_producer_free(T.producer, 0);
    T.producer = NULL;
    return kill_leftovers(state);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *filter = getenv("BLAZZ_CLUSTER_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_broker_killed_during_http_burst, end_burst),
        cmocka_unit_test_teardown(test_standby_promoted_during_chat_sync_and_campaign,
                                  end_failover),
        /* last: the internal topics exist once groups and transactions ran */
        cmocka_unit_test(test_topics_are_replicated_three_times),
    };
    int rc = cmocka_run_group_tests(tests, cluster_up, cluster_down);
    curl_global_cleanup();
    return rc;
}
