/*
 * claim.c - the delivery worker's claims: due rows of webhook_retry_queue,
 * endpoint by endpoint, into jobs held in memory.
 *
 * A claim takes at most claim_batch rows and the room the worker has
 * (max_local_jobs less what it holds) and, per endpoint, at most what its
 * share leaves; endpoints at their share or with an open circuit are left
 * out. Each claimed row is leased (next_retry_at pushed forward by
 * claim_lease_ms) and its claim number incremented. A row whose attempts
 * are used up, or whose payload is not UTF-8 text, is dead-lettered
 * instead of queued. An endpoint that got all its room is marked as having
 * more rows due.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/utf8.h"
#include "leased_row.h"
#include "pg/columns.h"
#include "worker_state.h"

/* Claims go endpoint by endpoint: a skip scan over the per-endpoint due
 * index finds the endpoints with open rows (one index descent each), and
 * each endpoint that may take rows gets at most its room, oldest due first
 * (ties: older rows, so retries before new first attempts of a deferred
 * backlog). Room: what its share leaves ($4/$5, endpoints this worker
 * holds), or twice its concurrency for one it holds nothing of yet
 * (fairness.h); endpoints without room or with an open circuit are
 * skipped: open here ($2), or open in any instance (circuit_open_until,
 * written with the endpoint stats). Of all candidates the oldest $1 are
 * claimed; `scanned` tells the caller whether there were more.
 *
 * The claim used to walk one due index (status, next_retry_at) in time
 * order, skipping the rows of endpoints it could not take: endpoints that
 * stopped answering (or a slow one with a large backlog) put tens of
 * thousands of rows in front of everyone else's, and every claim walked
 * them. Now its cost follows the number of endpoints with open rows, not
 * the rows.
 *
 * The claimed rows are updated through the primary key (id = ANY of the
 * chosen ids) and only then joined to their endpoints for what sending
 * needs: written as one join, the plan depended on statistics, and when
 * they lagged a burst of deliveries it scanned far more than it claimed.
 * The claim increments the row's claim number.
 *
 * Not a prepared statement: it is planned at every execution, for the
 * table as it is then. A generic plan made while the queue was nearly
 * empty (PostgreSQL switches to one after five executions) kept sequential
 * scans and a nested loop over the due rows once it held 20,000 rows: 92 ms
 * per claim instead of a few, 3,700 deliveries/s instead of 6,000+. */
#define CLAIM_FIND_SQL                                                                           \
    "WITH RECURSIVE eps(endpoint_id) AS ("                                                   \
    "  (SELECT q.endpoint_id FROM webhook_retry_queue q"                                     \
    "   WHERE q.status IN ('pending', 'retrying') ORDER BY q.endpoint_id LIMIT 1)"           \
    "  UNION ALL"                                                                            \
    "  SELECT (SELECT q.endpoint_id FROM webhook_retry_queue q"                              \
    "          WHERE q.status IN ('pending', 'retrying') AND q.endpoint_id > e.endpoint_id"  \
    "          ORDER BY q.endpoint_id LIMIT 1)"                                              \
    "  FROM eps e WHERE e.endpoint_id IS NOT NULL), "                                        \
    "wanted AS ("                                                                            \
    "  SELECT e.endpoint_id, coalesce(k.room, 2 * ep.max_concurrency) AS room"               \
    "  FROM eps e JOIN webhook_endpoints ep ON ep.id = e.endpoint_id"                        \
    "  LEFT JOIN unnest($4::bigint[], $5::int[]) AS k(endpoint_id, room)"                    \
    "    ON k.endpoint_id = e.endpoint_id"                                                   \
    "  WHERE e.endpoint_id <> ALL ($2::bigint[])"                                            \
    "    AND (ep.circuit_open_until IS NULL OR ep.circuit_open_until <= now())), "           \
    "cand AS ("                                                                              \
    "  SELECT c.id, c.next_retry_at FROM wanted w CROSS JOIN LATERAL ("                      \
    "    SELECT q.id, q.next_retry_at FROM webhook_retry_queue q"                            \
    "    WHERE q.endpoint_id = w.endpoint_id AND q.status IN ('pending', 'retrying')"        \
    "      AND q.next_retry_at <= now()"                                                     \
    "    ORDER BY q.next_retry_at, q.id LIMIT w.room FOR UPDATE SKIP LOCKED) c), "           \
    "chosen AS (SELECT id, next_retry_at FROM cand ORDER BY next_retry_at, id LIMIT $1), "

