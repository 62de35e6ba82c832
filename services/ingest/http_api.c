/*
 * http_api.c - the public HTTP endpoints (see http_api.h).
 *
 * A request's body is collected into its own buffer (refusing more than
 * max_body_bytes), then handled in the final access-handler call: verify the
 * signature over the exact bytes received, parse, validate, produce, wait.
 * Waiting uses a small completion object shared between the request thread
 * and the delivery-report callback; if the request gives up first it marks
 * the object abandoned and the last callback frees it, so neither side ever
 * touches freed memory.
 *
 * The producer can be rebuilt after a fatal librdkafka error: request
 * threads hold a read lock while producing, the poller takes the write lock
 * to purge (failing queued records back to their waiters), destroy and
 * recreate it.
 */
#include "http_api.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/clock.h"
#include "core/log.h"
#include "event_id.h"
#include "event_tree.h"
#include "gateway_json.h"
#include "kafka/limits.h"
#include "kafka/producer.h"
#include "meta_webhook.h"
#include "normalize.h"
#include "wa/signature.h"

#define CONNECTION_TIMEOUT_S 30
#define POLL_MS 100

struct bz_http_api {
    bz_http_api_config cfg;
    struct MHD_Daemon *daemon;
    uint16_t port;
    rd_kafka_t *rk;
    pthread_rwlock_t rk_lock;
    atomic_int fatal;
    atomic_int running;
    pthread_t poller;
    int poller_started;
};

typedef struct request {
    char *body;
    size_t len;
    int too_large;
    double started;
} request;

typedef struct completion {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int remaining;
    int failed;
    int abandoned;
} completion;

/* ---- producer ----------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    completion *c = msg->_private;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    if (msg->err)
        c->failed = 1;
    int last = --c->remaining == 0;
    int abandoned = c->abandoned;
    if (last && !abandoned)
        pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (last && abandoned) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c);
    }
}

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    bz_http_api *api = opaque;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char why[256];
        rd_kafka_fatal_error(rk, why, sizeof why);
        bz_error_log("http producer fatal error: %s; recreating", why);
        atomic_store(&api->fatal, 1);
        return;
    }
    bz_debug("http producer: %s: %s", rd_kafka_err2name(code), reason);
}

static bz_status create_producer(bz_http_api *api, bz_error *err)
{
    char linger[16], timeout[16];
    snprintf(linger, sizeof linger, "%d", api->cfg.linger_ms);
    snprintf(timeout, sizeof timeout, "%d", api->cfg.produce_timeout_ms);
    const char *const defaults[] = {"enable.idempotence", "true", /* implies acks=all */
                                    "linger.ms", linger,
                                    "message.timeout.ms", timeout,
                                    "message.max.bytes", BZ_LIMIT_TEXT(BZ_KAFKA_RECORD_MAX_BYTES),
                                    NULL};
    bz_kafka_settings settings = {.brokers = api->cfg.brokers, .client_id = "blazz-ingest-http"};
    rd_kafka_conf_t *conf;
    bz_status st = bz_kafka_conf_new(&settings, defaults, &conf, err);
    if (st != BZ_OK)
        return st;
    rd_kafka_conf_set_opaque(conf, api);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    char errstr[256];
    api->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!api->rk) {
        rd_kafka_conf_destroy(conf);
        return bz_fail(err, BZ_ERR_CONFIG, "create http producer: %s", errstr);
    }
    /* Best effort: otherwise the first requests after a start wait up to a
     * second for librdkafka to learn the raw topic. */
    bz_error why;
    if (bz_kafka_learn_topic(api->rk, api->cfg.raw_topic, BZ_KAFKA_TOPIC_SCAN_MS, &why) != BZ_OK)
        bz_warn("ingest http: %s; the first requests may wait up to a second", why.msg);
    return BZ_OK;
}

