/*
 * dead_lettering.c - the delivery worker's undeliverable rows: exhausted,
 * or with a payload that cannot be sent, they go to webhook.dlq
 * (deadletters.h holds the dead letters until the broker has them).
 *
 * The dead letter is published only once the outcome that confirms this
 * worker's claim on the row was written, and the row is marked failed only
 * once the broker acknowledged the dead letter; their leases are renewed
 * while they wait. With enough dead letters pending, a row waits in the
 * table instead, leased, and is claimed again later.
 */
#include <string.h>

#include "core/clock.h"
#include "worker_state.h"

static const char *source_topic_of(const wh_worker *w, const char *type)
{
    if (strncmp(type, "session.", 8) == 0)
        return w->source_topics[1];
    if (strncmp(type, "campaign.", 9) == 0)
        return w->source_topics[2];
    return w->source_topics[0];
}

/* Undeliverable (exhausted, or a payload that cannot be sent): add the
 * dead letter (deadletters.h) and buffer the outcome that confirms this
 * worker's claim on the row. That outcome keeps the row leased and, after
 * an attempt (attempt_error not NULL), counts it: retry_count passes
 * max_retries, so no claim attempts the row again. The dead letter is
 * published once the outcome found the row on our claim, and the row is
 * marked failed once the broker has it (dead_letter_acked). A crash in
 * between leaves the row due again after its lease: claimed with
 * retry_count past max_retries, it is dead-lettered again without an
 * attempt. Returns false, having buffered nothing, when the dead letter
 * could not be added (enough wait already): the caller leaves the row to
 * its lease. */
bool wh_dead_letter_job(wh_worker *w, const wh_job *job, const char *error_code,
                        const char *message, long code, const char *attempt_error)
{
    wh_dead_letter_source src = {.id = job->id,
                                    .claims = job->claims,
                                    .endpoint_id = job->endpoint_id,
                                    .workspace_id = job->workspace_id,
                                    .created_ms = job->created_ms,
                                    .event_id = job->event_id,
                                    .original_topic = source_topic_of(w, job->type),
                                    .body = job->body,
                                    .body_len = job->body_len,
                                    .attempts = job->retry_count + (attempt_error ? 1 : 0),
                                    .code = code,
                                    .error_code = error_code,
                                    .message = message};
    wh_dead_letter *dl = wh_dead_letters_add(&w->dl, &src);
    if (!dl)
        return false;
    if (attempt_error)
        wh_add_outcome(w, job->id, job->claims, "retrying", 1, w->cfg.claim_lease_ms,
                          attempt_error, code, dl);
    else
        wh_add_outcome(w, job->id, job->claims, "keep", 0, w->cfg.claim_lease_ms, "", 0, dl);
    return true;
}

/* No room for another dead letter: the row waits in the table, leased,
 * and is claimed again when the lease runs out (and dead-lettered then,
 * without another attempt). An attempt that exhausted it is counted now. */
void wh_leave_to_lease(wh_worker *w, const wh_job *job, const char *attempt_error,
                           long code)
{
    if (attempt_error)
        wh_add_outcome(w, job->id, job->claims, "retrying", 1, w->cfg.claim_lease_ms,
                          attempt_error, code, NULL);
    else
        wh_add_outcome(w, job->id, job->claims, "keep", 0, w->cfg.claim_lease_ms, "", 0, NULL);
    if (w->have_metrics)
        bz_counter_inc(w->m.dead_letters_deferred);
}

static void dead_letter_acked(void *ctx, int64_t id, int64_t claims, const char *error,
                              long code)
{
    wh_worker *w = ctx;
    wh_add_outcome(w, id, claims, "failed", 0, 0, error, code, NULL);
}

void wh_drain_dead_letters(wh_worker *w)
{
    size_t acked = wh_dead_letters_drain(&w->dl, dead_letter_acked, w);
    if (w->have_metrics) {
        bz_counter_add(w->m.dead_lettered, acked);
        bz_gauge_set(w->m.dead_letters_pending, (double)w->dl.count);
    }
}

void wh_renew_dead_letter_leases(wh_worker *w)
{
    int64_t now = bz_monotonic_ms();
    bz_error err;
    if (wh_dead_letters_renewal_due(&w->dl, now) && wh_worker_conn(w, &err) == BZ_OK)
        wh_dead_letters_renew(&w->dl, bz_pg_conn(w->pg), now);
}
