/*
 * test_ingest_pressure.c - ingest's public listener under unauthenticated
 * pressure (issue 15, defect 7), against the real stack.
 *
 * One ingest process with the default connection limit and small other
 * limits (600 connections per address, a 20 s request deadline, 200,000-byte
 * bodies, 400,000 buffered bytes):
 *  1. what can be judged from the headers is answered before the body is
 *     sent: no signature header, one that is not 64 hex digits, a CRM
 *     request without a well-formed API key -> 401, a Content-Length over
 *     the limit -> 413 (a raw socket sends the headers only and reads the
 *     answer);
 *  2. two clients from two addresses, well-formed signatures, send all but
 *     the last byte of their bodies and hold the buffered-bytes bound:
 *     requests whose bodies would pass it are 503 with Retry-After, /readyz
 *     stays 200 (bytes nobody authenticated do not make the listener
 *     unready), and both recover once they hang up;
 *  3. 600 connections from 127.0.0.2 that trickle a header line every 2 s
 *     (each line would reset an idle timeout): signed gateway requests from
 *     127.0.0.1 are all answered 202 and reach chat.sync, the 601st
 *     connection from 127.0.0.2 is refused; 340 more idle connections from
 *     127.0.0.3 bring the listener over 90% of its limit: /readyz reports
 *     it, gateway requests are still answered, and /readyz recovers when
 *     they hang up; the trickling connections are cut at the request
 *     deadline.
 *
 * Then ingest with its default limits (1 MiB bodies, 64 MiB buffered, 256
 * connections per address), as a load balancer's replicas run (issue 32):
 *  4. the reproduction: 70 connections from one address each send the
 *     headers of POST /v1/messages announcing a 952,000-byte body and no
 *     API key, and wait; beside them a signed gateway posts, every post is
 *     accepted and /readyz stays 200 (before issue 32 the announced bodies
 *     were reserved before any credential was looked at: /readyz answered
 *     503 "saturated" for as long as they waited);
 *  5. the same from 4 addresses (127.0.0.2-5), 70 connections each;
 *  6. the same with a well-formed (made-up) API key from the 4 addresses,
 *     each connection sending 700,000 bytes of its body: bytes are taken as
 *     they arrive, each address holds at most its share of the bound, the
 *     rest are refused; every signed post accepted, /readyz 200;
 *  7. 4 and 6 from 16 addresses of one IPv6 /64, which share one address's
 *     limits: ingest runs in a network namespace of the test's own whose
 *     loopback carries the addresses (the host has only ::1), reaching the
 *     stack through relays (itest_netns.h); the gateway posts from another
 *     /64;
 *  8. 100 CRM sends from one address, each naming a new made-up API key
 *     id: once the address's budget of lookups that found nothing is spent,
 *     its further unknown ids are answered 429 with Retry-After and cost no
 *     query, while a real key it used before (read again each time: no
 *     cache here) still passes; a made-up id from another address is still
 *     looked up (401), and the gateway's posts are accepted.
 *  9. issue 49's reproduction against media: 210 connections from each of
 *     5 addresses send a media upload's headers with a made-up key of the
 *     right shape, then a byte of body every 2 s: each is cut at the
 *     request deadline, then signed posts are answered and /readyz is 200;
 * 10. a real key's 900,000-byte image sent over 12 s is stored: a sender
 *     proven before its body gets its length's time at the minimum rate;
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
#include "itest_netns.h"
#include "wa/signature.h"

#define SECRET "pressure-test-secret-0123456789abcdef"
#define SLOW_CONNECTIONS 600
#define SATURATING_CONNECTIONS 340
#define REQUEST_DEADLINE_S 20
#define MAX_BODY 200000
#define MAX_BUFFERED (2 * MAX_BODY)
#define TRICKLE_EVERY_MS 2000
#define GATEWAY_REQUESTS 20
#define WAIT_MS (120 * 1000)
/* a well-formed signature that verifies nothing */
#define FORGED_SIGNATURE "0000000000000000000000000000000000000000000000000000000000000000"
#define ANSWER_WAIT_MS 10000
/* the reproduction of issue 32 against ingest's defaults */
#define ATTACKERS 70
#define ANNOUNCED 952000
#define SENT_OF_BODY 700000
#define DEFAULT_SHARE (4 * 1024 * 1024) /* a sixteenth of the default 64 MiB bound */
#define HOLDERS_PER_SHARE 4               /* DEFAULT_SHARE / ANNOUNCED, rounded down */
#define V6_ATTACKER_ADDRESSES 16
#define WELL_FORMED_KEY "bzk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
/* issue 49's reproduction: slow media bodies from 5 addresses, each under
 * the default 256 connections an address, together more than the default
 * 1,024 connections */
