/*
 * media_fetch.h - what the modules of meta-sender's media fetcher share
 * (ARCHITECTURE.md §16.2, db/migrations/0042_media_fetch_jobs.sql).
 *
 * An inbound Meta message names its media by an id; chat-sync queued a
 * media_fetch_jobs row with the message. The fetcher, threads of
 * meta-sender (it holds the accounts' tokens), works them:
 *   media_fetch.c     the threads: each its own PostgreSQL connection,
 *                     media store handle and libcurl handle, a batch of
 *                     jobs at a time: claim, fetch one after the other on
 *                     kept connections, store the fetched ones in one
 *                     transaction, then retry or fail the others;
 *   media_claim.c     the job rows: the claim (a lease), the hand-back,
 *                     the retry, the failure, the account's token;
 *   media_download.c  the two Graph requests: GET /{media-id} (a download
 *                     URL, mime_type, sha256, file_size), then the bytes,
 *                     streamed into a spool and checked against sha256;
 *   media_store_txn.c the transaction that stores and links a batch: the
 *                     chat_media rows, the objects, chats.media_id, the
 *                     jobs done and the MEDIA_READY events on chat.events;
 *   media_dead_letter.c  a permanent failure's dead letter (wa.outbound.dlq).
 */
#ifndef MS_MEDIA_FETCH_H
#define MS_MEDIA_FETCH_H

#include <curl/curl.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "core/config.h"
#include "core/keyring.h"
#include "core/metrics.h"
#include "core/status.h"
#include "kafka/producer.h"
#include "media/store.h"

/* The most jobs one claim takes (media.fetch_batch's ceiling). */
#define MS_MEDIA_BATCH_MAX 64

/* The fetcher's own keys, for meta-sender's key table (besides
 * BZ_MEDIA_STORE_CONFIG_KEYS). */
#define MS_MEDIA_FETCH_CONFIG_KEYS                                                                \
    {.name = "media.fetch_threads", .type = BZ_CFG_INT, .def = "2", .min = 0, .max = 64,          \
     .help = "media fetcher threads (fetches at once); 0: this instance fetches no media"},       \
    {.name = "media.fetch_batch", .type = BZ_CFG_INT, .def = "16", .min = 1,                     \
     .max = MS_MEDIA_BATCH_MAX,                                                                   \
     .help = "media fetches a thread claims at once and stores in one transaction"},             \
    {.name = "media.fetch_max_attempts", .type = BZ_CFG_INT, .def = "10", .min = 1, .max = 1000,  \
     .help = "claims of one media fetch before it fails for good (media_fetch_exhausted)"},       \
    {.name = "media.fetch_lease_ms", .type = BZ_CFG_INT, .def = "300000", .min = 1000,            \
     .max = 86400000,                                                                             \
     .help = "how long a claimed fetch is its fetcher's; a killed fetcher's jobs are taken "      \
             "again after it. More than twice media.fetch_timeout_ms"},                           \
    {.name = "media.fetch_retry_base_ms", .type = BZ_CFG_INT, .def = "1000", .min = 1,            \
     .max = 3600000, .help = "first retry delay of a media fetch; doubles per attempt"},          \
    {.name = "media.fetch_retry_max_ms", .type = BZ_CFG_INT, .def = "300000", .min = 1,           \
     .max = 86400000, .help = "longest retry delay of a media fetch"},                            \
    {.name = "media.fetch_timeout_ms", .type = BZ_CFG_INT, .def = "120000", .min = 100,           \
     .max = 3600000, .help = "one Graph request or download of media, whole"},                    \
    {.name = "media.fetch_connect_timeout_ms", .type = BZ_CFG_INT, .def = "5000", .min = 100,     \
     .max = 600000, .help = "connection setup of a media request"},                               \
    {.name = "media.fetch_poll_ms", .type = BZ_CFG_INT, .def = "1000", .min = 10, .max = 60000,   \
     .help = "how often an idle fetcher looks for retries and expired leases (new jobs wake it)"}

typedef struct ms_media_settings {
    const char *base_url, *api_version; /* meta.base_url, meta.api_version */
    const bz_keyring *keyring;          /* meta-sender's, borrowed */
    const bz_config *config;            /* for bz_media_store_open per thread */
    const char *dlq_topic;              /* full name of wa.outbound.dlq */
    int threads;                        /* media.fetch_threads: 0 disables */
    int batch;                          /* media.fetch_batch */
    int max_attempts;                   /* media.fetch_max_attempts */
    int64_t lease_ms;                   /* media.fetch_lease_ms */
    int64_t retry_base_ms, retry_max_ms;
    int64_t request_timeout_ms, connect_timeout_ms;
    int64_t idle_poll_ms;               /* media.fetch_poll_ms: wait when nothing is due */
} ms_media_settings;

typedef struct ms_media_metrics {
    bz_counter *fetched;        /* objects stored */
    bz_counter *bytes;          /* their bytes */
    bz_counter *retries;        /* transient failures, retried later */
    bz_counter_family *failures; /* permanent, by reason */
} ms_media_metrics;

