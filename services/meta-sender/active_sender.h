/*
 * active_sender.h - what the files of meta-sender's sender thread share,
 * and nothing outside them sees.
 *
 * The sender thread (worker.c) owns one ms_worker: its PostgreSQL
 * connection, its libcurl multi handle, the accounts it sends for, and its
 * jobs. A job (jobs.c) is one claimed meta_sends row on its way: claimed
 * and started (claim.c), running inside the multi handle (the running
 * list), then finished with an outcome and kept on the done list until the
 * next round's transaction records it (outcomes.c). Only the sender thread
 * touches any of it, except the two atomics other threads read (stop,
 * active).
 */
#ifndef MS_ACTIVE_SENDER_H
#define MS_ACTIVE_SENDER_H

#include <curl/curl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bytes.h"
#include "meta_sender.h"

typedef struct ms_job {
    struct ms_job *prev, *next; /* the running list */
    ms_row row;
    ms_account *acc;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    size_t body_len, body_read; /* what the read callback gave libcurl so far */
    int resend_refused;         /* libcurl wanted to send the body again */
    bz_bytes resp;
    int64_t started_ms;
    ms_outcome outcome;
} ms_job;

typedef struct ms_job_list {
    ms_job **items;
    size_t n, cap;
} ms_job_list;

struct ms_worker {
    const ms_settings *s;
    const char *dsn;
    ms_metrics *m;
    pthread_t thread;
    atomic_bool stop;
    PGconn *conn;
    int locked;
    int64_t next_connect_ms, next_refresh_ms, last_refresh_ms, next_backlog_ms;
    int notified;
    int fence_held; /* a restore fence is up: claim nothing (restore_fence.c) */
    CURLM *multi;
    ms_accounts accounts;
    ms_job_list done;
    ms_job *running_head;
    size_t running;
};

/* ---- restore_fence.c: no send until a restore's proofs are back ----------------- */

/* Read the unlifted restore fences: fence_held while chat-sync and
 * campaign-sender have not re-read their topics to a fence's end offsets;
 * a fence they have is lifted. */
bz_status ms_restore_fence_check(ms_worker *w, bz_error *err);

/* ---- jobs.c: one request, from claimed row to outcome --------------------------- */

/* Append j to l: 0, or -1 when out of memory (l unchanged, j not taken). */
int ms_job_list_push(ms_job_list *l, ms_job *j);

/* Put j on the worker's running list / take it off (j stays the caller's). */
void ms_worker_link_running(ms_worker *w, ms_job *j);
void ms_worker_unlink_running(ms_worker *w, ms_job *j);

/* Free j with its easy handle, its headers (the token cleansed first), its
 * body, answer and row. NULL is a no-op. The easy handle must no longer be
 * in the multi handle. */
void ms_job_free(ms_job *j);

/* Build j's easy handle: POST {base}/{version}/{phone_number_id}/messages
 * with j->body and the account's token, the answer collected into j->resp. */
bz_status ms_job_prepare(ms_worker *w, ms_job *j, bz_error *err);

/* Whether id is a Meta phone number id (1 to 32 digits): it is a path
 * segment of the URL the account's token is sent to. */
int ms_is_phone_number_id(const char *id);

/* ---- outcomes.c: finished requests and what their rows become ------------------ */

/* Steps 1 and 3 of a round in one transaction: record the done list's
 * outcomes (rows and chat.sync reports) and, when claimed is not NULL,
 * claim the next rows into *claimed (the caller PQclears it). On failure
 * nothing changed: the outcomes stay for the next round, *claimed is NULL. */
bz_status ms_round_transaction(ms_worker *w, PGresult **claimed, bz_error *err);

/* Record the done list's outcomes only (ms_round_transaction, no claim). */
bz_status ms_write_outcomes(ms_worker *w, bz_error *err);

/* Take the requests libcurl finished off the running list, classify them,
 * apply what that means for their account and move them to the done list. */
void ms_collect_finished(ms_worker *w);

/* ---- media_upload.c: stored media as a Meta media id --------------------------- */

/* What one round resolved, per (account, media): so jobs of a round that
 * send the same object share one upload. */
typedef struct ms_media_round ms_media_round;

/* NULL when out of memory (each job then resolves on its own). */
ms_media_round *ms_media_round_new(void);
void ms_media_round_free(ms_media_round *r);

/* Before j's request is built: when j's media is stored media
 * (stored_media_uuid, no media_id), its MediaInfo.media_id becomes the
 * account's Meta media id for it (cached, or uploaded now). 1: j can be
 * sent (nothing to do, or done); 0: it cannot, *fail says why and with
 * which verdict (retry, token_invalid or failed). */
int ms_media_resolve(ms_worker *w, ms_media_round *r, ms_job *j, ms_outcome *fail);

/* ---- claim.c: due rows within each account's pace, and their start ------------- */

/* Inside ms_round_transaction: set in_flight the due rows each account has
 * room for; *claimed stays NULL when no account has room. */
bz_status ms_claim_rows(ms_worker *w, PGresult **claimed, bz_error *err);

/* After the claim committed: a job per row, started now, or finished
 * without a request (undecodable payload, or a status webhook showed an
 * ambiguous row reached Meta). res may be NULL. */
void ms_start_claimed_rows(ms_worker *w, PGresult *res);

#endif
