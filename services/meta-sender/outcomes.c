/*
 * outcomes.c - what the sender thread makes of finished requests, and the
 * one transaction a round commits.
 *
 * When libcurl reports a request done, the answer is classified
 * (graph_outcome.c) and applied to the account at once: its concurrency
 * slot comes back, a throttling answer slows its pace (pacing.c), a
 * refused token marks it invalid so its sends wait for a new one
 * (tokens.c). The job then waits on the done list. The next round writes
 * every outcome in one transaction: the rows' new states in one
 * UPDATE ... FROM unnest(...) (sent and failed are final; retries, throttles
 * and ambiguous answers fall due again after an exponential backoff, an
 * ambiguous one no sooner than meta.ambiguous_hold_ms; a held token refunds
 * the attempt; meta.max_attempts fails a row for good), their reports on
 * chat.sync as outbox rows (report.c), the throttle state of the accounts
 * Meta throttled (meta_throttle: their pace factor and when, which
 * campaign-sender's send budget follows, ARCHITECTURE.md §11.3), and, in
 * the same transaction, the claim of the next rows (claim.c): one commit a
 * round. If that transaction fails, nothing changed: the outcomes stay for
 * the next round.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "pg/columns.h"
#include "pg/pg.h"
#include "active_sender.h"

#define SQL_OUTCOMES                                                                              \
    "UPDATE meta_sends s SET state = u.state, wam_id = nullif(u.wam, ''), "                      \
    "error_code = nullif(u.code, ''), error_message = nullif(u.msg, ''), "                      \
    "due_at = now() + u.delay_ms * interval '1 millisecond', "                                   \
    "ambiguous_resends = s.ambiguous_resends + u.amb, attempts = s.attempts - u.refund, "       \
    "finished_at = CASE WHEN u.state IN ('sent', 'failed') THEN now() END "                     \
    "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], "  \
    "  $7::int[], $8::int[]) AS u(id, state, wam, code, msg, delay_ms, amb, refund) "           \
    "WHERE s.id = u.id AND s.state = 'in_flight'"

/* The accounts' pace factors after their last throttling answers, and
 * when those came (ago_ms before this transaction's now()). */
#define SQL_THROTTLES                                                                             \
    "INSERT INTO meta_throttle (whatsapp_account_id, workspace_id, factor, throttled_at, "       \
    "last_code, throttles) "                                                                      \
    "SELECT a, w, f, now() - ago * interval '1 millisecond', code, n "                            \
    "FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::bigint[], $5::text[], "           \
    "  $6::bigint[]) AS t(a, w, f, ago, code, n) "                                                \
    "ON CONFLICT (whatsapp_account_id) DO UPDATE SET factor = EXCLUDED.factor, "                 \
    "throttled_at = EXCLUDED.throttled_at, last_code = EXCLUDED.last_code, "                     \
    "throttles = meta_throttle.throttles + EXCLUDED.throttles"

static int64_t backoff_ms(const ms_settings *s, int attempts)
{
    int64_t d = s->retry_base_ms;
    for (int i = 1; i < attempts && d < s->retry_max_ms; i++)
        d *= 2;
    return d < s->retry_max_ms ? d : s->retry_max_ms;
}

typedef struct outcome_arrays {
    int64_t *ids, *delays;
    const char **states, **wams, **codes, **msgs;
    int64_t *amb, *refund;
    size_t n;
} outcome_arrays;

static void arrays_free(outcome_arrays *a)
{
    free(a->ids);
    free(a->delays);
    free(a->states);
    free(a->wams);
    free(a->codes);
    free(a->msgs);
    free(a->amb);
    free(a->refund);
}

static int arrays_alloc(outcome_arrays *a, size_t n)
{
    a->ids = calloc(n, sizeof *a->ids);
    a->delays = calloc(n, sizeof *a->delays);
    a->states = calloc(n, sizeof *a->states);
    a->wams = calloc(n, sizeof *a->wams);
    a->codes = calloc(n, sizeof *a->codes);
    a->msgs = calloc(n, sizeof *a->msgs);
    a->amb = calloc(n, sizeof *a->amb);
    a->refund = calloc(n, sizeof *a->refund);
    return a->ids && a->delays && a->states && a->wams && a->codes && a->msgs && a->amb &&
                   a->refund
               ? 0
               : -1;
}

/* What the row becomes after j's outcome, and its report. */
static bz_status plan_outcome(ms_worker *w, ms_job *j, outcome_arrays *a, bz_outbox_batch *batch,
                              int64_t now_ms, bz_error *err)
{
    const ms_outcome *o = &j->outcome;
    size_t i = a->n++;
    a->ids[i] = j->row.id;
    a->wams[i] = o->wam_id;
    a->codes[i] = o->code;
    a->msgs[i] = o->message;
    a->states[i] = "queued";
    switch (o->verdict) {
    case MS_SENT:
        a->states[i] = "sent";
        return ms_report_sent(batch, &j->row, o->wam_id, now_ms, err);
    case MS_FAILED:
        a->states[i] = "failed";
        return ms_report_failed(batch, &j->row, o->code, o->message, now_ms, err);
    case MS_TOKEN_INVALID:
        a->refund[i] = 1; /* held, not tried: the attempt does not count */
        return BZ_OK;
    case MS_AMBIGUOUS:
        a->amb[i] = 1;
        break;
    case MS_RETRY:
    case MS_THROTTLED:
        break;
    }
    if (j->row.attempts >= w->s->max_attempts) {
        a->states[i] = "failed";
        return ms_report_failed(batch, &j->row, o->code, o->message, now_ms, err);
    }
    int64_t d = backoff_ms(w->s, j->row.attempts);
    if (o->verdict == MS_AMBIGUOUS && d < w->s->ambiguous_hold_ms)
        d = w->s->ambiguous_hold_ms;
    a->delays[i] = d;
    return BZ_OK;
}

