/*
 * delivery.c - the libcurl multi driver (see delivery.h).
 *
 * The response body is counted and its first bytes kept; they are made
 * valid UTF-8 when the transfer finishes. Once more than
 * max_response_bytes arrived the write callback stops the transfer. The
 * status line and headers are in by then, so such a transfer still counts
 * as a response with its status (a receiver cannot hold a connection by
 * streaming an endless body).
 */
#include "delivery.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/clock.h"
#include "core/utf8.h"
#include "ssrf.h"

#define EASY_POOL_MAX 256

struct wh_delivery {
    wh_delivery_config cfg;
    CURLM *multi;
    CURL *pool[EASY_POOL_MAX];
    int npool;
    int running;
    wh_transfer *done_head, *done_tail;
};

static void address_text(const struct sockaddr *sa, char *buf, size_t cap)
{
    const void *addr =
        sa->sa_family == AF_INET6
            ? (const void *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr
            : (const void *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    if (!inet_ntop(sa->sa_family, addr, buf, (socklen_t)cap))
        snprintf(buf, cap, "?");
}

/* Runs after DNS resolution, for every address curl tries: the one place
 * where the address that will really be connected to is known. */
static curl_socket_t open_checked_socket(void *clientp, curlsocktype purpose,
                                         struct curl_sockaddr *a)
{
    wh_transfer *t = clientp;
    (void)purpose;
    wh_addr_class c = wh_addr_classify(&a->addr);
    if (!wh_addr_allowed(c, t->allow_private)) {
        char text[INET6_ADDRSTRLEN];
        address_text(&a->addr, text, sizeof text);
        snprintf(t->ssrf_reason, sizeof t->ssrf_reason,
                 "ssrf guard: refused to connect to %s (%s); private targets are not allowed "
                 "(webhook.allow_private_targets)",
                 text, wh_addr_class_name(c));
        t->ssrf_refused = true;
        return CURL_SOCKET_BAD;
    }
    t->address_allowed = true;
    return socket(a->family, a->socktype, a->protocol);
}

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    wh_transfer *t = userp;
    size_t len = size * n;
    if (t->received < sizeof t->snippet - 1) {
        size_t room = sizeof t->snippet - 1 - t->received;
        size_t take = len < room ? len : room;
        memcpy(t->snippet + t->received, data, take);
        t->snippet[t->received + take] = '\0';
    }
    t->received += len;
    if (t->received > t->max_response_bytes) {
        t->truncated = true;
        return 0; /* stop reading: CURLE_WRITE_ERROR, handled as a response */
    }
    return len;
}

static size_t on_header(char *line, size_t size, size_t n, void *userp)
{
    wh_transfer *t = userp;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && strncasecmp(line, name, sizeof name - 1) == 0) {
        char value[128];
        size_t vlen = len - (sizeof name - 1);
        if (vlen >= sizeof value)
            vlen = sizeof value - 1;
        memcpy(value, line + sizeof name - 1, vlen);
        value[vlen] = '\0';
        while (vlen > 0 && isspace((unsigned char)value[vlen - 1]))
            value[--vlen] = '\0';
        t->retry_after_ms = wh_parse_retry_after(value, bz_wall_ms());
    }
    return len;
}

bz_status wh_delivery_new(const wh_delivery_config *cfg, wh_delivery **out,
                             bz_error *err)
{
    wh_delivery *d = calloc(1, sizeof *d);
    if (!d)
        return bz_fail(err, BZ_ERR_NOMEM, "delivery: out of memory");
    d->cfg = *cfg;
    d->multi = curl_multi_init();
    if (!d->multi) {
        free(d);
        return bz_fail(err, BZ_ERR_INTERNAL, "delivery: curl_multi_init failed");
    }
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS,
                      (long)(cfg->max_connections > 0 ? cfg->max_connections : 256));
    *out = d;
    return BZ_OK;
}

static void release_easy(wh_delivery *d, CURL *easy)
{
    if (d->npool < EASY_POOL_MAX)
        d->pool[d->npool++] = easy;
    else
        curl_easy_cleanup(easy);
}

void wh_delivery_free(wh_delivery *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->npool; i++)
        curl_easy_cleanup(d->pool[i]);
    curl_multi_cleanup(d->multi);
    free(d);
}

static CURL *take_easy(wh_delivery *d)
{
    if (d->npool > 0) {
        CURL *e = d->pool[--d->npool];
        curl_easy_reset(e);
        return e;
    }
    return curl_easy_init();
}

