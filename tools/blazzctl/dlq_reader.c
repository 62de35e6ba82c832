/*
 * dlq_reader.c - reading a dead-letter topic over a window (see
 * dlq_reader.h).
 *
 * Each partition has a span [start, end): end is its high watermark when
 * the read begins, start comes from the time index or the tail count. A
 * partition is finished when a record at end-1 or beyond arrives, or the
 * broker reports end-of-partition (transaction markers take offsets too, so
 * the last offset before the watermark may hold no record).
 */
#include "dlq_reader.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/signals.h"
#include "kafka/producer.h"

#define METADATA_TIMEOUT_MS 10000
#define POLL_MS 200
#define STALL_LIMIT_MS 30000

typedef struct partition_span {
    int64_t start, end;
    int done;
} partition_span;

typedef struct dlq_read {
    rd_kafka_t *rk;
    const char *topic;
    const bz_ctl_dlq_window *w;
    partition_span *spans;
    int nparts;
    int remaining;
    int caught_up;
} dlq_read;

static bz_status open_reader(const char *brokers, rd_kafka_t **out, bz_error *err)
{
    /* A group id is required by the consumer API even though the reader
     * only assigns partitions and never joins the group or commits. */
    static const char *const defaults[] = {"group.id", "blazzctl-dlq-reader",
                                           "enable.auto.commit", "false",
                                           "enable.auto.offset.store", "false",
                                           "enable.partition.eof", "true",
                                           "isolation.level", "read_committed",
                                           NULL};
    bz_kafka_settings settings = {.brokers = brokers, .client_id = "blazzctl"};
    rd_kafka_conf_t *conf;
    bz_status st = bz_kafka_conf_new(&settings, defaults, &conf, err);
    if (st != BZ_OK)
        return st;
    char errstr[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return bz_fail(err, BZ_ERR_CONFIG, "create Kafka reader for %s: %s", brokers, errstr);
    }
    *out = rk;
    return BZ_OK;
}

static bz_status count_partitions(dlq_read *r, bz_error *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, r->topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(r->rk, 0, rkt, &md, METADATA_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return bz_fail(err, BZ_ERR_TRANSIENT, "metadata of topic %s: %s", r->topic,
                       rd_kafka_err2str(e));
    bz_status st = BZ_OK;
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0)
        st = bz_fail(err, BZ_ERR_NOT_FOUND, "topic %s: %s", r->topic,
                     md->topic_cnt == 1 && md->topics[0].err
                         ? rd_kafka_err2str(md->topics[0].err)
                         : "no partitions");
    else
        r->nparts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return st;
}

/* How many offsets before a partition's end hold its last n records. A
 * transactional producer (ingest) adds one commit marker per transaction
 * that wrote to the partition, so a marker never outnumbers the records
 * before it: 2n + 1 offsets hold at least n records. */
static int64_t tail_offsets(int64_t n)
{
    return 2 * n + 1;
}

static bz_status read_watermarks(dlq_read *r, bz_error *err)
{
    for (int p = 0; p < r->nparts; p++) {
        int64_t low, high;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(r->rk, r->topic, p, &low, &high,
                                                                 METADATA_TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            return bz_fail(err, BZ_ERR_TRANSIENT, "watermarks of %s[%d]: %s", r->topic, p,
                           rd_kafka_err2str(e));
        r->spans[p].start = low;
        r->spans[p].end = high;
        if (r->w->tail > 0 && high - tail_offsets(r->w->tail) > low)
            r->spans[p].start = high - tail_offsets(r->w->tail);
    }
    return BZ_OK;
}

/* Move each start forward to the first record at or after since_ms. */
static bz_status seek_to_since(dlq_read *r, bz_error *err)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(r->nparts);
    for (int p = 0; p < r->nparts; p++)
        rd_kafka_topic_partition_list_add(list, r->topic, p)->offset = r->w->since_ms;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(r->rk, list, METADATA_TIMEOUT_MS);
    bz_status st = BZ_OK;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        st = bz_fail(err, BZ_ERR_TRANSIENT, "find offsets of %s by time: %s", r->topic,
                     rd_kafka_err2str(e));
    for (int i = 0; st == BZ_OK && i < list->cnt; i++) {
        partition_span *s = &r->spans[list->elems[i].partition];
        int64_t at = list->elems[i].offset;
        /* -1: no record that recent in this partition. */
        int64_t first = at < 0 ? s->end : at;
        if (first > s->start)
            s->start = first < s->end ? first : s->end;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return st;
}

static bz_status assign_spans(dlq_read *r, bz_error *err)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(r->nparts);
    r->remaining = 0;
    for (int p = 0; p < r->nparts; p++) {
        partition_span *s = &r->spans[p];
        s->done = s->start >= s->end;
        if (!s->done)
            r->remaining++;
        if (!s->done || r->w->follow)
            rd_kafka_topic_partition_list_add(list, r->topic, p)->offset = s->start;
    }
    rd_kafka_resp_err_t e = list->cnt ? rd_kafka_assign(r->rk, list) : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(list);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return bz_fail(err, BZ_ERR_TRANSIENT, "assign partitions of %s: %s", r->topic,
                       rd_kafka_err2str(e));
    return BZ_OK;
}