/* One claimed job. */
typedef struct ms_media_job {
    int64_t chat_id, workspace_id, account_id;
    int attempts; /* this claim's number: finishing needs it unchanged */
    char media_id[257];
    char declared_sha256[129];
    char declared_mime[256];
    char kind[16];
    char filename[1025];
    char chat_uuid[37];
    char wam_id[256];
    char event_key[1025]; /* the MEDIA_READY event's Kafka key */
} ms_media_job;

/* What Meta said of the media (GET /{media-id}). */
typedef struct ms_media_meta {
    char *url;           /* heap */
    char mime_type[256];
    char sha256[65];     /* hex, lower case; "" when Meta gave none */
    int64_t file_size;   /* -1: not given */
} ms_media_meta;

/* ---- media_claim.c ------------------------------------------------------------- */

/* Claim the oldest due pending jobs (none leased, or its lease run out),
 * at most max, into jobs[0..*n): attempts + 1, leased for lease_ms. *n 0
 * when none is due. */
bz_status ms_media_claim(PGconn *conn, int64_t lease_ms, int max, ms_media_job *jobs, int *n,
                         bz_error *err);
/* Hand a claimed job back unstarted: its lease ends and its claim is not
 * counted, so it is due again at once. */
bz_status ms_media_release(PGconn *conn, const ms_media_job *job, bz_error *err);
/* The account's opened token (heap, cleanse and free it). BZ_ERR_TRANSIENT
 * when the account has no valid token now (a new one may be set). */
bz_status ms_media_token(PGconn *conn, const ms_media_settings *s, const ms_media_job *job,
                         char **token, bz_error *err);
/* A transient failure: due again after the backoff of its attempt. */
bz_status ms_media_retry(PGconn *conn, const ms_media_settings *s, const ms_media_job *job,
                         const char *error, bz_error *err);
/* A permanent failure: state failed with reason. 0 rows when the claim is
 * no longer the job's latest (*owned 0). */
bz_status ms_media_fail(PGconn *conn, const ms_media_job *job, const char *reason,
                        const char *error, int *owned, bz_error *err);
/* Inside a transaction: the job done, if this claim still owns it. */
bz_status ms_media_mark_done(PGconn *conn, const ms_media_job *job, int *owned, bz_error *err);

/* ---- media_download.c ---------------------------------------------------------- */

/* GET {base}/{version}/{media-id} with the token. BZ_ERR_TRANSIENT for
 * what may work later (5xx, 429, no answer, a refused token),
 * BZ_ERR_INVALID (reason media_unknown, media_answer_invalid) for what
 * will not. */
bz_status ms_media_ask(const ms_media_settings *s, CURL *easy, const ms_media_job *job,
                       const char *token, ms_media_meta *out, bz_error *err);
void ms_media_meta_free(ms_media_meta *m);
/* Both requests run on easy, the fetcher thread's handle (reset for each),
 * so its connections are kept from one request to the next.
 * GET meta->url with the token into spool, then finish it (declared type:
 * Meta's mime_type) and check the bytes' SHA-256 against every sha256 Meta
 * gave (the answer's, the webhook's). BZ_ERR_TRANSIENT for failures that
 * may pass (reason media_url_expired when the URL answered 4xx: ask again),
 * BZ_ERR_INVALID with the store's reasons or media_sha256_mismatch. */
bz_status ms_media_download(const ms_media_settings *s, CURL *easy, const ms_media_job *job,
                            const char *token, const ms_media_meta *meta, bz_media_spool *spool,
                            bz_media_object *obj, bz_error *err);

/* ---- media_store_txn.c --------------------------------------------------------- */

/* One transaction for n fetched jobs (at most MS_MEDIA_BATCH_MAX), each
 * with its finished spool and object: the job done (if still ours), the
 * chat_media row, the object committed, chats.media_id, the MEDIA_READY
 * event. owned[i] 0 when another claim took job i over (nothing written
 * for it); all 0 when the transaction failed (nothing written at all). */
bz_status ms_media_store_and_link(PGconn *conn, bz_media_store *store, const ms_media_job *jobs,
                                  bz_media_spool *const *spools, bz_media_object *objs, int n,
                                  int *owned, bz_error *err);

/* ---- media_dead_letter.c ------------------------------------------------------- */

/* The dead letter of a job given up for reason, acknowledged by the broker
 * before it returns BZ_OK. */
bz_status ms_media_dead_letter(bz_producer *p, const ms_media_settings *s,
                               const ms_media_job *job, const char *reason, const char *error,
                               bz_error *err);

/* ---- media_fetch.c ------------------------------------------------------------- */

typedef struct ms_media_fetcher ms_media_fetcher;

bz_status ms_media_metrics_register(ms_media_metrics *m, bz_metrics *reg, bz_error *err);
/* Start s->threads fetcher threads (none when 0). s, dsn, kafka and m must
 * outlive them. */
bz_status ms_media_fetcher_start(const ms_media_settings *s, const char *dsn,
                                 const bz_kafka_settings *kafka, ms_media_metrics *m,
                                 ms_media_fetcher **out, bz_error *err);
/* Let the fetches in flight finish (bounded by the request timeouts), stop
 * and free. NULL is fine. */
void ms_media_fetcher_stop(ms_media_fetcher *f);

#endif
