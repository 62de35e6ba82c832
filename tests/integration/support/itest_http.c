/*
 * itest_http.c - one HTTP request from an integration test (see
 * itest_http.h). libcurl's global state must be initialised by the test
 * (curl_global_init), as for any other use of libcurl.
 */
#include "itest_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static size_t collect_body(char *data, size_t size, size_t n, void *ctx)
{
    itest_http_reply *r = ctx;
    size_t bytes = size * n, room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, data, bytes < room ? bytes : room);
    r->len += bytes < room ? bytes : room;
    r->body[r->len] = '\0';
    return bytes;
}

static size_t collect_header(char *data, size_t size, size_t n, void *ctx)
{
    itest_http_reply *r = ctx;
    size_t bytes = size * n;
    if (bytes > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        snprintf(r->retry_after, sizeof r->retry_after, "%.*s", (int)(bytes - 12), data + 12);
        r->retry_after[strcspn(r->retry_after, "\r\n")] = '\0';
    }
    return bytes;
}

void itest_http(const char *method, const char *url, const void *body, size_t len,
                const char *const *headers, long timeout_ms, itest_http_reply *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    struct curl_slist *lines = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++)
        lines = curl_slist_append(lines, headers[i]);
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
