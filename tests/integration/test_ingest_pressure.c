/*
 * test_ingest_pressure.c - ingest's public listener under unauthenticated
 * pressure (issue 15, defect 7), against the real stack.
 *
 * One ingest process with the default connection limit and small other
 * limits (600 connections per address, a 20 s request deadline, 200,000-byte
 * bodies, 400,000 buffered bytes):
 *  1. what can be judged from the headers is answered before the body is
 *     sent: no signature header -> 401, a Content-Length over the limit ->
 *     413 (a raw socket sends the headers only and reads the answer);
 *  2. requests whose bodies would pass the buffered-bytes bound are 503
 *     with Retry-After while two clients hold the bound, /readyz says the
 *     listener is saturated, and both recover once they hang up;
 *  3. 600 connections from 127.0.0.2 that trickle a header line every 2 s
 *     (each line would reset an idle timeout): signed gateway requests from
 *     127.0.0.1 are all answered 202 and reach chat.sync, the 601st
 *     connection from 127.0.0.2 is refused; 340 more idle connections from
 *     127.0.0.3 bring the listener over 90% of its limit: /readyz reports
 *     it, gateway requests are still answered, and /readyz recovers when
 *     they hang up; the trickling connections are cut at the request
 *     deadline.
 * No assertion is timed: waits are bounded only so that a server that never
 * answers fails the test (a gateway request gets curl's 10 s, as a gateway
 * would give it).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"
#include "itest_http.h"
#include "wa/signature.h"

#define SECRET "pressure-test-secret"
#define SLOW_CONNECTIONS 600
#define SATURATING_CONNECTIONS 340
#define REQUEST_DEADLINE_S 20
#define MAX_BODY 200000
#define MAX_BUFFERED (2 * MAX_BODY)
#define TRICKLE_EVERY_MS 2000
#define GATEWAY_REQUESTS 20
#define WAIT_MS (120 * 1000)
#define ANSWER_WAIT_MS 10000

typedef struct fixture {
    char prefix[64], sync[128], session[64], gateway[48];
    int port, admin_port;
    char log_path[256];
    pid_t ingest;
    PGconn *conn;
} fixture;

static fixture fx;

/* ---- HTTP through libcurl ------------------------------------------------ */

typedef itest_http_reply http_reply;

/* GET, or POST a signed body, to 127.0.0.1:port; status 0 when there was no
 * answer within ANSWER_WAIT_MS. */
static http_reply http(int port, const char *path, const char *body, const char *sig)
{
    http_reply r;
    char url[256], header[160], gateway[96];
    const char *headers[] = {header, gateway, "Content-Type: application/json", NULL};
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    snprintf(header, sizeof header, "X-WhatsApp-Signature: %s", sig ? sig : "");
    snprintf(gateway, sizeof gateway, "X-Blazz-Gateway: %s", fx.gateway);
    itest_http(body ? "POST" : "GET", url, body, body ? strlen(body) : 0, sig ? headers : NULL,
               ANSWER_WAIT_MS, &r);
    return r;
}

static char *gateway_json(int i)
{
    static char json[512];
    snprintf(json, sizeof json,
             "{\"session_id\":\"%s\",\"chat_type\":\"private\",\"contact_phone\":\"62813%07d@c.us\","
             "\"contact_name\":\"Pressure\",\"message_body\":\"beside slow clients %d\","
             "\"message_type\":\"chat\",\"timestamp\":1700000000,\"has_media\":false,"
             "\"message_id\":\"pressure-%s-%d\"}",
             fx.session, i, i, fx.prefix, i);
    return json;
}

static http_reply post_signed(const char *json)
{
    char sig[BZ_HMAC_SHA256_HEX_SIZE];
    assert_int_equal(bz_hmac_sha256_hex(SECRET, strlen(SECRET), json, strlen(json), sig, NULL),
                     BZ_OK);
    return http(fx.port, "/v1/events", json, sig);
}

