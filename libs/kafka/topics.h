/*
 * topics.h - the Kafka topic catalogue (ARCHITECTURE.md §2) in one place.
 *
 * Every topic the backbone uses has a bz_topic constant and a base name such
 * as "chat.sync". Deployments may share a cluster by giving every topic a
 * prefix ("staging." -> "staging.chat.sync"); bz_topic_name applies it and
 * checks the result is a legal Kafka topic name. To visit all topics:
 *
 *     for (bz_topic t = 0; t < BZ_TOPIC_COUNT; t++)
 *         use(bz_topic_base(t));
 *
 * The table is static and read-only, so every function here is thread-safe.
 */
#ifndef BZ_KAFKA_TOPICS_H
#define BZ_KAFKA_TOPICS_H

#include <stddef.h>

#include "core/status.h"

typedef enum bz_topic {
    BZ_TOPIC_WA_INBOUND_RAW = 0,
    BZ_TOPIC_CHAT_SYNC,
    BZ_TOPIC_CHAT_EVENTS,
    BZ_TOPIC_SESSION_EVENTS,
    BZ_TOPIC_CAMPAIGN_COMMANDS,
    BZ_TOPIC_WA_OUTBOUND,
    BZ_TOPIC_CAMPAIGN_RECEIPTS,
    BZ_TOPIC_CAMPAIGN_EVENTS,
    BZ_TOPIC_WA_SESSION_COMMANDS,
    BZ_TOPIC_CLEANUP_REQUESTS,
    BZ_TOPIC_CRM_COMMANDS,
    BZ_TOPIC_WA_INBOUND_DLQ,
    BZ_TOPIC_CHAT_SYNC_DLQ,
    BZ_TOPIC_WEBHOOK_DLQ,
    BZ_TOPIC_CAMPAIGN_DLQ,
    BZ_TOPIC_CLEANUP_DLQ,
    BZ_TOPIC_OUTBOX_DLQ,
    BZ_TOPIC_WA_OUTBOUND_DLQ,
    BZ_TOPIC_COUNT
} bz_topic;

/* Kafka refuses topic names longer than 249 bytes; buffers of this size
 * (including the NUL) hold any valid name. */
#define BZ_TOPIC_NAME_MAX 250

/* The base name of t ("wa.inbound.raw"), or NULL when t is out of range.
 * The string is static. */
const char *bz_topic_base(bz_topic t);

/* 1 when t is a dead-letter topic (its values are DeadLetter), else 0. */
int bz_topic_is_dlq(bz_topic t);

/* 1 when t is written only through outboxes and their relays (§2:
 * chat.events, session.events, campaign.receipts, campaign.events,
 * wa.outbound, wa.session.commands), else 0. */
int bz_topic_via_outbox(bz_topic t);

/* Find the constant whose base name is base. BZ_ERR_NOT_FOUND if none. */
bz_status bz_topic_lookup(const char *base, bz_topic *out, bz_error *err);

/* The deployment's topic prefix as the tools take it from the environment:
 * BLAZZ_KAFKA_TOPIC_PREFIX (the services' kafka.topic_prefix), else the
 * older BLAZZ_TOPIC_PREFIX, else none (""). Not owned by the caller. */
const char *bz_topic_prefix_from_env(void);

/* Write prefix + base into buf (cap bytes including the NUL). prefix may be
 * NULL or "" for none. Returns BZ_OK, or BZ_ERR_CONFIG (buf left empty) when
 * the result would not fit in cap, is longer than Kafka allows, or holds a
 * character Kafka refuses (only [A-Za-z0-9._-] are legal). */
bz_status bz_topic_name(const char *prefix, const char *base, char *buf, size_t cap);

/* Same as bz_topic_name, with a message in err naming the offending prefix
 * or base when it fails. */
bz_status bz_topic_name_checked(const char *prefix, const char *base, char *buf,
                                size_t cap, bz_error *err);

/* Each gateway has topics of its own (ARCHITECTURE.md §2, §9.1), named
 * "<prefix><base><gateway id>": the one it writes its inbound events to,
 * which only its principal may write, so the topic a record was read from
 * names the gateway that produced it; and the two it alone reads, the sends
 * and the session commands for the sessions it serves. The outbox routes
 * rows written for wa.outbound and wa.session.commands to the serving
 * gateway's (0029_outbound_per_gateway.sql), so a gateway never sees
 * another tenant's messages. */
typedef enum bz_gateway_topic {
    BZ_GATEWAY_TOPIC_INBOUND = 0, /* "wa.inbound.gw." */
    BZ_GATEWAY_TOPIC_OUTBOUND,    /* "wa.outbound.gw." */
    BZ_GATEWAY_TOPIC_COMMANDS,    /* "wa.session.commands.gw." */
    BZ_GATEWAY_TOPIC_COUNT
} bz_gateway_topic;

/* The base of a gateway topic, to which the gateway id is appended, or NULL
 * when which is out of range. The string is static. */
const char *bz_gateway_topic_base(bz_gateway_topic which);

/* Longest gateway id. */
#define BZ_GATEWAY_ID_MAX 48

/* 1 when id is a valid gateway id: 1 to BZ_GATEWAY_ID_MAX characters of
 * [a-z0-9_-], starting with a letter or digit. */
int bz_gateway_id_valid(const char *id);

/* The topic `which` of gateway_id under prefix, into buf. BZ_ERR_CONFIG for
 * an invalid id or a name that does not fit. */
bz_status bz_topic_gateway_name(const char *prefix, bz_gateway_topic which,
                                const char *gateway_id, char *buf, size_t cap, bz_error *err);

/* The gateway id in a full inbound gateway topic name under prefix (a
 * pointer into topic), or NULL when topic is not one of that prefix. */
const char *bz_topic_gateway_of(const char *prefix, const char *topic);

/* 1 when base (without prefix) is a gateway's outbound or commands topic
 * with a valid id, a name the outbox routes rows to, with *shared (may be
 * NULL) set to the catalogue topic the row was written for
 * (BZ_TOPIC_WA_OUTBOUND, BZ_TOPIC_WA_SESSION_COMMANDS); else 0. */
int bz_topic_gateway_route(const char *base, bz_topic *shared);

#endif
