/*
 * test_ingest_instances.c - two blazz-ingest instances on one host, each
 * with the default transactional.id (ingest.transactional_id unset), as
 * `make chaos` and any two processes on one machine run them.
 *
 * The Kafka path's transactional.id must differ between live instances: two
 * producers with one id fence each other (the second init_transactions
 * bumps the epoch, the first one's next transactional call fails fatally
 * and it rebuilds, fencing the second...), so throughput collapses into
 * rebuilds. The test starts both (distinct HTTP ports, one consumer group),
 * waits until both hold partitions of wa.inbound.raw, produces events to it
 * in a steady stream, and checks:
 *  - the two logged transactional ids differ;
 *  - neither instance ever rebuilt its transactional producer;
 *  - every event is on chat.sync exactly once (read_committed), and
 *    nothing was dead-lettered;
 *  - both stop cleanly on SIGTERM.
 */
#include <curl/curl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"
#include "itest_http.h"

#define EVENTS 2000
#define WAIT_LIMIT_MS (180 * 1000)
#define BASE_MS 1700000000000LL

typedef struct instance {
    pid_t pid;
    int port, admin_port;
    char log[512];
} instance;

static struct {
    char token[32], prefix[64], session[64];
    instance ingest[2];
} fx;

static void start_instance(instance *in, int slot)
{
    char bin[1024], prefix[128], group[128], listen[64], admin[64];
    snprintf(bin, sizeof bin, "%s/bin/blazz-ingest", itest_env("BLAZZ_TEST_BIN_DIR"));
    in->port = itest_free_port();
    in->admin_port = itest_free_port();
    const char *dir = getenv("BLAZZ_STATE_DIR");
    snprintf(in->log, sizeof in->log, "%s/%singest-%d.log", dir ? dir : "/tmp", fx.prefix, slot);
    snprintf(prefix, sizeof prefix, "%s", fx.prefix);
    snprintf(group, sizeof group, "blazz-ingest-%s", fx.prefix);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", in->port);
    snprintf(admin, sizeof admin, "127.0.0.1:%d", in->admin_port);
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", prefix, 1);
    setenv("BLAZZ_INGEST_GROUP_ID", group, 1);
    setenv("BLAZZ_INGEST_LISTEN", listen, 1);
    setenv("BLAZZ_HTTP_LISTEN", admin, 1);
    setenv("BLAZZ_INGEST_CONSUMER_SESSION_TIMEOUT_MS", "6000", 1);
    setenv("BLAZZ_INGEST_TXN_MAX_MS", "50", 1);
    unsetenv("BLAZZ_INGEST_TRANSACTIONAL_ID");
    char *argv[] = {bin, NULL};
    in->pid = itest_spawn(argv, in->log);
}

static void assert_alive(instance *in)
{
    int status;
    if (in->pid > 0 && waitpid(in->pid, &status, WNOHANG) == in->pid) {
        in->pid = 0;
        fail_msg("ingest exited (status %d); see %s", status, in->log);
    }
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof fx);
    itest_unique("", fx.token, sizeof fx.token);
    snprintf(fx.prefix, sizeof fx.prefix, "itest-ii-%s.", fx.token);
    snprintf(fx.session, sizeof fx.session, "ii-%s", fx.token);
    itest_topics_create(fx.prefix, 6);
    PGconn *conn = itest_pg_connect();
    int64_t ws = itest_pg_int64f(conn, "INSERT INTO workspaces (name) VALUES ('ingest instances "
                                       "%s') RETURNING id", fx.token);
    /* served by the gateway sim, whose stamp the test's raw records carry */
    itest_pg_int64f(conn, "INSERT INTO whatsapp_accounts (workspace_id, session_id, status, "
                          "gateway_id) VALUES (%lld, '%s', 'connected', 'sim') RETURNING id",
                    (long long)ws, fx.session);
    PQfinish(conn);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        if (fx.ingest[i].pid > 0) {
            kill(fx.ingest[i].pid, SIGKILL);
            itest_wait(fx.ingest[i].pid);
            fx.ingest[i].pid = 0;
        }
    return 0;
}

/* Event i: a private message, keyed by session so the partitions spread by
 * the key of each of a few sessions' worth of keys. */
