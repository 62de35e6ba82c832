/*
 * admin_http.c - /healthz, /readyz and /metrics over libmicrohttpd (see
 * admin_http.h).
 *
 * libmicrohttpd runs one internal polling thread; every request is answered
 * in full on the first call of the access handler (none of the endpoints
 * takes a body), so there is no per-connection state. What a request is
 * answered is decided apart from the server (bz_admin_http_answer), which
 * the fuzz target drives without a socket. Requests are cheap: /metrics
 * renders the registry into a heap buffer handed to MHD to free, /readyz
 * builds its report on the stack.
 *
 * The address is resolved here rather than by MHD so that a bad "host:port"
 * gets a precise message. MHD reports bind failures only through its logger,
 * so the logger keeps the last message seen before the daemon is up and the
 * start-up error quotes it; once running, MHD's messages go to the JSON log.
 */
#include "admin_http.h"

#include <jansson.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "utf8.h"

#define ADMIN_CONNECTION_LIMIT 64
#define ADMIN_CONNECTION_TIMEOUT_S 10

static const char METRICS_CONTENT_TYPE[] = "text/plain; version=0.0.4; charset=utf-8";

typedef struct readiness_check {
    char name[32];
    bool ok;
    char detail[128];
} readiness_check;

struct bz_readiness {
    size_t n;
    readiness_check checks[BZ_READINESS_MAX_CHECKS];
};

struct bz_admin_http {
    struct MHD_Daemon *daemon;
    bz_metrics *registry;
    bz_readiness_fn readiness;
    void *readiness_ctx;
    uint16_t port;
    atomic_bool running;
    char start_error[256];
};

void bz_readiness_add(bz_readiness *report, const char *name, bool ok, const char *fmt, ...)
{
    if (report->n >= BZ_READINESS_MAX_CHECKS)
        return;
    readiness_check *c = &report->checks[report->n++];
    snprintf(c->name, sizeof c->name, "%s", name ? name : "");
    c->ok = ok;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof c->detail, fmt, ap);
    va_end(ap);
    /* Truncation can cut a character and a detail can quote anything (a
     * server's localized error); the JSON body would then drop the check. */
    bz_utf8_scrub(c->name);
    bz_utf8_scrub(c->detail);
}

/* ---- answers ----------------------------------------------------------- */

static void answer_text(bz_admin_answer *out, unsigned status, const char *text)
{
    *out = (bz_admin_answer){.status = status, .content_type = "text/plain; charset=utf-8",
                             .body = text, .len = strlen(text)};
}

