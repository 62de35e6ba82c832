/*
 * claim.c - which due meta_sends rows the sender thread takes next, and how
 * each one's request starts.
 *
 * Each round, every account with an open token and room in its pace
 * (pacing.c) gets at most that many rows, capped at meta.claim_max: one
 * UPDATE ... SET state = 'in_flight' ... RETURNING over all accounts at
 * once, oldest due first, inside the round's transaction (outcomes.c). The
 * rows are only acted on once it committed, so a row is durably in_flight
 * before its request leaves and after a crash it is known to be possibly
 * at Meta. A claimed row whose payload is not a SendMessage fails without
 * a request. A row sent before without an answer (ambiguous_resends > 0)
 * is looked up first: when a status webhook brought a wamid for its client
 * reference (chats row or campaign log), the row is sent with that wamid
 * and no second request leaves. The others get their stored media
 * resolved to a Meta media id (media_upload.c: one upload per account
 * and object, shared by the round's jobs), their body (graph_request.c)
 * and easy handle (jobs.c) and join the multi handle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/uuid.h"
#include "pg/columns.h"
#include "pg/pg.h"
#include "active_sender.h"

#define SQL_CLAIM                                                                                 \
    "UPDATE meta_sends s SET state = 'in_flight', attempts = s.attempts + 1, "                   \
    "requested_at = now() FROM ("                                                                 \
    "  SELECT m.id FROM unnest($1::bigint[], $2::int[]) AS r(acc, room) "                        \
    "  CROSS JOIN LATERAL (SELECT q.id FROM meta_sends q WHERE q.whatsapp_account_id = r.acc "  \
    "    AND q.state = 'queued' AND q.due_at <= now() ORDER BY q.due_at, q.id LIMIT r.room) m"  \
    ") c WHERE s.id = c.id "                                                                      \
    "RETURNING s.id, s.whatsapp_account_id, s.workspace_id, s.idempotency_key, s.msg_key, "     \
    "encode(s.payload, 'hex'), s.attempts, s.ambiguous_resends"

#define SQL_SETTLED                                                                               \
    "SELECT r.ref, coalesce("                                                                     \
    "  (SELECT p.wam_id FROM meta_message_proofs p WHERE p.client_reference = r.ref::uuid "    \
    "     AND p.failed_at IS NULL ORDER BY p.proven_at DESC LIMIT 1), "                           \
    "  (SELECT c.wam_id FROM chats c WHERE c.uuid = r.ref::uuid AND c.wam_id <> '' LIMIT 1), "  \
    "  (SELECT l.wam_id FROM campaign_logs l WHERE l.uuid = r.ref::uuid AND l.wam_id <> '' "    \
    "     AND l.status IN ('sent', 'delivered', 'read') LIMIT 1), '') "                          \
    "FROM unnest($1::text[]) AS r(ref)"

static bz_status decode_row(const PGresult *res, int row, ms_job *j, bz_error *err)
{
    const char *hex = PQgetvalue(res, row, 5);
    size_t cap = strlen(hex) / 2 + 1, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return bz_fail(err, BZ_ERR_NOMEM, "claim: out of memory");
    bz_error hex_err;
    if (bz_hex_decode(hex, strlen(hex), buf, cap, &len, &hex_err) == BZ_OK)
        j->row.m = blazz__v1__send_message__unpack(NULL, len, buf);
    free(buf);
    j->row.id = bz_pg_get_int64(res, row, 0);
    j->row.account_id = bz_pg_get_int64(res, row, 1);
    j->row.workspace_id = bz_pg_get_int64(res, row, 2);
    j->row.key = strdup(PQgetvalue(res, row, 3));
    j->row.msg_key = strdup(PQgetvalue(res, row, 4));
    j->row.attempts = (int)bz_pg_get_int64(res, row, 6);
    j->row.ambiguous_resends = (int)bz_pg_get_int64(res, row, 7);
    if (!j->row.key || !j->row.msg_key)
        return bz_fail(err, BZ_ERR_NOMEM, "claim: out of memory");
    if (!j->row.m)
        return bz_reject(err, "decode_error", "send %s: stored payload is not a SendMessage",
                         j->row.key);
    if (j->row.m->envelope)
        j->row.accepted_ms = j->row.m->envelope->occurred_at_ms;
    return BZ_OK;
}

/* The job ends now without a request (bad payload, settled by a webhook). */
static void finish_without_request(ms_worker *w, ms_job *j, ms_verdict v, const char *code,
                                   const char *message, const char *wam_id)
{
    memset(&j->outcome, 0, sizeof j->outcome);
    j->outcome.verdict = v;
    snprintf(j->outcome.code, sizeof j->outcome.code, "%s", code);
    snprintf(j->outcome.message, sizeof j->outcome.message, "%s", message);
    snprintf(j->outcome.wam_id, sizeof j->outcome.wam_id, "%s", wam_id ? wam_id : "");
    if (j->acc)
        ms_pace_finished(&j->acc->pace);
    if (ms_job_list_push(&w->done, j) != 0) {
        bz_error_log("send %s: out of memory keeping its outcome: it stays in_flight", j->row.key);
        ms_job_free(j);
    }
}