/* The rows' new states, in the caller's open transaction. */
static bz_status exec_outcomes(ms_worker *w, outcome_arrays *a, bz_error *err)
{
    char *p[8] = {bz_pg_int64_array(a->ids, a->n),
                  bz_pg_text_array(a->states, a->n),
                  bz_pg_text_array(a->wams, a->n),
                  bz_pg_text_array(a->codes, a->n),
                  bz_pg_text_array(a->msgs, a->n),
                  bz_pg_int64_array(a->delays, a->n),
                  bz_pg_int64_array(a->amb, a->n),
                  bz_pg_int64_array(a->refund, a->n)};
    bz_status st = BZ_OK;
    for (int i = 0; i < 8; i++)
        if (!p[i])
            st = bz_fail(err, BZ_ERR_NOMEM, "record Meta outcomes: out of memory");
    if (st == BZ_OK)
        st = bz_pg_exec_params(w->conn, "record Meta outcomes", SQL_OUTCOMES, 8,
                               (const char *const *)p, NULL, err);
    for (int i = 0; i < 8; i++)
        free(p[i]);
    return st;
}

/* The throttle state of the accounts Meta throttled since the last
 * commit, in the caller's open transaction (the one that stores the
 * throttled outcomes). */
static bz_status store_throttles(ms_worker *w, bz_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < w->accounts.n; i++)
        n += w->accounts.items[i]->throttles_unsaved > 0;
    if (!n)
        return BZ_OK;
    int64_t *ids = calloc(n, sizeof *ids), *ws = calloc(n, sizeof *ws);
    int64_t *ago = calloc(n, sizeof *ago), *count = calloc(n, sizeof *count);
    const char **codes = calloc(n, sizeof *codes);
    char (*factors)[32] = calloc(n, sizeof *factors);
    const char **factor_texts = calloc(n, sizeof *factor_texts);
    char *p[6] = {NULL};
    bz_status st = BZ_OK;
    if (ids && ws && ago && count && codes && factors && factor_texts) {
        int64_t now = bz_monotonic_ms();
        size_t k = 0;
        for (size_t i = 0; i < w->accounts.n; i++) {
            ms_account *a = w->accounts.items[i];
            if (!a->throttles_unsaved)
                continue;
            ids[k] = a->id;
            ws[k] = a->workspace_id;
            ago[k] = now - a->pace.throttle.since_ms;
            count[k] = a->throttles_unsaved;
            codes[k] = a->throttle_code;
            snprintf(factors[k], sizeof factors[k], "%.17g", a->pace.throttle.factor);
            factor_texts[k] = factors[k];
            k++;
        }
        p[0] = bz_pg_int64_array(ids, n);
        p[1] = bz_pg_int64_array(ws, n);
        p[2] = bz_pg_text_array(factor_texts, n);
        p[3] = bz_pg_int64_array(ago, n);
        p[4] = bz_pg_text_array(codes, n);
        p[5] = bz_pg_int64_array(count, n);
    }
    for (int i = 0; i < 6; i++)
        if (!p[i])
            st = bz_fail(err, BZ_ERR_NOMEM, "record Meta throttling: out of memory");
    if (st == BZ_OK)
        st = bz_pg_exec_params(w->conn, "record Meta throttling", SQL_THROTTLES, 6,
                               (const char *const *)p, NULL, err);
    for (int i = 0; i < 6; i++)
        free(p[i]);
    free(ids);
    free(ws);
    free(ago);
    free(count);
    free(codes);
    free(factors);
    free(factor_texts);
    return st;
}

/* The throttle state is in meta_throttle: what comes next is new. */
static void throttles_saved(ms_worker *w)
{
    for (size_t i = 0; i < w->accounts.n; i++)
        w->accounts.items[i]->throttles_unsaved = 0;
}

static void count_outcomes(ms_worker *w)
{
    for (size_t i = 0; i < w->done.n; i++) {
        ms_job *j = w->done.items[i];
        bz_counter_inc(bz_counter_family_with(w->m->requests, ms_verdict_name(j->outcome.verdict)));
    }
}

static int any_room(ms_worker *w)
{
    int64_t now = bz_monotonic_ms();
    for (size_t i = 0; i < w->accounts.n; i++) {
        ms_account *a = w->accounts.items[i];
        if (a->seen && a->state == MS_TOKEN_OPEN && ms_pace_room(&a->pace, now) > 0)
            return 1;
    }
    return 0;
}