#define MEDIA_ADDRESSES 5
#define MEDIA_PER_ADDRESS 210
#define TRICKLED_MAX (MEDIA_ADDRESSES * MEDIA_PER_ADDRESS)
#define DEFAULT_DEADLINE_S 10
/* an honest upload, slow but above the default 64 KiB/s: 900,000 bytes in
 * 12 pieces a second apart, longer than the request deadline */
#define HONEST_PIECES 12
#define HONEST_PIECE 75000
#define MEDIA_LINK_SECRET "pressure-media-link-secret-0123456789"

typedef struct fixture {
    char prefix[64], sync[128], session[64], gateway[48];
    int port, admin_port;
    char log_path[256], media_dir[256];
    pid_t ingest;
    PGconn *conn;
    const char *host; /* where ingest listens: "127.0.0.1", or an IPv6 address */
    int64_t workspace;
    int prepared;
} fixture;

static fixture fx;

/* ---- HTTP through libcurl ------------------------------------------------ */

typedef itest_http_reply http_reply;

/* GET, or POST a body signed as the gateway signs (itest_gateway_sign), to
 * host:port; status 0 when there was no answer within ANSWER_WAIT_MS. */
static http_reply http_to(const char *host, int port, const char *path, const char *body)
{
    http_reply r;
    char url[256];
    itest_gateway_headers h;
    snprintf(url, sizeof url, strchr(host, ':') ? "http://[%s]:%d%s" : "http://%s:%d%s", host,
             port, path);
    if (body)
        assert_int_equal(itest_gateway_sign(fx.gateway, SECRET, body, strlen(body),
                                            "Content-Type: application/json", &h),
                         BZ_OK);
    itest_http(body ? "POST" : "GET", url, body, body ? strlen(body) : 0, body ? h.lines : NULL,
               ANSWER_WAIT_MS, &r);
    return r;
}

/* GET from the admin endpoint. */
static http_reply admin_get(const char *path)
{
    return http_to("127.0.0.1", fx.admin_port, path, NULL);
}

/* The header lines of a request that names the gateway, with a fresh
 * timestamp and its key's id, and a well-formed signature nobody made:
 * credentials of the right shape that verify nothing. */
static const char *forged_credentials(void)
{
    static char lines[512];
    char key_id[BZ_GATEWAY_KEY_ID_LEN + 1];
    assert_int_equal(bz_gateway_key_id(SECRET, strlen(SECRET), key_id, NULL), BZ_OK);
    snprintf(lines, sizeof lines,
             "X-Blazz-Gateway: %s\r\nX-Blazz-Timestamp: %lld\r\nX-Blazz-Key-Id: %s\r\n"
             "X-WhatsApp-Signature: " FORGED_SIGNATURE "\r\n",
             fx.gateway, (long long)(bz_wall_ms() / 1000), key_id);
    return lines;
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
    return http_to(fx.host, fx.port, "/v1/events", json);
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
    return admin_get("/readyz");
}

/* Poll /readyz until its HTTP status is `want` (or fail). */
static http_reply wait_readyz(long want)
{
    static http_reply r;
    itest_wait_readyz(fx.admin_port, want, NULL, fx.ingest, fx.log_path, WAIT_MS, &r);
    return r;
}

static double metric(const char *sample)
{
    return itest_metric(fx.admin_port, sample);
}

/* ---- raw sockets --------------------------------------------------------- */

/* A blocking TCP connection from source address `from` (IPv4, or IPv6
 * when the listener is) to the listener. */
