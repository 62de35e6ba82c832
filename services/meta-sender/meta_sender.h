/*
 * meta_sender.h - what the modules of blazz-meta-sender share
 * (ARCHITECTURE.md §12).
 *
 * meta-sender plays, for accounts with provider_type 'meta', the part a
 * whatsapp-web.js gateway plays for webjs accounts: it takes the
 * SendMessages campaign-sender released onto wa.outbound and makes them
 * happen, here through the WhatsApp Cloud API, then reports the outcome on
 * chat.sync the way chat-sync applies a gateway's echo or receipt.
 *
 *   intake.c    the exactly-once consumer's handler: wa.outbound records of
 *               Meta accounts become meta_sends rows (one per idempotency
 *               key), in the transaction that stores the offsets;
 *   worker.c    the single active sender (advisory lock): its thread,
 *               connection and round (shared state: active_sender.h);
 *   claim.c     claims due rows within each account's pace and
 *               concurrency, marks them in_flight (committed before the
 *               request leaves) and starts their requests;
 *   jobs.c      one request: its libcurl easy handle and its answer;
 *   outcomes.c  finished requests: their verdicts, the rows' new states and
 *               reports, written in the round's one transaction;
 *   graph_request.c  SendMessage -> the Graph API request body;
 *   graph_outcome.c  Graph API answer -> what to do (Meta's error codes);
 *   pacing.c    per-account sliding-window pace, throttle feedback,
 *               concurrency;
 *   tokens.c    the accounts' sealed access tokens, opened in memory;
 *   media_upload.c  stored media uploaded once per account, sent by id;
 *   report.c    the echo / failed receipt on chat.sync.
 * Beside the sender, the media fetcher's threads bring inbound media from
 * Meta into the media store (media_fetch.h, ARCHITECTURE.md §16.2).
 */
#ifndef MS_META_SENDER_H
#define MS_META_SENDER_H

#include <curl/curl.h>
#include <stdint.h>

#include "blazz/v1/campaign.pb-c.h"
#include "core/metrics.h"
#include "core/keyring.h"
#include "core/status.h"
#include "kafka/eo_consumer.h"
#include "kafka/outbox.h"
#include "media/store.h"
#include "wa/meta_throttle.h"

#define MS_SOURCE "meta-sender"
#define MS_CODE_MAX 48
#define MS_MESSAGE_MAX 256
#define MS_WAM_ID_MAX 160

/* ---- settings --------------------------------------------------------------------- */

typedef struct ms_settings {
    const char *base_url;        /* https://graph.facebook.com */
    const char *api_version;     /* v23.0 */
    double default_per_second;   /* an account's pace without metadata.rate_limits */
    double max_per_second;       /* cap of any account (Meta's top tier: 80/s) */
    int64_t rate_guard_ms;       /* the pace counts windows of 1000 + guard ms */
    int account_concurrency;     /* requests in flight per account */
    int max_connections;         /* libcurl's connection pool */
    int64_t connection_max_idle_s; /* a connection idle longer is not reused */
    int64_t request_timeout_ms;
    int64_t connect_timeout_ms;
    int max_attempts;            /* retryable failures before failing for good */
    int64_t retry_base_ms;       /* backoff: base * 2^(attempt-1), capped */
    int64_t retry_max_ms;
    int64_t ambiguous_hold_ms;   /* wait for a status webhook before resending */
    int claim_max;               /* rows claimed per round */
    const char *lock_name;       /* the active sender's advisory lock (hashtext) */
    bz_keyring keyring;          /* opens the sealed tokens (secrets.keys); owned */
    bz_media_store *media_store; /* the bytes of stored media (media.*); owned, read by the
                                    sender thread only */
} ms_settings;

