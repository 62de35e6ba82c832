/*
 * chat_sync_itest.c - the chat-sync tests' messages and event log (see
 * chat_sync_itest.h). The event log decodes each record with its topic's
 * contract and keeps the records of the test's workspace only: a topic
 * prefix can carry a leftover outbox row of another workspace relayed
 * under it.
 */
#include "chat_sync_itest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/session.pb-c.h"
#include "itest.h"

/* ---- inbound messages ------------------------------------------------------------ */

void inbound_phone(int contact, char *out, size_t cap)
{
    snprintf(out, cap, "+6281%08d", contact);
}

Blazz__V1__InboundMessage inbound_private(const char *wam, const char *phone, const char *name,
                                          int from_me, int64_t ts_ms)
{
    Blazz__V1__InboundMessage m = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    m.wam_id = (char *)wam;
    m.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    m.contact_phone = (char *)phone;
    m.contact_name = (char *)name;
    m.body = "hello";
    m.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    m.timestamp_ms = ts_ms;
    m.from_me = from_me;
    return m;
}

Blazz__V1__InboundMessage inbound_group_message(const char *wam, const char *jid,
                                                const char *name, const char *sender_phone,
                                                int64_t ts_ms)
{
    Blazz__V1__InboundMessage m = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    m.wam_id = (char *)wam;
    m.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
    m.group_jid = (char *)jid;
    m.group_name = (char *)name;
    m.sender_phone = (char *)sender_phone;
    m.sender_name = "Sender";
    m.body = "hi group";
    m.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    m.timestamp_ms = ts_ms;
    return m;
}

Blazz__V1__MessageAck inbound_ack(const char *wam, const char *phone, int status, int64_t ts_ms)
{
    Blazz__V1__MessageAck ack = BLAZZ__V1__MESSAGE_ACK__INIT;
    ack.wam_id = (char *)wam;
    ack.status = status;
    ack.timestamp_ms = ts_ms;
    ack.recipient_phone = (char *)phone;
    if (status == S_FAILED) {
        ack.error_code = "131047";
        ack.error_message = "re-engagement window closed";
    }
    return ack;
}

/* ---- the events chat-sync published ------------------------------------------------ */

typedef struct log_reader {
    event_log *log;
    event_log_topic topic;
    int64_t workspace;
} log_reader;

static void append(event_log *log, const char *id, int kind)
{
    if (log->n == log->cap) {
        log->cap = log->cap ? log->cap * 2 : 1024;
        log->ids = realloc(log->ids, log->cap * sizeof *log->ids);
        log->kinds = realloc(log->kinds, log->cap * sizeof *log->kinds);
        assert_true(log->ids && log->kinds);
    }
    log->ids[log->n] = strdup(id);
    assert_non_null(log->ids[log->n]);
    log->kinds[log->n++] = kind;
}

/* Keep env's event when it is of the reader's workspace; false when the
 * record had no envelope. */
static bool keep(log_reader *r, const Blazz__V1__Envelope *env, int kind)
{
    if (!env)
        return false;
    if (env->workspace_id == r->workspace)
        append(r->log, env->event_id, kind);
    return true;
}

static void collect_event(void *ctx, const rd_kafka_message_t *msg)
{
    log_reader *r = ctx;
    bool decoded = false;
    if (r->topic == EVENT_LOG_CHAT_EVENTS) {
        Blazz__V1__ChatEvent *e = blazz__v1__chat_event__unpack(NULL, msg->len, msg->payload);
        decoded = e && keep(r, e->envelope, e->merge ? K_MERGED : (int)e->kind);
        blazz__v1__chat_event__free_unpacked(e, NULL);
    } else if (r->topic == EVENT_LOG_SESSION_EVENTS) {
        Blazz__V1__SessionEvent *e = blazz__v1__session_event__unpack(NULL, msg->len, msg->payload);
        decoded = e && keep(r, e->envelope, e->kind);
        blazz__v1__session_event__free_unpacked(e, NULL);
    } else {
        Blazz__V1__CampaignReceipt *e =
            blazz__v1__campaign_receipt__unpack(NULL, msg->len, msg->payload);
        decoded = e && keep(r, e->envelope, e->ack ? (int)e->ack->status : 0);
        blazz__v1__campaign_receipt__free_unpacked(e, NULL);
    }
    if (!decoded)
        fail_msg("undecodable event at offset %lld of %s", (long long)msg->offset,
                 rd_kafka_topic_name(msg->rkt));
}

void event_log_read(const char *prefix, event_log_topic topic, int64_t workspace, event_log *log)
{
    static const char *const names[] = {
        [EVENT_LOG_CHAT_EVENTS] = "chat.events",
        [EVENT_LOG_SESSION_EVENTS] = "session.events",
        [EVENT_LOG_CAMPAIGN_RECEIPTS] = "campaign.receipts",
    };
    char name[256];
    snprintf(name, sizeof name, "%s%s", prefix, names[topic]);
    memset(log, 0, sizeof *log);
    log_reader r = {.log = log, .topic = topic, .workspace = workspace};
    itest_consume_all(name, collect_event, &r);
}

size_t event_log_count(const event_log *log, int kind)
{
    size_t n = 0;
    for (size_t i = 0; i < log->n; i++)
        n += kind < 0 || log->kinds[i] == kind;
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The distinct ids of kind (-1: any), sorted; the caller frees the array. */
static char **distinct_ids_of(const event_log *log, int kind, size_t *n_out)
{
    char **ids = malloc((log->n ? log->n : 1) * sizeof *ids);
    assert_non_null(ids);
    size_t n = 0;
    for (size_t i = 0; i < log->n; i++)
        if (kind < 0 || log->kinds[i] == kind)
            ids[n++] = log->ids[i];
    qsort(ids, n, sizeof *ids, cmp_str);
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        if (d == 0 || strcmp(ids[i], ids[d - 1]) != 0)
            ids[d++] = ids[i];
    *n_out = d;
    return ids;
}

size_t event_log_distinct(const event_log *log, int kind)
{
    size_t n;
    free(distinct_ids_of(log, kind, &n));
    return n;
}

char **event_log_distinct_ids(const event_log *log, size_t *n_out)
{
    return distinct_ids_of(log, -1, n_out);
}

void event_log_free(event_log *log)
{
    for (size_t i = 0; i < log->n; i++)
        free(log->ids[i]);
    free(log->ids);
    free(log->kinds);
}

size_t event_log_merges(const char *prefix, int64_t workspace)
{
    event_log log = {0};
    event_log_read(prefix, EVENT_LOG_CHAT_EVENTS, workspace, &log);
    size_t n = event_log_count(&log, K_MERGED), distinct = event_log_distinct(&log, K_MERGED);
    event_log_free(&log);
    assert_int_equal(n, distinct);
    return n;
}