static void start_job(ms_worker *w, ms_media_round *media, ms_job *j)
{
    ms_outcome media_failure;
    if (!ms_media_resolve(w, media, j, &media_failure)) {
        bz_warn("send %s: %s", j->row.key, media_failure.message);
        finish_without_request(w, j, media_failure.verdict, media_failure.code,
                               media_failure.message, NULL);
        return;
    }
    bz_error err;
    bz_error_clear(&err);
    bz_status st = ms_graph_body(j->row.m, &j->body, &err);
    if (st == BZ_OK)
        st = ms_job_prepare(w, j, &err);
    if (st != BZ_OK) {
        bz_warn("send %s: %s", j->row.key, err.msg);
        finish_without_request(w, j, MS_FAILED, err.reason ? err.reason : "invalid_send", err.msg,
                               NULL);
        return;
    }
    j->started_ms = bz_wall_ms();
    if (j->row.accepted_ms > 0)
        bz_histogram_observe(w->m->accepted_to_request_seconds,
                             (double)(j->started_ms - j->row.accepted_ms) / 1000.0);
    if (curl_multi_add_handle(w->multi, j->easy) != CURLM_OK) {
        finish_without_request(w, j, MS_RETRY, "transport_not_sent", "libcurl refused it", NULL);
        return;
    }
    ms_worker_link_running(w, j);
}

/* Every claimed row may have been sent before: ambiguous ones, and any
 * the replay after a restore queued again. The wamid a proof (chat-sync's
 * meta_message_proofs, from meta-sender's reports and Meta's status
 * webhooks; a message Meta then failed proves nothing, so a campaign's
 * retry of it goes; 0066 copied there the proofs kept before 0058) or a
 * status webhook brought for its client reference, "" when none. */
static bz_status look_for_settled(ms_worker *w, ms_job **jobs, size_t n, char **wams,
                                  bz_error *err)
{
    const char **refs = calloc(n ? n : 1, sizeof *refs);
    if (!refs)
        return bz_fail(err, BZ_ERR_NOMEM, "check ambiguous sends: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *ref = jobs[i]->row.m->client_reference;
        if (ref && bz_uuid_is_valid(ref))
            refs[k++] = ref;
    }
    bz_status st = BZ_OK;
    if (k) {
        char *arr = bz_pg_text_array(refs, k);
        PGresult *res = NULL;
        const char *params[] = {arr};
        st = arr ? bz_pg_exec_params(w->conn, "check ambiguous sends", SQL_SETTLED, 1, params,
                                     &res, err)
                 : bz_fail(err, BZ_ERR_NOMEM, "check ambiguous sends: out of memory");
        for (int row = 0; st == BZ_OK && row < PQntuples(res); row++)
            for (size_t i = 0; i < n; i++)
                if (!wams[i] && jobs[i]->row.m->client_reference &&
                    strcmp(jobs[i]->row.m->client_reference, PQgetvalue(res, row, 0)) == 0 &&
                    *PQgetvalue(res, row, 1))
                    wams[i] = strdup(PQgetvalue(res, row, 1));
        PQclear(res);
        free(arr);
    }
    free(refs);
    return st;
}

