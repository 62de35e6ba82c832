/*
 * worker_state.h - what the files of the delivery worker share, and nothing
 * outside them sees (main.c uses worker.h).
 *
 * One wh_worker belongs to its thread (worker.c starts it, runs its
 * loop and stops it); other threads touch only the two atomics (stop,
 * db_up). It holds every endpoint it has seen, in an open-addressing table
 * by id, each with its decrypted secrets, limits, circuit and short queue
 * of jobs (endpoints.c). A job is one claimed row held in memory
 * (claim.c), queued on its endpoint, then in flight (attempts.c) until its
 * outcome is buffered. Buffered outcomes and endpoint stats are written in
 * batches (recording.c); undeliverable rows become dead letters
 * (dead_lettering.c); the LISTEN connection, the heartbeat and the
 * periodic chores are in housekeeping.c.
 *
 * Terms: retry_count counts failed attempts; a row may be attempted
 * max_retries + 1 times. An endpoint's load is its jobs queued and in
 * flight.
 */
#ifndef WH_WORKER_STATE_H
#define WH_WORKER_STATE_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "circuit.h"
#include "core/metrics.h"
#include "core/status.h"
#include "core/token_bucket.h"
#include "deadletters.h"
#include "delivery.h"
#include "fairness.h"
#include "kafka/producer.h"
#include "kafka/topics.h"
#include "outcomes.h"
#include "peers.h"
#include "pg/pg.h"
#include "worker.h"

#define MAX_SECRETS 4
#define LOOP_WAIT_MAX_MS 100

typedef struct wh_endpoint wh_endpoint;

/* Rows the fan-out inserted leased to this worker (leased_row.h), waiting
 * for it. */
typedef struct wh_handed_over {
    struct wh_handed_over *next;
    PGresult *rows; /* owned */
    int64_t leased_at_ms; /* monotonic: their lease began then at the latest */
} wh_handed_over;

typedef struct wh_job {
    wh_transfer t;
    int64_t id, endpoint_id, workspace_id, created_ms;
    char event_id[40];
    char type[32];
    char *body;
    size_t body_len;
    int retry_count, max_retries;
    int64_t claims;         /* the claim this worker holds the row on */
    int64_t lease_until_ms; /* monotonic: when the row falls due for others */
    double attempt_started; /* bz_metrics_clock() when its attempt started */
    wh_endpoint *ep;
    struct wh_job *next;
    struct wh_job *fl_prev, *fl_next; /* the worker's in-flight list */
} wh_job;

struct wh_endpoint {
    int64_t id, workspace_id;
    char *url, *cipher_hex, *nonce_hex;
    char *previous_cipher_hex, *previous_nonce_hex; /* "" unless a rotation's overlap runs */
    char *secrets[MAX_SECRETS];
    size_t nsecrets;
    char secret_error[BZ_ERROR_MSG_MAX + 32];
    bool whatsapp_hmac;
    int rate, concurrency, timeout_ms;
    bool enabled;
    char disabled_reason[1024]; /* the CRM's: 200 characters, up to 800 bytes */
    bz_token_bucket bucket;
    wh_circuit circuit;
    wh_job *q_head, *q_tail;
    int queued, in_flight;
    wh_meter finished;   /* attempts finished per second: its share */
    int claim_room, claimed; /* what the last claim could give it, and gave */
    bool more_due;          /* the last claim gave it all its room */
    bool given_back;        /* rows handed over were given back: later ones wait behind them */
    bool ready_listed;
    wh_endpoint *next_ready;
    bz_gauge *circuit_gauge;
    /* outcomes since the last endpoint-stats write */
    bool stat_listed, stat_any_success;
    int stat_tail;
    long stat_code;
    char stat_error[WH_ERROR_MAX + WH_SNIPPET_MAX + 32];
    char stat_disable[256];
    int64_t stat_open_ms; /* the circuit opened for this long */
    wh_endpoint *next_stat;
};

typedef struct wh_worker_metrics {
    bz_counter_family *deliveries; /* outcome, status_class */
    bz_counter *attempts;
    bz_counter *dead_lettered;
    bz_gauge *dead_letters_pending;
    bz_counter *dead_letters_deferred;
    bz_counter *stale_outcomes;
    bz_counter *dropped_outcomes;
    bz_counter_family *handed_over; /* outcome: leased, left (to the claims) */
    bz_gauge_family *depth;        /* status */
    bz_gauge_family *circuit;      /* endpoint */
    bz_gauge *in_flight;
    bz_histogram *to_first_attempt;
    bz_histogram *to_success;
    bz_histogram *attempt_seconds;
} wh_worker_metrics;

struct wh_worker {
    wh_worker_config cfg;
    pthread_t thread;
    atomic_bool stop;
    atomic_int db_up;
    bz_pg *pg;
    bz_pg *listen;
    PGconn *listening_on;
    PGconn *depth_on; /* the LISTEN connection while a depth count runs on it */
    PGconn *tuned; /* the worker connection synchronous_commit was relaxed on */
    wh_delivery *http;
    bz_producer *producer;
    wh_worker_metrics m;
    bool have_metrics;

    wh_endpoint **table; /* open addressing by id */
    size_t table_cap, table_used;
    wh_endpoint *ready_head, *ready_tail;
    wh_endpoint *stat_head;
    int local_jobs;
    wh_job *in_flight;
    wh_outcomes out;
    wh_dead_letters dl;
    int64_t next_claim_ms, next_housekeeping_ms;
    wh_peers peers;
    bool claim_now;
    bool more_due; /* the last claim came back full: more rows are due */
    pthread_mutex_t handed_mu;
    wh_handed_over *handed_head, *handed_tail; /* under handed_mu */
    char source_topics[3][BZ_TOPIC_NAME_MAX];
};

