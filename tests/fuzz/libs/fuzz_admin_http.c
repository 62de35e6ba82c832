/*
 * fuzz_admin_http.c - what the admin HTTP server every service runs
 * (libs/core/admin_http.c) answers: /healthz, /readyz, /metrics.
 *
 * The server's own behaviour is bz_admin_http_answer (method and path in,
 * status, type and body out); libmicrohttpd only parses the bytes around it
 * and is not instrumented, so driving a real server per input explored
 * little at great cost (76 inputs a second). This drives the answer
 * directly, thousands of times faster; the services' integration tests
 * reach the same function through real servers.
 *
 * Input: a count byte, then that many readiness checks (an ok byte, a name
 * and a detail, each NUL-terminated), then a request line: the method up to
 * the first space, the path up to the next space, '?' or line end, as
 * libmicrohttpd hands them to the handler. Properties: an unknown path is
 * 404 and a known one 405 to any method but GET and HEAD (both text); a
 * served /healthz is "ok\n"; /readyz reports exactly the checks the service
 * gave (capped at BZ_READINESS_MAX_CHECKS) as JSON, each with its verdict,
 * ready only when all are ok, 200 or 503 accordingly; /metrics is the
 * registry's text; every body is len bytes. Accepted means the request was
 * served (a known path, GET or HEAD).
 */
#include <string.h>

#include <jansson.h>

#include "core/admin_http.h"
#include "core/metrics.h"
#include "fuzz_target.h"

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

static bz_metrics *registry(void)
{
    static bz_metrics *r;
    if (!r) {
        bz_counter *inputs;
        BZ_FUZZ_CHECK(bz_metrics_new(&r, NULL) == BZ_OK);
        BZ_FUZZ_CHECK(bz_metrics_counter(r, BZ_METRIC("blazz_fuzz_total", "Inputs."), &inputs,
                                         NULL) == BZ_OK);
        bz_counter_inc(inputs);
    }
    return r;
}

static void check_readiness_report(const bz_admin_answer *a)
{
    size_t shown = nchecks < BZ_READINESS_MAX_CHECKS ? nchecks : BZ_READINESS_MAX_CHECKS;
    int ready = 1;
    for (size_t i = 0; i < shown; i++)
        ready = ready && checks[i].ok;
    BZ_FUZZ_CHECK(a->status == (ready ? 200u : 503u));
    BZ_FUZZ_CHECK(strcmp(a->content_type, "application/json") == 0);
    json_t *doc = json_loadb(a->body, a->len, 0, NULL);
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
}

/* The answer's properties for method and path; whether it was served. */
static int check_answer(const char *method, const char *path, const bz_admin_answer *a)
{
    BZ_FUZZ_CHECK(a->body != NULL && a->content_type != NULL);
    BZ_FUZZ_CHECK(!a->owned || a->owned == a->body);
    int health = strcmp(path, "/healthz") == 0, ready = strcmp(path, "/readyz") == 0;
    int metrics = strcmp(path, "/metrics") == 0;
    int readable = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!health && !ready && !metrics) {
        BZ_FUZZ_CHECK(a->status == 404);
        return BZ_FUZZ_REJECTED;
    }
    if (!readable) {
        BZ_FUZZ_CHECK(a->status == 405);
        return BZ_FUZZ_REJECTED;
    }
    if (health)
        BZ_FUZZ_CHECK(a->status == 200 && a->len == 3 && memcmp(a->body, "ok\n", 3) == 0);
    else if (ready)
        check_readiness_report(a);
    else
        BZ_FUZZ_CHECK(a->status == 200 && memmem(a->body, a->len, "blazz_fuzz_total 1", 18));
    return BZ_FUZZ_ACCEPTED;
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
    /* the request line, cut in place: method, path (its query dropped) */
    char *method = copy + (at < size ? at : size);
    char *path = method + strcspn(method, " \r\n");
    if (*path == ' ')
        *path++ = '\0';
    else
        *path = '\0';
    path[strcspn(path, " ?\r\n")] = '\0';
    bz_admin_answer a;
    bz_admin_http_answer(method, path, registry(), readiness, NULL, &a);
    int served = check_answer(method, path, &a);
    free(a.owned);
    nchecks = 0;
    free(copy);
    return served;
}

static const bz_fuzz_expect expect[] = {
    {"healthz", BZ_FUZZ_ACCEPTED},
    {"readyz_two_checks", BZ_FUZZ_ACCEPTED},
    {"post_healthz", BZ_FUZZ_REJECTED},
    {"garbage", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_admin_http, expect)
