/*
 * outcomes.h - delivery outcomes on their way to webhook_retry_queue.
 *
 * Every finished attempt, every claim handed back unattempted and every
 * dead letter the broker acknowledged becomes one outcome: buffered here and
 * written in batches, one UPDATE ... FROM unnest per batch.
 *
 * Claims: each outcome carries the row's claim number as it was claimed
 * (webhook_retry_queue.claims, incremented by every claim). The UPDATE
 * applies only while the row is still on that claim, so a holder whose lease
 * ran out and whose row another claim took (a frozen or partitioned
 * instance) cannot overwrite the new holder's outcome. The rows the UPDATE
 * applied to are returned; an outcome may carry a follow-up (`then`, a dead
 * letter waiting to be published) that the writer reports as applied or
 * not, so nothing is published on the strength of a lost claim.
 *
 * One outcome cannot block the others: when PostgreSQL refuses a batch for
 * its data rather than for a transient reason, the batch is written again
 * row by row; a row refused again is written without its error text; only a
 * row refused even then is given up (logged, reported as not applied: its
 * lease runs out and it is delivered again). Error texts are made valid
 * UTF-8 when added, since one bad byte fails a whole batch (22021).
 *
 * The buffer grows as needed; the worker keeps it bounded by counting it in
 * its budget of claimed work. One thread owns it.
 */
#ifndef WH_OUTCOMES_H
#define WH_OUTCOMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "pg/pg.h"

typedef struct wh_outcome_row {
    int64_t id;
    int64_t claims;     /* the row's claim number when it was claimed */
    const char *status; /* static: success, retrying, failed, or keep (status unchanged) */
    int failed;         /* added to retry_count */
    int64_t delay_ms;   /* retrying and keep: next_retry_at = now + delay */
    long code;          /* last HTTP status, 0 for none */
    char *error;        /* owned by the buffer; "" for none */
    void *then;         /* follow-up reported to the written callback, or NULL */
} wh_outcome_row;

typedef struct wh_outcomes {
    wh_outcome_row *rows;
    size_t n, cap;
    int64_t oldest_ms; /* monotonic time the oldest buffered outcome was added */
} wh_outcomes;

/* What became of an outcome's follow-up: applied = the row was still on the
 * outcome's claim and took the outcome. */
typedef void (*wh_outcome_written_fn)(void *ctx, void *then, bool applied);

/* Register the outcome statement on the worker's connection. */
bz_status wh_outcomes_prepare(bz_pg *pg, bz_error *err);

/* Buffer an outcome (row's fields copied; its error text replaced by a
 * copy of `error`, which may be NULL, made valid UTF-8 by bz_utf8_scrub). BZ_ERR_NOMEM when the
 * buffer cannot grow: the row's lease runs out and it is delivered again. */
bz_status wh_outcomes_add(wh_outcomes *o, const wh_outcome_row *row, const char *error,
                             bz_error *err);

/* Write every buffered outcome on conn, reporting each follow-up through
 * written(ctx, ...). *stale (if not NULL) is increased by the outcomes
 * that found their row on another claim (or already final), *dropped by
 * those given up. BZ_OK when the buffer is empty afterwards; on a transient
 * failure what was not written stays buffered and the code is returned. */
bz_status wh_outcomes_flush(wh_outcomes *o, PGconn *conn, wh_outcome_written_fn written,
                               void *ctx, size_t *stale, size_t *dropped, bz_error *err);

/* Free the buffer and the error texts it still holds (follow-ups are the
 * caller's). */
void wh_outcomes_free(wh_outcomes *o);

#endif