/* ---- endpoints.c: the endpoint table and the jobs queued per endpoint --- */

/* The endpoint with id, or NULL when this worker has not seen it. */
wh_endpoint *wh_find_endpoint(const wh_worker *w, int64_t id);

/* Create or refresh the endpoint of claimed row r (columns 9..17, 21, 22), its
 * secrets decrypted when they changed; NULL when out of memory. */
wh_endpoint *wh_endpoint_from_row(wh_worker *w, PGresult *res, int r, int64_t id,
                                     int64_t workspace_id);

/* Free ep, its secrets cleansed first. */
void wh_free_endpoint(wh_endpoint *ep);

/* Put ep on the ready list when it has queued jobs and is not on it. */
void wh_mark_ready(wh_worker *w, wh_endpoint *ep);

/* Queue job (counted in local_jobs) on ep, and mark ep ready. */
void wh_enqueue_job(wh_worker *w, wh_endpoint *ep, wh_job *job);

/* Take the first queued job of ep (still counted in local_jobs); NULL when
 * none. */
wh_job *wh_dequeue_job(wh_endpoint *ep);

/* Free job and stop counting it in local_jobs. */
void wh_free_job(wh_worker *w, wh_job *job);

/* ---- recording.c: outcomes and endpoint stats, written in batches ------- */

/* Ensure the worker's connection, its commits not waiting for the WAL
 * flush; the error's code when the database is away. */
bz_status wh_worker_conn(wh_worker *w, bz_error *err);

/* Buffer an outcome of row id claimed as claims; then (a dead letter, or
 * NULL) is published only if the outcome finds the row on that claim. */
void wh_add_outcome(wh_worker *w, int64_t id, int64_t claims, const char *status,
                       int failed, int64_t delay_ms, const char *error, long code, void *then);

/* Write the buffered outcomes, then the endpoint stats; stats refused for
 * their data are dropped. */
bz_status wh_flush_outcomes(wh_worker *w, bz_error *err);

/* Copy src into dst (cap bytes) as valid UTF-8, cut if need be. */
void wh_set_text(char *dst, size_t cap, const char *src);

/* Count an attempt's result in the endpoint's stats for the next write. */
void wh_note_endpoint_result(wh_worker *w, wh_endpoint *ep, bool success, long code,
                                const char *error);

/* The statement wh_flush_outcomes runs as wh_endpoint_stats. */
extern const char wh_endpoint_stats_sql[];

/* ---- dead_lettering.c: rows that cannot be delivered -------------------- */

/* Add the dead letter of job and buffer the outcome that confirms this
 * worker's claim (after an attempt, attempt_error not NULL: counting it).
 * false, having buffered nothing, when no dead letter could be added. */
bool wh_dead_letter_job(wh_worker *w, const wh_job *job, const char *error_code,
                           const char *message, long code, const char *attempt_error);

/* No room for another dead letter: leave job's row leased in the table,
 * counting the attempt that exhausted it, if any. */
void wh_leave_to_lease(wh_worker *w, const wh_job *job, const char *attempt_error,
                          long code);

/* Mark failed the rows whose dead letters the broker acknowledged. */
void wh_drain_dead_letters(wh_worker *w);

/* Renew the leases of the rows whose dead letters wait, when due. */
void wh_renew_dead_letter_leases(wh_worker *w);

/* ---- attempts.c: sending, and what a result means ----------------------- */

/* Count a delivery with outcome and HTTP status (0: none) in the metrics. */
void wh_count_delivery(wh_worker *w, const char *outcome, long status);

/* An endpoint's share of the worker now (fairness.h). */
int wh_endpoint_cap_now(const wh_worker *w, wh_endpoint *ep, int64_t now);

/* Take job off the in-flight list. */
void wh_unlink_in_flight(wh_worker *w, wh_job *job);

/* Classify a finished attempt, buffer its outcome and free its job. */
void wh_handle_result(wh_worker *w, wh_job *job);

/* Start what the limits allow; returns ms until a rate-limited endpoint
 * has a token again (or LOOP_WAIT_MAX_MS). */
int64_t wh_dispatch(wh_worker *w);

/* Hand back, due when their circuit half-opens, the queued jobs of
 * endpoints whose circuit is open. */
void wh_hand_back_blocked(wh_worker *w);

/* ---- claim.c: due rows into jobs ----------------------------------------- */

/* Claim up to the free room: the number of rows claimed, or -1 when the
 * database is unavailable; *full: there were more candidates than room. */
int wh_claim(wh_worker *w, bool *full);

/* Take the rows the fan-out handed over into jobs, as a claim's; those a
 * claim would not have given this worker now (no room, a held-back
 * endpoint) fall due at once, for the claims. */
void wh_take_handed_over(wh_worker *w);

/* ---- housekeeping.c: LISTEN, heartbeat and periodic chores -------------- */

/* The LISTEN connection's socket, subscribed; -1 while the database is away. */
int wh_listen_socket(wh_worker *w);

/* Consume notifications (a claim is due) and a finished depth count. */
void wh_read_notifications(wh_worker *w);

/* Renew the heartbeat when due, re-sharing rates when the instances changed. */
void wh_heartbeat(wh_worker *w);

/* Every HOUSEKEEPING_MS: start a queue-depth count, auto-disable endpoints
 * failing for too long. */
void wh_housekeeping(wh_worker *w);

/* The statements prepared as wh_auto_disable (worker connection) and
 * wh_depth (LISTEN connection). */
extern const char wh_auto_disable_sql[];
extern const char wh_depth_sql[];

#endif
