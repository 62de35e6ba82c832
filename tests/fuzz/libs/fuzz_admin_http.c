/*
 * fuzz_admin_http.c - the admin HTTP server every service runs
 * (libs/core/admin_http.c): /healthz, /readyz, /metrics.
 *
 * There is no seam below the socket worth fuzzing: requests are parsed by
 * libmicrohttpd and the service's own code sees only a URL and a method. So
 * this drives a real server on 127.0.0.1 (started once, port 0), honestly
 * end to end: libmicrohttpd is not instrumented, so libFuzzer's guidance
 * covers only the service side, and the rest is mutation of the seeds.
 *
 * Input: a count byte, then that many readiness checks (an ok byte, a name
 * and a detail, each NUL-terminated), then raw bytes sent as one client's
 * request stream (then the write side is shut). Properties: what the server
 * sends back starts with an HTTP/1.x status line (it may also keep a
 * garbled request open until its connection timeout: libmicrohttpd does not
 * notice the half-close of a client that has not finished its headers, so
 * that connection is reset after FUZZ_WAIT_MS); afterwards another client is
 * answered, and a well-formed GET /readyz reports exactly the checks the
 * service gave (capped at BZ_READINESS_MAX_CHECKS) as JSON, each with its
 * verdict, ready only when all are ok, 200 or 503 accordingly. Accepted
 * means the fuzzed request got a response.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/admin_http.h"
#include "core/metrics.h"
#include "fuzz_target.h"

#define ANSWER_TIMEOUT_MS 10000 /* for a well-formed request */
#define FUZZ_WAIT_MS 100         /* for the fuzzed one */
#define MAX_CHECKS_GIVEN 20

typedef struct check_spec {
    int ok;
    const char *name, *detail;
} check_spec;

/* What the readiness callback reports for the current input. */
static check_spec checks[MAX_CHECKS_GIVEN];
static size_t nchecks;

static void readiness(void *ctx, bz_readiness *report)
{
    (void)ctx;
    for (size_t i = 0; i < nchecks; i++)
        bz_readiness_add(report, checks[i].name, checks[i].ok, "%s", checks[i].detail);
}

static uint16_t server_port(void)
{
    static bz_admin_http *server;
    static bz_metrics *registry;
    if (!server) {
        bz_counter *requests;
        BZ_FUZZ_CHECK(bz_metrics_new(&registry, NULL) == BZ_OK);
        BZ_FUZZ_CHECK(bz_metrics_counter(registry, BZ_METRIC("blazz_fuzz_total", "Inputs."),
                                         &requests, NULL) == BZ_OK);
        bz_counter_inc(requests);
        BZ_FUZZ_CHECK(bz_admin_http_start("127.0.0.1:0", registry, readiness, NULL, &server,
                                          NULL) == BZ_OK);
    }
    return bz_admin_http_port(server);
}

/* Send request on a new connection, shut the write side and read until
 * the server closes or wait_ms pass without a byte (*closed tells which);
 * returns the heap response (the caller frees). */
static char *exchange(const uint8_t *request, size_t len, int wait_ms, size_t *out_len,
                      int *closed)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BZ_FUZZ_CHECK(fd >= 0);
    struct timeval tv = {.tv_sec = wait_ms / 1000, .tv_usec = (wait_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(server_port())};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BZ_FUZZ_CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    for (size_t sent = 0; sent < len;) {
        ssize_t w = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may close early on a bad request */
        sent += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap + 1);
    BZ_FUZZ_CHECK(buf != NULL);
    *closed = 0;
    for (;;) {
        if (used == cap) {
            char *grown = realloc(buf, 2 * cap + 1);
            BZ_FUZZ_CHECK(grown != NULL);
            buf = grown;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + used, cap - used, 0);
        if (r <= 0) {
            /* A reset after a refused request is a close too. */
            *closed = r == 0 || errno == ECONNRESET;
            break;
        }
        used += (size_t)r;
    }
    if (!*closed) {
        /* Reset rather than leave it to the server's 10 s timeout: the
         * fuzzer would otherwise fill the 64-connection limit itself. */
        struct linger reset = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    }
    close(fd);
    buf[used] = '\0';
    *out_len = used;
    return buf;
}

