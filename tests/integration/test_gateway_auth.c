/*
 * test_gateway_auth.c - per-gateway keys and session ownership
 * (ARCHITECTURE.md §9.2) against the real stack: blazz-ingest with two
 * registered gateways, A and B (Kafka principals gateway-a and gateway-b),
 * each with its own key, each serving one session, and a third session
 * nobody serves.
 *  1. HTTP: A posts for its session (202), also without the gateway header
 *     (as the seeds' notifier does: A is ingest's unnamed gateway); A for
 *     B's session (with and without the header), A for the session nobody
 *     serves, A's key presented as B's, an unknown gateway and, without the
 *     header, a key A does not have are 401 and produce nothing; an unknown
 *     gateway is answered as a wrong key for a known one is
 *     (signature_mismatch, after its body: issue 32), so names cannot be
 *     enumerated;
 *  2. Kafka: a record gateway-a writes to its own topic for A's session is
 *     forwarded, for B's session dead-lettered session_not_owned; a raw
 *     record without the HTTP edge's gateway header is dead-lettered the
 *     same way (the topic and the edge's header are the only identities);
 *  3. signed timestamps: a fresh one is accepted, an old one, one the
 *     signature does not cover, one naming another key's id and one whose
 *     milliseconds overflow 64 bits (ingest aborted under UBSan) are 401;
 *     with require_signed_timestamp a request without one is 401;
 *  4. rotation with overlap loses no event: events signed with the old key
 *     before and during the overlap and with the new key after the
 *     rotation are all accepted and reach chat.sync, while a forged
 *     timestamped request costs one HMAC (its key id names the key); once
 *     an overlap ends the retired key is refused;
 *  5. a forged request costs no PostgreSQL and at most one HMAC of its
 *     body (issue 32): with five more gateways of the kind registered,
 *     forged requests naming A, naming none and naming B each raise
 *     blazz_ingest_gateway_hmacs_total by one at most; while a transaction
 *     holds gateways, gateway_keys and whatsapp_accounts locked, forged
 *     requests are still answered 401 (before, a mismatch made the HTTP
 *     thread read every key again and an owner lookup queried PostgreSQL:
 *     both waited for the lock); a signed one for a session whose owner
 *     ingest knows is 202, one for a session it has not looked up yet is
 *     503 once its lookup gave up (the HTTP path routes to chat.sync
 *     itself, ARCHITECTURE.md §8), without holding up the requests after
 *     it, and 202 once the lock is gone;
 *  6. the timestamped and plain signing modes do not share a MAC: a
 *     captured timestamped protobuf request, replayed after the tolerance
 *     in the plain mode (its body prefixed with "<timestamp>.", no
 *     X-Blazz-Timestamp), is 401 with and without X-Blazz-Gateway; and by
 *     default a gateway naming itself must sign a timestamp, while the
 *     seeds' notifier, which names none and signs none, is accepted.
 *  7. blazzctl hands keys out safely and takes only strong ones (issue 32):
 *     --key-out refuses an existing file and a symlink, changing neither
 *     them nor the gateway's keys; a given key shorter than 32 characters
 *     is refused, and no gateway is made; a --dsn with a password is
 *     refused before any connection.
 * The tests run in the order 1, 2, 3, 5, 6, 7, 4 (the lock comes first on a
 * freshly started ingest; rotation retires A's key). Most run with signed
 * timestamps optional, to try both modes. Waits poll with a generous
 * deadline; nothing asserts on timing.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "blazz/v1/inbound.pb-c.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "ingest_itest.h"
#include "itest.h"
#include "itest_http.h"
#include "wa/signature.h"

#define KEY_A "key-of-gateway-a-0123456789abcdef"
#define KEY_B "key-of-gateway-b-0123456789abcdef"
#define WAIT_MS (120 * 1000)
#define ROTATION_EVENTS 10
#define MORE_GATEWAYS 5
#define FORGED_EACH 10
#define LOCKED_WAIT_MS 10000

typedef struct fixture {
    char token[32], prefix[64], raw[128], sync[128], dlq[128];
    char gw_a[48], gw_b[48];
    char session_a[64], session_b[64], session_none[64];
    int port, admin_port;
    char log_path[512];
    pid_t ingest;
    PGconn *conn;
    int64_t workspace;
    int wam;
} fixture;

static fixture fx;

/* ---- the ingest process ------------------------------------------------- */

enum { TIMESTAMP_OPTIONAL, TIMESTAMP_REQUIRED, TIMESTAMP_DEFAULT };

/* ingest with A as its unnamed gateway; require: whether it requires
 * signed timestamps (ingest.require_signed_timestamp), or its default. */