static void destroy_producer(bz_http_api *api)
{
    rd_kafka_purge(api->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(api->rk, 0);
    rd_kafka_destroy(api->rk);
    api->rk = NULL;
}

static void *poll_deliveries(void *arg)
{
    bz_http_api *api = arg;
    while (atomic_load(&api->running)) {
        if (atomic_load(&api->fatal)) {
            pthread_rwlock_wrlock(&api->rk_lock);
            destroy_producer(api);
            atomic_store(&api->fatal, 0);
            bz_error err;
            if (create_producer(api, &err) != BZ_OK)
                bz_error_log("recreate http producer: %s", err.msg);
            pthread_rwlock_unlock(&api->rk_lock);
        }
        pthread_rwlock_rdlock(&api->rk_lock);
        if (api->rk)
            rd_kafka_poll(api->rk, POLL_MS);
        pthread_rwlock_unlock(&api->rk_lock);
        if (!api->rk)
            bz_sleep_ms(POLL_MS);
    }
    return NULL;
}

static completion *completion_new(void)
{
    completion *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

/* An event the HTTP path accepts must leave the Kafka path room to wrap it
 * twice (limits.h): refuse a larger one for good (413), never "retry". */
static bz_status check_event_size(const Blazz__V1__InboundEvent *ev, bz_error *err)
{
    const Blazz__V1__Envelope *env = ev->envelope;
    bz_kafka_header headers[2] = {{"event_id", env->event_id, strlen(env->event_id)},
                                  {"trace_id", env->trace_id, strlen(env->trace_id)}};
    size_t size = bz_kafka_record_size(strlen(env->session_id),
                                       blazz__v1__inbound_event__get_packed_size(ev), headers, 2);
    if (size > BZ_INBOUND_EVENT_MAX_BYTES)
        return bz_reject(err, "too_large",
                         "field body: normalized, the event is %zu bytes; at most %d are accepted",
                         size, BZ_INBOUND_EVENT_MAX_BYTES);
    return BZ_OK;
}

/* Queue one record; c->remaining counts it only if it was queued. */
static int produce_event(bz_http_api *api, const Blazz__V1__InboundEvent *ev, completion *c)
{
    size_t len = blazz__v1__inbound_event__get_packed_size(ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return 0;
    blazz__v1__inbound_event__pack(ev, buf);
    const Blazz__V1__Envelope *env = ev->envelope;
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
    rd_kafka_header_add(hdrs, "event_id", -1, env->event_id, -1);
    rd_kafka_header_add(hdrs, "trace_id", -1, env->trace_id, -1);
    pthread_mutex_lock(&c->mu);
    c->remaining++;
    pthread_mutex_unlock(&c->mu);
    pthread_rwlock_rdlock(&api->rk_lock);
    rd_kafka_resp_err_t e = api->rk ? rd_kafka_producev(
                                          api->rk, RD_KAFKA_V_TOPIC(api->cfg.raw_topic),
                                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                          RD_KAFKA_V_KEY(env->session_id, strlen(env->session_id)),
                                          RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_HEADERS(hdrs),
                                          RD_KAFKA_V_OPAQUE(c), RD_KAFKA_V_END)
                                    : RD_KAFKA_RESP_ERR__STATE;
    pthread_rwlock_unlock(&api->rk_lock);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 1;
    bz_warn("produce to %s: %s", api->cfg.raw_topic, rd_kafka_err2str(e));
    free(buf);
    rd_kafka_headers_destroy(hdrs);
    pthread_mutex_lock(&c->mu);
    c->remaining--;
    c->failed = 1;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* Wait for every queued record of c; returns 1 when all were acknowledged.
 * Consumes c (frees it, or leaves it to the last delivery callback). */
static int await_completion(bz_http_api *api, completion *c)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    int64_t ns = deadline.tv_nsec + (int64_t)(api->cfg.produce_timeout_ms + 1000) * 1000000;
    deadline.tv_sec += ns / 1000000000;
    deadline.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&c->mu);
    while (c->remaining > 0) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &deadline) != 0 && c->remaining > 0)
            break;
    }
    int ok = c->remaining == 0 && !c->failed;
    if (c->remaining > 0) {
        c->abandoned = 1;
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
    return ok;
}