/* The answer takes over heap text (NULL: memory ran out, 500). */
static void answer_owned(bz_admin_answer *out, unsigned status, const char *content_type,
                         char *text, size_t len)
{
    if (!text) {
        answer_text(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return;
    }
    *out = (bz_admin_answer){.status = status, .content_type = content_type, .body = text,
                             .len = len, .owned = text};
}

static void answer_metrics(bz_metrics *registry, bz_admin_answer *out)
{
    if (!registry) {
        answer_text(out, MHD_HTTP_NOT_FOUND, "no metrics registry\n");
        return;
    }
    char *text = NULL;
    size_t len = 0;
    if (bz_metrics_render(registry, &text, &len) != BZ_OK)
        text = NULL;
    answer_owned(out, MHD_HTTP_OK, METRICS_CONTENT_TYPE, text, len);
}

static char *readiness_json(const bz_readiness *report, bool ready)
{
    json_t *checks = json_array();
    for (size_t i = 0; checks && i < report->n; i++) {
        const readiness_check *c = &report->checks[i];
        json_array_append_new(checks, json_pack("{s:s, s:b, s:s}", "name", c->name, "ok", c->ok,
                                                "detail", c->detail));
    }
    json_t *body = json_pack("{s:b, s:o}", "ready", ready, "checks", checks);
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    return text;
}

static void answer_readiness(bz_readiness_fn readiness, void *ctx, bz_admin_answer *out)
{
    bz_readiness report = {0};
    if (readiness)
        readiness(ctx, &report);
    bool ready = true;
    for (size_t i = 0; i < report.n; i++)
        ready = ready && report.checks[i].ok;
    char *text = readiness_json(&report, ready);
    answer_owned(out, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                 text, text ? strlen(text) : 0);
}

void bz_admin_http_answer(const char *method, const char *url, bz_metrics *registry,
                          bz_readiness_fn readiness, void *ctx, bz_admin_answer *out)
{
    bool is_health = strcmp(url, "/healthz") == 0;
    bool is_ready = strcmp(url, "/readyz") == 0;
    bool is_metrics = strcmp(url, "/metrics") == 0;
    if (!is_health && !is_ready && !is_metrics)
        answer_text(out, MHD_HTTP_NOT_FOUND, "not found\n");
    else if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        answer_text(out, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    else if (is_health)
        answer_text(out, MHD_HTTP_OK, "ok\n");
    else if (is_ready)
        answer_readiness(readiness, ctx, out);
    else
        answer_metrics(registry, out);
}

/* ---- libmicrohttpd ------------------------------------------------------- */

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    bz_admin_http *server = cls;
    bz_admin_answer a;
    bz_admin_http_answer(method, url, server->registry, server->readiness, server->readiness_ctx,
                         &a);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        a.len, a.owned ? (void *)a.owned : (void *)a.body,
        a.owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(a.owned);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a.content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (a.status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result r = MHD_queue_response(conn, a.status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* ---- start and stop ---------------------------------------------------- */

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    bz_admin_http *server = cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    if (atomic_load(&server->running))
        bz_log(BZ_LOG_WARN, "admin http: %s", msg);
    else
        snprintf(server->start_error, sizeof server->start_error, "%s", msg);
}

/* Split "host:port" / "[v6]:port" / ":port" and resolve it to one address.
 * *out is freed with freeaddrinfo. */
static bz_status resolve_listen(const char *listen, struct addrinfo **out, bz_error *err)
{
    char host[256];
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || !colon[1])
        return bz_fail(err, BZ_ERR_CONFIG, "admin http listen '%s': expected host:port",
                       listen ? listen : "(null)");
    size_t host_len = (size_t)(colon - listen);
    const char *host_start = listen;
    if (host_len >= 2 && listen[0] == '[' && colon[-1] == ']') {
        host_start++;
        host_len -= 2;
    }
    if (host_len >= sizeof host)
        return bz_fail(err, BZ_ERR_CONFIG, "admin http listen '%s': host too long", listen);
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    const char *port = colon + 1;
    char *end;
    long port_num = strtol(port, &end, 10);
    if (*end != '\0' || port_num < 0 || port_num > 65535)
        return bz_fail(err, BZ_ERR_CONFIG, "admin http listen '%s': bad port '%s'", listen, port);

    /* Numeric hosts only: a library should not wait on DNS at start-up. */
    if (host_len == 0)
        snprintf(host, sizeof host, "0.0.0.0");
    else if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, out);
    if (rc == EAI_NONAME)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "admin http listen '%s': host must be a numeric IPv4 or IPv6 address "
                       "or localhost", listen);
    if (rc != 0)
        return bz_fail(err, BZ_ERR_CONFIG, "admin http listen '%s': %s", listen,
                       gai_strerror(rc));
    return BZ_OK;
}

bz_status bz_admin_http_start(const char *listen, bz_metrics *registry,
                              bz_readiness_fn readiness, void *readiness_ctx,
                              bz_admin_http **out, bz_error *err)
{
    *out = NULL;
    struct addrinfo *ai;
    bz_status st = resolve_listen(listen, &ai, err);
    if (st != BZ_OK)
        return st;
    bz_admin_http *server = calloc(1, sizeof *server);
    if (!server) {
        freeaddrinfo(ai);
        return bz_fail(err, BZ_ERR_NOMEM, "admin http %s: out of memory", listen);
    }
    server->registry = registry;
    server->readiness = readiness;
    server->readiness_ctx = readiness_ctx;

    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    uint16_t port;
    if (ai->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
        port = ntohs(((struct sockaddr_in6 *)ai->ai_addr)->sin6_port);
    } else {
        port = ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port);
    }
    /* MHD binds ai_addr; the port argument only makes its messages right.
     * The logger first: MHD warns about any option placed before it. */
    server->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, handle_request, server, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger,
        server, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)ADMIN_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)ADMIN_CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!server->daemon) {
        st = bz_fail(err, BZ_ERR_IO, "admin http %s: cannot start: %s", listen,
                     server->start_error[0] ? server->start_error : "unknown error");
        free(server);
        return st;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
    server->port = info ? info->port : 0;
    atomic_store(&server->running, true);
    *out = server;
    return BZ_OK;
}

uint16_t bz_admin_http_port(const bz_admin_http *server)
{
    return server->port;
}

void bz_admin_http_stop(bz_admin_http *server)
{
    if (!server)
        return;
    MHD_stop_daemon(server->daemon);
    free(server);
}
