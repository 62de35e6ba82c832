/*
 * jobs.c - one Graph API request of the sender thread: the job that carries
 * a claimed meta_sends row from its claim to its outcome.
 *
 * A job holds the row (its decoded SendMessage), the account it is sent
 * for, the JSON body, and one libcurl easy handle configured for
 * POST {base}/{version}/{phone_number_id}/messages: keep-alive (a
 * connection idle longer than meta.connection_max_idle_s is not reused),
 * no proxy, no redirects, http(s) only, the request and connect timeouts
 * of the configuration. The access token only ever sits in the
 * Authorization header, which is cleansed before it is freed. The answer
 * is collected up to RESPONSE_MAX (Meta's answers are small; the rest of a
 * huge one is not read). Running jobs form a doubly linked list on the
 * worker so shutdown can find the requests still out; finished ones wait
 * on the done list.
 *
 * The body goes out through a read callback, never CURLOPT_POSTFIELDS, so
 * that libcurl cannot send a request twice behind our back. When a reused
 * keep-alive connection closes before any byte of an answer, libcurl
 * (7.88, Curl_retry_request) sends the request again on a fresh
 * connection by itself: with POSTFIELDS silently, a second message if Meta
 * had processed the first. With a read callback it must first rewind the
 * body, and asks CURLOPT_SEEKFUNCTION; refusing makes the transfer fail
 * (CURLE_SEND_FAIL_REWIND) before anything is sent on the new connection,
 * and the job knows its request left and lost its answer: ambiguous, held
 * and checked like any lost answer (ARCHITECTURE.md §12.2). So every
 * request that leaves is one the pace counted.
 */
#include <inttypes.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "active_sender.h"

#define RESPONSE_MAX (64 * 1024)

int ms_job_list_push(ms_job_list *l, ms_job *j)
{
    if (!bz_grow((void **)&l->items, &l->cap, l->n + 1, sizeof(ms_job *), 64))
        return -1;
    l->items[l->n++] = j;
    return 0;
}

void ms_worker_link_running(ms_worker *w, ms_job *j)
{
    j->next = w->running_head;
    if (j->next)
        j->next->prev = j;
    j->prev = NULL;
    w->running_head = j;
    w->running++;
}

void ms_worker_unlink_running(ms_worker *w, ms_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        w->running_head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
    w->running--;
}

static void cleanse_headers(struct curl_slist *h)
{
    for (; h; h = h->next)
        OPENSSL_cleanse(h->data, strlen(h->data));
}

void ms_job_free(ms_job *j)
{
    if (!j)
        return;
    if (j->easy)
        curl_easy_cleanup(j->easy);
    cleanse_headers(j->headers);
    curl_slist_free_all(j->headers);
    free(j->body);
    bz_bytes_free(&j->resp);
    if (j->row.m)
        blazz__v1__send_message__free_unpacked(j->row.m, NULL);
    free(j->row.key);
    free(j->row.msg_key);
    free(j);
}

/* libcurl reads the body from here, once. */
static size_t read_body(char *buf, size_t size, size_t nitems, void *arg)
{
    ms_job *j = arg;
    size_t room = size * nitems, left = j->body_len - j->body_read;
    size_t n = left < room ? left : room;
    memcpy(buf, j->body + j->body_read, n);
    j->body_read += n;
    return n;
}

/* libcurl wants the body again: it is about to re-send the request by
 * itself. Refused; the job becomes ambiguous (see the file comment). */
static int refuse_rewind(void *arg, curl_off_t offset, int origin)
{
    ms_job *j = arg;
    (void)offset;
    (void)origin;
    j->resend_refused = 1;
    return CURL_SEEKFUNC_CANTSEEK;
}

static size_t on_response(char *data, size_t size, size_t nmemb, void *arg)
{
    ms_job *j = arg;
    size_t n = size * nmemb;
    bz_error err;
    bz_status st = bz_bytes_append(&j->resp, data, n, RESPONSE_MAX, &err);
    /* Meta's answers are small; the rest of a huge one is not read */
    return st == BZ_OK || st == BZ_ERR_INVALID ? n : 0;
}

/* Meta's phone number ids are digits. The id is a path segment of the
 * URL the account's token is sent to: "1/../../other" or "1?x" would send
 * it, and the message, elsewhere on the Graph host. */
int ms_is_phone_number_id(const char *id)
{
    size_t n = strspn(id, "0123456789");
    return n > 0 && n <= 32 && id[n] == '\0';
}

/* The easy handle of a request to POST {base}/{version}/{phone_number_id}/messages. */
bz_status ms_job_prepare(ms_worker *w, ms_job *j, bz_error *err)
{
    const ms_settings *s = w->s;
    char url[1024], auth[4096];
    if (!ms_is_phone_number_id(j->acc->phone_number_id))
        return bz_reject(err, "invalid_phone_number_id",
                         "account %" PRId64 "'s session_id is not a Meta phone number id (1 to "
                         "32 digits); nothing was sent",
                         j->acc->id);
    snprintf(url, sizeof url, "%s/%s/%s/messages", s->base_url, s->api_version,
             j->acc->phone_number_id);
    int n = snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->acc->token);
    j->easy = curl_easy_init();
    if (n < 0 || (size_t)n >= sizeof auth || !j->easy)
        return bz_fail(err, BZ_ERR_NOMEM, "request for send %s: cannot build it", j->row.key);
    j->headers = curl_slist_append(NULL, auth);
    OPENSSL_cleanse(auth, sizeof auth);
    j->headers = curl_slist_append(j->headers, "Content-Type: application/json");
    /* the body follows the headers at once: no 100-continue round trip */
    j->headers = curl_slist_append(j->headers, "Expect:");
    j->body_len = strlen(j->body);
    CURL *e = j->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(e, CURLOPT_READDATA, j);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, refuse_rewind);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, j);
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)s->connection_max_idle_s);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_response);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    ms_curl_graph_options(e, s->request_timeout_ms, s->connect_timeout_ms);
    return BZ_OK;
}

void ms_curl_graph_options(CURL *e, int64_t timeout_ms, int64_t connect_timeout_ms)
{
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}