static void start_ingest(int require)
{
    char listen[64], group[96];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", fx.port);
    setenv("BLAZZ_INGEST_LISTEN", listen, 1);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", fx.admin_port);
    setenv("BLAZZ_HTTP_LISTEN", listen, 1);
    snprintf(group, sizeof group, "blazz-ingest-gwauth-%s", fx.token);
    setenv("BLAZZ_INGEST_GROUP_ID", group, 1);
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", fx.prefix, 1);
    setenv("BLAZZ_INGEST_CONSUMER_SESSION_TIMEOUT_MS", "6000", 1);
    setenv("BLAZZ_INGEST_TXN_MAX_MS", "50", 1);
    setenv("BLAZZ_INGEST_SESSION_NEGATIVE_TTL_S", "0", 1);
    setenv("BLAZZ_INGEST_GATEWAY_KEYS_REFRESH_S", "1", 1);
    if (require == TIMESTAMP_DEFAULT)
        unsetenv("BLAZZ_INGEST_REQUIRE_SIGNED_TIMESTAMP");
    else
        setenv("BLAZZ_INGEST_REQUIRE_SIGNED_TIMESTAMP",
               require == TIMESTAMP_REQUIRED ? "true" : "false", 1);
    setenv("BLAZZ_INGEST_UNNAMED_GATEWAY", fx.gw_a, 1);
    static char bin[512];
    snprintf(bin, sizeof bin, "%s/bin/blazz-ingest", itest_env("BLAZZ_TEST_BIN_DIR"));
    char *argv[] = {bin, NULL};
    fx.ingest = itest_spawn(argv, fx.log_path);
    itest_wait_ready(fx.admin_port, fx.ingest, fx.log_path, WAIT_MS);
}

static void stop_ingest(void)
{
    itest_terminate(&fx.ingest, "ingest", fx.log_path);
}

static void insert_account(const char *session, const char *gateway, int64_t workspace)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO whatsapp_accounts (workspace_id, session_id, status, gateway_id) "
             "VALUES (%lld, '%s', 'connected', %s%s%s) RETURNING id",
             (long long)workspace, session, gateway ? "'" : "", gateway ? gateway : "NULL",
             gateway ? "'" : "");
    itest_pg_int64(fx.conn, sql);
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof fx);
    itest_unique("", fx.token, sizeof fx.token);
    snprintf(fx.prefix, sizeof fx.prefix, "gwauth%s.", fx.token);
    snprintf(fx.raw, sizeof fx.raw, "%swa.inbound.raw", fx.prefix);
    snprintf(fx.sync, sizeof fx.sync, "%schat.sync", fx.prefix);
    snprintf(fx.dlq, sizeof fx.dlq, "%swa.inbound.dlq", fx.prefix);
    snprintf(fx.gw_a, sizeof fx.gw_a, "ga%s", fx.token);
    snprintf(fx.gw_b, sizeof fx.gw_b, "gb%s", fx.token);
    snprintf(fx.session_a, sizeof fx.session_a, "gwauth-a-%s", fx.token);
    snprintf(fx.session_b, sizeof fx.session_b, "gwauth-b-%s", fx.token);
    snprintf(fx.session_none, sizeof fx.session_none, "gwauth-none-%s", fx.token);
    const char *dir = getenv("BLAZZ_STATE_DIR");
    snprintf(fx.log_path, sizeof fx.log_path, "%s/logs/gwauth-ingest-%s.log", dir ? dir : "/tmp",
             fx.token);
    itest_topics_create(fx.prefix, 2);
    itest_gateway_create(fx.prefix, fx.gw_a, "webjs", "gateway-a", KEY_A);
    itest_gateway_create(fx.prefix, fx.gw_b, "webjs", "gateway-b", KEY_B);
    fx.conn = itest_pg_connect();
    fx.workspace = itest_pg_int64(
        fx.conn, "INSERT INTO workspaces (name) VALUES ('gateway auth') RETURNING id");
    insert_account(fx.session_a, fx.gw_a, fx.workspace);
    insert_account(fx.session_b, fx.gw_b, fx.workspace);
    insert_account(fx.session_none, NULL, fx.workspace);
    fx.port = itest_free_port();
    fx.admin_port = itest_free_port();
    start_ingest(TIMESTAMP_OPTIONAL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop_ingest();
    PQfinish(fx.conn);
    return 0;
}

/* ---- requests ------------------------------------------------------------ */

/* A message event for session with a fresh event id (into event_id). */
static void message_json(const char *session, char event_id[BZ_UUID_STR_SIZE], char *out,
                         size_t cap)
{
    char message_id[96];
    snprintf(message_id, sizeof message_id, "gw-%d-%s", ++fx.wam, fx.token);
    ingest_message_event_json(session, message_id, event_id, out, cap);
}

