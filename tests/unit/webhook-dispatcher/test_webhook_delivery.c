/*
 * test_webhook_delivery.c - the dispatcher's libcurl driver
 * (services/webhook-dispatcher/delivery.c) against a tiny HTTP server in a
 * thread on 127.0.0.1; nothing leaves the loopback interface.
 *
 *  - SSRF guard and several addresses: a name that resolves to a refused
 *    address first and to an allowed one second is delivered on the second,
 *    and is not reported as an SSRF refusal. The refused address is
 *    0.0.0.0 (unspecified, refused even when private targets are allowed),
 *    so the test needs nothing but loopback; curl's --resolve pins gives
 *    the name its two addresses. A name with only the refused address is an
 *    SSRF refusal naming it.
 *  - the reply snippet kept for error messages is valid UTF-8: a multi-byte
 *    character cut at the snippet limit, and bytes that are not UTF-8,
 *    become '?'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/utf8.h"
#include "delivery.h"
#include "ssrf.h"

/* ---- a one-connection-at-a-time HTTP server ------------------------------- */

typedef struct server {
    int fd, port;
    atomic_bool stop;
    pthread_t thread;
} server;

/* 158 ASCII bytes, then a EURO SIGN straddling the 159-byte snippet limit */
static void cut_body(char *out, size_t *len)
{
    memset(out, 'x', 158);
    memcpy(out + 158, "\xe2\x82\xac\xe2\x82\xac", 6);
    *len = 164;
}

static void answer(int c, const char *request)
{
    char body[256], head[256];
    size_t len = 2;
    int status = 200;
    if (strstr(request, "POST /cut ")) {
        status = 500;
        cut_body(body, &len);
    } else if (strstr(request, "POST /binary ")) {
        status = 500;
        memcpy(body, "\xff\xfe\x00oops\xc3", 8);
        len = 8;
    } else {
        memcpy(body, "ok", 2);
    }
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                     len);
    if (write(c, head, (size_t)n) != n || write(c, body, len) != (ssize_t)len)
        return;
}

static void *serve(void *arg)
{
    server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        char request[4096];
        size_t got = 0;
        ssize_t n;
        /* headers and the small body arrive together or soon after */
        while (got < sizeof request - 1 && (n = read(c, request + got, sizeof request - 1 - got)) > 0) {
            got += (size_t)n;
            request[got] = '\0';
            char *end = strstr(request, "\r\n\r\n");
            if (end && strlen(end + 4) >= 2)
                break;
        }
        request[got] = '\0';
        answer(c, request);
        close(c);
    }
    return NULL;
}

static void server_start(server *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    atomic_init(&s->stop, false);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(server *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* ---- one POST through the driver ------------------------------------------ */

/* POST {} to url, names resolved through the pins (curl --resolve entries,
 * NULL-terminated); returns when the transfer is handed back. */
static void post(const char *url, const char *const *pins, bool allow_private,
                 wh_transfer *t)
{
    struct curl_slist *resolve = NULL;
    for (size_t i = 0; pins && pins[i]; i++)
        resolve = curl_slist_append(resolve, pins[i]);
    wh_delivery_config cfg = {.connect_timeout_ms = 2000,
                                 .max_response_bytes = 65536,
                                 .allow_private_targets = allow_private,
                                 .max_connections = 4,
                                 .user_agent = "test",
                                 .resolve = resolve};
    wh_delivery *d = NULL;
    bz_error err;
    assert_int_equal(wh_delivery_new(&cfg, &d, &err), BZ_OK);
    memset(t, 0, sizeof *t);
    t->url = url;
    t->body = "{}";
    t->body_len = 2;
    t->headers = curl_slist_append(NULL, "Content-Type: application/json");
    t->timeout_ms = 5000;
    assert_int_equal(wh_delivery_start(d, t, &err), BZ_OK);
    wh_transfer *done = NULL;
    for (int i = 0; i < 200 && !done; i++) {
        wh_delivery_poll(d, 50, -1, NULL);
        done = wh_delivery_next_done(d);
    }
    assert_ptr_equal(done, t);
    wh_delivery_free(d);
    curl_slist_free_all(resolve);
}

static void test_second_address_after_a_refused_one_is_delivered(void **state)
{
    (void)state;
    server s;
    server_start(&s);
    char url[128], pin[128];
    snprintf(url, sizeof url, "http://two.example:%d/ok", s.port);
    snprintf(pin, sizeof pin, "two.example:%d:0.0.0.0,127.0.0.1", s.port);
    const char *pins[] = {pin, NULL};
    wh_transfer t;
    post(url, pins, true, &t);
    print_message("two addresses: transport %d, status %ld, error '%s'\n", (int)t.transport,
                  t.http_status, t.error);
    assert_int_equal(t.transport, WH_T_RESPONSE);
    assert_int_equal(t.http_status, 200);
    assert_string_equal(t.error, "");
    server_stop(&s);
}

static void test_only_refused_addresses_are_an_ssrf_refusal(void **state)
{
    (void)state;
    server s;
    server_start(&s);
    char url[128], pin[128];
    snprintf(url, sizeof url, "http://none.example:%d/ok", s.port);
    snprintf(pin, sizeof pin, "none.example:%d:0.0.0.0", s.port);
    const char *pins[] = {pin, NULL};
    wh_transfer t;
    post(url, pins, true, &t);
    assert_int_equal(t.transport, WH_T_SSRF);
    assert_non_null(strstr(t.error, "0.0.0.0"));
    assert_non_null(strstr(t.error, "unspecified"));
    /* loopback alone, private targets refused */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", s.port);
    post(url, NULL, false, &t);
    assert_int_equal(t.transport, WH_T_SSRF);
    assert_non_null(strstr(t.error, "loopback"));
    server_stop(&s);
}

static void test_reply_snippet_is_valid_utf8(void **state)
{
    (void)state;
    server s;
    server_start(&s);
    char url[128], expected[160];
    wh_transfer t;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/cut", s.port);
    post(url, NULL, true, &t);
    assert_int_equal(t.http_status, 500);
    memset(expected, 'x', 158);
    expected[158] = '?'; /* the first byte of the cut EURO SIGN */
    expected[159] = '\0';
    assert_string_equal(t.snippet, expected);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/binary", s.port);
    post(url, NULL, true, &t);
    assert_int_equal(t.http_status, 500);
    assert_true(bz_utf8_valid(t.snippet, strlen(t.snippet)));
    assert_string_equal(t.snippet, "??"); /* up to the NUL */
    server_stop(&s);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_address_after_a_refused_one_is_delivered),
        cmocka_unit_test(test_only_refused_addresses_are_an_ssrf_refusal),
        cmocka_unit_test(test_reply_snippet_is_valid_utf8),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
