/*
 * limits.h - how big a Kafka record may be, defined once for the backbone,
 * and every size limit derived from it.
 *
 * BZ_KAFKA_RECORD_MAX_BYTES bounds one record a service produces: key,
 * value and headers, measured as librdkafka measures them for its
 * message.max.bytes check (bz_kafka_record_size). Every producer runs with
 * message.max.bytes set to it, so a record that is too large is refused at
 * once by the client, before it takes a sequence number, and never by the
 * broker after the batch around it was sent. Every catalogue topic is
 * created with max.message.bytes = BZ_KAFKA_TOPIC_MAX_MESSAGE_BYTES, the
 * record limit plus room for the batch header, so whatever a producer
 * accepts the topic accepts too.
 *
 * Services wrap records they received: ingest turns an InboundEvent into a
 * SyncCommand (conversation, resolved workspace and account), and any
 * consumer may wrap a record in a DeadLetter (topic, offset, reason). Each
 * wrapping adds at most BZ_KAFKA_WRAP_HEADROOM_BYTES to what it wraps. What
 * enters from outside is therefore kept two wrappings below the record
 * limit: ingest's HTTP path produces an event of at most
 * BZ_INBOUND_EVENT_MAX_BYTES (so it can become a SyncCommand and that can
 * still be dead-lettered whole) from a body of at most
 * BZ_INBOUND_BODY_MAX_BYTES (one more headroom for the event id, trace id,
 * key and headers it adds). A body over the limit, or one that normalizes
 * into an event over its limit, is answered 413.
 *
 * A record that still cannot fit downstream (a gateway writing a raw record
 * near the limit straight to wa.inbound.raw) is never retried: it is
 * dead-lettered with a truncated value plus the original's size and
 * SHA-256 (dlq.h), and the consumer moves on.
 */
#ifndef BZ_KAFKA_LIMITS_H
#define BZ_KAFKA_LIMITS_H

#include <stddef.h>

#include "kafka/producer.h"

/* librdkafka's default message.max.bytes, kept: it is below the broker's
 * default (1,048,588), so existing topics take every record too. */
#define BZ_KAFKA_RECORD_MAX_BYTES 1000000

/* A record batch adds a 61-byte header to its records; the rest is slack. */
#define BZ_KAFKA_BATCH_HEADER_ALLOWANCE 1024

/* What one wrapping adds around a record, generously: a SyncCommand adds
 * its conversation, resolved ids and key (under 1 KB once JIDs are
 * canonical), a DeadLetter its topic, reason, message and dlt-* headers
 * (under 3 KB). */
#define BZ_KAFKA_WRAP_HEADROOM_BYTES 16000

/* The derived limits are written as numbers, since configuration defaults
 * and topic settings need their text (BZ_LIMIT_TEXT); the assertions below
 * keep them derived from the record limit. */
#define BZ_KAFKA_TOPIC_MAX_MESSAGE_BYTES 1001024
#define BZ_INBOUND_EVENT_MAX_BYTES 968000
#define BZ_INBOUND_BODY_MAX_BYTES 952000

_Static_assert(BZ_KAFKA_TOPIC_MAX_MESSAGE_BYTES ==
                   BZ_KAFKA_RECORD_MAX_BYTES + BZ_KAFKA_BATCH_HEADER_ALLOWANCE,
               "a topic must take the largest record a producer sends, batch header included");
_Static_assert(BZ_INBOUND_EVENT_MAX_BYTES ==
                   BZ_KAFKA_RECORD_MAX_BYTES - 2 * BZ_KAFKA_WRAP_HEADROOM_BYTES,
               "an inbound event must stay two wrappings below the record limit");
_Static_assert(BZ_INBOUND_BODY_MAX_BYTES ==
                   BZ_INBOUND_EVENT_MAX_BYTES - BZ_KAFKA_WRAP_HEADROOM_BYTES,
               "an inbound body must leave room for what ingest adds to the event");

/* A limit as configuration text: BZ_LIMIT_TEXT(BZ_INBOUND_BODY_MAX_BYTES). */
#define BZ_LIMIT_TEXT_(n) #n
#define BZ_LIMIT_TEXT(n) BZ_LIMIT_TEXT_(n)

/* The size librdkafka checks against message.max.bytes: key, value and
 * headers plus the worst-case varint framing of the record and of each
 * header. */
size_t bz_kafka_record_size(size_t key_len, size_t value_len, const bz_kafka_header *headers,
                            size_t nheaders);

/* 1 when such a record fits in BZ_KAFKA_RECORD_MAX_BYTES. */
int bz_kafka_record_fits(size_t key_len, size_t value_len, const bz_kafka_header *headers,
                         size_t nheaders);

#endif