typedef struct signing {
    const char *gateway; /* X-Blazz-Gateway, NULL: none */
    const char *key;
    const char *timestamp; /* X-Blazz-Timestamp and signed with it, NULL: none */
    const char *signed_timestamp; /* signed over instead of timestamp, NULL: the same */
    const char *key_named;        /* whose X-Blazz-Key-Id is sent, NULL: key's */
} signing;

/* POST body (of content_type) with the signature sig and, when not NULL,
 * X-Blazz-Gateway, and X-Blazz-Timestamp with the X-Blazz-Key-Id of key. */
static itest_http_reply send_signed(const char *gateway, const char *timestamp, const char *key,
                                    const char *sig, const void *body, size_t len,
                                    const char *content_type, long timeout_ms)
{
    char url[128], h_type[96], h_sig[128], h_gw[96], h_ts[64], h_key[64];
    char key_id[BZ_GATEWAY_KEY_ID_LEN + 1];
    const char *headers[6] = {h_type, h_sig, NULL, NULL, NULL, NULL};
    int n = 2;
    snprintf(h_type, sizeof h_type, "Content-Type: %s", content_type);
    snprintf(h_sig, sizeof h_sig, "X-WhatsApp-Signature: %s", sig);
    if (gateway) {
        snprintf(h_gw, sizeof h_gw, "X-Blazz-Gateway: %s", gateway);
        headers[n++] = h_gw;
    }
    if (timestamp) {
        assert_int_equal(bz_gateway_key_id(key, strlen(key), key_id, NULL), BZ_OK);
        snprintf(h_ts, sizeof h_ts, "X-Blazz-Timestamp: %s", timestamp);
        snprintf(h_key, sizeof h_key, "X-Blazz-Key-Id: %s", key_id);
        headers[n++] = h_ts;
        headers[n++] = h_key;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/events", fx.port);
    static itest_http_reply r;
    itest_http("POST", url, body, len, headers, timeout_ms, &r);
    return r;
}

static itest_http_reply post_within(const signing *s, const char *json, long timeout_ms)
{
    char sig[BZ_HMAC_SHA256_HEX_SIZE];
    const char *over = s->signed_timestamp ? s->signed_timestamp : s->timestamp;
    if (over)
        assert_int_equal(bz_gateway_sign_timestamped(s->key, strlen(s->key), over, json,
                                                     strlen(json), sig, NULL), BZ_OK);
    else
        assert_int_equal(bz_hmac_sha256_hex(s->key, strlen(s->key), json, strlen(json), sig,
                                            NULL), BZ_OK);
    return send_signed(s->gateway, s->timestamp, s->key_named ? s->key_named : s->key, sig, json,
                       strlen(json), "application/json", timeout_ms);
}

static itest_http_reply post(const signing *s, const char *json)
{
    return post_within(s, json, 30000);
}

static void expect_status(const signing *s, const char *session, long status, const char *reason,
                          char event_id[BZ_UUID_STR_SIZE])
{
    char json[1024];
    message_json(session, event_id, json, sizeof json);
    itest_http_reply r = post(s, json);
    if (r.status != status || (reason && !strstr(r.body, reason)))
        fail_msg("%s for %s: expected %ld %s, got %ld: %s", s->gateway ? s->gateway : "(none)",
                 session, status, reason ? reason : "", r.status, r.body);
}

static void now_text(char *out, size_t cap, int64_t offset_s)
{
    int64_t seconds = bz_wall_ms() / 1000 + offset_s;
    snprintf(out, cap, "%lld", (long long)seconds);
}

/* ---- reading topics ------------------------------------------------------ */

typedef struct seen {
    const char *const *ids;
    size_t n;
    int *found;
    const char *dead_code; /* dead letters: only those with this code count */
} seen;

static void note_record(void *ctx, const rd_kafka_message_t *m)
{
    seen *s = ctx;
    char id[64];
    itest_header_text(m, "event_id", id, sizeof id);
    if (s->dead_code) {
        Blazz__V1__DeadLetter *dl = blazz__v1__dead_letter__unpack(NULL, m->len, m->payload);
        int match = dl && strcmp(dl->error_code, s->dead_code) == 0;
        if (dl)
            blazz__v1__dead_letter__free_unpacked(dl, NULL);
        if (!match)
            return;
    }
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(id, s->ids[i]) == 0)
            s->found[i]++;
}

/* How many of ids appear on topic (each counted once). */
static size_t count_present(const char *topic, const char *const *ids, size_t n,
                            const char *dead_code)
{
    int found[256] = {0};
    assert_true(n <= 256);
    seen s = {ids, n, found, dead_code};
    itest_consume_all(topic, note_record, &s);
    size_t present = 0;
    for (size_t i = 0; i < n; i++)
        present += found[i] > 0;
    return present;
}

