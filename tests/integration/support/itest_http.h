/*
 * itest_http.h - one HTTP request from an integration test (libcurl), for
 * tests that talk to a service's HTTP endpoints; and a kept-alive
 * connection of the test's own, for what libcurl will not do on cue (a
 * second request on a connection opened before the server began to stop).
 */
#ifndef ITEST_HTTP_H
#define ITEST_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#include "core/metrics.h"
#include "core/status.h"

typedef struct itest_http_reply {
    long status;           /* 0 when no answer came within the timeout */
    char body[65536];      /* truncated to fit, NUL-terminated */
    size_t len;
    char retry_after[32];  /* the Retry-After header's value, "" without one */
    char location[2048];   /* the Location header's value (not followed), "" without one */
} itest_http_reply;

/* Send method to url with len bytes of body (NULL: none) and the header
 * lines in headers ("Name: value", NULL-terminated; NULL: none); wait at
 * most timeout_ms for the answer. Sends Expect: 100-continue only when
 * headers has that line (then the body waits for the server's go-ahead,
 * and an answer the headers decide comes before any of it). */
void itest_http(const char *method, const char *url, const void *body, size_t len,
                const char *const *headers, long timeout_ms, itest_http_reply *out);

/* A TCP connection to 127.0.0.1:port (fails the test otherwise); the
 * caller closes it. */
int itest_http_connect(int port);

/* Write the whole request (len bytes) to fd, or fail the test. */
void itest_http_write(int fd, const char *request, size_t len);

/* Read one HTTP/1.1 answer from fd within limit_ms: its status and body
 * (by Content-Length) into out. out->status is 0 when none came in time or
 * the server closed the connection first. */
void itest_http_read_answer(int fd, long limit_ms, itest_http_reply *out);

/* Poll http://127.0.0.1:<admin_port>/readyz until it answers want and its
 * body contains needle (NULL: any body), or fail the test after limit_ms,
 * naming log; fails at once when pid (0: none) has exited meanwhile. The
 * last answer is left in *out. */
void itest_wait_readyz(int admin_port, long want, const char *needle, pid_t pid, const char *log,
                       long limit_ms, itest_http_reply *out);

/* itest_wait_readyz for a service that just started: 200, any body. */
void itest_wait_ready(int admin_port, pid_t pid, const char *log, long limit_ms);

/* The header lines with which a gateway signs body for ingest's POST
 * /v1/events, as our gateways do (the timestamped mode, ARCHITECTURE.md
 * §9.2): lines = {content_type_line, X-Blazz-Gateway, X-Blazz-Timestamp
 * (now), X-Blazz-Key-Id, X-WhatsApp-Signature, NULL}. Fails only when
 * OpenSSL does; it calls no cmocka function, so threads may use it. */
typedef struct itest_gateway_headers {
    char gateway[160], timestamp[64], key_id[64], signature[128];
    const char *lines[6];
} itest_gateway_headers;

bz_status itest_gateway_sign(const char *gateway, const char *key, const void *body, size_t len,
                             const char *content_type_line, itest_gateway_headers *out);

/* The value of one sample of a service's /metrics on 127.0.0.1:admin_port,
 * named as its line starts ("name" or "name{labels}"); -1 when absent. */
double itest_metric(int admin_port, const char *sample);

/* The sum of every sample of metric name (whatever its labels) in reg's
 * rendered text, for a test that runs a library part with a registry of
 * its own; -1 when there is none. */
double itest_registry_metric(bz_metrics *reg, const char *name);

#endif