/* What a claim does with the rows it chose (CTEs cand and chosen): lease
 * them ($3 ms) and return them with their endpoints. */
#define CLAIM_TAKE_SQL                                                                           \
    "claimed AS ("                                                                           \
    "  UPDATE webhook_retry_queue q "                                                        \
    "  SET next_retry_at = now() + $3::bigint * interval '1 millisecond', claims = q.claims + 1 " \
    "  WHERE q.id = ANY (ARRAY(SELECT id FROM chosen)) " WH_LEASED_ROW_RETURNING ") "          \
    "SELECT " WH_LEASED_ROW_COLUMNS ", (SELECT count(*) FROM cand) "                          \
    "FROM claimed c JOIN webhook_endpoints e ON e.id = c.endpoint_id "                       \
    "JOIN chosen d ON d.id = c.id ORDER BY d.next_retry_at, d.id"

static const char claim_sql[] = CLAIM_FIND_SQL CLAIM_TAKE_SQL;

/* What a claim may take per endpoint, as array literals: the endpoints to
 * leave out (circuit open, or their share full) and the room of the others
 * this worker knows (fairness.h); unknown endpoints get twice their
 * concurrency in SQL. A disabled endpoint's rows are only settled as
 * failed, so its room is a whole claim. Each endpoint keeps the room it
 * was given, to tell afterwards whether it got all of it. */
typedef struct claim_filter {
    char *excluded, *ids, *rooms;
} claim_filter;

static void free_claim_filter(claim_filter *f)
{
    free(f->excluded), free(f->ids), free(f->rooms);
}

static bool build_claim_filter(wh_worker *w, claim_filter *f)
{
    int64_t now = bz_monotonic_ms();
    size_t cap = w->table_used + 1, nx = 0, nr = 0;
    int64_t *excluded = malloc(cap * sizeof *excluded), *ids = malloc(cap * sizeof *ids);
    int64_t *rooms = malloc(cap * sizeof *rooms);
    for (size_t i = 0; excluded && ids && rooms && i < w->table_cap; i++) {
        wh_endpoint *ep = w->table[i];
        if (!ep)
            continue;
        ep->claim_room = ep->enabled
                             ? wh_endpoint_cap_now(w, ep, now) - ep->queued - ep->in_flight
                             : w->cfg.claim_batch;
        ep->claimed = 0;
        if (ep->claim_room <= 0) {
            /* it may have rows due: claim for it again once half its share is free */
            ep->more_due = true;
            excluded[nx++] = ep->id;
        } else if (ep->enabled && !wh_circuit_would_allow(&ep->circuit, now)) {
            excluded[nx++] = ep->id;
        } else {
            ids[nr] = ep->id;
            rooms[nr++] = ep->claim_room;
        }
    }
    f->excluded = excluded ? bz_pg_int64_array(excluded, nx) : NULL;
    f->ids = ids ? bz_pg_int64_array(ids, nr) : NULL;
    f->rooms = rooms ? bz_pg_int64_array(rooms, nr) : NULL;
    free(excluded), free(ids), free(rooms);
    if (f->excluded && f->ids && f->rooms)
        return true;
    free_claim_filter(f);
    return false;
}

/* The stored payload arrives as bytea (hex text): decoding it ourselves
 * rather than converting in SQL keeps one malformed row from failing the
 * whole claim. */
static bool copy_payload(wh_job *job, PGresult *res, int r)
{
    size_t len = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, r, 5), &len);
    if (!raw)
        return false;
    job->body = malloc(len + 1);
    if (job->body) {
        memcpy(job->body, raw, len);
        job->body[len] = '\0';
        job->body_len = len;
    }
    PQfreemem(raw);
    return job->body != NULL;
}

/* Returns a new job (not yet counted in local_jobs) that the caller owns,
 * or NULL when out of memory. */