static void wait_present(const char *topic, const char *const *ids, size_t n,
                         const char *dead_code)
{
    int64_t deadline = bz_monotonic_ms() + WAIT_MS;
    size_t present;
    while ((present = count_present(topic, ids, n, dead_code)) < n) {
        if (bz_monotonic_ms() > deadline)
            fail_msg("%zu of %zu events missing on %s (log: %s)", n - present, n, topic,
                     fx.log_path);
        itest_sleep_ms(300);
    }
}

/* ---- 1. HTTP ------------------------------------------------------------- */

static void http_only_the_serving_gateway_posts_for_a_session(void **state)
{
    (void)state;
    signing a = {fx.gw_a, KEY_A, NULL, NULL, NULL}, b = {fx.gw_b, KEY_B, NULL, NULL, NULL};
    signing a_as_b = {fx.gw_b, KEY_A, NULL, NULL, NULL};
    signing nobody = {"nobody", KEY_A, NULL, NULL, NULL};
    signing anonymous_a = {NULL, KEY_A, NULL, NULL, NULL};
    signing anonymous_stranger = {NULL, "a key no gateway has", NULL, NULL, NULL};
    char ok_a[BZ_UUID_STR_SIZE], ok_b[BZ_UUID_STR_SIZE], ok_anonymous[BZ_UUID_STR_SIZE];
    char refused[6][BZ_UUID_STR_SIZE];
    expect_status(&a, fx.session_a, 202, NULL, ok_a);
    expect_status(&anonymous_a, fx.session_a, 202, NULL, ok_anonymous);
    expect_status(&a, fx.session_b, 401, "session_not_owned", refused[0]);
    expect_status(&a, fx.session_none, 401, "session_not_owned", refused[1]);
    expect_status(&a_as_b, fx.session_b, 401, "signature_mismatch", refused[2]);
    expect_status(&nobody, fx.session_a, 401, "signature_mismatch", refused[3]);
    expect_status(&anonymous_a, fx.session_b, 401, "session_not_owned", refused[4]);
    expect_status(&anonymous_stranger, fx.session_a, 401, "signature_mismatch", refused[5]);
    expect_status(&b, fx.session_b, 202, NULL, ok_b);
    const char *ok[] = {ok_a, ok_anonymous, ok_b};
    wait_present(fx.sync, ok, 3, NULL);
    const char *bad[] = {refused[0], refused[1], refused[2], refused[3], refused[4], refused[5]};
    assert_int_equal(count_present(fx.raw, bad, 6, NULL), 0);
    assert_int_equal(count_present(fx.sync, bad, 6, NULL), 0);
}

/* ---- 2. Kafka ------------------------------------------------------------ */

static void pack_message(const char *event_id, const char *session, uint8_t *buf, size_t *len)
{
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    Blazz__V1__InboundMessage msg = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    char wam[64];
    snprintf(wam, sizeof wam, "kafka-%d-%s", ++fx.wam, fx.token);
    env.event_id = (char *)event_id;
    env.session_id = (char *)session;
    env.occurred_at_ms = 1700000000000;
    env.source = "itest";
    msg.wam_id = wam;
    msg.contact_phone = "6281234567890";
    msg.body = "over kafka";
    msg.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    msg.timestamp_ms = 1700000000000;
    ev.envelope = &env;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev.message = &msg;
    *len = blazz__v1__inbound_event__pack(&ev, buf);
}

/* Produce one event as producer (whose principal the caller chose) to topic,
 * with a gateway header when header_gateway is not NULL. */
static void produce_event(bz_producer *p, const char *topic, const char *event_id,
                          const char *session, const char *header_gateway)
{
    uint8_t buf[1024];
    size_t len;
    pack_message(event_id, session, buf, &len);
    bz_kafka_header headers[] = {{"event_id", event_id, strlen(event_id)},
                                 {ITEST_GATEWAY_HEADER, header_gateway,
                                  header_gateway ? strlen(header_gateway) : 0}};
    bz_error err;
    if (bz_producer_send_sync(p, topic, session, strlen(session), buf, len, headers,
                              header_gateway ? 2 : 1, 15000, &err) != BZ_OK)
        fail_msg("produce to %s: %s", topic, err.msg);
}

