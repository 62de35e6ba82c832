/*
 * producer.c - idempotent producer with completion objects (see producer.h).
 *
 * librdkafka calls dr_msg_cb from rd_kafka_poll/flush on our thread; the
 * record's opaque is the caller's bz_delivery, so completion needs no lookup
 * table. Fatal errors arrive on librdkafka's background thread through
 * error_cb, which only raises a flag: the rebuild happens on the owner's
 * thread at the next poll, send or flush, where it is safe to destroy the
 * handle. error_cb itself runs only when someone polls, so the handle's
 * own fatal state is asked too: a caller that polls only for what it sent
 * (the outbox relay) would otherwise never rebuild a handle whose sends are
 * all refused as fatal.
 *
 * A full local queue (librdkafka's queue.buffering.max.messages/kbytes) is
 * waited out by polling, which is what drains it; the wait ends early for a
 * shutdown or the caller's bound, since a broker that is away would
 * otherwise hold the caller (and its shutdown) for ever.
 */
#include "kafka/producer.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/grow.h"
#include "core/log.h"
#include "core/signals.h"
#include "kafka/limits.h"

#define METADATA_REFRESH_MS "10000"
#define LEARNED_TOPICS_MAX 256

struct bz_producer {
    rd_kafka_t *rk;
    char **learned; /* topics the handle was told about before its first record */
    size_t nlearned, learned_cap;
    bz_kafka_settings settings;
    atomic_int fatal;
    int queue_wait_ms; /* -1: until shutdown */
    uint64_t delivered;
    uint64_t failed;
};

static void route_librdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    bz_log_level lvl = level <= 3 ? BZ_LOG_ERROR : level <= 4 ? BZ_LOG_WARN
                     : level <= 6 ? BZ_LOG_INFO : BZ_LOG_DEBUG;
    bz_log(lvl, "librdkafka %s: %s", fac, buf);
}

bz_status bz_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                            bz_error *err)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return bz_fail(err, BZ_ERR_CONFIG, "kafka property %s: %s", name, errstr);
    return BZ_OK;
}

bz_status bz_kafka_conf_new(const bz_kafka_settings *settings, const char *const *defaults,
                            rd_kafka_conf_t **out, bz_error *err)
{
    const bz_kafka_security *security = settings->security;
    *out = NULL;
    bz_status st = security ? BZ_OK : bz_kafka_identity(&security, err);
    if (st != BZ_OK) {
        bz_wrap(err, "kafka client for %s", settings->brokers ? settings->brokers : "?");
        return st;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    st = bz_kafka_conf_set(conf, "bootstrap.servers", settings->brokers, err);
    if (st == BZ_OK)
        st = bz_kafka_security_apply(security, conf, err);
    if (st == BZ_OK && settings->client_id)
        st = bz_kafka_conf_set(conf, "client.id", settings->client_id, err);
    /* librdkafka looks again at a subscribed topic it could not use (not
     * created yet, or not yet authorized: the ACLs of a new prefix reach the
     * brokers a moment after they were created), and matches a pattern
     * subscription against new topics (ingest's wa.inbound.gw.<id>: a gateway
     * added while it runs), only at this interval, 5 minutes by default. */
    if (st == BZ_OK)
        st = bz_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms",
                               METADATA_REFRESH_MS, err);
    for (const char *const *kv = defaults; st == BZ_OK && kv && kv[0]; kv += 2)
        st = bz_kafka_conf_set(conf, kv[0], kv[1], err);
    for (const char *const *kv = settings->extra; st == BZ_OK && kv && kv[0]; kv += 2)
        st = bz_kafka_conf_set(conf, kv[0], kv[1], err);
    if (st != BZ_OK) {
        rd_kafka_conf_destroy(conf);
        return st;
    }
    rd_kafka_conf_set_log_cb(conf, route_librdkafka_log);
    *out = conf;
    return BZ_OK;
}

