/*
 * media_claim.c - the media_fetch_jobs rows as the fetcher works them
 * (see media_fetch.h, db/migrations/0042_media_fetch_jobs.sql).
 *
 * A claim takes the oldest due pending jobs no live lease holds, a batch
 * of them in one statement (FOR UPDATE SKIP LOCKED, so fetchers never
 * wait on each other), counts each in attempts and leases it: until
 * leased_until no other fetcher takes it, and after it a killed fetcher's
 * job is taken again. Every later write names the claim (chat_id and
 * attempts): a fetcher that outlived its lease and lost the job to another
 * claim writes nothing. A job of the batch not started in time is handed
 * back (its claim uncounted), so that no fetch starts that could outlast
 * its lease.
 */
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media_fetch.h"
#include "pg/pg.h"
#include "wa/meta_graph.h"

#define SQL_CLAIM                                                                                 \
    "WITH due AS (SELECT chat_id FROM media_fetch_jobs WHERE state = 'pending' "                  \
    "AND next_attempt_at <= now() AND (leased_until IS NULL OR leased_until <= now()) "           \
    "ORDER BY next_attempt_at LIMIT $2::int FOR UPDATE SKIP LOCKED) "                             \
    "UPDATE media_fetch_jobs j SET attempts = j.attempts + 1, "                                   \
    "leased_until = now() + $1::bigint * interval '1 millisecond' FROM due, chats c "            \
    "WHERE j.chat_id = due.chat_id AND c.id = j.chat_id "                                         \
    "RETURNING j.chat_id, j.workspace_id, j.whatsapp_account_id, j.attempts, j.meta_media_id, "  \
    "j.declared_sha256, j.declared_mime, j.kind, coalesce(j.filename, ''), c.uuid::text, "        \
    "coalesce(c.wam_id, ''), j.event_key"

#define SQL_TOKEN                                                                                 \
    "SELECT encode(token_ciphertext, 'hex'), coalesce(encode(token_nonce, 'hex'), '') "           \
    "FROM meta_credentials WHERE whatsapp_account_id = $1::bigint AND status = 'valid'"

#define SQL_RETRY                                                                                 \
    "UPDATE media_fetch_jobs SET leased_until = NULL, last_error = $3, "                          \
    "next_attempt_at = now() + $4::bigint * interval '1 millisecond' "                            \
    "WHERE chat_id = $1::bigint AND attempts = $2::int AND state = 'pending'"

#define SQL_FAIL                                                                                  \
    "UPDATE media_fetch_jobs SET state = 'failed', leased_until = NULL, reason = $3, "            \
    "last_error = $4, finished_at = now() "                                                       \
    "WHERE chat_id = $1::bigint AND attempts = $2::int AND state = 'pending'"

#define SQL_RELEASE                                                                               \
    "UPDATE media_fetch_jobs SET leased_until = NULL, attempts = attempts - 1 "                   \
    "WHERE chat_id = $1::bigint AND attempts = $2::int AND state = 'pending'"

#define SQL_DONE                                                                                  \
    "UPDATE media_fetch_jobs SET state = 'done', leased_until = NULL, reason = NULL, "            \
    "finished_at = now() WHERE chat_id = $1::bigint AND attempts = $2::int AND state = 'pending'"

static void copy_text(char *dst, size_t cap, const PGresult *res, int row, int col)
{
    snprintf(dst, cap, "%s", PQgetvalue(res, row, col));
}