static void kafka_only_the_serving_gateway_posts_for_a_session(void **state)
{
    (void)state;
    char own[BZ_UUID_STR_SIZE], foreign[BZ_UUID_STR_SIZE], unstamped[BZ_UUID_STR_SIZE],
        stamped[BZ_UUID_STR_SIZE], topic_a[128];
    bz_uuid_v4(own, NULL);
    bz_uuid_v4(foreign, NULL);
    bz_uuid_v4(unstamped, NULL);
    bz_uuid_v4(stamped, NULL);
    snprintf(topic_a, sizeof topic_a, "%swa.inbound.gw.%s", fx.prefix, fx.gw_a);
    bz_kafka_security as_a;
    itest_principal("gateway-a", &as_a);
    bz_kafka_settings settings = {.brokers = itest_env("BLAZZ_KAFKA_BROKERS"),
                                  .client_id = "itest-gateway-a", .security = &as_a};
    bz_producer *gateway_a;
    bz_error err;
    if (bz_producer_new(&settings, &gateway_a, &err) != BZ_OK)
        fail_msg("producer as gateway-a: %s", err.msg);
    /* a header claiming B changes nothing: the topic names the gateway */
    produce_event(gateway_a, topic_a, own, fx.session_a, fx.gw_b);
    produce_event(gateway_a, topic_a, foreign, fx.session_b, fx.gw_b);
    bz_producer_free(gateway_a, 5000);
    bz_kafka_security_release(&as_a);
    bz_producer *edge = itest_producer(); /* the admin, writing as the HTTP edge would */
    produce_event(edge, fx.raw, unstamped, fx.session_a, NULL);
    produce_event(edge, fx.raw, stamped, fx.session_a, fx.gw_a);
    bz_producer_free(edge, 5000);

    const char *forwarded[] = {own, stamped};
    wait_present(fx.sync, forwarded, 2, NULL);
    const char *refused[] = {foreign, unstamped};
    wait_present(fx.dlq, refused, 2, "session_not_owned");
    assert_int_equal(count_present(fx.sync, refused, 2, NULL), 0);
}

/* ---- 3. signed timestamps -------------------------------------------------- */

static void signed_timestamps_are_checked(void **state)
{
    (void)state;
    char now[24], old[24], other[24], id[6][BZ_UUID_STR_SIZE];
    now_text(now, sizeof now, 0);
    now_text(old, sizeof old, -3600);
    now_text(other, sizeof other, 1);
    signing fresh = {fx.gw_a, KEY_A, now, NULL, NULL}, stale = {fx.gw_a, KEY_A, old, NULL, NULL};
    signing uncovered = {fx.gw_a, KEY_A, now, other, NULL};
    signing b_key_named = {fx.gw_a, KEY_A, now, NULL, KEY_B};
    expect_status(&fresh, fx.session_a, 202, NULL, id[0]);
    expect_status(&stale, fx.session_a, 401, "stale_timestamp", id[1]);
    expect_status(&uncovered, fx.session_a, 401, "signature_mismatch", id[2]);
    expect_status(&b_key_named, fx.session_a, 401, "signature_mismatch", id[4]);
    /* Seconds whose milliseconds no int64 holds (Schemathesis sent this
     * one): refused, and ingest still answers. */
    signing beyond = {fx.gw_a, KEY_A, "96707717276100376120", NULL, NULL};
    expect_status(&beyond, fx.session_a, 401, "stale_timestamp", id[5]);
    expect_status(&fresh, fx.session_a, 202, NULL, id[0]);
    const char *ok[] = {id[0]};
    wait_present(fx.sync, ok, 1, NULL);

    stop_ingest();
    start_ingest(TIMESTAMP_REQUIRED);
    signing untimed = {fx.gw_a, KEY_A, NULL, NULL, NULL};
    expect_status(&untimed, fx.session_a, 401, "timestamp_required", id[3]);
    now_text(now, sizeof now, 0);
    expect_status(&fresh, fx.session_a, 202, NULL, id[0]);
    stop_ingest();
    start_ingest(TIMESTAMP_OPTIONAL);
}

/* ---- 4. rotation ------------------------------------------------------------- */

/* `blazzctl gateways rotate-key`; returns the new key (static buffer). */
static const char *rotate_key(const char *gateway, const char *overlap)
{
    static char key[128];
    char path[] = "/tmp/itest-rotated-key-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path); /* --key-out makes a new file, never reuses one */
    const char *args[] = {"gateways", "rotate-key", gateway, "--overlap", overlap, "--key-out",
                          path, NULL};
    char *out = NULL;
    int rc = itest_blazzctl(args, fx.log_path, &out);
    if (rc != 0)
        fail_msg("rotate-key exited %d: %s", rc, out);
    free(out);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(key, sizeof key, f));
    fclose(f);
    unlink(path);
    key[strcspn(key, "\n")] = '\0';
    assert_true(strlen(key) == 64);
    return key;
}

/* Post with s until ingest accepts it: a rotated key works once ingest read
 * it (ingest.gateway_keys_refresh_s, here 1 s); the refused attempts
 * produce nothing. */