static void check_status_line(const char *resp, size_t len)
{
    BZ_FUZZ_CHECK(len >= 12 && memcmp(resp, "HTTP/1.", 7) == 0 && resp[8] == ' ');
    for (int i = 9; i < 12; i++)
        BZ_FUZZ_CHECK(resp[i] >= '0' && resp[i] <= '9');
}

static void check_readiness_report(void)
{
    static const char get[] = "GET /readyz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
    size_t len;
    int closed;
    char *resp = exchange((const uint8_t *)get, sizeof get - 1, ANSWER_TIMEOUT_MS, &len, &closed);
    BZ_FUZZ_CHECK(closed);
    check_status_line(resp, len);
    size_t shown = nchecks < BZ_READINESS_MAX_CHECKS ? nchecks : BZ_READINESS_MAX_CHECKS;
    int ready = 1;
    for (size_t i = 0; i < shown; i++)
        ready = ready && checks[i].ok;
    BZ_FUZZ_CHECK(memcmp(resp + 9, ready ? "200" : "503", 3) == 0);
    const char *body = strstr(resp, "\r\n\r\n");
    BZ_FUZZ_CHECK(body != NULL);
    json_t *doc = json_loads(body + 4, 0, NULL);
    BZ_FUZZ_CHECK(doc != NULL);
    BZ_FUZZ_CHECK(json_is_boolean(json_object_get(doc, "ready")) &&
                  json_is_true(json_object_get(doc, "ready")) == ready);
    const json_t *list = json_object_get(doc, "checks");
    BZ_FUZZ_CHECK(json_is_array(list) && json_array_size(list) == shown);
    for (size_t i = 0; i < shown; i++) {
        const json_t *c = json_array_get(list, i);
        BZ_FUZZ_CHECK(json_is_string(json_object_get(c, "name")));
        BZ_FUZZ_CHECK(json_is_string(json_object_get(c, "detail")));
        BZ_FUZZ_CHECK(json_is_boolean(json_object_get(c, "ok")) &&
                      json_is_true(json_object_get(c, "ok")) == (checks[i].ok != 0));
    }
    json_decref(doc);
    free(resp);
}

/* The next NUL-terminated text of data[*at..size), or "" at the end; points
 * into copy, a NUL-terminated copy of data. */
static const char *next_text(const char *copy, size_t size, size_t *at)
{
    if (*at >= size)
        return "";
    const char *s = copy + *at;
    *at += strlen(s) + 1;
    return s;
}

static int fuzz_admin_http(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    BZ_FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    copy[size] = '\0';
    size_t at = 0;
    nchecks = size ? data[at++] % (MAX_CHECKS_GIVEN + 1) : 0;
    for (size_t i = 0; i < nchecks; i++) {
        checks[i].ok = at < size && (data[at++] & 1);
        checks[i].name = next_text(copy, size, &at);
        checks[i].detail = next_text(copy, size, &at);
    }
    size_t len;
    int closed;
    char *resp = exchange(data + (at < size ? at : size), at < size ? size - at : 0, FUZZ_WAIT_MS,
                          &len, &closed);
    /* A response cut short by the wait proves nothing either way. */
    if (len >= 12 || (closed && len > 0))
        check_status_line(resp, len);
    free(resp);
    check_readiness_report();
    nchecks = 0;
    free(copy);
    return len >= 12 ? BZ_FUZZ_ACCEPTED : BZ_FUZZ_REJECTED;
}

static const bz_fuzz_expect expect[] = {
    {"healthz", BZ_FUZZ_ACCEPTED},
    {"readyz_two_checks", BZ_FUZZ_ACCEPTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_admin_http, expect)