/* ---- responses ---------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               const char *body)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result respond_error(bz_http_api *api, struct MHD_Connection *conn,
                                     unsigned status, const char *path, const char *reason,
                                     const char *field, const char *message)
{
    char esc_field[BZ_INGEST_FIELD_MAX * 2], esc_msg[BZ_ERROR_MSG_MAX * 2], body[1400];
    bz_json_escape(esc_field, sizeof esc_field, field ? field : "");
    bz_json_escape(esc_msg, sizeof esc_msg, message ? message : "");
    snprintf(body, sizeof body, "{\"error\":\"%s\",\"field\":\"%s\",\"message\":\"%s\"}\n", reason,
             esc_field, esc_msg);
    if (api->cfg.metrics)
        bz_counter_inc(bz_counter_family_with(api->cfg.metrics->rejected, path, reason));
    return respond(conn, status, "application/json", body);
}

static enum MHD_Result respond_invalid(bz_http_api *api, struct MHD_Connection *conn,
                                       const char *path, const bz_error *err)
{
    if (err->code == BZ_ERR_NOMEM)
        return respond_error(api, conn, MHD_HTTP_SERVICE_UNAVAILABLE, path, "out_of_memory", "",
                             "try again");
    char field[BZ_INGEST_FIELD_MAX];
    bz_ingest_error_field(err, field);
    int too_large = err->reason && strcmp(err->reason, "too_large") == 0;
    return respond_error(api, conn, too_large ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST,
                         path, err->reason ? err->reason : "invalid_field", field, err->msg);
}

static enum MHD_Result respond_unavailable(bz_http_api *api, struct MHD_Connection *conn,
                                           const char *path)
{
    return respond_error(api, conn, MHD_HTTP_SERVICE_UNAVAILABLE, path, "unavailable", "",
                         "the broker did not acknowledge the event; nothing was accepted, retry");
}

/* ---- handlers ----------------------------------------------------------- */

static int is_protobuf(struct MHD_Connection *conn)
{
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_TYPE);
    return type && strncasecmp(type, "application/x-protobuf", 22) == 0;
}

static bz_status decode_gateway_body(struct MHD_Connection *conn, const request *rq,
                                     Blazz__V1__InboundEvent **out, bz_error *err)
{
    if (!is_protobuf(conn))
        return bz_ingest_gateway_json_parse(rq->body, rq->len, bz_wall_ms(), out, err);
    Blazz__V1__InboundEvent *ev =
        blazz__v1__inbound_event__unpack(NULL, rq->len, (const uint8_t *)rq->body);
    if (!ev)
        return bz_reject(err, "decode_error", "field body: not a blazz.v1.InboundEvent");
    *out = ev;
    return BZ_OK;
}

static enum MHD_Result accept_gateway_event(bz_http_api *api, struct MHD_Connection *conn,
                                            const request *rq)
{
    const char *sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-WhatsApp-Signature");
    const char *secret = api->cfg.gateway_secret;
    bz_error err;
    if (!secret || !*secret || !sig ||
        bz_signature_verify_hex(secret, strlen(secret), rq->body, rq->len, sig, &err) != BZ_OK)
        return respond_error(api, conn, MHD_HTTP_UNAUTHORIZED, "http", "signature_mismatch",
                             "X-WhatsApp-Signature", "invalid webhook signature");
    Blazz__V1__InboundEvent *ev = NULL;
    bz_status st = decode_gateway_body(conn, rq, &ev, &err);
    char conversation[BZ_INGEST_CONVERSATION_MAX];
    bz_ingest_norm_opts opts = {.default_cc = api->cfg.default_cc, .now_ms = bz_wall_ms(),
                                .max_future_ms = api->cfg.max_future_ms};
    if (st == BZ_OK)
        st = bz_ingest_event_id_assign(ev, &err);
    if (st == BZ_OK)
        st = bz_ingest_normalize(ev, &opts, conversation, &err);
    if (st == BZ_OK)
        st = check_event_size(ev, &err);
    if (st != BZ_OK) {
        if (ev)
            blazz__v1__inbound_event__free_unpacked(ev, NULL);
        return respond_invalid(api, conn, "http", &err);
    }
    completion *c = completion_new();
    int ok = c && produce_event(api, ev, c);
    ok = c && await_completion(api, c) && ok;
    char body[128];
    snprintf(body, sizeof body, "{\"status\":\"accepted\",\"event_id\":\"%s\"}\n",
             ev->envelope->event_id);
    if (!ok)
        bz_log_event(BZ_LOG_WARN, ev->envelope->event_id, ev->envelope->trace_id,
                     "gateway event not acknowledged by the broker: 503");
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
    if (!ok)
        return respond_unavailable(api, conn, "http");
    if (api->cfg.metrics)
        bz_counter_inc(bz_counter_family_with(api->cfg.metrics->accepted, "http"));
    return respond(conn, MHD_HTTP_ACCEPTED, "application/json", body);
}