static int configure(wh_delivery *d, wh_transfer *t, CURL *e)
{
    int rc = 0;
    rc |= curl_easy_setopt(e, CURLOPT_URL, t->url);
    rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    rc |= curl_easy_setopt(e, CURLOPT_POST, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
    rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_len);
    rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    rc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(e, CURLOPT_PROXY, "");
    rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* Without it, an attempt that ends while its name is being resolved
     * (its timeout, a stop) makes libcurl join the resolver thread: the
     * worker's whole loop, every endpoint's deliveries, waits on one
     * endpoint's DNS server, as long as it stays silent. With it the
     * thread is left to finish alone and frees what it holds. The price,
     * in a process that does not exit then: such threads live on until
     * their lookups give up (an endpoint's circuit opens after
     * webhook.circuit.timeouts_to_open timeouts, bounding how many one
     * endpoint leaves), and libcurl before 8.14 can read the thread's
     * state after the thread freed it when the lookup ends at the very
     * instant of the cancel (curl PR #17320): a rare crash, after which
     * the claims fall due again. README: "One endpoint's DNS". */
    rc |= curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)d->cfg.connect_timeout_ms);
    rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
    rc |= curl_easy_setopt(e, CURLOPT_USERAGENT, d->cfg.user_agent);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    rc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_checked_socket);
    rc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    if (d->cfg.resolve)
        rc |= curl_easy_setopt(e, CURLOPT_RESOLVE, d->cfg.resolve);
    return rc;
}

bz_status wh_delivery_start(wh_delivery *d, wh_transfer *t, bz_error *err)
{
    t->transport = WH_T_OTHER;
    t->http_status = 0;
    t->retry_after_ms = -1;
    t->error[0] = t->snippet[0] = t->ssrf_reason[0] = '\0';
    t->received = 0;
    t->truncated = t->ssrf_refused = t->address_allowed = false;
    t->allow_private = d->cfg.allow_private_targets;
    t->max_response_bytes = d->cfg.max_response_bytes;
    t->next_done = NULL;
    t->easy = take_easy(d);
    if (!t->easy || configure(d, t, t->easy) != 0 ||
        curl_multi_add_handle(d->multi, t->easy) != CURLM_OK) {
        if (t->easy)
            curl_easy_cleanup(t->easy);
        t->easy = NULL;
        curl_slist_free_all(t->headers);
        t->headers = NULL;
        return bz_fail(err, BZ_ERR_INTERNAL, "start delivery to %s: libcurl refused the transfer",
                       t->url);
    }
    d->running++;
    return BZ_OK;
}

static void finish(wh_delivery *d, CURL *e, CURLcode code)
{
    wh_transfer *t = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &t->http_status);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &t->seconds);
    bz_utf8_scrub(t->snippet);
    if (t->ssrf_refused && !t->address_allowed) {
        t->transport = WH_T_SSRF;
        snprintf(t->error, sizeof t->error, "%s", t->ssrf_reason);
    } else if (code == CURLE_WRITE_ERROR && t->truncated && t->http_status > 0) {
        t->transport = WH_T_RESPONSE;
    } else {
        t->transport = wh_transport_from_curl((int)code);
        if (t->transport == WH_T_RESPONSE && t->http_status == 0)
            t->transport = WH_T_OTHER;
        if (code != CURLE_OK)
            snprintf(t->error, sizeof t->error, "%s", curl_easy_strerror(code));
    }
    curl_multi_remove_handle(d->multi, e);
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    t->easy = NULL;
    release_easy(d, e);
    d->running--;
    if (d->done_tail)
        d->done_tail->next_done = t;
    else
        d->done_head = t;
    d->done_tail = t;
}

void wh_delivery_poll(wh_delivery *d, int timeout_ms, int extra_fd, bool *extra_ready)
{
    struct curl_waitfd extra = {.fd = extra_fd, .events = CURL_WAIT_POLLIN, .revents = 0};
    int numfds = 0, still = 0;
    curl_multi_poll(d->multi, extra_fd >= 0 ? &extra : NULL, extra_fd >= 0 ? 1 : 0,
                    timeout_ms < 0 ? 0 : timeout_ms, &numfds);
    if (extra_ready)
        *extra_ready = extra_fd >= 0 && (extra.revents & CURL_WAIT_POLLIN);
    curl_multi_perform(d->multi, &still);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(d->multi, &left)))
        if (m->msg == CURLMSG_DONE)
            finish(d, m->easy_handle, m->data.result);
}

void wh_delivery_wakeup(wh_delivery *d)
{
    curl_multi_wakeup(d->multi);
}

void wh_delivery_cancel(wh_delivery *d, wh_transfer *t)
{
    if (!t->easy)
        return;
    curl_multi_remove_handle(d->multi, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    t->easy = NULL;
    d->running--;
}

wh_transfer *wh_delivery_next_done(wh_delivery *d)
{
    wh_transfer *t = d->done_head;
    if (t) {
        d->done_head = t->next_done;
        if (!d->done_head)
            d->done_tail = NULL;
        t->next_done = NULL;
    }
    return t;
}

int wh_delivery_running(const wh_delivery *d)
{
    return d->running;
}