/* Steps 1 and 3 of a round in one transaction (one commit a round): the
 * outcomes of finished requests, then, when claimed is not NULL, the claim
 * of the next rows, acted on only once committed. On failure nothing
 * changed: the outcomes stay for the next round and nothing is claimed. */
bz_status ms_round_transaction(ms_worker *w, PGresult **claimed, bz_error *err)
{
    size_t n = w->done.n;
    if (claimed)
        *claimed = NULL;
    if (!n && (!claimed || !any_room(w)))
        return BZ_OK;
    outcome_arrays a = {0};
    bz_outbox_batch *batch = NULL;
    bz_status st = BZ_OK;
    if (n) {
        st = arrays_alloc(&a, n) == 0
                 ? bz_outbox_batch_new(&batch, err)
                 : bz_fail(err, BZ_ERR_NOMEM, "record Meta outcomes: out of memory");
        int64_t now = bz_wall_ms();
        for (size_t i = 0; st == BZ_OK && i < n; i++)
            st = plan_outcome(w, w->done.items[i], &a, batch, now, err);
    }
    if (st == BZ_OK)
        st = bz_pg_begin(w->conn, err);
    if (st == BZ_OK && n)
        st = exec_outcomes(w, &a, err);
    if (st == BZ_OK && n)
        st = bz_outbox_batch_write(w->conn, batch, err);
    if (st == BZ_OK && n)
        st = store_throttles(w, err);
    if (st == BZ_OK && claimed)
        st = ms_claim_rows(w, claimed, err);
    if (st == BZ_OK)
        st = bz_pg_commit(w->conn, err);
    else
        bz_pg_rollback(w->conn);
    bz_outbox_batch_free(batch);
    arrays_free(&a);
    if (st != BZ_OK) {
        if (claimed) {
            PQclear(*claimed);
            *claimed = NULL;
        }
        return st;
    }
    count_outcomes(w);
    if (!n)
        return BZ_OK;
    throttles_saved(w);
    for (size_t i = 0; i < n; i++)
        ms_job_free(w->done.items[i]);
    memmove(w->done.items, w->done.items + n, (w->done.n - n) * sizeof(ms_job *));
    w->done.n -= n;
    return BZ_OK;
}

bz_status ms_write_outcomes(ms_worker *w, bz_error *err)
{
    return ms_round_transaction(w, NULL, err);
}

/* A request finished: classify it, give the account its slot back, apply
 * what the verdict means for the account. */
static void finish_job(ms_worker *w, ms_job *j, CURLcode rc)
{
    long status = 0;
    long sent = 0;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(j->easy, CURLINFO_REQUEST_SIZE, &sent);
    /* a re-send libcurl wanted is a request that left and lost its answer */
    int transport = j->resend_refused ? 2 : rc == CURLE_OK ? 0 : sent > 0 ? 2 : 1;
    if (j->resend_refused)
        bz_warn("send %s: its kept-alive connection closed before any answer; libcurl's "
                "re-send was refused: ambiguous, held for a status webhook",
                j->row.key);
    ms_graph_classify(transport, status, j->resp.data, j->resp.len, &j->outcome);
    int64_t now = bz_wall_ms();
    bz_histogram_observe(w->m->request_seconds, (double)(now - j->started_ms) / 1000.0);
    ms_pace_finished(&j->acc->pace);
    if (j->outcome.verdict == MS_THROTTLED) {
        ms_pace_throttled(&j->acc->pace, bz_monotonic_ms());
        j->acc->throttles_unsaved++;
        snprintf(j->acc->throttle_code, sizeof j->acc->throttle_code, "%s", j->outcome.code);
    }
    if (j->outcome.verdict == MS_TOKEN_INVALID && j->acc->state == MS_TOKEN_OPEN) {
        bz_error err;
        bz_error_clear(&err);
        bz_warn("meta account %" PRId64 ": Meta refused its access token (%s): its sends wait "
                "for a new one (blazzctl meta token)",
                j->acc->id, j->outcome.message);
        /* Without a connection the lock is gone too: whoever takes it next
         * meets the same refusal and records it. */
        if (w->conn && ms_account_mark_invalid(w->conn, j->acc, "token_invalid", &err) != BZ_OK)
            bz_error_log("meta account %" PRId64 ": %s", j->acc->id, err.msg);
    }
    if (j->outcome.verdict != MS_SENT)
        bz_log(BZ_LOG_DEBUG, "send %s: %s %s", j->row.key, ms_verdict_name(j->outcome.verdict),
               j->outcome.code);
}

void ms_collect_finished(ms_worker *w)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(w->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        ms_job *j = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        CURLcode rc = msg->data.result;
        curl_multi_remove_handle(w->multi, msg->easy_handle);
        ms_worker_unlink_running(w, j);
        finish_job(w, j, rc);
        if (ms_job_list_push(&w->done, j) != 0) {
            bz_error_log("send %s: out of memory keeping its outcome: it stays in_flight",
                         j->row.key);
            ms_job_free(j);
        }
    }
    bz_gauge_set(w->m->in_flight, (double)w->running);
}