static void accepted_id(const http_reply *r, char out[BZ_UUID_STR_SIZE])
{
    if (r->status != 202)
        fail_msg("expected 202, got %ld: %s (log: %s)", r->status, r->body, fx.log_path);
    const char *p = strstr(r->body, "\"event_id\":\"");
    assert_non_null(p);
    snprintf(out, BZ_UUID_STR_SIZE, "%.36s", p + 12);
}

static http_reply readyz(void)
{
    return http(fx.admin_port, "/readyz", NULL, NULL);
}

/* Poll /readyz until its HTTP status is `want` (or fail). */
static http_reply wait_readyz(long want, const char *why)
{
    int64_t deadline = bz_monotonic_ms() + WAIT_MS;
    for (;;) {
        http_reply r = readyz();
        if (r.status == want)
            return r;
        if (bz_monotonic_ms() > deadline)
            fail_msg("/readyz never answered %ld %s; last %ld: %s", want, why, r.status, r.body);
        itest_sleep_ms(200);
    }
}

/* The value of one sample line of /metrics ("name{labels}"); -1 if absent. */
static double metric(const char *sample)
{
    http_reply r = http(fx.admin_port, "/metrics", NULL, NULL);
    size_t n = strlen(sample);
    for (const char *line = r.body; *line;) {
        if (strncmp(line, sample, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        const char *next = strchr(line, '\n');
        if (!next)
            break;
        line = next + 1;
    }
    return -1;
}

/* ---- raw sockets --------------------------------------------------------- */

/* A blocking TCP connection from source address `from` to the listener. */
static int connect_from(const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    dst.sin_port = htons((uint16_t)fx.port);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0)
        fail_msg("connect from %s: %s", from, strerror(errno));
    return fd;
}

static int send_text(int fd, const char *text)
{
    size_t len = strlen(text);
    return send(fd, text, len, MSG_NOSIGNAL) == (ssize_t)len;
}

/* Whether the peer closed fd (EOF or reset); waits at most wait_ms for it.
 * Bytes that arrive first are read and dropped. */
static int closed_by_peer(int fd, int wait_ms)
{
    int64_t deadline = bz_monotonic_ms() + wait_ms;
    for (;;) {
        int64_t left = deadline - bz_monotonic_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
        if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
            return 0;
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return 1;
    }
}

/* The status line of the answer to what was sent on fd, read within
 * ANSWER_WAIT_MS; "" when nothing came. */
static void read_status_line(int fd, char *out, size_t cap)
{
    size_t len = 0;
    int64_t deadline = bz_monotonic_ms() + ANSWER_WAIT_MS;
    out[0] = '\0';
    while (len + 1 < cap && !strchr(out, '\n')) {
        int64_t left = deadline - bz_monotonic_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        out[len] = '\0';
    }
    out[strcspn(out, "\r\n")] = '\0';
}

/* ---- chat.sync ----------------------------------------------------------- */

typedef struct wanted {
    char (*ids)[BZ_UUID_STR_SIZE];
    int n, found;
} wanted;

static void count_wanted(void *ctx, const rd_kafka_message_t *m)
{
    wanted *w = ctx;
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, "event_id", &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    for (int i = 0; i < w->n; i++)
        if (len == 36 && memcmp(w->ids[i], v, len) == 0)
            w->found++;
}

static void wait_on_chat_sync(char (*ids)[BZ_UUID_STR_SIZE], int n)
{
    int64_t deadline = bz_monotonic_ms() + WAIT_MS;
    for (;;) {
        wanted w = {.ids = ids, .n = n};
        itest_consume_all(fx.sync, count_wanted, &w);
        if (w.found == n)
            return;
        if (bz_monotonic_ms() > deadline)
            fail_msg("%d of %d accepted events missing on %s (log: %s)", n - w.found, n, fx.sync,
                     fx.log_path);
        itest_sleep_ms(300);
    }
}

/* ---- the ingest process -------------------------------------------------- */

static void set_env_int(const char *name, long v)
{
    char text[32];
    snprintf(text, sizeof text, "%ld", v);
    setenv(name, text, 1);
}

static void configure_ingest(void)
{
    char listen[64];
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", fx.prefix, 1);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", fx.port);
    setenv("BLAZZ_INGEST_LISTEN", listen, 1);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", fx.admin_port);
    setenv("BLAZZ_HTTP_LISTEN", listen, 1);
    setenv("BLAZZ_INGEST_GROUP_ID", fx.prefix, 1);
    setenv("BLAZZ_INGEST_CONSUMER_SESSION_TIMEOUT_MS", "6000", 1);
    setenv("BLAZZ_INGEST_TXN_MAX_MS", "50", 1);
    set_env_int("BLAZZ_INGEST_MAX_BODY_BYTES", MAX_BODY);
    set_env_int("BLAZZ_INGEST_HTTP_MAX_CONNECTIONS_PER_ADDRESS", SLOW_CONNECTIONS);
    set_env_int("BLAZZ_INGEST_HTTP_REQUEST_DEADLINE_S", REQUEST_DEADLINE_S);
    set_env_int("BLAZZ_INGEST_HTTP_MAX_BUFFERED_BYTES", MAX_BUFFERED);
}