bz_status bz_kafka_learn_topic(rd_kafka_t *rk, const char *topic, int timeout_ms, bz_error *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt)
        return bz_fail(err, BZ_ERR_CONFIG, "learn topic %s: %s", topic,
                       rd_kafka_err2str(rd_kafka_last_error()));
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return bz_fail(err, BZ_ERR_TRANSIENT, "learn topic %s: metadata: %s", topic,
                       rd_kafka_err2str(e));
    e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    rd_kafka_metadata_destroy(md);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return bz_fail(err, e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? BZ_ERR_NOT_FOUND
                                                                        : BZ_ERR_TRANSIENT,
                       "learn topic %s: %s", topic, rd_kafka_err2str(e));
    return BZ_OK;
}

rd_kafka_resp_err_t bz_kafka_delivery_error(const rd_kafka_message_t *msg)
{
    if (msg->err || msg->offset >= 0)
        return msg->err;
    bz_warn("delivery to %s [%" PRId32 "] reported without the broker's offset: "
            "not proven stored, treated as failed",
            msg->rkt ? rd_kafka_topic_name(msg->rkt) : "?", msg->partition);
    return RD_KAFKA_RESP_ERR__INCONSISTENT;
}

static void on_delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    bz_producer *p = opaque;
    rd_kafka_resp_err_t e = bz_kafka_delivery_error(msg);
    if (e)
        p->failed++;
    else
        p->delivered++;
    bz_delivery *d = msg->_private;
    if (d)
        d->on_done(d, e, msg->partition, msg->offset);
}

static void on_producer_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    bz_producer *p = opaque;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[256];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        bz_error_log("kafka producer fatal error %s: %s; recreating", rd_kafka_err2name(orig), fatal);
        atomic_store(&p->fatal, 1);
        return;
    }
    bz_warn("kafka producer: %s: %s", rd_kafka_err2name(code), reason);
}

bz_status bz_kafka_producer_handle_new(const bz_kafka_settings *settings,
                                       const char *const *defaults, void *opaque,
                                       void (*on_delivery)(rd_kafka_t *, const rd_kafka_message_t *,
                                                           void *),
                                       void (*on_error)(rd_kafka_t *, int, const char *, void *),
                                       rd_kafka_t **out, bz_error *err)
{
    rd_kafka_conf_t *conf;
    bz_status st = bz_kafka_conf_new(settings, defaults, &conf, err);
    if (st != BZ_OK)
        return st;
    rd_kafka_conf_set_opaque(conf, opaque);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    char errstr[256];
    *out = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!*out) {
        rd_kafka_conf_destroy(conf);
        return bz_fail(err, BZ_ERR_CONFIG, "create kafka producer %s: %s",
                       settings->client_id ? settings->client_id : "", errstr);
    }
    return BZ_OK;
}

void bz_kafka_producer_handle_free(rd_kafka_t *rk)
{
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk, 0);
    rd_kafka_destroy(rk);
}

static bz_status create_handle(bz_producer *p, bz_error *err)
{
    static const char *const producer_defaults[] = {
        "enable.idempotence", "true", /* implies acks=all */
        "linger.ms", "5",
        "message.max.bytes", BZ_LIMIT_TEXT(BZ_KAFKA_RECORD_MAX_BYTES),
        NULL};
    return bz_kafka_producer_handle_new(&p->settings, producer_defaults, p, on_delivery_report,
                                        on_producer_error, &p->rk, err);
}

bz_status bz_producer_new(const bz_kafka_settings *settings, bz_producer **out, bz_error *err)
{
    bz_producer *p = calloc(1, sizeof *p);
    if (!p)
        return bz_fail(err, BZ_ERR_NOMEM, "create kafka producer: out of memory");
    p->settings = *settings;
    p->queue_wait_ms = -1;
    bz_status st = create_handle(p, err);
    if (st != BZ_OK) {
        free(p);
        return st;
    }
    *out = p;
    return BZ_OK;
}

static void forget_learned_topics(bz_producer *p)
{
    for (size_t i = 0; i < p->nlearned; i++)
        free(p->learned[i]);
    p->nlearned = 0;
}

static void destroy_handle(bz_producer *p)
{
    bz_kafka_producer_handle_free(p->rk);
    p->rk = NULL;
    forget_learned_topics(p);
}