static int connect_from(const char *from)
{
    struct sockaddr_storage src = {0}, dst = {0};
    socklen_t len;
    if (strchr(fx.host, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src, *d6 = (struct sockaddr_in6 *)&dst;
        s6->sin6_family = d6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, from, &s6->sin6_addr);
        inet_pton(AF_INET6, fx.host, &d6->sin6_addr);
        d6->sin6_port = htons((uint16_t)fx.port);
        len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&src, *d4 = (struct sockaddr_in *)&dst;
        s4->sin_family = d4->sin_family = AF_INET;
        inet_pton(AF_INET, from, &s4->sin_addr);
        inet_pton(AF_INET, fx.host, &d4->sin_addr);
        d4->sin_port = htons((uint16_t)fx.port);
        len = sizeof *s4;
    }
    int fd = socket(src.ss_family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (bind(fd, (struct sockaddr *)&src, len) != 0 ||
        connect(fd, (struct sockaddr *)&dst, len) != 0)
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

/* Where ingest listens and its group: the prefix doubles as ingest's group,
 * blazz-ingest* (ARCHITECTURE.md §9.1), with a suffix per process. */
static void configure_listener(const char *host, const char *group_suffix)
{
    char listen[96], group[96];
    fx.host = host;
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", fx.prefix, 1);
    snprintf(listen, sizeof listen, strchr(host, ':') ? "[%s]:%d" : "%s:%d",
             strchr(host, ':') ? "::" : host, fx.port);
    setenv("BLAZZ_INGEST_LISTEN", listen, 1);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", fx.admin_port);
    setenv("BLAZZ_HTTP_LISTEN", listen, 1);
    snprintf(group, sizeof group, "%s%s", fx.prefix, group_suffix);
    setenv("BLAZZ_INGEST_GROUP_ID", group, 1);
    setenv("BLAZZ_INGEST_CONSUMER_SESSION_TIMEOUT_MS", "6000", 1);
    setenv("BLAZZ_INGEST_TXN_MAX_MS", "50", 1);
}

static const char *const small_limits[] = {
    "BLAZZ_INGEST_MAX_BODY_BYTES", "BLAZZ_INGEST_HTTP_MAX_CONNECTIONS_PER_ADDRESS",
    "BLAZZ_INGEST_HTTP_REQUEST_DEADLINE_S", "BLAZZ_INGEST_HTTP_MAX_BUFFERED_BYTES"};

static void configure_small_limits(void)
{
    const long values[] = {MAX_BODY, SLOW_CONNECTIONS, REQUEST_DEADLINE_S, MAX_BUFFERED};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        set_env_int(small_limits[i], values[i]);
}

static void configure_default_limits(void)
{
    for (size_t i = 0; i < sizeof small_limits / sizeof small_limits[0]; i++)
        unsetenv(small_limits[i]);
    /* every API key read again each request: a real key is then always an
     * expired entry, which the budget of unknown ids must not charge (8) */
    setenv("BLAZZ_CRM_API_KEY_CACHE_S", "0", 1);
    /* the media endpoints, on a local store of the test's own (9, 10) */
    snprintf(fx.media_dir, sizeof fx.media_dir, "/tmp/%smedia", fx.prefix);
    setenv("BLAZZ_MEDIA_LOCAL_DIR", fx.media_dir, 1);
    setenv("BLAZZ_MEDIA_LINK_SECRET", MEDIA_LINK_SECRET, 1);
    setenv("BLAZZ_MEDIA_LINK_BASE_URL", "http://127.0.0.1", 1);
}

static void start_ingest(void)
{
    static char bin[512];
    snprintf(bin, sizeof bin, "%s/bin/blazz-ingest", itest_env("BLAZZ_TEST_BIN_DIR"));
    char *argv[] = {bin, NULL};
    fx.ingest = itest_spawn(argv, fx.log_path);
    wait_readyz(200);
}

static void stop_ingest(void)
{
    itest_terminate(&fx.ingest, "ingest", fx.log_path);
}

/* Topics, the gateway and its session: once for every group. */
static void prepare_stack(void)
{
    if (fx.prepared)
        return;
    fx.prepared = 1;
    /* Nearly a thousand sockets: more than a default soft limit of 1024 allows. */
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    curl_global_init(CURL_GLOBAL_ALL);
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
    fx.workspace = ws;
    itest_pg_int64f(fx.conn,
                    "INSERT INTO whatsapp_accounts (workspace_id, session_id, status, gateway_id) "
                    "VALUES (%lld, '%s', 'connected', '%s') RETURNING id",
                    (long long)ws, fx.session, fx.gateway);
    fx.port = itest_free_port();
    fx.admin_port = itest_free_port();
}

/* ingest on 127.0.0.1 with the small limits or its defaults. */
static int start_with_limits(int defaults)
{
    prepare_stack();
    configure_listener("127.0.0.1", defaults ? "defaults" : "small");
    if (defaults)
        configure_default_limits();
    else
        configure_small_limits();
    start_ingest();
    return 0;
}

static int setup_small_limits(void **state)
{
    (void)state;
    return start_with_limits(0);
}

static int setup_default_limits(void **state)
{
    (void)state;
    return start_with_limits(1);
}

static int teardown_ingest(void **state)
{
    (void)state;
    stop_ingest();
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
             "X-Blazz-Gateway: %s\r\nX-WhatsApp-Signature: 00\r\nContent-Length: 1000\r\n\r\n",
             fx.gateway);
    expect_answer_before_body(headers, "HTTP/1.1 401");
    snprintf(headers, sizeof headers,
             "POST /v1/messages HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
             "Authorization: Bearer bzk_not-a-key\r\nContent-Length: 1000\r\n\r\n");
    expect_answer_before_body(headers, "HTTP/1.1 401");
    snprintf(headers, sizeof headers,
             "POST /v1/events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
             "X-Blazz-Gateway: %s\r\nX-WhatsApp-Signature: " FORGED_SIGNATURE "\r\n"
             "Content-Length: 1000\r\n\r\n",
             fx.gateway);
    expect_answer_before_body(headers, "HTTP/1.1 401"); /* no signed timestamp */
    snprintf(headers, sizeof headers,
             "POST /v1/events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
             "%sContent-Length: %d\r\n\r\n",
             forged_credentials(), MAX_BODY + 1);
    expect_answer_before_body(headers, "HTTP/1.1 413");
}

/* ---- 2. the buffered-bytes bound ----------------------------------------- */

/* A request with a well-formed signature that sends its headers and all
 * but the last byte of its MAX_BODY body from address `from`, then stalls:
 * it holds MAX_BODY bytes of the bound (its address's whole share) until it
 * hangs up. */
static int hold_a_full_body(const char *from)
{
    int fd = connect_from(from);
    char headers[768];
    snprintf(headers, sizeof headers,
             "POST /v1/events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
             "%sContent-Length: %d\r\n\r\n",
             forged_credentials(), MAX_BODY);
    assert_true(send_text(fd, headers));
    static char most[MAX_BODY];
    memset(most, ' ', sizeof most - 1);
    assert_true(send_text(fd, most));
    return fd;
}

/* Wait until ingest's buffered bytes are the full bound (want_full) or
 * none. Both ends travel asynchronously. A request posted before ingest has
 * read the second holder's headers would take room that holder then misses
 * (it is refused 503 instead), and the bound would never be full (seen in
 * CI). And a holder's close is seen by ingest only on its next poll, not when
 * /readyz answers: a request posted in between is still refused 503 (seen in
 * CI). */
static void wait_until_buffered_bytes_are(int want_full)
{
    int64_t deadline = bz_monotonic_ms() + WAIT_MS;
    for (;;) {
        double held = metric("blazz_ingest_http_buffered_bytes");
        if (want_full ? held >= MAX_BUFFERED : held == 0)
            return;
        if (bz_monotonic_ms() > deadline)
            fail_msg("ingest buffers %.0f bytes; waited for %s", held,
                     want_full ? "the holders' full bound" : "none after they hung up");
        itest_sleep_ms(100);
    }
}

static void test_buffered_bytes_bound_is_503_with_retry_after(void **state)
{
    (void)state;
    int a = hold_a_full_body("127.0.0.2"), b = hold_a_full_body("127.0.0.3");
    wait_until_buffered_bytes_are(1);
    http_reply r = post_signed(gateway_json(1000));
    if (r.status != 503 || strtol(r.retry_after, NULL, 10) < 1)
        fail_msg("expected 503 with Retry-After while %d bytes are held, got %ld (Retry-After "
                 "\"%s\"): %s", MAX_BUFFERED, r.status, r.retry_after, r.body);
    r = readyz();
    if (r.status != 200 || !strstr(r.body, "buffered 400000/400000 B (0 authenticated)"))
        fail_msg("/readyz should show the unauthenticated bytes and stay 200, got %ld: %s",
                 r.status, r.body);
    close(a);
    close(b);
    wait_until_buffered_bytes_are(0);
    char id[BZ_UUID_STR_SIZE];
    r = post_signed(gateway_json(2000));
    accepted_id(&r, id);
}

/* ---- 3. slow connections ------------------------------------------------- */

typedef struct trickler {
    int fds[TRICKLED_MAX];
    int n;
    int body; /* 1: a byte of body each time; 0: one more header line */
    atomic_int open;
    atomic_int stop;
    pthread_t thread;
} trickler;

/* Every TRICKLE_EVERY_MS: one more header line, or body byte, on each
 * connection still open; a connection the server closed is counted and
 * left alone. */
static void *trickle(void *arg)
{
    trickler *t = arg;
    int line = 0;
    while (!atomic_load(&t->stop) && atomic_load(&t->open) > 0) {
        for (int i = 0; i < t->n; i++) {
            if (t->fds[i] < 0)
                continue;
            char piece[64] = "x";
            if (!t->body)
                snprintf(piece, sizeof piece, "X-Slow-%d: still typing\r\n", line);
            if (closed_by_peer(t->fds[i], 0) || !send_text(t->fds[i], piece)) {
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

static void start_trickling(trickler *t)
{
    atomic_store(&t->open, t->n);
    assert_int_equal(pthread_create(&t->thread, NULL, trickle, t), 0);
}

static void open_slow_connections(trickler *t)
{
    t->n = SLOW_CONNECTIONS;
    for (int i = 0; i < SLOW_CONNECTIONS; i++) {
        t->fds[i] = connect_from("127.0.0.2");
        assert_true(send_text(t->fds[i], "POST /v1/events HTTP/1.1\r\nHost: ingest\r\n"));
    }
    start_trickling(t);
}

/* Wait until the server closed every trickling connection, at most wait_ms;
 * the trickling stops either way. How many outlived the wait. */
static int wait_trickling_cut(trickler *t, int wait_ms)
{
    int64_t deadline = bz_monotonic_ms() + wait_ms;
    while (atomic_load(&t->open) > 0 && bz_monotonic_ms() < deadline)
        itest_sleep_ms(200);
    int still_open = atomic_load(&t->open);
    atomic_store(&t->stop, 1);
    pthread_join(t->thread, NULL);
    for (int i = 0; i < t->n; i++)
        if (t->fds[i] >= 0)
            close(t->fds[i]);
    return still_open;
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
    http_reply r;
    itest_wait_readyz(fx.admin_port, 503, NULL, fx.ingest, fx.log_path, WAIT_MS, &r);
    if (!strstr(r.body, "connections"))
        fail_msg("/readyz should name the connections, got: %s", r.body);
    post_gateway_events(ids, GATEWAY_REQUESTS, GATEWAY_REQUESTS);
    for (int i = 0; i < SATURATING_CONNECTIONS; i++)
        close(idle[i]);
    itest_wait_ready(fx.admin_port, fx.ingest, fx.log_path, WAIT_MS);
    wait_on_chat_sync(ids, 2 * GATEWAY_REQUESTS);

    int still_open = wait_trickling_cut(&t, REQUEST_DEADLINE_S * 1000 + WAIT_MS);
    if (still_open > 0)
        fail_msg("%d trickling connections outlived the %d s request deadline", still_open,
                 REQUEST_DEADLINE_S);
    assert_true(metric("blazz_ingest_http_cut_total{phase=\"request\"}") >= SLOW_CONNECTIONS);
}

/* ---- 4-7. one address, or a few, against the defaults ---------------------- */

/* The attackers' connections of the running test, closed by its teardown. */
static int attackers[4 * ATTACKERS];
static int nattackers;

/* POST /v1/messages announcing ANNOUNCED bytes, with a well-formed API key
 * or none, on per_address connections from each address of from. */
static void announce_bodies(const char *const *from, int naddr, int per_address, int keyed)
{
    char headers[512];
    snprintf(headers, sizeof headers,
             "POST /v1/messages HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
             "%sContent-Length: %d\r\n\r\n",
             keyed ? "Authorization: Bearer " WELL_FORMED_KEY "\r\n" : "", ANNOUNCED);
    assert_true(naddr * per_address <= (int)(sizeof attackers / sizeof attackers[0]));
    for (int i = 0; i < naddr * per_address; i++) {
        attackers[nattackers] = connect_from(from[i % naddr]);
        assert_true(send_text(attackers[nattackers++], headers));
    }
}

static int hang_up_attackers(void **state)
{
    (void)state;
    for (int i = 0; i < nattackers; i++)
        close(attackers[i]);
    nattackers = 0;
    return 0;
}

/* Whether an answer (or the end of the connection) is waiting on fd. */
static int answered(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) == 1;
}

/* Wait until ingest judged the headers of the attackers' requests: each was
 * answered, or the buffered bytes hold what the unanswered ones announced
 * (what ingest did before issue 32: reserve it). */
static void wait_headers_judged(void)
{
    int64_t deadline = bz_monotonic_ms() + WAIT_MS;
    for (;;) {
        int answers = 0;
        for (int i = 0; i < nattackers; i++)
            answers += answered(attackers[i]);
        if (answers == nattackers || metric("blazz_ingest_http_buffered_bytes") >=
                                         (double)(nattackers - answers) * ANNOUNCED)
            return;
        if (bz_monotonic_ms() > deadline)
            fail_msg("ingest judged the headers of only %d of %d requests (log: %s)", answers,
                     nattackers, fx.log_path);
        itest_sleep_ms(100);
    }
}

/* SENT_OF_BODY bytes of each attacker's body (a refused one may be closed). */
static void send_body_parts(void)
{
    static char part[SENT_OF_BODY];
    memset(part, '{', sizeof part);
    for (int i = 0; i < nattackers; i++)
        send(attackers[i], part, sizeof part, MSG_NOSIGNAL);
}

/* Wait until every share is full and the other requests were refused: of
 * each share, at most HOLDERS_PER_SHARE requests hold their bytes (a buffer
 * grows to the announced size on its way to SENT_OF_BODY). */
static void wait_shares_full(int shares)
{
    double refused = nattackers - (double)shares * HOLDERS_PER_SHARE, seen;
    int64_t deadline = bz_monotonic_ms() + WAIT_MS;
    while ((seen = metric("blazz_ingest_http_refused_total{reason=\"address_share\"}")) <
           refused) {
        if (bz_monotonic_ms() > deadline)
            fail_msg("only %.0f of at least %.0f requests over their address's share refused "
                     "(buffered %.0f B; log: %s)", seen, refused,
                     metric("blazz_ingest_http_buffered_bytes"), fx.log_path);
        itest_sleep_ms(200);
    }
}

/* Beside the attackers: every signed post accepted, /readyz 200. */
static void gateway_unaffected(const char *what)
{
    static int next = 10000;
    for (int i = 0; i < GATEWAY_REQUESTS; i++) {
        http_reply r = post_signed(gateway_json(next++));
        if (r.status != 202)
            fail_msg("beside %s: a signed post answered %ld: %s (log: %s)", what, r.status,
                     r.body, fx.log_path);
    }
    http_reply r = readyz();
    if (r.status != 200)
        fail_msg("beside %s: /readyz answered %ld: %s", what, r.status, r.body);
    printf("# beside %s: %d signed posts 202, /readyz 200\n", what, GATEWAY_REQUESTS);
}

static void headers_without_key(const char *const *from, int naddr, int per_address,
                                const char *what)
{
    announce_bodies(from, naddr, per_address, 0);
    wait_headers_judged();
    gateway_unaffected(what);
    hang_up_attackers(NULL);
}

/* shares: how many address shares the addresses of from make up. */
static void bodies_with_made_up_key(const char *const *from, int naddr, int per_address,
                                    int shares, const char *what)
{
    announce_bodies(from, naddr, per_address, 1);
    send_body_parts();
    wait_shares_full(shares);
    double held = metric("blazz_ingest_http_buffered_bytes");
    if (held > (double)shares * (double)DEFAULT_SHARE)
        fail_msg("%s hold %.0f B, more than %d shares of %d B", what, held, shares,
                 DEFAULT_SHARE);
    gateway_unaffected(what);
    hang_up_attackers(NULL);
}

static const char *const four_addresses[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4",
                                             "127.0.0.5"};

static void test_one_address_announcing_bodies_without_a_key(void **state)
{
    (void)state;
    headers_without_key(four_addresses, 1, ATTACKERS, "70 keyless requests from one address");
}

static void test_four_addresses_announcing_bodies_without_a_key(void **state)
{
    (void)state;
    headers_without_key(four_addresses, 4, ATTACKERS, "4 x 70 keyless requests from 4 addresses");
}

static void test_four_addresses_sending_bodies_with_a_made_up_key(void **state)
{
    (void)state;
    bodies_with_made_up_key(four_addresses, 4, ATTACKERS, 4, "4 x 70 bodies with a made-up key");
}

/* 8. Made-up API key ids, a new one each request: each id not in the cache
 * costs ingest a query, and used to take a place in the key cache (10,000
 * of them emptied it). */
#define MADE_UP_IDS 100

/* The whole answer to a CRM send with an empty body from `from` under key,
 * read until ingest closes the connection (Connection: close). */
static void crm_send_as(const char *from, const char *key, char *answer, size_t cap)
{
    int fd = connect_from(from);
    char request[512];
    snprintf(request, sizeof request,
             "POST /v1/messages HTTP/1.1\r\nHost: ingest\r\nConnection: close\r\n"
             "Authorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
             key);
    assert_true(send_text(fd, request));
    size_t len = 0;
    int64_t deadline = bz_monotonic_ms() + ANSWER_WAIT_MS;
    answer[0] = '\0';
    for (int64_t left; len + 1 < cap && (left = deadline - bz_monotonic_ms()) > 0;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t got = poll(&p, 1, (int)left) > 0 ? recv(fd, answer + len, cap - 1 - len, 0) : 0;
        if (got <= 0)
            break;
        len += (size_t)got;
        answer[len] = '\0';
    }
    close(fd);
}

static void crm_send_with_made_up_id(const char *from, int n, char *answer, size_t cap)
{
    char key[96];
    snprintf(key, sizeof key, "bzk_%016x_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
             0x7e570000u + (unsigned)n);
    crm_send_as(from, key, answer, cap);
}

/* Past authentication, the empty body is refused for what it lacks. */
static void assert_key_accepted(const char *key, const char *what)
{
    char answer[2048];
    crm_send_as("127.0.0.6", key, answer, sizeof answer);
    if (strncmp(answer, "HTTP/1.1 400", 12) != 0)
        fail_msg("the real key %s: %.300s (log: %s)", what, answer, fx.log_path);
}

static void test_made_up_key_ids_cost_their_address_not_the_database(void **state)
{
    (void)state;
    char answer[2048], err_log[256];
    snprintf(err_log, sizeof err_log, "/tmp/%sapikeys.log", fx.prefix);
    char *real_key = itest_api_key(fx.workspace, err_log);
    assert_key_accepted(real_key, "before the flood");
    int refused_unknown = 0, refused_for_now = 0;
    for (int i = 0; i < MADE_UP_IDS; i++) {
        crm_send_with_made_up_id("127.0.0.6", i, answer, sizeof answer);
        if (strncmp(answer, "HTTP/1.1 401", 12) == 0) {
            refused_unknown++;
        } else if (strncmp(answer, "HTTP/1.1 429", 12) == 0 &&
                   strstr(answer, "too_many_unknown_keys") && strcasestr(answer, "Retry-After: ")) {
            refused_for_now++;
        } else {
            fail_msg("made-up key id %d answered: %.300s (log: %s)", i, answer, fx.log_path);
        }
    }
    printf("# %d made-up key ids from one address: %d looked up (401), %d refused unlooked "
           "(429)\n", MADE_UP_IDS, refused_unknown, refused_for_now);
    if (refused_for_now == 0)
        fail_msg("every one of %d made-up key ids was looked up in PostgreSQL", MADE_UP_IDS);
    /* a key the address used before still works; another address is not
     * charged for the made-up ones */
    assert_key_accepted(real_key, "from the flooding address after the flood");
    free(real_key);
    crm_send_with_made_up_id("127.0.0.7", MADE_UP_IDS, answer, sizeof answer);
    if (strncmp(answer, "HTTP/1.1 401", 12) != 0)
        fail_msg("a made-up key id from a second address answered: %.300s", answer);
    gateway_unaffected("100 made-up API key ids from one address");
}

/* 7. One IPv6 /64: 16 addresses of fd00:b1a2:0:1::/64 for the attackers (5
 * connections each), one of fd00:b1a2:0:2::/64 for the gateway, ingest
 * listening on [::]. */
static void test_one_ipv6_prefix_is_one_address(void **state)
{
    (void)state;
    static char text[V6_ATTACKER_ADDRESSES + 1][48];
    const char *all[V6_ATTACKER_ADDRESSES + 2], *from[V6_ATTACKER_ADDRESSES];
    for (int i = 0; i < V6_ATTACKER_ADDRESSES; i++) {
        snprintf(text[i], sizeof text[i], "fd00:b1a2:0:1::%x", 0x10 + i);
        all[i] = from[i] = text[i];
    }
    const char *gateway_address = "fd00:b1a2:0:2::1";
    all[V6_ATTACKER_ADDRESSES] = gateway_address;
    all[V6_ATTACKER_ADDRESSES + 1] = NULL;
    int per_address = (ATTACKERS + V6_ATTACKER_ADDRESSES - 1) / V6_ATTACKER_ADDRESSES;
    itest_netns *ns = itest_netns_new(all);
    stop_ingest();
    itest_netns_enter(ns);
    configure_listener(gateway_address, "v6");
    start_ingest();
    headers_without_key(from, V6_ATTACKER_ADDRESSES, per_address,
                        "80 keyless requests from 16 addresses of one /64");
    bodies_with_made_up_key(from, V6_ATTACKER_ADDRESSES, per_address, 1,
                            "80 bodies with a made-up key from 16 addresses of one /64");
    stop_ingest();
    itest_netns_leave(ns);
    itest_netns_free(ns);
}

/* 9. Issue 49's reproduction: 210 connections from each of 5 addresses
 * send the headers of a media upload with a made-up key of the right
 * shape and the body's first bytes, then a byte every 2 s. Before, the
 * body of a media upload left the request deadline once its key check
 * came back: they held all 1,024 slots for as long as they trickled. Each
 * is cut at the request deadline, as a slow /v1/events is; then signed
 * requests are answered and /readyz is 200. */
static void test_slow_media_bodies_from_five_addresses(void **state)
{
    (void)state;
    static trickler t;
    static const char headers[] =
        "POST /v1/media HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer " WELL_FORMED_KEY
        "\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n\x89PNG";
    t.n = TRICKLED_MAX;
    t.body = 1;
    for (int i = 0; i < TRICKLED_MAX; i++) {
        char from[16];
        snprintf(from, sizeof from, "127.0.0.%d", 10 + i % MEDIA_ADDRESSES);
        t.fds[i] = connect_from(from);
        assert_true(send_text(t.fds[i], headers));
    }
    start_trickling(&t);
    int still_open = wait_trickling_cut(&t, 2 * DEFAULT_DEADLINE_S * 1000 + WAIT_MS);
    if (still_open > 0)
        fail_msg("%d of %d slow media uploads outlived the %d s request deadline (log: %s)",
                 still_open, TRICKLED_MAX, DEFAULT_DEADLINE_S, fx.log_path);
    gateway_unaffected("1,050 slow media uploads from 5 addresses");
}

/* 10. What the deadline leaves an honest uploader: with a real API key, a
 * 900,000-byte image sent over 12 s (75 KB/s, above the default minimum of
 * 64 KiB/s) is stored, though the request deadline is 10 s: a sender proven
 * before its body gets its length's worth of time at that rate. */
static void test_a_proven_slow_upload_is_stored(void **state)
{
    (void)state;
    char err_log[256], headers[512];
    snprintf(err_log, sizeof err_log, "/tmp/%smediakey.log", fx.prefix);
    char *key = itest_api_key(fx.workspace, err_log);
    snprintf(headers, sizeof headers,
             "POST /v1/media HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: image/png\r\nContent-Length: %d\r\n\r\n",
             key, HONEST_PIECES * HONEST_PIECE);
    free(key);
    static char piece[HONEST_PIECE];
    memset(piece, 0, sizeof piece);
    snprintf(piece, sizeof piece, "\x89PNG\r\n\x1a\n%s", fx.prefix); /* unique bytes */
    int fd = connect_from("127.0.0.1");
    assert_true(send_text(fd, headers));
    for (int i = 0; i < HONEST_PIECES; i++) {
        if (send(fd, piece, sizeof piece, MSG_NOSIGNAL) != (ssize_t)sizeof piece)
            fail_msg("the upload was cut after %d of %d s (log: %s)", i, HONEST_PIECES,
                     fx.log_path);
        itest_sleep_ms(1000);
    }
    char line[256];
    read_status_line(fd, line, sizeof line);
    close(fd);
    if (strncmp(line, "HTTP/1.1 201", 12) != 0)
        fail_msg("a proven upload over %d s answered \"%s\" (log: %s)", HONEST_PIECES, line,
                 fx.log_path);
}

static int teardown_stack(void)
{
    if (fx.media_dir[0])
        itest_remove_tree(fx.media_dir);
    PQfinish(fx.conn);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest small[] = {
        cmocka_unit_test(test_headers_alone_earn_401_and_413),
        cmocka_unit_test(test_buffered_bytes_bound_is_503_with_retry_after),
        cmocka_unit_test(test_slow_connections_do_not_starve_gateways),
    };
    const struct CMUnitTest defaults[] = {
        cmocka_unit_test_teardown(test_one_address_announcing_bodies_without_a_key,
                                  hang_up_attackers),
        cmocka_unit_test_teardown(test_four_addresses_announcing_bodies_without_a_key,
                                  hang_up_attackers),
        cmocka_unit_test_teardown(test_four_addresses_sending_bodies_with_a_made_up_key,
                                  hang_up_attackers),
        cmocka_unit_test(test_made_up_key_ids_cost_their_address_not_the_database),
        cmocka_unit_test(test_slow_media_bodies_from_five_addresses),
        cmocka_unit_test(test_a_proven_slow_upload_is_stored),
        cmocka_unit_test_teardown(test_one_ipv6_prefix_is_one_address, hang_up_attackers),
    };
    int failed = cmocka_run_group_tests_name("small limits", small, setup_small_limits,
                                             teardown_ingest);
    failed += cmocka_run_group_tests_name("default limits", defaults, setup_default_limits,
                                          teardown_ingest);
    teardown_stack();
    return failed;
}