static void wait_until_accepted(const signing *s, char *now, size_t cap)
{
    int64_t deadline = bz_monotonic_ms() + WAIT_MS;
    for (;;) {
        char json[1024], event_id[BZ_UUID_STR_SIZE];
        now_text(now, cap, 0);
        message_json(fx.session_a, event_id, json, sizeof json);
        itest_http_reply r = post(s, json);
        if (r.status == 202)
            return;
        if (r.status != 401 || bz_monotonic_ms() > deadline)
            fail_msg("a rotated key never verified: %ld %s (log: %s)", r.status, r.body,
                     fx.log_path);
        itest_sleep_ms(100);
    }
}

static void rotation_with_overlap_loses_no_event(void **state)
{
    (void)state;
    char ids[3 * ROTATION_EVENTS][BZ_UUID_STR_SIZE], spare[BZ_UUID_STR_SIZE], now[24];
    const char *all[3 * ROTATION_EVENTS];
    signing old_key = {fx.gw_a, KEY_A, now, NULL, NULL};
    size_t n = 0;
    now_text(now, sizeof now, 0);
    for (int i = 0; i < ROTATION_EVENTS; i++, n++)
        expect_status(&old_key, fx.session_a, 202, NULL, ids[n]);
    char new_key[128];
    snprintf(new_key, sizeof new_key, "%s", rotate_key(fx.gw_a, "1h"));
    signing fresh_key = {fx.gw_a, new_key, now, NULL, NULL};
    wait_until_accepted(&fresh_key, now, sizeof now);
    /* the overlap: the gateway switches whenever it likes, both verify */
    for (int i = 0; i < ROTATION_EVENTS; i++) {
        now_text(now, sizeof now, 0);
        expect_status(&old_key, fx.session_a, 202, NULL, ids[n++]);
        expect_status(&fresh_key, fx.session_a, 202, NULL, ids[n++]);
    }
    /* two keys valid now, yet a forged timestamped request costs one HMAC:
     * its key id names the one to try */
    signing forged = {fx.gw_a, "not A's key", now, NULL, new_key};
    double before = itest_metric(fx.admin_port, "blazz_ingest_gateway_hmacs_total");
    for (int i = 0; i < FORGED_EACH; i++)
        expect_status(&forged, fx.session_a, 401, "signature_mismatch", spare);
    double spent = itest_metric(fx.admin_port, "blazz_ingest_gateway_hmacs_total") - before;
    if (spent > FORGED_EACH)
        fail_msg("%d forged timestamped requests cost %.0f HMACs during an overlap", FORGED_EACH,
                 spent);
    for (size_t i = 0; i < n; i++)
        all[i] = ids[i];
    wait_present(fx.sync, all, n, NULL);

    /* a rotation without overlap ends the previous keys at once (within
     * ingest.gateway_keys_refresh_s, here 1 s: once the newest verifies,
     * ingest read the keys after the rotation) */
    const char *newest = rotate_key(fx.gw_a, "0");
    signing newest_key = {fx.gw_a, newest, now, NULL, NULL};
    wait_until_accepted(&newest_key, now, sizeof now);
    /* their key ids name no key valid now */
    expect_status(&fresh_key, fx.session_a, 401, "signature_mismatch", spare);
    expect_status(&old_key, fx.session_a, 401, "signature_mismatch", spare);
    expect_status(&newest_key, fx.session_a, 202, NULL, spare);
}

/* ---- 5. what a forged request costs ------------------------------------------ */

static void forged_requests_cost_one_hmac_each(void **state)
{
    (void)state;
    for (int i = 0; i < MORE_GATEWAYS; i++) {
        char id[48], key[96];
        snprintf(id, sizeof id, "gm%d%s", i, fx.token);
        snprintf(key, sizeof key, "key-of-%s-0123456789abcdef0123456789", id);
        itest_gateway_create(fx.prefix, id, "webjs", "gateway-a", key);
    }
    signing forged[] = {{fx.gw_a, "not A's key", NULL, NULL, NULL},
                        {NULL, "not anybody's key", NULL, NULL, NULL},
                        {fx.gw_b, "not B's key", NULL, NULL, NULL}};
    double before = itest_metric(fx.admin_port, "blazz_ingest_gateway_hmacs_total");
    char id[BZ_UUID_STR_SIZE];
    for (int n = 0; n < FORGED_EACH; n++)
        for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++)
            expect_status(&forged[i], fx.session_a, 401, "signature_mismatch", id);
    double after = itest_metric(fx.admin_port, "blazz_ingest_gateway_hmacs_total");
    int requests = FORGED_EACH * (int)(sizeof forged / sizeof forged[0]);
    if (before < 0 || after - before > requests)
        fail_msg("%d forged requests cost %.0f HMACs of their bodies (metric before %.0f)",
                 requests, after - before, before);
}

/* The transaction that holds the directory's tables locked, or NULL. */
static PGconn *locker;