/* The flag, or a fatal error the handle holds that no poll has reported. */
static int handle_is_fatal(bz_producer *p)
{
    if (atomic_load(&p->fatal))
        return 1;
    if (!p->rk)
        return 0;
    char why[256];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(p->rk, why, sizeof why);
    if (orig == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    bz_error_log("kafka producer fatal error %s: %s; recreating", rd_kafka_err2name(orig), why);
    return 1;
}

static void rebuild_if_fatal(bz_producer *p)
{
    if (!handle_is_fatal(p))
        return;
    destroy_handle(p);
    atomic_store(&p->fatal, 0);
    bz_error err;
    if (create_handle(p, &err) != BZ_OK)
        bz_error_log("recreate kafka producer: %s", err.msg);
}

void bz_producer_free(bz_producer *p, int timeout_ms)
{
    if (!p)
        return;
    if (p->rk) {
        rd_kafka_flush(p->rk, timeout_ms);
        int left = rd_kafka_outq_len(p->rk);
        if (left > 0)
            bz_warn("kafka producer closing with %d undelivered records", left);
        destroy_handle(p);
    }
    free(p->learned);
    free(p);
}

void bz_producer_set_queue_wait(bz_producer *p, int max_ms)
{
    p->queue_wait_ms = max_ms < 0 ? -1 : max_ms;
}

/* BZ_OK to keep waiting for room in the full queue since waiting_since,
 * else why not. */
static bz_status may_wait_for_room(const bz_producer *p, const char *topic, int64_t waiting_since,
                                   bz_error *err)
{
    int64_t waited = bz_monotonic_ms() - waiting_since;
    if (bz_shutdown_requested())
        return bz_fail(err, BZ_ERR_TRANSIENT,
                       "produce to %s: local queue full (%d records undelivered) and shutdown "
                       "requested after %" PRId64 " ms of waiting",
                       topic, rd_kafka_outq_len(p->rk), waited);
    if (p->queue_wait_ms >= 0 && waited >= p->queue_wait_ms)
        return bz_fail(err, BZ_ERR_TRANSIENT,
                       "produce to %s: local queue full (%d records undelivered) for %" PRId64
                       " ms, the limit",
                       topic, rd_kafka_outq_len(p->rk), waited);
    return BZ_OK;
}

int bz_kafka_error_is_permanent(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return 1;
    default:
        return 0;
    }
}

const char *bz_kafka_refusal_reason(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return "message_too_large";
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
        return "invalid_topic";
    default:
        return "produce_refused";
    }
}

static bz_status produce_failed(const char *topic, size_t bytes, rd_kafka_resp_err_t e,
                                bz_error *err)
{
    if (bz_kafka_error_is_permanent(e))
        return bz_reject(err, bz_kafka_refusal_reason(e),
                         "produce %zu bytes to %s: %s (record limit %d bytes)", bytes, topic,
                         rd_kafka_err2str(e), BZ_KAFKA_RECORD_MAX_BYTES);
    bz_fail(err, BZ_ERR_TRANSIENT, "produce to %s: %s", topic, rd_kafka_err2str(e));
    if (err && e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
        err->reason = "unknown_topic";
    return BZ_ERR_TRANSIENT;
}

/* librdkafka 2.0.2 holds the first record to a topic it has not looked up
 * until its next one-second topic scan (bz_kafka_learn_topic). An owner
 * that waits for its records' reports waits that second for all of them:
 * the outbox relay's round held every row behind a campaign's first send
 * or a session's first command, and make run's webhooks stalled for up to a
 * second (issue 52). So the handle looks each topic up before its first
 * record: a round trip, once per topic. A lookup that fails only leaves the
 * topic to librdkafka's scan; a topic the broker lacks is not asked again. */
static void learn_topic_once(bz_producer *p, const char *topic)
{
    for (size_t i = 0; i < p->nlearned; i++)
        if (strcmp(p->learned[i], topic) == 0)
            return;
    if (p->nlearned == LEARNED_TOPICS_MAX)
        return;
    char *copy = strdup(topic);
    if (!copy || !bz_grow((void **)&p->learned, &p->learned_cap, p->nlearned + 1,
                          sizeof *p->learned, 16)) {
        free(copy);
        return;
    }
    p->learned[p->nlearned++] = copy;
    bz_error err;
    if (bz_kafka_learn_topic(p->rk, topic, BZ_KAFKA_TOPIC_SCAN_MS, &err) != BZ_OK)
        bz_debug("%s; its first records wait for librdkafka's topic scan", err.msg);
}

bz_status bz_producer_send(bz_producer *p, const char *topic, int32_t partition,
                           const void *key, size_t key_len, const void *value, size_t value_len,
                           const bz_kafka_header *headers, size_t nheaders,
                           bz_delivery *delivery, bz_error *err)
{
    rebuild_if_fatal(p);
    if (!p->rk)
        return bz_fail(err, BZ_ERR_TRANSIENT, "produce to %s: producer unavailable", topic);
    learn_topic_once(p, topic);
    int64_t waiting_since = -1;
    for (;;) {
        rd_kafka_headers_t *hdrs = NULL;
        if (nheaders > 0) {
            hdrs = rd_kafka_headers_new(nheaders);
            for (size_t i = 0; i < nheaders; i++)
                rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                                    (ssize_t)headers[i].len);
        }
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE(delivery), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return BZ_OK;
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (waiting_since < 0)
                waiting_since = bz_monotonic_ms();
            bz_status st = may_wait_for_room(p, topic, waiting_since, err);
            if (st != BZ_OK)
                return st;
            rd_kafka_poll(p->rk, 50);
            continue;
        }
        return produce_failed(topic, key_len + value_len, e, err);
    }
}