static int setup_all(void **state)
{
    (void)state;
    /* Nearly a thousand sockets: more than a default soft limit of 1024 allows. */
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    curl_global_init(CURL_GLOBAL_ALL);
    /* the prefix doubles as ingest's group: blazz-ingest* (ARCHITECTURE.md §9.1) */
    itest_unique("blazz-ingest-pressure-", fx.prefix, sizeof fx.prefix);
    strcat(fx.prefix, ".");
    snprintf(fx.sync, sizeof fx.sync, "%schat.sync", fx.prefix);
    snprintf(fx.log_path, sizeof fx.log_path, "/tmp/%singest.log", fx.prefix);
    itest_topics_create(fx.prefix, 6);
    /* the gateway posting here, with its own key (ARCHITECTURE.md §9.2) */
    itest_unique("pressure-", fx.gateway, sizeof fx.gateway);
    itest_gateway_create(fx.prefix, fx.gateway, "webjs", "gateway-sim", SECRET);
    fx.conn = itest_pg_connect();
    itest_unique("itest-psess-", fx.session, sizeof fx.session);
    int64_t ws = itest_pg_int64(fx.conn, "INSERT INTO workspaces (name) VALUES ('pressure') RETURNING id");
    itest_pg_int64f(fx.conn,
                    "INSERT INTO whatsapp_accounts (workspace_id, session_id, status, gateway_id) "
                    "VALUES (%lld, '%s', 'connected', '%s') RETURNING id",
                    (long long)ws, fx.session, fx.gateway);
    fx.port = itest_free_port();
    fx.admin_port = itest_free_port();
    configure_ingest();
    static char bin[512];
    snprintf(bin, sizeof bin, "%s/bin/blazz-ingest", itest_env("BLAZZ_TEST_BIN_DIR"));
    char *argv[] = {bin, NULL};
    fx.ingest = itest_spawn(argv, fx.log_path);
    wait_readyz(200, "at start");
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    if (fx.ingest > 0) {
        kill(fx.ingest, SIGTERM);
        int rc = itest_wait(fx.ingest);
        if (rc != 0)
            fail_msg("ingest exited with %d (log: %s)", rc, fx.log_path);
    }
    PQfinish(fx.conn);
    curl_global_cleanup();
    return 0;
}

/* ---- 1. early answers ----------------------------------------------------- */

static void expect_answer_before_body(const char *headers, const char *want_status)
{
    int fd = connect_from("127.0.0.1");
    assert_true(send_text(fd, headers));
    char line[256];
    read_status_line(fd, line, sizeof line);
    close(fd);
    if (strncmp(line, want_status, strlen(want_status)) != 0)
        fail_msg("headers only, expected \"%s\" before the body, got \"%s\"", want_status, line);
}

