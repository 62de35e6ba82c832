/*
 * publish_kafka.c - the kafka publisher: events go straight to the
 * gateway's own topic <prefix>wa.inbound.gw.<gateway>, as a gateway that
 * talks to Kafka writes them (only its principal may: ARCHITECTURE.md §9.1).
 *
 * Each record carries a heap bz_delivery that remembers when it was handed
 * over and what kind it was; the delivery report (served by poll / drain on
 * the publisher's thread) counts the outcome, writes an acknowledged
 * event's messages to the --accepted-log and frees it. Records left at
 * free time are failed back by bz_producer_free, so nothing leaks.
 */
#include <stdlib.h>
#include <string.h>

#include "accepted_log.h"
#include "kafka/producer.h"
#include "kafka/topics.h"
#include "publish.h"

typedef struct kafka_publisher {
    bz_sim_publisher base;
    bz_producer *producer;
    bz_sim_stats *stats;
    bz_sim_accepted_log *accepted_log;
    char topic[BZ_TOPIC_NAME_MAX];
} kafka_publisher;

typedef struct kafka_delivery {
    bz_delivery base;
    bz_sim_stats *stats;
    bz_sim_accepted_log *accepted_log;
    char *accepted_lines;
    int64_t queued_us;
} kafka_delivery;

static void on_delivered(bz_delivery *d, rd_kafka_resp_err_t err, int32_t partition,
                         int64_t offset)
{
    (void)partition;
    (void)offset;
    kafka_delivery *kd = (kafka_delivery *)d;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        bz_sim_stats_count_accepted(kd->stats, bz_sim_now_us() - kd->queued_us);
        bz_sim_accepted_log_write(kd->accepted_log, kd->accepted_lines);
    } else {
        atomic_fetch_add(&kd->stats->kafka_errors, 1);
    }
    free(kd->accepted_lines);
    free(kd);
}

static bz_status kafka_publish(bz_sim_publisher *base, const bz_sim_event *ev, bz_error *err)
{
    kafka_publisher *p = (kafka_publisher *)base;
    kafka_delivery *d = malloc(sizeof *d);
    if (!d)
        return bz_fail(err, BZ_ERR_NOMEM, "publish event %s: out of memory", ev->event_id);
    d->base.on_done = on_delivered;
    d->stats = p->stats;
    d->accepted_log = p->accepted_log;
    d->accepted_lines = bz_sim_accepted_lines(p->accepted_log, ev);
    d->queued_us = bz_sim_now_us();
    bz_kafka_header headers[] = {
        {"event_id", ev->event_id, strlen(ev->event_id)},
        {"trace_id", ev->trace_id, strlen(ev->trace_id)},
    };
    bz_status st = bz_producer_send(p->producer, p->topic, RD_KAFKA_PARTITION_UA, ev->session_id,
                                    strlen(ev->session_id), ev->data, ev->len, headers, 2,
                                    &d->base, err);
    if (st != BZ_OK) {
        free(d->accepted_lines);
        free(d);
        return bz_wrap(err, "publish event %s to %s", ev->event_id, p->topic);
    }
    bz_sim_stats_count_sent(p->stats, ev->kind);
    bz_producer_poll(p->producer, 0);
    return BZ_OK;
}

static void kafka_poll(bz_sim_publisher *base, int timeout_ms)
{
    bz_producer_poll(((kafka_publisher *)base)->producer, timeout_ms);
}

static bz_status kafka_drain(bz_sim_publisher *base, int timeout_ms, bz_error *err)
{
    return bz_producer_flush(((kafka_publisher *)base)->producer, timeout_ms, err);
}

static void kafka_free(bz_sim_publisher *base)
{
    kafka_publisher *p = (kafka_publisher *)base;
    bz_producer_free(p->producer, 5000);
    free(p);
}

static const bz_sim_publisher_ops kafka_ops = {kafka_publish, kafka_poll, kafka_drain, kafka_free};

bz_status bz_sim_publisher_new_kafka(const bz_sim_options *o, bz_sim_stats *stats,
                                     bz_sim_publisher **out, bz_error *err)
{
    kafka_publisher *p = calloc(1, sizeof *p);
    if (!p)
        return bz_fail(err, BZ_ERR_NOMEM, "kafka publisher: out of memory");
    p->base.ops = &kafka_ops;
    p->stats = stats;
    p->accepted_log = o->accepted_log;
    bz_status st = bz_topic_gateway_name(o->topic_prefix, BZ_GATEWAY_TOPIC_INBOUND, o->gateway_id,
                                         p->topic, sizeof p->topic, err);
    bz_kafka_settings settings = {.brokers = o->brokers, .client_id = "blazz-gateway-sim"};
    if (st == BZ_OK)
        st = bz_producer_new(&settings, &p->producer, err);
    if (st != BZ_OK) {
        free(p);
        return bz_wrap(err, "kafka publisher");
    }
    *out = &p->base;
    return BZ_OK;
}
