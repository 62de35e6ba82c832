/*
 * deadletters.h - dead letters of undeliverable webhook deliveries, from
 * the worker's claim to the broker's acknowledgement.
 *
 * A delivery that is exhausted (or whose stored payload cannot be sent)
 * gets a dead letter on webhook.dlq, then its row is marked failed. Its
 * life here:
 *   1. added: encoded, and the worker buffers an outcome that confirms its
 *      claim on the row (outcomes.h), with this dead letter as follow-up;
 *   2. confirmed or stale: the outcome found the row on that claim, or on
 *      another one (this worker's lease had run out and another claim took
 *      the row: publishing would make a second dead letter);
 *   3. published, re-published if the broker fails it;
 *   4. acknowledged: handed back to the worker, which marks the row failed.
 * While it waits, its row's lease is renewed (while the row is on its
 * claim), so no other claim takes the row because the broker is slow.
 *
 * At most max_pending wait at once: with the broker away, exhausted
 * deliveries would otherwise pile up in memory. When full, add refuses and
 * the worker leaves the row in the table, leased, to be claimed (and
 * dead-lettered) again later.
 *
 * One thread owns the set; the producer's delivery reports arrive on it
 * through bz_producer_poll.
 */
#ifndef WH_DEADLETTERS_H
#define WH_DEADLETTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "kafka/producer.h"
#include "pg/pg.h"

/* What a dead letter says about its delivery; copied by add. */
typedef struct wh_dead_letter_source {
    int64_t id, claims, endpoint_id, workspace_id;
    int64_t created_ms;         /* wall ms: the first failure, as far as we know */
    const char *event_id;
    const char *original_topic; /* the topic the event came from */
    const char *body;           /* the payload, as it would be sent */
    size_t body_len;
    int attempts;
    long code;                  /* last HTTP status, 0 for none */
    const char *error_code;     /* static: webhook_exhausted, invalid_payload */
    const char *message;
} wh_dead_letter_source;

typedef struct wh_dead_letter wh_dead_letter;

typedef struct wh_dead_letters {
    bz_producer *producer;  /* borrowed */
    const char *topic;      /* full name of webhook.dlq */
    const char *service;
    int max_pending;
    int64_t lease_ms;
    wh_dead_letter *head;
    int count;
    bool full_logged;
    int64_t next_renew_ms;
} wh_dead_letters;

/* The row of an acknowledged dead letter: mark it failed with error and
 * code, on the claim it was exhausted on. */
typedef void (*wh_dead_letter_acked_fn)(void *ctx, int64_t id, int64_t claims,
                                           const char *error, long code);

/* Register the lease renewal statement on the worker's connection. */
bz_status wh_dead_letters_prepare(bz_pg *pg, bz_error *err);

/* Add a dead letter for src, not yet confirmed. Returns it (owned by d; to
 * be passed to wh_dead_letters_confirmed), or NULL when max_pending
 * already wait or memory ran out (logged once while full). */
wh_dead_letter *wh_dead_letters_add(wh_dead_letters *d,
                                          const wh_dead_letter_source *src);

/* What the outcome confirming its claim found: applied = the row was on
 * the claim, publish; otherwise never publish it. */
void wh_dead_letters_confirmed(wh_dead_letter *dl, bool applied);

/* Publish the confirmed, drop the stale, hand the acknowledged to acked
 * and forget them. Returns how many were acknowledged. */
size_t wh_dead_letters_drain(wh_dead_letters *d, wh_dead_letter_acked_fn acked,
                                void *ctx);

/* True when dead letters wait and their leases are due for renewal: every
 * third of a lease. */
bool wh_dead_letters_renewal_due(const wh_dead_letters *d, int64_t now_ms);

/* Renew the leases of the rows whose dead letters wait, while the rows are
 * on their claims (conn: the worker's connection, up). Failures are
 * logged; the next renewal is a third of a lease later either way. */
void wh_dead_letters_renew(wh_dead_letters *d, PGconn *conn, int64_t now_ms);

/* Forget every dead letter (stopping; free the producer first, whose
 * delivery reports still point at them). */
void wh_dead_letters_free(wh_dead_letters *d);

#endif