typedef struct ms_metrics {
    bz_counter_family *requests;  /* outcome: sent | retry | throttled | token_invalid | failed | ambiguous */
    bz_counter *ambiguous_resends;
    bz_counter *settled_by_webhook;
    bz_counter *proven_sent;      /* claimed sends a proof showed at Meta already */
    bz_gauge *restore_fence_records; /* records the replay must re-read first */
    bz_histogram *request_seconds;
    bz_histogram *accepted_to_request_seconds;
    bz_gauge *in_flight;
    bz_gauge *backlog;            /* meta_sends queued (worker.c, every 10 s) */
    bz_gauge *backlog_oldest_seconds;
} ms_metrics;

bz_status ms_metrics_register(ms_metrics *m, bz_metrics *reg, bz_error *err);

/* ---- intake.c --------------------------------------------------------------------- */

extern const bz_eo_handler ms_intake_handler;

/* ---- graph_request.c -------------------------------------------------------------- */

/* The JSON body of POST /{phone_number_id}/messages that performs m: a
 * message (text, template, media by link or id, reaction, with reply
 * context) or, for SEND_KIND_MARK_READ, the read status of the newest
 * message named. *out is heap text the caller frees. BZ_ERR_INVALID
 * (reason invalid_send) when m cannot be expressed, (reason
 * provider_limit, wa/meta_limits.h) when Meta would not take it whole. */
bz_status ms_graph_body(const Blazz__V1__SendMessage *m, char **out, bz_error *err);

/* 1 when m goes to a Meta group: no person named, and the group's key
 * (to_jid) a Meta group id, not a JID. */
int ms_sends_to_meta_group(const Blazz__V1__SendMessage *m);

/* ---- graph_outcome.c -------------------------------------------------------------- */

typedef enum ms_verdict {
    MS_SENT = 0,       /* messages[0].id is the wamid (or success for a read mark) */
    MS_RETRY,          /* 5xx, timeouts before the request left, transient Meta codes */
    MS_THROTTLED,      /* 130429 throughput, 131056 pair rate: retry later, slow the account */
    MS_TOKEN_INVALID,  /* 190 / 0, or 401 without a code: hold the account's sends */
    MS_FAILED,         /* permanent: report failed with code and message */
    MS_AMBIGUOUS       /* the request may have reached Meta: no answer came */
} ms_verdict;

typedef struct ms_outcome {
    ms_verdict verdict;
    char wam_id[MS_WAM_ID_MAX];
    char code[MS_CODE_MAX];        /* reengagement_required, Meta's code, transport_* */
    char message[MS_MESSAGE_MAX];
} ms_outcome;

/* Classify one exchange. transport_error: 0 when an HTTP answer came, else
 * 1 = nothing was sent (connect failed), 2 = sent but no answer (timeout,
 * dropped connection). body/len: the answer (may be NULL). */
void ms_graph_classify(int transport_error, long http_status, const char *body, size_t len,
                       ms_outcome *out);

const char *ms_verdict_name(ms_verdict v);

/* ---- report.c ----------------------------------------------------------------------- */

/* One meta_sends row being worked. */
typedef struct ms_row {
    int64_t id, account_id, workspace_id;
    char *key;      /* idempotency key (heap) */
    char *msg_key;  /* "<workspace_id>:<conversation>" (heap) */
    Blazz__V1__SendMessage *m;
    int attempts, ambiguous_resends;
    int64_t accepted_ms; /* when the message was accepted upstream (envelope) */
} ms_row;

/* Queue on chat.sync what a gateway's echo says: the message left with
 * wam_id (chat-sync moves the chats row pending -> sent, routes a campaign
 * log's receipt). Read marks report nothing. */
bz_status ms_report_sent(bz_outbox_batch *batch, const ms_row *r, const char *wam_id,
                         int64_t now_ms, bz_error *err);
/* Queue a FAILED receipt (no wam_id; client reference, code, message). */
bz_status ms_report_failed(bz_outbox_batch *batch, const ms_row *r, const char *code,
                           const char *message, int64_t now_ms, bz_error *err);

/* ---- pacing.c ----------------------------------------------------------------------- */