static void test_headers_alone_earn_401_and_413(void **state)
{
    (void)state;
    char headers[512];
    snprintf(headers, sizeof headers,
             "POST /v1/events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
             "Content-Length: 1000\r\n\r\n");
    expect_answer_before_body(headers, "HTTP/1.1 401");
    snprintf(headers, sizeof headers,
             "POST /v1/meta/webhook HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
             "Content-Length: 1000\r\n\r\n");
    expect_answer_before_body(headers, "HTTP/1.1 401");
    snprintf(headers, sizeof headers,
             "POST /v1/events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
             "X-Blazz-Gateway: %s\r\nX-WhatsApp-Signature: 00\r\nContent-Length: %d\r\n\r\n",
             fx.gateway, MAX_BODY + 1);
    expect_answer_before_body(headers, "HTTP/1.1 413");
}

/* ---- 2. the buffered-bytes bound ----------------------------------------- */

/* A signed request that sends its headers and half its MAX_BODY body, then
 * stalls: it holds MAX_BODY bytes of the bound until it hangs up. */
static int hold_a_full_body(void)
{
    int fd = connect_from("127.0.0.1");
    char headers[256];
    snprintf(headers, sizeof headers,
             "POST /v1/events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
             "X-Blazz-Gateway: %s\r\nX-WhatsApp-Signature: 00\r\nContent-Length: %d\r\n\r\n",
             fx.gateway, MAX_BODY);
    assert_true(send_text(fd, headers));
    static char half[MAX_BODY / 2 + 1];
    memset(half, ' ', sizeof half - 1);
    assert_true(send_text(fd, half));
    return fd;
}

/* Wait until the holders' reservations fill the bound. Their headers travel
 * asynchronously: a request posted before ingest has read the second
 * holder's would take room that holder then misses (it is refused 503
 * instead), and the bound would never be full (seen in CI). */
static void wait_until_holders_fill_the_bound(void)
{
    int64_t deadline = bz_monotonic_ms() + WAIT_MS;
    double held;
    while ((held = metric("blazz_ingest_http_buffered_bytes")) < MAX_BUFFERED) {
        if (bz_monotonic_ms() > deadline)
            fail_msg("two holders reserved only %.0f of %d bytes", held, MAX_BUFFERED);
        itest_sleep_ms(100);
    }
}

static void test_buffered_bytes_bound_is_503_with_retry_after(void **state)
{
    (void)state;
    int a = hold_a_full_body(), b = hold_a_full_body();
    wait_until_holders_fill_the_bound();
    http_reply r = post_signed(gateway_json(1000));
    if (r.status != 503 || strtol(r.retry_after, NULL, 10) < 1)
        fail_msg("expected 503 with Retry-After while %d bytes are held, got %ld (Retry-After "
                 "\"%s\"): %s", MAX_BUFFERED, r.status, r.retry_after, r.body);
    r = readyz();
    if (r.status != 503 || !strstr(r.body, "buffered"))
        fail_msg("/readyz should report the buffered-bytes bound, got %ld: %s", r.status, r.body);
    close(a);
    close(b);
    wait_readyz(200, "after the holders hung up");
    char id[BZ_UUID_STR_SIZE];
    r = post_signed(gateway_json(2000));
    accepted_id(&r, id);
}

/* ---- 3. slow connections ------------------------------------------------- */

typedef struct trickler {
    int fds[SLOW_CONNECTIONS];
    atomic_int open;
    atomic_int stop;
    pthread_t thread;
} trickler;

/* Every TRICKLE_EVERY_MS: one more header line on each connection still
 * open; a connection the server closed is counted and left alone. */