static enum MHD_Result accept_meta_notification(bz_http_api *api, struct MHD_Connection *conn,
                                                const request *rq)
{
    const char *sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Hub-Signature-256");
    const char *secret = api->cfg.meta_app_secret;
    bz_error err;
    if (!secret || !*secret || !sig ||
        bz_signature_verify_meta(secret, strlen(secret), rq->body, rq->len, sig, &err) != BZ_OK)
        return respond_error(api, conn, MHD_HTTP_UNAUTHORIZED, "meta", "signature_mismatch",
                             "X-Hub-Signature-256", "invalid webhook signature");
    bz_ingest_events events = {0};
    if (bz_ingest_meta_parse(rq->body, rq->len, &events, &err) != BZ_OK) {
        bz_ingest_events_free(&events);
        return respond_invalid(api, conn, "meta", &err);
    }
    completion *c = completion_new();
    int ok = c != NULL;
    for (size_t i = 0; ok && i < events.count; i++) {
        Blazz__V1__InboundEvent *ev = events.items[i];
        if (api->cfg.metrics)
            bz_counter_inc(bz_counter_family_with(api->cfg.metrics->received, "meta"));
        ok = bz_ingest_event_id_assign(ev, &err) == BZ_OK && produce_event(api, ev, c);
    }
    ok = c && await_completion(api, c) && ok;
    size_t n = events.count;
    bz_ingest_events_free(&events);
    if (!ok)
        return respond_unavailable(api, conn, "meta");
    if (api->cfg.metrics)
        bz_counter_add(bz_counter_family_with(api->cfg.metrics->accepted, "meta"), n);
    return respond(conn, MHD_HTTP_OK, "application/json", "{\"status\":\"ok\"}\n");
}

static int same_secret(const char *given, const char *expected)
{
    size_t n = strlen(expected);
    return given && strlen(given) == n && CRYPTO_memcmp(given, expected, n) == 0;
}

static enum MHD_Result answer_meta_handshake(bz_http_api *api, struct MHD_Connection *conn)
{
    const char *mode = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "hub.mode");
    const char *token = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "hub.verify_token");
    const char *challenge = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "hub.challenge");
    const char *expected = api->cfg.meta_verify_token;
    if (!mode || strcmp(mode, "subscribe") != 0 || !challenge || !expected || !*expected ||
        !same_secret(token, expected))
        return respond_error(api, conn, MHD_HTTP_FORBIDDEN, "meta", "verification_failed",
                             "hub.verify_token", "verification failed");
    return respond(conn, MHD_HTTP_OK, "text/plain", challenge);
}

static enum MHD_Result route(bz_http_api *api, struct MHD_Connection *conn, const char *url,
                             const char *method, const request *rq)
{
    int post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int events = strcmp(url, "/v1/events") == 0, meta = strcmp(url, "/v1/meta/webhook") == 0;
    if (!events && !meta)
        return respond(conn, MHD_HTTP_NOT_FOUND, "application/json", "{\"error\":\"not_found\"}\n");
    if (meta && get)
        return answer_meta_handshake(api, conn);
    if (!post)
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                       "{\"error\":\"method_not_allowed\"}\n");
    const char *path = events ? "http" : "meta";
    if (events && api->cfg.metrics)
        bz_counter_inc(bz_counter_family_with(api->cfg.metrics->received, "http"));
    if (rq->too_large) {
        char message[96];
        snprintf(message, sizeof message, "body exceeds %zu bytes", api->cfg.max_body_bytes);
        return respond_error(api, conn, MHD_HTTP_CONTENT_TOO_LARGE, path, "too_large", "body",
                             message);
    }
    return events ? accept_gateway_event(api, conn, rq) : accept_meta_notification(api, conn, rq);
}