static int unlock_tables(void **state)
{
    (void)state;
    if (locker) {
        itest_pg_exec(locker, "ROLLBACK");
        PQfinish(locker);
        locker = NULL;
    }
    return 0;
}

static void expect_answer_while_locked(const signing *s, const char *session, long status,
                                       const char *why)
{
    char json[1024], event_id[BZ_UUID_STR_SIZE];
    message_json(session, event_id, json, sizeof json);
    itest_http_reply r = post_within(s, json, LOCKED_WAIT_MS);
    if (r.status != status)
        fail_msg("%s, with the gateways' tables locked: expected %ld, got %ld (0: no answer "
                 "within %d ms) %s", why, status, r.status, LOCKED_WAIT_MS, r.body);
}

static void requests_never_wait_long_for_postgresql(void **state)
{
    (void)state;
    char fresh[64], json[1024], event_id[BZ_UUID_STR_SIZE];
    snprintf(fresh, sizeof fresh, "gwauth-fresh-%s", fx.token);
    insert_account(fresh, fx.gw_a, fx.workspace);
    signing forged_a = {fx.gw_a, "not A's key", NULL, NULL, NULL};
    signing forged_unnamed = {NULL, "not anybody's key", NULL, NULL, NULL};
    signing a = {fx.gw_a, KEY_A, NULL, NULL, NULL};
    /* ingest learns the owner of A's session */
    message_json(fx.session_a, event_id, json, sizeof json);
    assert_int_equal(post_within(&a, json, LOCKED_WAIT_MS).status, 202);
    locker = itest_pg_connect();
    itest_pg_exec(locker, "BEGIN");
    itest_pg_exec(locker, "LOCK TABLE gateways, gateway_keys, whatsapp_accounts IN ACCESS "
                          "EXCLUSIVE MODE");
    expect_answer_while_locked(&forged_a, fx.session_a, 401, "a forged request naming A");
    expect_answer_while_locked(&forged_unnamed, fx.session_a, 401, "a forged request naming none");
    expect_answer_while_locked(&a, fresh, 503, "A's signed request for a session new to ingest");
    expect_answer_while_locked(&a, fx.session_a, 202, "A's signed request for its known session");
    unlock_tables(NULL);
    message_json(fresh, event_id, json, sizeof json);
    int64_t deadline = bz_monotonic_ms() + LOCKED_WAIT_MS;
    long status;
    while ((status = post_within(&a, json, LOCKED_WAIT_MS).status) != 202 &&
           bz_monotonic_ms() < deadline)
        itest_sleep_ms(200);
    assert_int_equal(status, 202);
}

/* ---- 6. the signing modes do not share a MAC ----------------------------------- */

/* A request captured in the timestamped mode, its timestamp long beyond the
 * tolerance, replayed in the plain mode: its body prefixed with
 * "<timestamp>." (a protobuf decoder reads the prefix as an unknown field
 * 6: the digits as a fixed64 and a varint, hence a timestamp ending in 0,
 * and ingest drops unknown fields) and no X-Blazz-Timestamp, with and
 * without X-Blazz-Gateway (A is the unnamed gateway). */
static void a_captured_timestamped_request_cannot_be_replayed_plain(void **state)
{
    (void)state;
    char ts[24], event_id[BZ_UUID_STR_SIZE], sig[BZ_HMAC_SHA256_HEX_SIZE];
    long long an_hour_ago = (long long)(bz_wall_ms() / 1000) - 3600;
    snprintf(ts, sizeof ts, "%lld", an_hour_ago / 10 * 10);
    uint8_t body[1024], replay[1100];
    size_t len;
    bz_uuid_v4(event_id, NULL);
    pack_message(event_id, fx.session_a, body, &len);
    assert_int_equal(bz_gateway_sign_timestamped(KEY_A, strlen(KEY_A), ts, body, len, sig, NULL),
                     BZ_OK);
    size_t replay_len = (size_t)snprintf((char *)replay, sizeof replay, "%s.", ts);
    memcpy(replay + replay_len, body, len);
    replay_len += len;
    const char *gateways[] = {fx.gw_a, NULL};
    for (size_t i = 0; i < 2; i++) {
        itest_http_reply r = send_signed(gateways[i], NULL, KEY_A, sig, replay, replay_len,
                                         "application/x-protobuf", 30000);
        if (r.status != 401)
            fail_msg("a timestamped request replayed plain (%s X-Blazz-Gateway) was answered "
                     "%ld: %s", gateways[i] ? "with" : "without", r.status, r.body);
    }
    const char *ids[] = {event_id};
    assert_int_equal(count_present(fx.sync, ids, 1, NULL), 0);
    assert_int_equal(count_present(fx.raw, ids, 1, NULL), 0);
}

/* Our gateways sign timestamps, and ingest requires them by default of a
 * gateway that names itself; the seeds' notifier (no header, no timestamp)
 * still posts as the unnamed gateway. */