static wh_job *job_from_row(PGresult *res, int r)
{
    wh_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
    snprintf(job->event_id, sizeof job->event_id, "%s", PQgetvalue(res, r, 1));
    job->endpoint_id = strtoll(PQgetvalue(res, r, 2), NULL, 10);
    job->workspace_id = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    snprintf(job->type, sizeof job->type, "%s", PQgetvalue(res, r, 4));
    if (!copy_payload(job, res, r)) {
        free(job);
        return NULL;
    }
    job->retry_count = (int)bz_pg_get_int64(res, r, 6);
    job->max_retries = (int)bz_pg_get_int64(res, r, 7);
    job->created_ms = strtoll(PQgetvalue(res, r, 8), NULL, 10);
    job->claims = bz_pg_get_int64(res, r, 18);
    return job;
}

/* A body we would send as JSON text must be UTF-8 without NUL. Rows are
 * written by our own fan-out, so a bad one was put there by hand or by a
 * bug: it goes to the dead-letter topic instead of being tried forever. */
static bool reject_unsendable_payload(wh_worker *w, wh_job *job)
{
    if (bz_utf8_valid(job->body, job->body_len))
        return false;
    char msg[160];
    snprintf(msg, sizeof msg, "stored payload (%zu bytes) is not UTF-8 text; not sendable",
             job->body_len);
    bz_log_event(BZ_LOG_WARN, job->event_id, NULL, "delivery %" PRId64 ": %s", job->id, msg);
    wh_count_delivery(w, "invalid", 0);
    if (!wh_dead_letter_job(w, job, "invalid_payload", msg, 0, NULL))
        wh_leave_to_lease(w, job, NULL, 0);
    return true;
}

/* A row claimed after its last attempt (retry_count past max_retries): its
 * dead letter was never acknowledged (the broker was away, or the instance
 * holding it died). Dead-letter it without another attempt. */
static bool dead_letter_if_exhausted(wh_worker *w, wh_job *job, PGresult *res, int r)
{
    if (job->retry_count <= job->max_retries)
        return false;
    char msg[WH_ERROR_MAX + WH_SNIPPET_MAX + 96];
    snprintf(msg, sizeof msg, "exhausted after %d attempts: %s", job->retry_count,
             PQgetvalue(res, r, 19));
    if (!wh_dead_letter_job(w, job, "webhook_exhausted", msg,
                               (long)bz_pg_get_int64(res, r, 20), NULL))
        wh_leave_to_lease(w, job, NULL, 0);
    return true;
}

/* Claimed work held in memory: jobs, outcomes not yet written and dead
 * letters not yet acknowledged all count against max_local_jobs. */
static int claim_room(const wh_worker *w)
{
    int held = w->local_jobs + (int)w->out.n + w->dl.count;
    int room = w->cfg.max_local_jobs - held;
    return room < w->cfg.claim_batch ? room : w->cfg.claim_batch;
}

/* Take row r of a result of leased rows into a job, a dead letter or
 * nothing (out of memory: the lease runs out and the row is claimed
 * again). Returns its endpoint when it became a job. */
static wh_endpoint *take_row(wh_worker *w, PGresult *res, int r, int64_t lease_until)
{
    wh_job *job = job_from_row(res, r);
    wh_endpoint *ep =
        job && !dead_letter_if_exhausted(w, job, res, r) && !reject_unsendable_payload(w, job)
            ? wh_endpoint_from_row(w, res, r, job->endpoint_id, job->workspace_id)
            : NULL;
    if (!ep) {
        if (job) {
            free(job->body);
            free(job);
        }
        return NULL;
    }
    job->ep = ep;
    job->lease_until_ms = lease_until;
    wh_enqueue_job(w, ep, job);
    return ep;
}

/* Take the rows of one claim result into jobs, dead letters or nothing.
 * Returns how many candidates the claim had. */
static int64_t take_claimed(wh_worker *w, PGresult *res)
{
    int n = PQntuples(res);
    int64_t lease_until = bz_monotonic_ms() + w->cfg.claim_lease_ms;
    for (int r = 0; r < n; r++) {
        wh_endpoint *ep = take_row(w, res, r, lease_until);
        if (ep)
            ep->claimed++;
    }
    for (size_t i = 0; i < w->table_cap; i++) {
        wh_endpoint *ep = w->table[i];
        if (ep && ep->claimed > 0 && ep->claimed >= ep->claim_room)
            ep->more_due = true;
    }
    return n > 0 ? bz_pg_get_int64(res, 0, WH_LEASED_ROW_NCOLUMNS) : 0;
}

/* After a claim that took every candidate: an endpoint it had room for
 * and did not fill has nothing due left, so rows handed over for it may
 * go first again. */
