/*
 * dlq_replay_db.h - the dead letters `blazzctl dlq replay` sends through
 * PostgreSQL instead of producing them to Kafka.
 *
 * blazzctl's Kafka principal may not write the topics that only outbox
 * relays write (chat.events, wa.outbound, ...: ARCHITECTURE.md §9.1), so a
 * dead letter whose original topic is one of them is replayed through the
 * database, whose holder those topics trust:
 *  - an undeliverable webhook (a webhook.dlq record carrying a
 *    webhook-endpoint-id header) re-queues its delivery row in
 *    webhook_retry_queue, as `blazzctl webhooks replay` does: a failed row
 *    goes back to pending with its attempts reset and the dispatcher is
 *    woken; the body it sends is the row's, never the record's;
 *  - any other record for an outbox topic becomes an outbox row (the
 *    topic's base name, the original key, value and text headers), which
 *    the active relay publishes with its deployment prefix.
 * Each call is its own transaction. All SQL is parameterized.
 */
#ifndef BZ_CTL_DLQ_REPLAY_DB_H
#define BZ_CTL_DLQ_REPLAY_DB_H

#include "blazz/v1/dead_letter.pb-c.h"
#include "core/status.h"

typedef struct bz_ctl_replay_db bz_ctl_replay_db;

/* 1 when dl (read from a deployment with topic prefix) replays through the
 * database, 0 when it is produced to its original topic. */
int bz_ctl_replay_via_db(const char *prefix, const Blazz__V1__DeadLetter *dl);

/* Connect to dsn. Free with bz_ctl_replay_db_free. */
bz_status bz_ctl_replay_db_open(const char *dsn, bz_ctl_replay_db **out, bz_error *err);
void bz_ctl_replay_db_free(bz_ctl_replay_db *db);

/* Replay dl as described above. BZ_ERR_NOT_FOUND when its delivery row is
 * gone; BZ_ERR_INVALID when it cannot become an outbox row (its event id is
 * not a UUID, a header is not text). */
bz_status bz_ctl_replay_db_send(bz_ctl_replay_db *db, const char *prefix,
                                const Blazz__V1__DeadLetter *dl, bz_error *err);

/* Requeued delivery rows and outbox rows written so far. */
int64_t bz_ctl_replay_db_requeued(const bz_ctl_replay_db *db);
int64_t bz_ctl_replay_db_outboxed(const bz_ctl_replay_db *db);

#endif
