/*
 * itest_http.c - one HTTP request from an integration test, a gateway's
 * signed headers and a service's metrics (see itest_http.h). libcurl's
 * global state must be initialised by the test
 * (curl_global_init), as for any other use of libcurl.
 */
#include "itest_http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "itest.h"
#include "wa/signature.h"

static size_t collect_body(char *data, size_t size, size_t n, void *ctx)
{
    itest_http_reply *r = ctx;
    size_t bytes = size * n, room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, data, bytes < room ? bytes : room);
    r->len += bytes < room ? bytes : room;
    r->body[r->len] = '\0';
    return bytes;
}

/* The value of header line data (bytes long) into out when it is name's
 * ("Name:", any case), its leading blank and line end dropped. */
static void keep_header(const char *data, size_t bytes, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    if (bytes <= n || strncasecmp(data, name, n) != 0)
        return;
    data += n;
    bytes -= n;
    for (; bytes > 0 && *data == ' '; data++, bytes--)
        ;
    snprintf(out, cap, "%.*s", (int)bytes, data);
    out[strcspn(out, "\r\n")] = '\0';
}

static size_t collect_header(char *data, size_t size, size_t n, void *ctx)
{
    itest_http_reply *r = ctx;
    size_t bytes = size * n;
    keep_header(data, bytes, "Retry-After:", r->retry_after, sizeof r->retry_after);
    keep_header(data, bytes, "Location:", r->location, sizeof r->location);
    return bytes;
}

void itest_http(const char *method, const char *url, const void *body, size_t len,
                const char *const *headers, long timeout_ms, itest_http_reply *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    struct curl_slist *lines = NULL;
    int expect = 0;
    for (size_t i = 0; headers && headers[i]; i++) {
        lines = curl_slist_append(lines, headers[i]);
        expect |= strncasecmp(headers[i], "Expect:", 7) == 0;
    }
    if (!expect)
        lines = curl_slist_append(lines, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, lines);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(lines);
    curl_easy_cleanup(c);
}

void itest_wait_readyz(int admin_port, long want, const char *needle, pid_t pid, const char *log,
                       long limit_ms, itest_http_reply *out)
{
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", admin_port);
    int64_t deadline = bz_monotonic_ms() + limit_ms;
    for (;;) {
        itest_http("GET", url, NULL, 0, NULL, 5000, out);
        if (out->status == want && (!needle || strstr(out->body, needle)))
            return;
        int status;
        if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid)
            fail_msg("the service on admin port %d exited (status %d) before /readyz answered "
                     "%ld; see %s", admin_port, status, want, log);
        if (bz_monotonic_ms() > deadline)
            fail_msg("/readyz on port %d never answered %ld%s%s; last %ld: %s (see %s)", admin_port,
                     want, needle ? " with " : "", needle ? needle : "", out->status, out->body, log);
        itest_sleep_ms(100);
    }
}

void itest_wait_ready(int admin_port, pid_t pid, const char *log, long limit_ms)
{
    static itest_http_reply reply;
    itest_wait_readyz(admin_port, 200, NULL, pid, log, limit_ms, &reply);
}

/* The samples of text whose line starts with sample and then one of ends
 * (" " for exactly that sample, " {" for any labels too): the first one's
 * value, or with all set their sum; -1 when none. */
static double sample_value(const char *text, const char *sample, const char *ends, int all)
{
    size_t n = strlen(sample);
    double sum = -1;
    for (const char *line = text; *line;) {
        if (strncmp(line, sample, n) == 0 && line[n] && strchr(ends, line[n])) {
            const char *value = strchr(line + n, ' ');
            double v = value ? strtod(value + 1, NULL) : 0;
            if (!all)
                return v;
            sum = sum < 0 ? v : sum + v;
        }
        const char *next = strchr(line, '\n');
        if (!next)
            break;
        line = next + 1;
    }
    return sum;
}

double itest_metric(int admin_port, const char *sample)
{
    static itest_http_reply r;
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", admin_port);
    itest_http("GET", url, NULL, 0, NULL, 10000, &r);
    return sample_value(r.body, sample, " ", 0);
}

double itest_registry_metric(bz_metrics *reg, const char *name)
{
    char *text = NULL;
    size_t len = 0;
    if (bz_metrics_render(reg, &text, &len) != BZ_OK)
        fail_msg("render metrics: out of memory");
    double v = sample_value(text, name, " {", 1);
    free(text);
    return v;
}

bz_status itest_gateway_sign(const char *gateway, const char *key, const void *body, size_t len,
                             const char *content_type_line, itest_gateway_headers *out)
{
    bz_gateway_signature sig;
    bz_status st = bz_gateway_sign_request(key, strlen(key), (long long)(bz_wall_ms() / 1000),
                                           body, len, &sig, NULL);
    if (st != BZ_OK)
        return st;
    snprintf(out->gateway, sizeof out->gateway, "X-Blazz-Gateway: %s", gateway);
    snprintf(out->timestamp, sizeof out->timestamp, "X-Blazz-Timestamp: %s", sig.timestamp);
    snprintf(out->key_id, sizeof out->key_id, "X-Blazz-Key-Id: %s", sig.key_id);
    snprintf(out->signature, sizeof out->signature, "X-WhatsApp-Signature: %s", sig.signature);
    const char *lines[] = {content_type_line, out->gateway, out->timestamp, out->key_id,
                           out->signature, NULL};
    memcpy(out->lines, lines, sizeof lines);
    return BZ_OK;
}

/* ---- a connection of the test's own ----------------------------------------------- */

int itest_http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to) != 0)
        fail_msg("connect to 127.0.0.1:%d: %s", port, strerror(errno));
    return fd;
}

void itest_http_write(int fd, const char *request, size_t len)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = send(fd, request + done, len - done, MSG_NOSIGNAL);
        if (n <= 0)
            fail_msg("send a request on a connection of the test's: %s", strerror(errno));
        done += (size_t)n;
    }
}

/* The answer's length when buf (len bytes, NUL-terminated) holds its whole
 * head and Content-Length's bytes of body; 0 while more is to come. */
static size_t whole_answer(const char *buf, size_t len)
{
    const char *end = strstr(buf, "\r\n\r\n");
    if (!end)
        return 0;
    const char *length = strcasestr(buf, "\r\nContent-Length:");
    size_t head = (size_t)(end - buf) + 4;
    size_t body = length && length < end ? strtoul(length + 17, NULL, 10) : 0;
    return len >= head + body ? head + body : 0;
}

void itest_http_read_answer(int fd, long limit_ms, itest_http_reply *out)
{
    char buf[sizeof out->body];
    size_t len = 0, whole = 0;
    int64_t deadline = bz_monotonic_ms() + limit_ms;
    memset(out, 0, sizeof *out);
    while (!whole && len + 1 < sizeof buf) {
        int64_t left = deadline - bz_monotonic_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return;
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            return;
        len += (size_t)n;
        buf[len] = '\0';
        whole = whole_answer(buf, len);
    }
    /* "HTTP/1.x NNN " */
    long status = whole && strncmp(buf, "HTTP/1.", 7) == 0 ? strtol(buf + 9, NULL, 10) : 0;
    if (status < 100 || status > 599)
        fail_msg("not an HTTP answer: %.200s", buf);
    out->status = status;
    const char *body = strstr(buf, "\r\n\r\n") + 4;
    out->len = whole - (size_t)(body - buf);
    memcpy(out->body, body, out->len);
    out->body[out->len] = '\0';
}
