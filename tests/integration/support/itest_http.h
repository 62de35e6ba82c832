/*
 * itest_http.h - one HTTP request from an integration test (libcurl), for
 * tests that talk to a service's HTTP endpoints.
 */
#ifndef ITEST_HTTP_H
#define ITEST_HTTP_H

#include <stddef.h>

typedef struct itest_http_reply {
    long status;           /* 0 when no answer came within the timeout */
    char body[65536];      /* truncated to fit, NUL-terminated */
    size_t len;
    char retry_after[32];  /* the Retry-After header's value, "" without one */
} itest_http_reply;

/* Send method to url with len bytes of body (NULL: none) and the header
 * lines in headers ("Name: value", NULL-terminated; NULL: none); wait at
 * most timeout_ms for the answer. Never sends Expect: 100-continue. */
void itest_http(const char *method, const char *url, const void *body, size_t len,
                const char *const *headers, long timeout_ms, itest_http_reply *out);

#endif
