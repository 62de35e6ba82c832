/*
 * text_limits.h - how long the text of a WhatsApp message may be, for every
 * service that reads or writes one.
 *
 * The seeds keep a message body in a MySQL TEXT column (64 KiB). ingest
 * refuses an inbound body longer than this, and campaign-sender refuses a
 * campaign whose message could render longer, so what the backbone sends is
 * what it would accept back (the echo of our own message arrives through
 * ingest), and a message is always far below the Kafka record limit.
 * What Meta's Cloud API takes in its message objects is narrower:
 * wa/meta_limits.h.
 */
#ifndef BZ_WA_TEXT_LIMITS_H
#define BZ_WA_TEXT_LIMITS_H

#define BZ_WA_TEXT_MAX_BYTES 65536

#endif