static void named_gateways_must_sign_a_timestamp_by_default(void **state)
{
    (void)state;
    char now[24], id[3][BZ_UUID_STR_SIZE];
    stop_ingest();
    start_ingest(TIMESTAMP_DEFAULT);
    now_text(now, sizeof now, 0);
    signing untimed = {fx.gw_a, KEY_A, NULL, NULL, NULL};
    signing notifier = {NULL, KEY_A, NULL, NULL, NULL};
    signing timed = {fx.gw_a, KEY_A, now, NULL, NULL};
    expect_status(&untimed, fx.session_a, 401, "timestamp_required", id[0]);
    expect_status(&notifier, fx.session_a, 202, NULL, id[1]);
    expect_status(&timed, fx.session_a, 202, NULL, id[2]);
    stop_ingest();
    start_ingest(TIMESTAMP_OPTIONAL);
}

/* ---- 7. key files and key strength ---------------------------------------------- */

static int64_t keys_of(const char *gateway)
{
    return itest_pg_int64f(fx.conn, "SELECT count(*) FROM gateway_keys WHERE gateway_id = '%s'",
                           gateway);
}

static void assert_file_holds(const char *path, const char *text)
{
    char buf[64] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, text);
}

static void key_files_are_new_and_keys_strong(void **state)
{
    (void)state;
    char dir[] = "/tmp/itest-key-out-XXXXXX", existing[64], link_path[64], target[64], weak[64];
    assert_non_null(mkdtemp(dir));
    snprintf(existing, sizeof existing, "%s/existing", dir);
    snprintf(target, sizeof target, "%s/target", dir);
    snprintf(link_path, sizeof link_path, "%s/link", dir);
    snprintf(weak, sizeof weak, "%s/weak", dir);
    FILE *f;
    assert_non_null(f = fopen(existing, "w"));
    fputs("old key\n", f);
    fclose(f);
    assert_non_null(f = fopen(target, "w"));
    fputs("not a key\n", f);
    fclose(f);
    assert_int_equal(symlink(target, link_path), 0);
    int64_t before = keys_of(fx.gw_b);
    const char *into_existing[] = {"gateways", "rotate-key", fx.gw_b, "--key-out", existing, NULL};
    const char *through_link[] = {"gateways", "rotate-key", fx.gw_b, "--key-out", link_path, NULL};
    char *out = NULL;
    assert_int_not_equal(itest_blazzctl(into_existing, fx.log_path, &out), 0);
    free(out);
    assert_int_not_equal(itest_blazzctl(through_link, fx.log_path, &out), 0);
    free(out);
    assert_file_holds(existing, "old key\n");
    assert_file_holds(target, "not a key\n");
    assert_int_equal(keys_of(fx.gw_b), before);

    assert_non_null(f = fopen(weak, "w"));
    fputs("gateway-test-secret", f);
    fclose(f);
    char id[48];
    snprintf(id, sizeof id, "weak%s", fx.token);
    const char *add_weak[] = {"gateways", "add", id, "--key-file", weak, NULL};
    assert_int_not_equal(itest_blazzctl(add_weak, fx.log_path, &out), 0);
    free(out);
    assert_true(itest_file_contains(fx.log_path, "the gateway key: 19 characters"));
    const char *dsn_on_argv[] = {
        "gateways", "list", "--dsn",
        "postgresql://blazz:5f8f5fdaea9076ea755429f062b0495dc77d@127.0.0.1:1/blazz", NULL};
    assert_int_not_equal(itest_blazzctl(dsn_on_argv, fx.log_path, &out), 0);
    free(out);
    assert_true(itest_file_contains(fx.log_path, "--dsn carries a password"));
    assert_int_equal(itest_pg_int64f(fx.conn, "SELECT count(*) FROM gateways WHERE id = '%s'", id),
                     0);
    unlink(existing);
    unlink(target);
    unlink(link_path);
    unlink(weak);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_only_the_serving_gateway_posts_for_a_session),
        cmocka_unit_test(kafka_only_the_serving_gateway_posts_for_a_session),
        cmocka_unit_test(signed_timestamps_are_checked),
        /* first on the ingest signed_timestamps_are_checked restarted */
        cmocka_unit_test_teardown(requests_never_wait_long_for_postgresql, unlock_tables),
        cmocka_unit_test(forged_requests_cost_one_hmac_each),
        cmocka_unit_test(a_captured_timestamped_request_cannot_be_replayed_plain),
        cmocka_unit_test(named_gateways_must_sign_a_timestamp_by_default),
        cmocka_unit_test(key_files_are_new_and_keys_strong),
        /* last: it retires KEY_A */
        cmocka_unit_test(rotation_with_overlap_loses_no_event),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