#define MS_PACE_MAX_PER_WINDOW 1024

/* One account's pace: at most limit request starts in any window of
 * window_ms (1000 + guard), limit = rate x factor (at least 1); factor
 * halves at each throttling answer (down to 0.1) and recovers by 0.1 per
 * second without one (wa/meta_throttle.h, on the monotonic clock); at
 * most concurrency requests in flight. */
typedef struct ms_pace {
    double rate;
    bz_meta_throttle throttle;
    int concurrency;
    int in_flight;
    int64_t window_ms;
    int64_t starts[MS_PACE_MAX_PER_WINDOW]; /* ring of request start times */
    size_t head, count;
} ms_pace;

void ms_pace_init(ms_pace *p, double rate, int concurrency, int64_t window_ms);
/* A new configured rate (metadata changed); keeps the window. */
void ms_pace_set_rate(ms_pace *p, double rate);
/* How many requests may start now. */
int ms_pace_room(ms_pace *p, int64_t now_ms);
/* Milliseconds until room appears when there is none (0: room now). */
int64_t ms_pace_wait_ms(ms_pace *p, int64_t now_ms);
void ms_pace_started(ms_pace *p, int64_t now_ms);
void ms_pace_finished(ms_pace *p);
void ms_pace_throttled(ms_pace *p, int64_t now_ms);
/* The limit per window at now_ms. */
int ms_pace_limit(const ms_pace *p, int64_t now_ms);

/* ---- tokens.c ----------------------------------------------------------------------- */

typedef enum ms_token_state { MS_TOKEN_NONE = 0, MS_TOKEN_OPEN, MS_TOKEN_REFUSED } ms_token_state;

/* A Meta account with sends to work: its phone number id, its opened
 * token (only in this process's memory, cleansed when replaced) and its
 * pace. */
typedef struct ms_account {
    int64_t id, workspace_id;
    char phone_number_id[128];
    char *token;                /* heap, NULL unless state is VALID */
    char token_version[64];     /* meta_credentials.updated_at of the token held */
    ms_token_state state;
    ms_pace pace;
    int seen;                   /* in the last refresh */
    int64_t throttles_unsaved;  /* throttling answers not yet in meta_throttle */
    char throttle_code[MS_CODE_MAX]; /* Meta's code of the last one */
} ms_account;

typedef struct ms_accounts {
    ms_account **items;
    size_t n, cap;
} ms_accounts;

/* Re-read the Meta accounts that have open sends, their pace settings and
 * credentials; opens a token only when its version changed. An account
 * seen for the first time takes its throttle state from meta_throttle, so
 * a restart does not forget that Meta slowed it. */
bz_status ms_accounts_refresh(PGconn *conn, ms_accounts *accs, const ms_settings *s,
                              int64_t now_ms, bz_error *err);
ms_account *ms_accounts_find(ms_accounts *accs, int64_t id);

/* Record that Meta refused the account's token (190): status invalid,
 * unless a new token was set meanwhile (its version differs). */
bz_status ms_account_mark_invalid(PGconn *conn, ms_account *a, const char *reason, bz_error *err);
void ms_accounts_free(ms_accounts *accs);

/* ---- jobs.c ------------------------------------------------------------------------- */

/* The transport options of every request to Meta (sends, media): no
 * signals, the timeouts, no redirects, no proxy, http(s) only. */
void ms_curl_graph_options(CURL *e, int64_t timeout_ms, int64_t connect_timeout_ms);

/* ---- worker.c ----------------------------------------------------------------------- */

typedef struct ms_worker ms_worker;

/* Start the sender thread. s, dsn and m must outlive it. */
bz_status ms_worker_start(const ms_settings *s, const char *dsn, ms_metrics *m, ms_worker **out,
                          bz_error *err);
/* Finish the requests in flight (bounded by the request timeout), record
 * their outcomes, stop and free. */
void ms_worker_stop(ms_worker *w);

#endif
