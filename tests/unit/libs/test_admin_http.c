/*
 * test_admin_http.c - the admin HTTP server, driven with libcurl over
 * 127.0.0.1 on an ephemeral port: /healthz, /readyz flipping from 503 to 200,
 * /metrics content type and line syntax, 404, 405, HEAD, bad listen
 * addresses and a port already in use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/admin_http.h"
#include "core/metrics.h"

typedef struct http_reply {
    long status;
    char body[65536];
    size_t len;
    char content_type[128];
    char allow[64];
} http_reply;

static size_t collect_body(char *data, size_t size, size_t n, void *arg)
{
    http_reply *r = arg;
    size_t bytes = size * n;
    size_t room = sizeof r->body - 1 - r->len;
    size_t take = bytes < room ? bytes : room;
    memcpy(r->body + r->len, data, take);
    r->len += take;
    r->body[r->len] = '\0';
    return bytes;
}

static size_t collect_header(char *data, size_t size, size_t n, void *arg)
{
    http_reply *r = arg;
    size_t bytes = size * n;
    if (bytes > 7 && strncasecmp(data, "Allow: ", 7) == 0) {
        size_t len = bytes - 7;
        while (len && (data[7 + len - 1] == '\r' || data[7 + len - 1] == '\n'))
            len--;
        snprintf(r->allow, sizeof r->allow, "%.*s", (int)len, data + 7);
    }
    return bytes;
}

/* Issue method on http://host:port/path and fill *r. */
static void http_on(const char *host, uint16_t port, const char *method, const char *path,
                    http_reply *r)
{
    memset(r, 0, sizeof *r);
    char url[256];
    snprintf(url, sizeof url, "http://%s:%u%s", host, (unsigned)port, path);
    CURL *curl = curl_easy_init();
    assert_non_null(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") == 0)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "x=1");
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(r->content_type, sizeof r->content_type, "%s", ct ? ct : "");
    curl_easy_cleanup(curl);
}

static void http(uint16_t port, const char *method, const char *path, http_reply *r)
{
    http_on("127.0.0.1", port, method, path, r);
}

/* ---- fixture: a server with a registry and a switchable readiness ------- */

typedef struct app {
    atomic_bool postgres_up;
    atomic_int partitions;
} app;

static void app_readiness(void *ctx, bz_readiness *r)
{
    app *a = ctx;
    bool pg = atomic_load(&a->postgres_up);
    int parts = atomic_load(&a->partitions);
    bz_readiness_add(r, "kafka", true, "ok");
    bz_readiness_add(r, "postgres", pg, "%s", pg ? "ok" : "down");
    bz_readiness_add(r, "partitions", parts > 0, "%d assigned", parts);
}

typedef struct fixture {
    bz_metrics *reg;
    bz_counter *consumed;
    bz_histogram *latency;
    app app;
    bz_admin_http *server;
    uint16_t port;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    bz_error err = {0};
    if (!f || bz_metrics_new(&f->reg, &err) != BZ_OK ||
        bz_metrics_counter(f->reg, BZ_METRIC("blazz_consumed_total", "Messages consumed."),
                           &f->consumed, &err) != BZ_OK ||
        bz_metrics_histogram(f->reg, BZ_METRIC("blazz_apply_seconds", "Apply latency."),
                             &f->latency, &err) != BZ_OK ||
        bz_admin_http_start("127.0.0.1:0", f->reg, app_readiness, &f->app, &f->server, &err) !=
            BZ_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    f->port = bz_admin_http_port(f->server);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    bz_admin_http_stop(f->server);
    bz_metrics_free(f->reg);
    free(f);
    return 0;
}

/* ---- endpoints --------------------------------------------------------- */

static void test_healthz_answers_ok(void **state)
{
    fixture *f = *state;
    assert_true(f->port != 0);
    http_reply r;
    http(f->port, "GET", "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    assert_string_equal(r.content_type, "text/plain; charset=utf-8");
}

typedef struct expected_check {
    bool ok;
    const char *detail;
} expected_check;

static void assert_readiness_body(const http_reply *r, bool ready, expected_check pg,
                                  expected_check partitions)
{
    json_error_t jerr;
    json_t *doc = json_loads(r->body, 0, &jerr);
    if (!doc)
        fail_msg("readyz body is not JSON: %s (%s)", r->body, jerr.text);
    assert_string_equal(r->content_type, "application/json");
    assert_true(json_is_boolean(json_object_get(doc, "ready")));
    assert_int_equal(json_is_true(json_object_get(doc, "ready")), ready);
    json_t *checks = json_object_get(doc, "checks");
    assert_int_equal(json_array_size(checks), 3);
    static const char *const names[] = {"kafka", "postgres", "partitions"};
    const expected_check want[] = {{true, "ok"}, pg, partitions};
    for (size_t i = 0; i < 3; i++) {
        json_t *c = json_array_get(checks, i);
        assert_string_equal(json_string_value(json_object_get(c, "name")), names[i]);
        assert_string_equal(json_string_value(json_object_get(c, "detail")), want[i].detail);
        assert_true(json_is_boolean(json_object_get(c, "ok")));
        assert_int_equal(json_is_true(json_object_get(c, "ok")), want[i].ok);
    }
    json_decref(doc);
}

static void test_readyz_flips_from_503_to_200(void **state)
{
    fixture *f = *state;
    http_reply r;
    http(f->port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_readiness_body(&r, false, (expected_check){false, "down"},
                          (expected_check){false, "0 assigned"});

    atomic_store(&f->app.postgres_up, true);
    http(f->port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_readiness_body(&r, false, (expected_check){true, "ok"},
                          (expected_check){false, "0 assigned"});

    atomic_store(&f->app.partitions, 2);
    http(f->port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 200);
    assert_readiness_body(&r, true, (expected_check){true, "ok"},
                          (expected_check){true, "2 assigned"});

    atomic_store(&f->app.postgres_up, false);
    http(f->port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 503);
}

/* A sample line: name, optional {label="value",...}, one space, a number. */
static bool is_sample_line(const char *line, char *name, size_t cap)
{
    size_t n = 0;
    while (isalnum((unsigned char)line[n]) || line[n] == '_' || line[n] == ':')
        n++;
    if (n == 0 || n >= cap)
        return false;
    memcpy(name, line, n);
    name[n] = '\0';
    const char *p = line + n;
    if (*p == '{') {
        for (p++; *p && *p != '}'; p++)
            if (*p == '\\' && p[1])
                p++;
        if (*p++ != '}')
            return false;
    }
    if (*p++ != ' ')
        return false;
    if (strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0 || strcmp(p, "NaN") == 0)
        return true;
    char *end;
    strtod(p, &end);
    return end != p && *end == '\0';
}

static void test_metrics_serves_exposition_format(void **state)
{
    fixture *f = *state;
    bz_counter_add(f->consumed, 7);
    bz_histogram_observe(f->latency, 0.003);
    http_reply r;
    http(f->port, "GET", "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_true(r.len > 0 && r.body[r.len - 1] == '\n');
    assert_non_null(strstr(r.body, "\nblazz_consumed_total 7\n"));
    assert_non_null(strstr(r.body, "\nblazz_apply_seconds_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(r.body, "\nblazz_apply_seconds_count 1\n"));
    assert_non_null(strstr(r.body, "\nprocess_resident_memory_bytes "));

    /* Every line is a HELP, a TYPE or a sample of the family typed last. */
    char typed[128] = "";
    size_t samples = 0;
    for (char *line = strtok(r.body, "\n"); line; line = strtok(NULL, "\n")) {
        char name[128], kind[32];
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (sscanf(line, "# TYPE %127s %31s", typed, kind) == 2) {
            assert_true(strcmp(kind, "counter") == 0 || strcmp(kind, "gauge") == 0 ||
                        strcmp(kind, "histogram") == 0);
            continue;
        }
        if (!is_sample_line(line, name, sizeof name))
            fail_msg("not a sample line: '%s'", line);
        if (strncmp(name, typed, strlen(typed)) != 0)
            fail_msg("sample '%s' outside its family '%s'", name, typed);
        samples++;
    }
    assert_true(samples >= 20);
}

static void test_head_requests_have_no_body(void **state)
{
    fixture *f = *state;
    http_reply r;
    http(f->port, "HEAD", "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    http(f->port, "HEAD", "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
}

static void test_unknown_paths_are_404(void **state)
{
    fixture *f = *state;
    static const char *const paths[] = {"/", "/nope", "/healthz/", "/metrics/x", "/readyz?x"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        http_reply r;
        http(f->port, "GET", paths[i], &r);
        if (strcmp(paths[i], "/readyz?x") == 0) {
            /* the query string is not part of the path */
            assert_int_equal(r.status, 503);
            continue;
        }
        if (r.status != 404)
            fail_msg("GET %s: status %ld", paths[i], r.status);
    }
}

static void test_other_methods_are_405(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *method, *path;
    } cases[] = {
        {"POST", "/metrics"}, {"PUT", "/healthz"}, {"DELETE", "/readyz"}, {"PATCH", "/metrics"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_reply r;
        http(f->port, cases[i].method, cases[i].path, &r);
        if (r.status != 405)
            fail_msg("%s %s: status %ld", cases[i].method, cases[i].path, r.status);
        assert_string_equal(r.allow, "GET, HEAD");
    }
    http_reply r;
    http(f->port, "POST", "/elsewhere", &r);
    assert_int_equal(r.status, 404);
}

/* ---- start-up variants ------------------------------------------------- */

static void test_without_registry_or_readiness(void **state)
{
    (void)state;
    bz_admin_http *server;
    bz_error err = {0};
    assert_int_equal(bz_admin_http_start("127.0.0.1:0", NULL, NULL, NULL, &server, &err), BZ_OK);
    http_reply r;
    http(bz_admin_http_port(server), "GET", "/readyz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"ready\":true,\"checks\":[]}");
    http(bz_admin_http_port(server), "GET", "/metrics", &r);
    assert_int_equal(r.status, 404);
    bz_admin_http_stop(server);
    bz_admin_http_stop(NULL);
}

static void test_bad_listen_addresses_are_config_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {"nonsense", "127.0.0.1:", "127.0.0.1:70000",
                                      "127.0.0.1:abc", "999.1.1.1:80", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bz_admin_http *server = (bz_admin_http *)1;
        bz_error err = {0};
        bz_status st = bz_admin_http_start(bad[i], NULL, NULL, NULL, &server, &err);
        if (st != BZ_ERR_CONFIG)
            fail_msg("'%s': got %s (%s)", bad[i], bz_status_name(st), err.msg);
        assert_null(server);
        assert_non_null(strstr(err.msg, bad[i]));
    }
}

static void test_port_in_use_is_an_io_error(void **state)
{
    fixture *f = *state;
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)f->port);
    bz_admin_http *server = (bz_admin_http *)1;
    bz_error err = {0};
    assert_int_equal(bz_admin_http_start(listen, NULL, NULL, NULL, &server, &err), BZ_ERR_IO);
    assert_null(server);
    assert_non_null(strstr(err.msg, listen));
    assert_non_null(strstr(err.msg, "in use"));
}

static bool ipv6_loopback_available(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

static void test_ipv6_loopback(void **state)
{
    (void)state;
    if (!ipv6_loopback_available())
        skip();
    bz_admin_http *server;
    bz_error err = {0};
    assert_int_equal(bz_admin_http_start("[::1]:0", NULL, NULL, NULL, &server, &err), BZ_OK);
    http_reply r;
    http_on("[::1]", bz_admin_http_port(server), "GET", "/healthz", &r);
    assert_int_equal(r.status, 200);
    bz_admin_http_stop(server);
}

static int group_setup(void **state)
{
    (void)state;
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz_answers_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_flips_from_503_to_200, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_serves_exposition_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_requests_have_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_paths_are_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_methods_are_405, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_in_use_is_an_io_error, setup, teardown),
        cmocka_unit_test(test_without_registry_or_readiness),
        cmocka_unit_test(test_bad_listen_addresses_are_config_errors),
        cmocka_unit_test(test_ipv6_loopback),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
