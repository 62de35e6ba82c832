/*
 * cleanup.h - what the modules of blazz-cleanup share.
 *
 * The service removes dead WhatsApp sessions (rules in rules.h)
 * and purges old delivery rows. Work arrives two ways: the timer (timer.c)
 * runs a sweep (sweep.c) on its own connection, one batch per transaction,
 * under a session advisory lock; a CleanupRequest on cleanup.requests
 * (requests.c) runs the same removal code inside the exactly-once
 * consumer's transaction, so the request's offset commits with its effects.
 * Either way one removal = one transaction holding the soft delete, its
 * session_cleanup_logs row and two outbox rows (a SessionCommand destroy
 * for the gateway instance, a SessionEvent REMOVED). Time comes from
 * clock.c, which tests can move.
 */
#ifndef BZ_CLEANUP_H
#define BZ_CLEANUP_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/metrics.h"
#include "core/status.h"
#include "core/uuid.h"
#include "kafka/eo_consumer.h"
#include "media/store.h"
#include "pg/pg.h"
#include "wa/session_cleanup.h"

#define CL_SOURCE "cleanup"
/* pg advisory lock held by the sweeping instance: "blazzcln" */
#define CL_SWEEP_LOCK_KEY 0x626c617a7a636c6eLL

/* ---- clock.c -------------------------------------------------------------------- */

/* The service's "now": the wall clock shifted by offset_ms, unless file is
 * set, in which case the file's content (decimal milliseconds since the
 * epoch) is "now" and is re-read every time. */
typedef struct cl_clock {
    int64_t offset_ms;
    const char *file; /* NULL or "" for none; not owned */
} cl_clock;

bz_status cl_clock_now_ms(const cl_clock *clock, int64_t *now_ms, bz_error *err);

/* ---- metrics.c ------------------------------------------------------------------ */

typedef struct cl_metrics {
    bz_counter_family *sweeps;      /* type, outcome: done | skipped_locked | failed | dry_run */
    bz_counter_family *removed;     /* reason, type */
    bz_counter_family *dry_run;     /* reason: candidates a dry run reported */
    bz_counter_family *purged;      /* table: webhook_retry_queue | pending_receipts | outbox |
                                       chat_media */
    bz_counter *purged_media_bytes; /* bytes of the media objects purged */
    bz_histogram *sweep_seconds;
    bz_gauge *stuck_outbox;         /* outbox rows older than the retention age */
} cl_metrics;

bz_status cl_metrics_register(cl_metrics *m, bz_metrics *reg, bz_error *err);

/* ---- settings and context ------------------------------------------------------- */

typedef enum cl_type { CL_TYPE_MANUAL = 0, CL_TYPE_SCHEDULED, CL_TYPE_AUTOMATIC } cl_type;

/* session_cleanup_logs.cleanup_type ("manual", "scheduled", "automatic"). */
const char *cl_type_name(cl_type type);

typedef struct cl_settings {
    int64_t stale_qr_s;
    int64_t disconnected_s;
    int batch_size;
    int batch_pause_ms;           /* pause between batches of a timer sweep */
    int instance_count;           /* > 0: route unassigned sessions to workspace % count */
    int advisory_lock;            /* one sweeping instance at a time */
    int64_t webhook_retention_s;  /* 0: keep delivered webhook rows */
    int64_t parked_retention_s;   /* 0: keep parked receipts (pending_receipts and
                                     campaign_receipts_waiting) */
    int64_t proofs_retention_s;   /* 0: keep meta_message_proofs */
    int64_t outbox_retention_s;   /* age at which an outbox row counts as stuck */
    int outbox_purge;             /* delete stuck outbox rows */
    int64_t ledger_retention_s;   /* purge send_ledger rows older than this */
    int64_t media_retention_s;    /* purge unreferenced media stored longer ago; 0: keep */
} cl_settings;

typedef struct cl_ctx {
    cl_settings s;
    cl_clock clock;
    cl_metrics m;
    int have_metrics;
    bz_media_store *media; /* the media store, owned by main; NULL: media is not purged */
    atomic_bool stop; /* set by the owner: a timer sweep stops between batches */
} cl_ctx;

/* ---- sweep.c -------------------------------------------------------------------- */