static int declared_too_large(bz_http_api *api, struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    return cl && strtoull(cl, NULL, 10) > api->cfg.max_body_bytes;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    bz_http_api *api = cls;
    request *rq = *con_cls;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        rq->started = bz_metrics_clock();
        rq->too_large = declared_too_large(api, conn);
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_large || rq->len + n > api->cfg.max_body_bytes) {
            rq->too_large = 1;
            return MHD_YES;
        }
        char *grown = realloc(rq->body, rq->len + n + 1);
        if (!grown)
            return MHD_NO;
        rq->body = grown;
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        rq->body[rq->len] = '\0';
        return MHD_YES;
    }
    if (!rq->body && !(rq->body = calloc(1, 1)))
        return MHD_NO;
    return route(api, conn, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    bz_http_api *api = cls;
    request *rq = *con_cls;
    if (!rq)
        return;
    if (api->cfg.metrics)
        bz_histogram_observe(api->cfg.metrics->http_seconds, bz_metrics_clock() - rq->started);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    bz_warn("ingest http: %s", line);
}

/* ---- lifecycle ---------------------------------------------------------- */

static bz_status parse_listen(const char *listen, struct sockaddr_storage *addr, int *ipv6,
                              bz_error *err)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || !colon[1])
        return bz_fail(err, BZ_ERR_CONFIG, "ingest.listen '%s': expected host:port",
                       listen ? listen : "(null)");
    char host[64], *end;
    size_t len = (size_t)(colon - listen);
    const char *start = listen;
    if (len >= 2 && listen[0] == '[' && colon[-1] == ']') {
        start++;
        len -= 2;
    }
    if (len >= sizeof host)
        return bz_fail(err, BZ_ERR_CONFIG, "ingest.listen '%s': host too long", listen);
    memcpy(host, start, len);
    host[len] = '\0';
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return bz_fail(err, BZ_ERR_CONFIG, "ingest.listen '%s': bad port", listen);
    if (!*host || strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "%s", *host ? "127.0.0.1" : "0.0.0.0");
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *ipv6 = 0;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
    } else {
        return bz_fail(err, BZ_ERR_CONFIG, "ingest.listen '%s': host must be a numeric address",
                       listen);
    }
    return BZ_OK;
}

bz_status bz_http_api_start(const bz_http_api_config *cfg, bz_http_api **out, bz_error *err)
{
    struct sockaddr_storage addr;
    int ipv6 = 0;
    bz_status st = parse_listen(cfg->listen, &addr, &ipv6, err);
    if (st != BZ_OK)
        return st;
    bz_http_api *api = calloc(1, sizeof *api);
    if (!api)
        return bz_fail(err, BZ_ERR_NOMEM, "ingest http: out of memory");
    api->cfg = *cfg;
    pthread_rwlock_init(&api->rk_lock, NULL);
    atomic_store(&api->running, 1);
    st = create_producer(api, err);
    if (st == BZ_OK && pthread_create(&api->poller, NULL, poll_deliveries, api) != 0)
        st = bz_fail(err, BZ_ERR_INTERNAL, "ingest http: cannot start the delivery poller");
    api->poller_started = st == BZ_OK;
    if (st == BZ_OK) {
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                         MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
        /* The logger first: MHD warns about any option placed before it. */
        api->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, api,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
            on_completed, api, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
        if (!api->daemon)
            st = bz_fail(err, BZ_ERR_IO, "ingest http: cannot listen on %s", cfg->listen);
    }
    if (st != BZ_OK) {
        bz_http_api_stop(api);
        return st;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
    api->port = info ? info->port : 0;
    *out = api;
    return BZ_OK;
}

void bz_http_api_stop(bz_http_api *api)
{
    if (!api)
        return;
    if (api->daemon)
        MHD_stop_daemon(api->daemon);
    atomic_store(&api->running, 0);
    if (api->poller_started)
        pthread_join(api->poller, NULL);
    if (api->rk) {
        rd_kafka_flush(api->rk, api->cfg.produce_timeout_ms);
        destroy_producer(api);
    }
    pthread_rwlock_destroy(&api->rk_lock);
    free(api);
}

uint16_t bz_http_api_port(const bz_http_api *api)
{
    return api->port;
}
