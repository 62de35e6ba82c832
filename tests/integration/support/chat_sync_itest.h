/*
 * chat_sync_itest.h - what the chat-sync tests share (test_chat_sync feeds
 * chat-sync straight through chat.sync, test_chat_sync_via_ingest through
 * ingest): the inbound messages and receipts of their test contacts, and
 * the log of the events chat-sync published for a workspace, read back
 * from its topics.
 */
#ifndef CHAT_SYNC_ITEST_H
#define CHAT_SYNC_ITEST_H

#include <stddef.h>
#include <stdint.h>

#include "blazz/v1/chat_event.pb-c.h"
#include "blazz/v1/inbound.pb-c.h"

/* Event kinds and delivery statuses as the tests' assertions name them. */
#define K_CREATED BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_CREATED
#define K_STATUS BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_STATUS_CHANGED
#define K_PROGRESS BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_SYNC_PROGRESS
/* A merge (webhook contact.merged): a CONTACT_UPDATED carrying one, which
 * the event log records under this kind of its own. */
#define K_MERGED 1000
#define S_SENT BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT
#define S_DELIVERED BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED
#define S_READ BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ
#define S_FAILED BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED

/* SQL: the milliseconds of a timestamptz column, -1 when NULL. */
#define MS(col) "coalesce((extract(epoch FROM " col ") * 1000)::bigint, -1)"

/* ---- inbound messages ------------------------------------------------------------ */

/* The phone of test contact n ("+6281" and 8 digits). */
void inbound_phone(int contact, char *out, size_t cap);

/* The messages the tests send, pointing into the caller's strings (which
 * must outlive them): a private text "hello" from (or, from_me, to) phone;
 * a group text "hi group" from sender_phone in the group jid named name; a
 * receipt of wam for phone (a failed one carries Meta's re-engagement
 * error). */
Blazz__V1__InboundMessage inbound_private(const char *wam, const char *phone, const char *name,
                                          int from_me, int64_t ts_ms);
Blazz__V1__InboundMessage inbound_group_message(const char *wam, const char *jid,
                                                const char *name, const char *sender_phone,
                                                int64_t ts_ms);
Blazz__V1__MessageAck inbound_ack(const char *wam, const char *phone, int status, int64_t ts_ms);

/* ---- the events chat-sync published ------------------------------------------------ */

typedef enum event_log_topic {
    EVENT_LOG_CHAT_EVENTS,       /* chat.events: kind is the ChatEventKind */
    EVENT_LOG_SESSION_EVENTS,    /* session.events: the SessionEventKind */
    EVENT_LOG_CAMPAIGN_RECEIPTS, /* campaign.receipts: the receipt's DeliveryStatus */
} event_log_topic;

typedef struct event_log {
    char **ids; /* each record's event_id (heap) */
    int *kinds;
    size_t n, cap;
} event_log;

/* Read every record of one workspace on <prefix><topic> into log (up to
 * the high watermark, read_committed); fails the test on a record that does
 * not decode. Free with event_log_free. */
void event_log_read(const char *prefix, event_log_topic topic, int64_t workspace, event_log *log);

/* How many records, and how many distinct event ids, of kind (-1: any). */
size_t event_log_count(const event_log *log, int kind);
size_t event_log_distinct(const event_log *log, int kind);

/* The distinct event ids, sorted, *n_out of them; the caller frees the
 * array, the strings belong to log. */
char **event_log_distinct_ids(const event_log *log, size_t *n_out);

void event_log_free(event_log *log);

/* The contact.merged events chat-sync published for workspace (each once:
 * the test fails on a duplicate). */
size_t event_log_merges(const char *prefix, int64_t workspace);

#endif