static void *trickle(void *arg)
{
    trickler *t = arg;
    int line = 0;
    while (!atomic_load(&t->stop) && atomic_load(&t->open) > 0) {
        for (int i = 0; i < SLOW_CONNECTIONS; i++) {
            if (t->fds[i] < 0)
                continue;
            char header[64];
            snprintf(header, sizeof header, "X-Slow-%d: still typing\r\n", line);
            if (closed_by_peer(t->fds[i], 0) || !send_text(t->fds[i], header)) {
                close(t->fds[i]);
                t->fds[i] = -1;
                atomic_fetch_sub(&t->open, 1);
            }
        }
        line++;
        for (int waited = 0; waited < TRICKLE_EVERY_MS && !atomic_load(&t->stop); waited += 100)
            itest_sleep_ms(100);
    }
    return NULL;
}

static void open_slow_connections(trickler *t)
{
    for (int i = 0; i < SLOW_CONNECTIONS; i++) {
        t->fds[i] = connect_from("127.0.0.2");
        assert_true(send_text(t->fds[i], "POST /v1/events HTTP/1.1\r\nHost: ingest\r\n"));
    }
    atomic_store(&t->open, SLOW_CONNECTIONS);
    assert_int_equal(pthread_create(&t->thread, NULL, trickle, t), 0);
}

static void stop_trickling(trickler *t)
{
    atomic_store(&t->stop, 1);
    pthread_join(t->thread, NULL);
    for (int i = 0; i < SLOW_CONNECTIONS; i++)
        if (t->fds[i] >= 0)
            close(t->fds[i]);
}

/* Idle connections from 127.0.0.3 that, beside the slow ones, fill the
 * listener to more than 90% of its default limit (1024 connections). */
static void open_idle_connections(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        fds[i] = connect_from("127.0.0.3");
}

static void post_gateway_events(char (*ids)[BZ_UUID_STR_SIZE], int first, int n)
{
    for (int i = first; i < first + n; i++) {
        http_reply r = post_signed(gateway_json(i));
        accepted_id(&r, ids[i]);
    }
}

static void test_slow_connections_do_not_starve_gateways(void **state)
{
    (void)state;
    static trickler t;
    static int idle[SATURATING_CONNECTIONS];
    static char ids[2 * GATEWAY_REQUESTS][BZ_UUID_STR_SIZE];
    open_slow_connections(&t);

    post_gateway_events(ids, 0, GATEWAY_REQUESTS);
    printf("# %d signed requests answered 202 beside %d of %d slow connections\n",
           GATEWAY_REQUESTS, atomic_load(&t.open), SLOW_CONNECTIONS);

    int extra = connect_from("127.0.0.2");
    if (!closed_by_peer(extra, ANSWER_WAIT_MS))
        fail_msg("the 601st connection from 127.0.0.2 was not refused");
    close(extra);
    assert_true(metric("blazz_ingest_http_refused_total{reason=\"per_address\"}") >= 1);

    open_idle_connections(idle, SATURATING_CONNECTIONS);
    http_reply r = wait_readyz(503, "while the listener is nearly full");
    if (!strstr(r.body, "connections"))
        fail_msg("/readyz should name the connections, got: %s", r.body);
    post_gateway_events(ids, GATEWAY_REQUESTS, GATEWAY_REQUESTS);
    for (int i = 0; i < SATURATING_CONNECTIONS; i++)
        close(idle[i]);
    wait_readyz(200, "once the idle connections hung up");
    wait_on_chat_sync(ids, 2 * GATEWAY_REQUESTS);

    int64_t deadline = bz_monotonic_ms() + REQUEST_DEADLINE_S * 1000 + WAIT_MS;
    while (atomic_load(&t.open) > 0 && bz_monotonic_ms() < deadline)
        itest_sleep_ms(200);
    int still_open = atomic_load(&t.open);
    stop_trickling(&t);
    if (still_open > 0)
        fail_msg("%d trickling connections outlived the %d s request deadline", still_open,
                 REQUEST_DEADLINE_S);
    assert_true(metric("blazz_ingest_http_cut_total{phase=\"request\"}") >= SLOW_CONNECTIONS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_alone_earn_401_and_413),
        cmocka_unit_test(test_buffered_bytes_bound_is_503_with_retry_after),
        cmocka_unit_test(test_slow_connections_do_not_starve_gateways),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