void bz_producer_poll(bz_producer *p, int timeout_ms)
{
    rebuild_if_fatal(p);
    if (p->rk)
        rd_kafka_poll(p->rk, timeout_ms);
}

bz_status bz_producer_flush(bz_producer *p, int timeout_ms, bz_error *err)
{
    rebuild_if_fatal(p);
    if (!p->rk)
        return bz_fail(err, BZ_ERR_TRANSIENT, "flush: producer unavailable");
    rd_kafka_flush(p->rk, timeout_ms);
    int left = rd_kafka_outq_len(p->rk);
    if (left > 0)
        return bz_fail(err, BZ_ERR_TRANSIENT, "flush: %d records not delivered within %d ms", left,
                       timeout_ms);
    return BZ_OK;
}

static void count_outcome(bz_delivery *d, rd_kafka_resp_err_t err, int32_t partition,
                          int64_t offset)
{
    (void)partition;
    (void)offset;
    bz_delivery_tally *t = (bz_delivery_tally *)d;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        t->delivered++;
    else
        t->failed++;
}

void bz_delivery_tally_init(bz_delivery_tally *t)
{
    t->base.on_done = count_outcome;
    t->delivered = t->failed = 0;
}

typedef struct sync_wait {
    bz_delivery base;
    int done;
    rd_kafka_resp_err_t err;
} sync_wait;

static void on_sync_done(bz_delivery *d, rd_kafka_resp_err_t err, int32_t partition, int64_t offset)
{
    (void)partition;
    (void)offset;
    sync_wait *w = (sync_wait *)d;
    w->done = 1;
    w->err = err;
}

bz_status bz_producer_send_sync(bz_producer *p, const char *topic, const void *key,
                                size_t key_len, const void *value, size_t value_len,
                                const bz_kafka_header *headers, size_t nheaders, int timeout_ms,
                                bz_error *err)
{
    sync_wait w = {.base = {.on_done = on_sync_done}};
    bz_status st = bz_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, key_len, value,
                                    value_len, headers, nheaders, &w.base, err);
    if (st != BZ_OK)
        return st;
    int64_t deadline = bz_monotonic_ms() + timeout_ms;
    while (!w.done && bz_monotonic_ms() < deadline)
        rd_kafka_poll(p->rk, 50);
    if (!w.done) {
        /* The record must not outlive `w`: fail it back before returning. */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        while (!w.done)
            rd_kafka_poll(p->rk, 50);
        return bz_fail(err, BZ_ERR_TRANSIENT, "produce to %s: not acknowledged within %d ms",
                       topic, timeout_ms);
    }
    if (w.err)
        return bz_fail(err, BZ_ERR_TRANSIENT, "produce to %s: %s", topic, rd_kafka_err2str(w.err));
    return BZ_OK;
}

rd_kafka_t *bz_producer_handle(bz_producer *p)
{
    return p->rk;
}

uint64_t bz_producer_delivered(const bz_producer *p)
{
    return p->delivered;
}

uint64_t bz_producer_failed(const bz_producer *p)
{
    return p->failed;
}
