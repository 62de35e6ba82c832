/*
 * jobs.c - one Graph API request of the sender thread: the job that carries
 * a claimed meta_sends row from its claim to its outcome.
 *
 * A job holds the row (its decoded SendMessage), the account it is sent
 * for, the JSON body, and one libcurl easy handle configured for
 * POST {base}/{version}/{phone_number_id}/messages: keep-alive, no proxy,
 * no redirects, http(s) only, the request and connect timeouts of the
 * configuration. The access token only ever sits in the Authorization
 * header, which is cleansed before it is freed. The answer is collected up
 * to RESPONSE_MAX (Meta's answers are small; the rest of a huge one is not
 * read). Running jobs form a doubly linked list on the worker so shutdown
 * can find the requests still out; finished ones wait on the done list.
 */
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
    free(j->resp);
    if (j->row.m)
        blazz__v1__send_message__free_unpacked(j->row.m, NULL);
    free(j->row.key);
    free(j->row.msg_key);
    free(j);
}

static size_t on_response(char *data, size_t size, size_t nmemb, void *arg)
{
    ms_job *j = arg;
    size_t n = size * nmemb;
    if (j->resp_len + n > RESPONSE_MAX)
        return n; /* Meta's answers are small; the rest of a huge one is not read */
    char *grown = realloc(j->resp, j->resp_len + n + 1);
    if (!grown)
        return 0;
    j->resp = grown;
    memcpy(j->resp + j->resp_len, data, n);
    j->resp_len += n;
    j->resp[j->resp_len] = '\0';
    return n;
}

/* The easy handle of a request to POST {base}/{version}/{phone_number_id}/messages. */
bz_status ms_job_prepare(ms_worker *w, ms_job *j, bz_error *err)
{
    const ms_settings *s = w->s;
    char url[1024], auth[4096];
    snprintf(url, sizeof url, "%s/%s/%s/messages", s->base_url, s->api_version,
             j->acc->phone_number_id);
    int n = snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->acc->token);
    j->easy = curl_easy_init();
    if (n < 0 || (size_t)n >= sizeof auth || !j->easy)
        return bz_fail(err, BZ_ERR_NOMEM, "request for send %s: cannot build it", j->row.key);
    j->headers = curl_slist_append(NULL, auth);
    OPENSSL_cleanse(auth, sizeof auth);
    j->headers = curl_slist_append(j->headers, "Content-Type: application/json");
    CURL *e = j->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_response);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->request_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    return BZ_OK;
}