static void produce_event(bz_producer *p, int i, char *event_id)
{
    char wam[64], phone[32], topic[160], key[32];
    snprintf(wam, sizeof wam, "II%06d", i);
    snprintf(phone, sizeof phone, "+6283%08d", i % 200);
    snprintf(key, sizeof key, "k%d", i % 24);
    assert_int_equal(bz_uuid_v4(event_id, NULL), BZ_OK);
    Blazz__V1__InboundMessage m = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    m.wam_id = wam;
    m.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    m.contact_phone = phone;
    m.body = "two instances";
    m.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    m.timestamp_ms = BASE_MS + i;
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = BASE_MS + i;
    env.source = "itest";
    env.session_id = fx.session;
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    env.trace_id = event_id;
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.envelope = &env;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev.message = &m;
    uint8_t buf[512];
    size_t len = blazz__v1__inbound_event__pack(&ev, buf);
    bz_kafka_header hdrs[2] = {{"event_id", event_id, strlen(event_id)},
                               {ITEST_GATEWAY_HEADER, "sim", 3}};
    snprintf(topic, sizeof topic, "%swa.inbound.raw", fx.prefix);
    bz_error err;
    if (bz_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len, hdrs, 2,
                         NULL, &err) != BZ_OK)
        fail_msg("produce: %s", err.msg);
}

typedef struct sync_ids {
    char (*ids)[BZ_UUID_STR_SIZE];
    size_t n, cap;
} sync_ids;

static void collect(void *ctx, const rd_kafka_message_t *m)
{
    sync_ids *s = ctx;
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL;
    size_t len = 0;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->ids = realloc(s->ids, s->cap * sizeof *s->ids);
        assert_non_null(s->ids);
    }
    snprintf(s->ids[s->n], BZ_UUID_STR_SIZE, "-");
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, "event_id", &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        len < BZ_UUID_STR_SIZE) {
        memcpy(s->ids[s->n], v, len);
        s->ids[s->n][len] = '\0';
    }
    s->n++;
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The transactional.id an instance logged at start ("" before it did). */
static void logged_txn_id(const char *log, char *out, size_t cap)
{
    FILE *f = fopen(log, "r");
    char line[4096];
    out[0] = '\0';
    while (f && fgets(line, sizeof line, f)) {
        const char *at = strstr(line, "transactional.id ");
        if (!at)
            continue;
        at += strlen("transactional.id ");
        size_t n = strcspn(at, ",) \"");
        snprintf(out, cap, "%.*s", (int)n, at);
    }
    if (f)
        fclose(f);
}

static void test_two_instances_on_one_host_do_not_fence_each_other(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        start_instance(&fx.ingest[i], i);
    for (int i = 0; i < 2; i++)
        itest_wait_ready(fx.ingest[i].admin_port, fx.ingest[i].pid, fx.ingest[i].log,
                         WAIT_LIMIT_MS);

    char (*sent)[BZ_UUID_STR_SIZE] = calloc(EVENTS, sizeof *sent);
    assert_non_null(sent);
    bz_producer *p = itest_producer();
    for (int i = 0; i < EVENTS; i++) {
        produce_event(p, i, sent[i]);
        bz_producer_poll(p, 0);
        if (i % 50 == 49) {
            itest_sleep_ms(20);
            for (int k = 0; k < 2; k++)
                assert_alive(&fx.ingest[k]);
        }
    }
    bz_error err;
    if (bz_producer_flush(p, 60000, &err) != BZ_OK)
        fail_msg("flush: %s", err.msg);
    bz_producer_free(p, 1000);

    char topic[160];
    snprintf(topic, sizeof topic, "%schat.sync", fx.prefix);
    sync_ids got = {0};
    int64_t deadline = bz_monotonic_ms() + WAIT_LIMIT_MS;
    for (;;) {
        got.n = 0;
        itest_consume_all(topic, collect, &got);
        if (got.n >= EVENTS || bz_monotonic_ms() > deadline)
            break;
        for (int k = 0; k < 2; k++)
            assert_alive(&fx.ingest[k]);
        itest_sleep_ms(500);
    }

    char id0[256], id1[256];
    logged_txn_id(fx.ingest[0].log, id0, sizeof id0);
    logged_txn_id(fx.ingest[1].log, id1, sizeof id1);
    print_message("transactional ids: '%s' and '%s'\n", id0, id1);
    assert_true(id0[0] && id1[0]);
    assert_string_not_equal(id0, id1);
    for (int k = 0; k < 2; k++)
        if (itest_file_contains(fx.ingest[k].log, "rebuilding the transactional producer"))
            fail_msg("instance %d rebuilt its transactional producer (fenced?); see %s", k,
                     fx.ingest[k].log);

    assert_int_equal(got.n, EVENTS);
    qsort(got.ids, got.n, sizeof *got.ids, compare_ids);
    qsort(sent, EVENTS, sizeof *sent, compare_ids);
    for (int i = 0; i < EVENTS; i++)
        assert_string_equal(got.ids[i], sent[i]);
    free(got.ids);
    free(sent);

    for (int k = 0; k < 2; k++) {
        kill(fx.ingest[k].pid, SIGTERM);
        int rc = itest_wait(fx.ingest[k].pid);
        fx.ingest[k].pid = 0;
        if (rc != 0)
            fail_msg("ingest %d exited with %d after SIGTERM; see %s", k, rc, fx.ingest[k].log);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_instances_on_one_host_do_not_fence_each_other),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