static void clear_given_back(wh_worker *w)
{
    for (size_t i = 0; i < w->table_cap; i++) {
        wh_endpoint *ep = w->table[i];
        if (ep && ep->given_back && ep->claim_room > 0 && ep->claimed < ep->claim_room)
            ep->given_back = false;
    }
}

/* Claim up to the free room. Returns the number of rows claimed, or -1
 * when the database is unavailable; *full tells whether there were more
 * candidates than room. */
int wh_claim(wh_worker *w, bool *full)
{
    *full = false;
    int room = claim_room(w);
    if (room <= 0)
        return 0;
    bz_error err;
    if (wh_worker_conn(w, &err) != BZ_OK) {
        atomic_store(&w->db_up, 0);
        return -1;
    }
    char limit[16], lease[24];
    snprintf(limit, sizeof limit, "%d", room);
    snprintf(lease, sizeof lease, "%" PRId64, w->cfg.claim_lease_ms);
    claim_filter f;
    if (!build_claim_filter(w, &f))
        return 0;
    const char *params[] = {limit, f.excluded, lease, f.ids, f.rooms};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(bz_pg_conn(w->pg), "claim due deliveries", claim_sql, 5,
                                     params, &res, &err);
    free_claim_filter(&f);
    if (st != BZ_OK) {
        bz_log(BZ_LOG_WARN, "%s", err.msg);
        if (st == BZ_ERR_TRANSIENT) {
            bz_pg_reset(w->pg);
            atomic_store(&w->db_up, 0);
        }
        return -1;
    }
    atomic_store(&w->db_up, 1);
    int n = PQntuples(res);
    *full = take_claimed(w, res) > n;
    PQclear(res);
    if (!*full)
        clear_given_back(w);
    return n;
}

static void count_handed_over(wh_worker *w, const char *outcome, size_t n)
{
    if (w->have_metrics && n > 0)
        bz_counter_add(bz_counter_family_with(w->m.handed_over, outcome), n);
}

/* Would a claim give ep a row now? One this worker does not know yet (NULL)
 * has the room a claim gives it (fairness.h). */
static bool has_room_for(wh_worker *w, wh_endpoint *ep, int64_t now)
{
    if (!ep || !ep->enabled)
        return true;
    return wh_endpoint_cap_now(w, ep, now) - ep->queued - ep->in_flight > 0 &&
           wh_circuit_would_allow(&ep->circuit, now);
}

/* The results the fan-out handed over, taken out under their lock. */
static wh_handed_over *take_handed_over_list(wh_worker *w)
{
    pthread_mutex_lock(&w->handed_mu);
    wh_handed_over *list = w->handed_head;
    w->handed_head = w->handed_tail = NULL;
    pthread_mutex_unlock(&w->handed_mu);
    return list;
}

void wh_take_handed_over(wh_worker *w)
{
    wh_handed_over *list = take_handed_over_list(w);
    while (list) {
        wh_handed_over *next = list->next;
        PGresult *res = list->rows;
        int64_t now = bz_monotonic_ms();
        int64_t lease_until = list->leased_at_ms + w->cfg.claim_lease_ms;
        size_t taken = 0, left = 0;
        for (int r = 0; r < PQntuples(res); r++) {
            int64_t id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
            int64_t claims = bz_pg_get_int64(res, r, 18);
            wh_endpoint *ep = wh_find_endpoint(w, bz_pg_get_int64(res, r, 2));
            /* a full worker, a held-back endpoint, or one whose earlier
             * rows were given back (this one must not overtake them): the
             * row falls due now, for the claims, which take an endpoint's
             * rows oldest first (a "keep" outcome, written with the others) */
            if (claim_room(w) <= 0 || !wh_peers_settled(&w->peers, now) ||
                (ep && ep->given_back) || !has_room_for(w, ep, now)) {
                wh_add_outcome(w, id, claims, "keep", 0, 0, "", 0, NULL);
                if (ep) {
                    ep->given_back = ep->more_due = true;
                    w->claim_now = true;
                }
                left++;
            } else if (take_row(w, res, r, lease_until)) {
                taken++;
            }
        }
        count_handed_over(w, "leased", taken);
        count_handed_over(w, "left", left);
        PQclear(res);
        free(list);
        list = next;
    }
}