static void finish_partition(dlq_read *r, int32_t p)
{
    if (p >= 0 && p < r->nparts && !r->spans[p].done) {
        r->spans[p].done = 1;
        r->remaining--;
    }
}

static int deliver(dlq_read *r, const rd_kafka_message_t *m, const bz_ctl_dlq_reader_fns *fns,
                   void *ctx)
{
    if (r->w->until_ms >= 0) {
        rd_kafka_timestamp_type_t type;
        if (rd_kafka_message_timestamp(m, &type) >= r->w->until_ms)
            return 0;
    }
    Blazz__V1__DeadLetter *dl = blazz__v1__dead_letter__unpack(NULL, m->len, m->payload);
    int stop = fns->on_record(ctx, m, dl);
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
    return stop;
}

/* Handle one polled message: 1 to stop, 0 to go on, -1 on a hard error. */
static int handle_message(dlq_read *r, const rd_kafka_message_t *m,
                          const bz_ctl_dlq_reader_fns *fns, void *ctx, bz_error *err)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        finish_partition(r, m->partition);
        return 0;
    }
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__FATAL || m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
            bz_fail(err, BZ_ERR_TRANSIENT, "read %s: %s", r->topic, rd_kafka_message_errstr(m));
            return -1;
        }
        return 0; /* librdkafka retries transport errors on its own */
    }
    partition_span *s = &r->spans[m->partition];
    int in_window = m->offset < s->end;
    if (m->offset + 1 >= s->end)
        finish_partition(r, m->partition);
    if (!in_window && !r->w->follow)
        return 0;
    return deliver(r, m, fns, ctx) ? 1 : 0;
}

static bz_status consume_window(dlq_read *r, const bz_ctl_dlq_reader_fns *fns, void *ctx,
                                bz_error *err)
{
    int stalled_ms = 0;
    for (;;) {
        if (!r->caught_up && r->remaining == 0) {
            r->caught_up = 1;
            if (fns->on_caught_up)
                fns->on_caught_up(ctx);
        }
        if (r->caught_up && (!r->w->follow || bz_shutdown_requested()))
            return BZ_OK;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, POLL_MS);
        if (!m) {
            stalled_ms += POLL_MS;
            if (!r->caught_up && stalled_ms > STALL_LIMIT_MS)
                return bz_fail(err, BZ_ERR_TRANSIENT,
                               "read %s: no records for %d s with %d partition(s) short of "
                               "their end",
                               r->topic, STALL_LIMIT_MS / 1000, r->remaining);
            continue;
        }
        stalled_ms = 0;
        int rc = handle_message(r, m, fns, ctx, err);
        rd_kafka_message_destroy(m);
        if (rc < 0)
            return BZ_ERR_TRANSIENT;
        if (rc > 0)
            return BZ_OK;
    }
}

static int64_t window_size(const dlq_read *r)
{
    int64_t n = 0;
    for (int p = 0; p < r->nparts; p++)
        n += r->spans[p].end - r->spans[p].start;
    return n;
}

bz_status bz_ctl_dlq_read(const char *brokers, const char *topic, const bz_ctl_dlq_window *w,
                          const bz_ctl_dlq_reader_fns *fns, void *ctx, bz_error *err)
{
    dlq_read r = {.topic = topic, .w = w};
    bz_status st = open_reader(brokers, &r.rk, err);
    if (st != BZ_OK)
        return st;
    st = count_partitions(&r, err);
    if (st == BZ_OK) {
        r.spans = calloc((size_t)r.nparts, sizeof *r.spans);
        if (!r.spans)
            st = bz_fail(err, BZ_ERR_NOMEM, "read %s: out of memory", topic);
    }
    if (st == BZ_OK)
        st = read_watermarks(&r, err);
    if (st == BZ_OK && w->since_ms >= 0)
        st = seek_to_since(&r, err);
    if (st == BZ_OK)
        st = assign_spans(&r, err);
    if (st == BZ_OK && fns->on_total)
        fns->on_total(ctx, window_size(&r));
    if (st == BZ_OK)
        st = consume_window(&r, fns, ctx, err);
    rd_kafka_consumer_close(r.rk);
    rd_kafka_destroy(r.rk);
    free(r.spans);
    return st;
}