bz_status ms_media_claim(PGconn *conn, int64_t lease_ms, int max, ms_media_job *jobs, int *n,
                         bz_error *err)
{
    *n = 0;
    char lease[24], limit[16];
    snprintf(lease, sizeof lease, "%" PRId64, lease_ms);
    snprintf(limit, sizeof limit, "%d", max);
    const char *params[] = {lease, limit};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "claim media fetches", SQL_CLAIM, 2, params, &res, err);
    for (int r = 0; st == BZ_OK && r < PQntuples(res) && r < max; r++) {
        ms_media_job *job = &jobs[r];
        memset(job, 0, sizeof *job);
        job->chat_id = bz_pg_get_int64(res, r, 0);
        job->workspace_id = bz_pg_get_int64(res, r, 1);
        job->account_id = bz_pg_get_int64(res, r, 2);
        job->attempts = (int)bz_pg_get_int64(res, r, 3);
        copy_text(job->media_id, sizeof job->media_id, res, r, 4);
        copy_text(job->declared_sha256, sizeof job->declared_sha256, res, r, 5);
        copy_text(job->declared_mime, sizeof job->declared_mime, res, r, 6);
        copy_text(job->kind, sizeof job->kind, res, r, 7);
        copy_text(job->filename, sizeof job->filename, res, r, 8);
        copy_text(job->chat_uuid, sizeof job->chat_uuid, res, r, 9);
        copy_text(job->wam_id, sizeof job->wam_id, res, r, 10);
        copy_text(job->event_key, sizeof job->event_key, res, r, 11);
        *n = r + 1;
    }
    PQclear(res);
    return st;
}

bz_status ms_media_token(PGconn *conn, const ms_media_settings *s, const ms_media_job *job,
                         char **token, bz_error *err)
{
    *token = NULL;
    char id[24], ws[24];
    snprintf(id, sizeof id, "%" PRId64, job->account_id);
    snprintf(ws, sizeof ws, "%" PRId64, job->workspace_id);
    const char *params[] = {id};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "read the account's token", SQL_TOKEN, 1, params, &res,
                                     err);
    if (st == BZ_OK && PQntuples(res) != 1)
        st = bz_fail(err, BZ_ERR_TRANSIENT, "account %" PRId64 " has no valid access token",
                     job->account_id);
    if (st == BZ_OK &&
        bz_meta_token_open(s->keyring, id, ws, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
                           token, err) != BZ_OK) {
        bz_wrap(err, "account %" PRId64, job->account_id);
        st = bz_reclass(err, BZ_ERR_TRANSIENT, NULL);
    }
    PQclear(res);
    return st;
}

/* base * 2^(attempts-1), capped. */
static int64_t backoff_ms(const ms_media_settings *s, int attempts)
{
    int64_t d = s->retry_base_ms;
    for (int i = 1; i < attempts && d < s->retry_max_ms; i++)
        d *= 2;
    return d < s->retry_max_ms ? d : s->retry_max_ms;
}

static bz_status update_claimed(PGconn *conn, const char *what, const char *sql,
                                const ms_media_job *job, const char *p3, const char *p4,
                                int *owned, bz_error *err)
{
    char chat[24], attempts[16];
    snprintf(chat, sizeof chat, "%" PRId64, job->chat_id);
    snprintf(attempts, sizeof attempts, "%d", job->attempts);
    const char *params[] = {chat, attempts, p3, p4};
    int n = p4 ? 4 : p3 ? 3 : 2;
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, what, sql, n, params, &res, err);
    if (owned)
        *owned = st == BZ_OK && bz_pg_affected_rows(res) == 1;
    PQclear(res);
    return st;
}

bz_status ms_media_retry(PGconn *conn, const ms_media_settings *s, const ms_media_job *job,
                         const char *error, bz_error *err)
{
    char delay[24];
    snprintf(delay, sizeof delay, "%" PRId64, backoff_ms(s, job->attempts));
    return update_claimed(conn, "retry a media fetch later", SQL_RETRY, job, error, delay, NULL,
                          err);
}

bz_status ms_media_fail(PGconn *conn, const ms_media_job *job, const char *reason,
                        const char *error, int *owned, bz_error *err)
{
    return update_claimed(conn, "fail a media fetch", SQL_FAIL, job, reason, error, owned, err);
}

bz_status ms_media_release(PGconn *conn, const ms_media_job *job, bz_error *err)
{
    return update_claimed(conn, "hand a media fetch back", SQL_RELEASE, job, NULL, NULL, NULL,
                          err);
}

bz_status ms_media_mark_done(PGconn *conn, const ms_media_job *job, int *owned, bz_error *err)
{
    return update_claimed(conn, "finish a media fetch", SQL_DONE, job, NULL, NULL, owned, err);
}