/* What one sweep (timer tick or manual request) does. */
typedef struct cl_sweep_spec {
    cl_type type;
    unsigned rules;                 /* bit (1u << bz_cleanup_rule) per rule to apply */
    int retention;                  /* also purge old rows */
    int dry_run;                    /* report only */
    int64_t now_ms;
    int64_t thresholds_s[BZ_CLEANUP_RULE_COUNT];
    int64_t workspace_id;           /* 0: all */
    int64_t account_id;             /* 0: all */
    int64_t executed_by;            /* users.id of the requester, 0: none */
    const char *requested_by;       /* who asked (manual), may be NULL */
    const char *note;               /* the request's free text, may be NULL */
    char trace_id[BZ_UUID_STR_SIZE];
} cl_sweep_spec;

typedef struct cl_sweep_result {
    uint64_t removed[BZ_CLEANUP_RULE_COUNT];
    uint64_t previewed;
    uint64_t purged_webhooks;
    uint64_t purged_parked_receipts;
    uint64_t purged_waiting_receipts;
    uint64_t purged_send_proofs;
    uint64_t purged_outbox;
    uint64_t purged_ledger;
    uint64_t forgotten_secrets; /* endpoints' replaced secrets, past their overlap */
    uint64_t purged_media;
    uint64_t purged_media_bytes;
} cl_sweep_result;

#define CL_SESSION_RULES                                                                           \
    ((1u << BZ_CLEANUP_RULE_STALE_QR) | (1u << BZ_CLEANUP_RULE_DISCONNECTED) | (1u << BZ_CLEANUP_RULE_DUPLICATE))

/* A spec for the whole rule set at the configured thresholds, with a fresh
 * trace id, "now" from the clock. */
bz_status cl_spec_init(cl_ctx *ctx, cl_sweep_spec *spec, cl_type type, bz_error *err);

/* Timer sweep on its own connection: takes the advisory lock (BZ_ERR_CONFLICT
 * when another instance holds it), then each batch in its own transaction,
 * then retention. Stops early, between batches, when ctx->stop is set. */
bz_status cl_sweep_run(cl_ctx *ctx, bz_pg *pg, const cl_sweep_spec *spec, cl_sweep_result *out,
                       bz_error *err);

/* The same work inside conn's open transaction (the consumer's), every
 * batch of every rule, without the pauses. The caller holds the lock. */
bz_status cl_sweep_in_txn(cl_ctx *ctx, PGconn *conn, const cl_sweep_spec *spec,
                          cl_sweep_result *out, bz_error *err);

/* Log (and count) what spec would remove; changes nothing. */
bz_status cl_sweep_preview(cl_ctx *ctx, PGconn *conn, const cl_sweep_spec *spec,
                           cl_sweep_result *out, bz_error *err);

/* ---- retention.c ---------------------------------------------------------------- */

/* Purge delivered webhook rows, parked receipts and (if configured) stuck
 * outbox rows older than their retention ages at now_ms, batch_size rows per
 * statement. With
 * autocommit each statement is its own transaction; inside an open
 * transaction they all join it. */
bz_status cl_retention_purge(cl_ctx *ctx, PGconn *conn, int64_t now_ms, cl_sweep_result *out,
                             bz_error *err);

/* ---- requests.c ----------------------------------------------------------------- */

extern const bz_eo_handler cl_request_handler; /* handler_ctx: cl_ctx */

/* ---- timer.c -------------------------------------------------------------------- */

typedef struct cl_timer cl_timer;

/* Start the sweeper thread: a sweep every interval_s, the first at once
 * when at_start (logged as type automatic). Free with cl_timer_stop. */
bz_status cl_timer_start(cl_ctx *ctx, const char *pg_dsn, int64_t interval_s, int at_start,
                         cl_timer **out, bz_error *err);

/* Stop after the current batch, release the lock, join, free. */
void cl_timer_stop(cl_timer *timer);

/* One scheduled sweep on a connection of its own, then (drain_timeout_ms >
 * 0) wait until the outbox rows that exist afterwards are published, so the
 * destroy commands are on Kafka when the process exits. A sweep skipped
 * because another instance holds the lock counts as success. */
bz_status cl_run_once(cl_ctx *ctx, const char *pg_dsn, int64_t drain_timeout_ms, bz_error *err);

/* ---- media_retention.c ---------------------------------------------------------- */

/* Purge chat_media rows no message refers to whose bytes were stored more
 * than media.retention_days before now_ms, and their objects, batch_size
 * rows per listing, each under its object's lock (§16.5). conn must be
 * outside a transaction: the timer's sweep only. */
bz_status cl_media_purge(cl_ctx *ctx, PGconn *conn, int64_t now_ms, cl_sweep_result *out,
                         bz_error *err);

#endif
