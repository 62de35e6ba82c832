/*
 * http_api.c - the public HTTP endpoints (see http_api.h).
 *
 * libmicrohttpd runs a few event-loop threads (epoll); a connection costs a
 * socket and a small memory pool, never a thread, so slow clients cannot
 * use up the threads that answer gateways. The guard (http_guard.h) is told
 * about each connection's life by three MHD callbacks: connection opened
 * and closed, and the request line (MHD's URI logger, which also creates
 * the request's state); it refuses connections over their address's limit
 * and cuts those that miss a deadline.
 *
 * What a request goes through, from its request line to its answer, is
 * http_request.c's; this file holds the server: its start and stop, the
 * connections and libmicrohttpd's own messages.
 */
#include "http_api.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "crm/crm_api.h"
#include "http_listen.h"
#include "http_request.h"

#define SHUTDOWN_GRACE_MS 2000
#define LOG_EVERY_MS 10000

/* ---- libmicrohttpd callbacks -------------------------------------------------- */

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    ing_http_api *api = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        ing_http_guard_closed(api->guard, *socket_context);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *addr =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    *socket_context = fd ? ing_http_guard_opened(api->guard, fd->connect_fd,
                                                addr ? addr->client_addr : NULL)
                         : NULL;
}

/* libmicrohttpd reports every client that hangs up mid-request, which a
 * listener under pressure sees hundreds of times a second (the guard's cuts
 * among them). At most one of its messages per LOG_EVERY_MS is a warning;
 * the others are debug lines, counted in the next warning. */
static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    ing_http_api *api = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    int64_t now = bz_monotonic_ms();
    pthread_mutex_lock(&api->log_mu);
    int warn = now - api->warned_ms >= LOG_EVERY_MS, quieted = api->quieted;
    if (warn) {
        api->warned_ms = now;
        api->quieted = 0;
    } else {
        api->quieted++;
    }
    pthread_mutex_unlock(&api->log_mu);
    if (!warn)
        bz_debug("ingest http: %s", line);
    else if (quieted > 0)
        bz_warn("ingest http: %s (and %d more libmicrohttpd messages, at debug level)", line,
                quieted);
    else
        bz_warn("ingest http: %s", line);
}

/* ---- lifecycle ---------------------------------------------------------- */

static bz_status start_daemon(ing_http_api *api, const struct sockaddr_storage *addr, int ipv6,
                              bz_error *err)
{
    const ing_http_api_config *cfg = &api->cfg;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
    /* The logger first: MHD warns about any option placed before it. */
    api->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, ing_http_on_request, api, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, api,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)cfg->threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout_s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, api, MHD_OPTION_URI_LOG_CALLBACK,
        ing_http_on_request_line, api, MHD_OPTION_NOTIFY_COMPLETED, ing_http_on_completed, api,
        MHD_OPTION_END);
    if (!api->daemon)
        return bz_fail(err, BZ_ERR_IO, "ingest http: cannot listen on %s", cfg->listen);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
    api->port = info ? info->port : 0;
    info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    if (info)
        ing_http_guard_watch_listener(api->guard, info->listen_fd);
    return BZ_OK;
}