static void start_claimed(ms_worker *w, ms_job **jobs, size_t n)
{
    char **wams = calloc(n ? n : 1, sizeof *wams);
    ms_media_round *media = ms_media_round_new();
    bz_error err;
    bz_error_clear(&err);
    if (!wams || look_for_settled(w, jobs, n, wams, &err) != BZ_OK)
        bz_warn("checking ambiguous sends for status webhooks failed (%s): they are sent again",
                wams ? err.msg : "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (wams && wams[i]) {
            bz_info("send %s: Kafka shows it reached Meta (%s): not sent again",
                    jobs[i]->row.key, wams[i]);
            bz_counter_inc(jobs[i]->row.ambiguous_resends > 0 ? w->m->settled_by_webhook
                                                             : w->m->proven_sent);
            finish_without_request(w, jobs[i], MS_SENT, "", "", wams[i]);
        } else {
            if (jobs[i]->row.ambiguous_resends > 0)
                bz_counter_inc(w->m->ambiguous_resends);
            start_job(w, media, jobs[i]);
        }
        if (wams)
            free(wams[i]);
    }
    ms_media_round_free(media);
    free(wams);
}

typedef struct room_arrays {
    int64_t *accs, *rooms;
    size_t n;
} room_arrays;

static size_t rooms_of(ms_worker *w, room_arrays *r, int64_t now)
{
    size_t total = 0;
    for (size_t i = 0; i < w->accounts.n; i++) {
        ms_account *a = w->accounts.items[i];
        if (a->state != MS_TOKEN_OPEN || !a->seen)
            continue;
        int room = ms_pace_room(&a->pace, now);
        if (room <= 0)
            continue;
        if ((size_t)room > (size_t)w->s->claim_max)
            room = w->s->claim_max;
        r->accs[r->n] = a->id;
        r->rooms[r->n++] = room;
        total += (size_t)room;
    }
    return total;
}

/* Step 3 of a round, inside round_transaction: the due rows each account
 * has room for, set in_flight. *claimed stays NULL when no account has
 * room. */
bz_status ms_claim_rows(ms_worker *w, PGresult **claimed, bz_error *err)
{
    room_arrays r = {calloc(w->accounts.n + 1, sizeof *r.accs),
                     calloc(w->accounts.n + 1, sizeof *r.rooms), 0};
    bz_status st = BZ_OK;
    if (!r.accs || !r.rooms)
        st = bz_fail(err, BZ_ERR_NOMEM, "claim Meta sends: out of memory");
    else if (!w->fence_held && rooms_of(w, &r, bz_monotonic_ms())) {
        char *p0 = bz_pg_int64_array(r.accs, r.n), *p1 = bz_pg_int64_array(r.rooms, r.n);
        const char *params[] = {p0, p1};
        st = p0 && p1 ? bz_pg_exec_params(w->conn, "claim Meta sends", SQL_CLAIM, 2, params,
                                          claimed, err)
                      : bz_fail(err, BZ_ERR_NOMEM, "claim Meta sends: out of memory");
        free(p0);
        free(p1);
    }
    free(r.accs);
    free(r.rooms);
    return st;
}

/* The committed claim: a job per row, started (or settled) now. */
void ms_start_claimed_rows(ms_worker *w, PGresult *res)
{
    int n = res ? PQntuples(res) : 0;
    ms_job **jobs = calloc((size_t)n + 1, sizeof(ms_job *));
    size_t k = 0;
    int64_t now = bz_monotonic_ms();
    for (int row = 0; jobs && row < n; row++) {
        ms_job *j = calloc(1, sizeof *j);
        if (!j)
            break;
        j->acc = ms_accounts_find(&w->accounts, bz_pg_get_int64(res, row, 1));
        if (j->acc)
            ms_pace_started(&j->acc->pace, now);
        bz_error derr;
        bz_error_clear(&derr);
        if (decode_row(res, row, j, &derr) != BZ_OK) {
            bz_error_log("%s", derr.msg);
            finish_without_request(w, j, MS_FAILED, "decode_error", derr.msg, NULL);
            continue;
        }
        jobs[k++] = j;
    }
    if (jobs)
        start_claimed(w, jobs, k);
    else if (n)
        bz_error_log("meta sender: out of memory starting %d claimed sends: they stay in_flight "
                     "until the next takeover",
                     n);
    free(jobs);
}
