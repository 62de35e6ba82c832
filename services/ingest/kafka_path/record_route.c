/*
 * record_route.c - one raw inbound record inside the pipeline's open
 * transaction (see record_route.h): decode, drop a duplicate, normalize,
 * find which gateway produced it (its topic, or the header the HTTP edge
 * set), route it to its owner (sync_route.h) and produce the SyncCommand
 * to chat.sync; or dead-letter it with the reason.
 *
 * A dead letter's event_id is not remembered, so replaying it from the
 * dead-letter topic after a fix is not dropped.
 */
#include "kafka_path/record_route.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "events/event_id.h"
#include "events/event_tree.h"
#include "events/normalize.h"
#include "events/sync_route.h"
#include "gateway/gateway_auth.h"
#include "kafka/dlq.h"

#define SERVICE_NAME "ingest"

static void count(bz_counter_family *fam, const char *a, const char *b)
{
    if (fam)
        bz_counter_inc(b ? bz_counter_family_with(fam, a, b) : bz_counter_family_with(fam, a));
}

static ing_record_outcome dead_letter(ing_record_router *p, const rd_kafka_message_t *m, const char *event_id,
                           const bz_error *why)
{
    const char *reason = why->reason ? why->reason : "invalid_field";
    int64_t now = bz_wall_ms();
    bz_dead_letter_info info = {.error_code = reason, .error_message = why->msg,
                                .service = SERVICE_NAME, .event_id = event_id, .attempts = 1,
                                .first_failed_at_ms = now, .last_failed_at_ms = now};
    bz_error err;
    if (bz_dlq_send(p->producer, p->cfg->dlq_topic, m, &info, NULL, &err) != BZ_OK) {
        bz_warn("%s", err.msg);
        return ING_RECORD_BROKEN;
    }
    bz_log_event(BZ_LOG_WARN, event_id, NULL, "dead-lettered %s[%" PRId32 "]@%" PRId64 ": %s: %s",
                 rd_kafka_topic_name(m->rkt), m->partition, m->offset, reason, why->msg);
    if (p->cfg->metrics) {
        count(p->cfg->metrics->dead_lettered, reason, NULL);
        count(p->cfg->metrics->rejected, "kafka", reason);
    }
    return ING_RECORD_DEAD_LETTERED;
}

/* Route ev (sent by gateway) to chat.sync inside the open transaction, or
 * dead-letter it with sync_route's reason. */
static ing_record_outcome produce_sync(ing_record_router *p, const rd_kafka_message_t *m,
                                       Blazz__V1__InboundEvent *ev, const char *gateway,
                                       const char *conversation)
{
    bz_error err;
    bz_status st = ing_sync_route(p->cfg->sessions, ev, gateway, conversation, &p->record, &err);
    if (st == BZ_ERR_INVALID)
        return dead_letter(p, m, ev->envelope->event_id, &err);
    if (st == BZ_ERR_TRANSIENT) {
        bz_warn("%s; retrying", err.msg);
        return ING_RECORD_RETRY_LATER;
    }
    if (st != BZ_OK) {
        bz_warn("%s", err.msg);
        return ING_RECORD_BROKEN;
    }
    bz_kafka_header headers[2];
    ing_sync_headers(ev, headers);
    if (bz_producer_send(p->producer, p->cfg->sync_topic, RD_KAFKA_PARTITION_UA, p->record.key,
                         p->record.key_len, p->record.value, p->record.len, headers, 2, NULL,
                         &err) != BZ_OK) {
        bz_warn("%s", err.msg);
        return ING_RECORD_BROKEN;
    }
    if (p->cfg->metrics)
        count(p->cfg->metrics->accepted, "kafka", NULL);
    return ING_RECORD_HANDLED;
}

/* The gateway that produced m into out ("" when the record does not say:
 * a raw record without the edge's header); 1 when it is the gateway's own
 * topic, 0 when wa.inbound.raw's header says (only ingest and blazzctl
 * write that topic: the edge's dead letters, replayed). */
static int producing_gateway(const ing_record_router *p, const rd_kafka_message_t *m,
                             char out[BZ_GATEWAY_ID_MAX + 1])
{
    out[0] = '\0';
    const char *from_topic = bz_topic_gateway_of(p->cfg->topic_prefix, rd_kafka_topic_name(m->rkt));
    if (from_topic) {
        snprintf(out, BZ_GATEWAY_ID_MAX + 1, "%s", from_topic);
        return 1;
    }
    rd_kafka_headers_t *hdrs = NULL;
    const void *value = NULL;
    size_t size = 0;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, ING_GATEWAY_HEADER, &value, &size) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        value && size <= BZ_GATEWAY_ID_MAX) {
        memcpy(out, value, size);
        out[size] = '\0';
    }
    return 0;
}

ing_record_outcome ing_record_route(ing_record_router *p, const rd_kafka_message_t *m)
{
    bz_error err;
    if (p->cfg->metrics)
        count(p->cfg->metrics->received, "kafka", NULL);
    Blazz__V1__InboundEvent *ev = m->payload ? blazz__v1__inbound_event__unpack(NULL, m->len,
                                                                                m->payload)
                                             : NULL;
    if (!ev) {
        bz_reject(&err, "decode_error", "field value: not a blazz.v1.InboundEvent (%zu bytes)",
                  m->len);
        return dead_letter(p, m, NULL, &err);
    }
    ing_record_outcome result;
    if (ing_event_id_assign(ev, &err) != BZ_OK) {
        result = err.code == BZ_ERR_INVALID ? dead_letter(p, m, NULL, &err) : ING_RECORD_BROKEN;
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
        return result;
    }
    int64_t now = bz_monotonic_ms();
    const char *event_id = ev->envelope->event_id;
    if (ing_dedupe_seen(p->cfg->dedupe, event_id, now)) {
        if (p->cfg->metrics)
            bz_counter_inc(p->cfg->metrics->duplicates);
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
        return ING_RECORD_HANDLED;
    }
    char conversation[ING_CONVERSATION_MAX], gateway[BZ_GATEWAY_ID_MAX + 1];
    int own_topic = producing_gateway(p, m, gateway);
    /* a Meta event here is one the Meta edge dead-lettered, replayed */
    int meta = !own_topic && p->cfg->meta_gateway && strcmp(gateway, p->cfg->meta_gateway) == 0;
    ing_norm_opts opts = {.default_cc = p->cfg->default_cc, .now_ms = bz_wall_ms(),
                          .max_future_ms = p->cfg->max_future_ms, .meta_edge = meta};
    bz_status st = ing_normalize(ev, &opts, conversation, &err);
    if (st == BZ_ERR_INVALID)
        result = dead_letter(p, m, event_id, &err);
    else if (st != BZ_OK)
        result = ING_RECORD_BROKEN;
    else
        result = produce_sync(p, m, ev, gateway, conversation);
    if (result == ING_RECORD_HANDLED)
        ing_dedupe_add(p->cfg->dedupe, event_id, now);
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
    return result;
}

void ing_record_router_clear(ing_record_router *r)
{
    ing_sync_record_clear(&r->record);
}