bz_status ing_http_api_start(const ing_http_api_config *cfg, ing_http_api **out, bz_error *err)
{
    struct sockaddr_storage addr;
    int ipv6 = 0;
    bz_status st = ing_http_listen_parse(cfg->listen, &addr, &ipv6, err);
    if (st == BZ_OK)
        st = ing_http_raise_open_files(cfg->max_connections, err);
    if (st != BZ_OK)
        return st;
    ing_http_api *api = calloc(1, sizeof *api);
    if (!api)
        return bz_fail(err, BZ_ERR_NOMEM, "ingest http: out of memory");
    api->cfg = *cfg;
    pthread_mutex_init(&api->log_mu, NULL);
    api->warned_ms = INT64_MIN / 2;
    ing_http_guard_config gcfg = {.max_connections = cfg->max_connections,
                                 .max_per_address = cfg->max_connections_per_address,
                                 .idle_timeout_ms = cfg->idle_timeout_s * 1000,
                                 .request_deadline_ms = cfg->request_deadline_s * 1000,
                                 .min_body_rate = cfg->min_upload_rate,
                                 .max_buffered_bytes = cfg->max_buffered_bytes,
                                 .max_buffered_per_address = cfg->max_buffered_per_address,
                                 .metrics = cfg->metrics};
    ing_http_producer_config pcfg = {.brokers = cfg->brokers, .main_topic = cfg->sync_topic,
                                    .produce_timeout_ms = cfg->produce_timeout_ms,
                                    .linger_ms = cfg->linger_ms};
    st = ing_http_guard_new(&gcfg, &api->guard, err);
    if (st == BZ_OK)
        st = ing_http_producer_new(&pcfg, &api->producer, err);
    ing_http_router_config rcfg = {.sessions = cfg->sessions, .sync_topic = cfg->sync_topic,
                                   .dlq_topic = cfg->dlq_topic, .raw_topic = cfg->raw_topic,
                                   .default_cc = cfg->default_cc,
                                   .max_future_ms = cfg->max_future_ms,
                                   .producer = api->producer, .metrics = cfg->metrics};
    if (st == BZ_OK)
        st = ing_http_router_start(&rcfg, &api->router, err);
    if (st == BZ_OK)
        st = start_daemon(api, &addr, ipv6, err);
    if (st != BZ_OK) {
        ing_http_api_stop(api);
        return st;
    }
    *out = api;
    return BZ_OK;
}

/* Let the requests in progress get their answers: those waiting for the
 * broker (each at most produce_timeout_ms and a second), then those being
 * written. A CRM worker's request holds its connection suspended until the
 * worker is done with it, which libmicrohttpd must see before it stops:
 * those are waited for to the end (each is bounded by the worker's own
 * PostgreSQL and broker timeouts). The listener is closed, but a kept-alive
 * connection may still bring a request: once the waiting is over none is
 * suspended any more (answered 503 at once), as libmicrohttpd aborts when
 * stopped with a suspended connection. Last, the answers given meanwhile
 * are let out (at most SHUTDOWN_GRACE_MS). */
static void finish_requests(ing_http_api *api)
{
    int64_t deadline = bz_monotonic_ms() + api->cfg.produce_timeout_ms + SHUTDOWN_GRACE_MS;
    while ((ing_http_producer_waiting(api->producer) > 0 ||
            ing_http_guard_handling(api->guard) > 0) &&
           bz_monotonic_ms() < deadline)
        bz_sleep_ms(10);
    ing_http_producer_stop_waiting(api->producer);
    if (api->cfg.crm) {
        ing_crm_api_close(api->cfg.crm);
        if (ing_crm_api_busy(api->cfg.crm) > 0)
            bz_log(BZ_LOG_INFO, "stopping: waiting for %d CRM requests to be answered",
                   ing_crm_api_busy(api->cfg.crm));
        while (ing_crm_api_busy(api->cfg.crm) > 0)
            bz_sleep_ms(10);
    }
    /* The answers resumed last are written by the server's threads, which
     * stopping it now would cut off (the client would see its connection
     * closed, not the answer): let them go out, within a grace. */
    deadline = bz_monotonic_ms() + SHUTDOWN_GRACE_MS;
    while (ing_http_guard_handling(api->guard) > 0 && bz_monotonic_ms() < deadline)
        bz_sleep_ms(10);
}

void ing_http_api_stop(ing_http_api *api)
{
    if (!api)
        return;
    if (api->daemon) {
        MHD_socket listener = MHD_quiesce_daemon(api->daemon);
        ing_http_guard_watch_listener(api->guard, -1);
        finish_requests(api);
        MHD_stop_daemon(api->daemon);
        if (listener != MHD_INVALID_SOCKET)
            close(listener);
    }
    ing_http_router_stop(api->router);
    ing_http_producer_free(api->producer);
    ing_http_guard_free(api->guard);
    pthread_mutex_destroy(&api->log_mu);
    free(api);
}

uint16_t ing_http_api_port(const ing_http_api *api)
{
    return api->port;
}

void ing_http_api_report_readiness(ing_http_api *api, bz_readiness *report)
{
    ing_http_guard_report(api->guard, report);
}
