/*
 * session_cleanup.h - the session cleanup rules (ARCHITECTURE.md §5), as
 * SQL, in one place: WhatsApp sessions' domain rules, not the generic
 * PostgreSQL library's.
 *
 * The cleanup service removes the candidates these queries select, and
 * `blazzctl cleanup run --dry-run` previews them read-only: both call the
 * functions below, so a dry run can never disagree with a sweep about what
 * a rule means. The rules, applied to live rows (deleted_at IS NULL) only:
 *
 *   stale_qr          status qr_scanning and no activity (last_activity_at,
 *                     else created_at) for more than the threshold (30 min);
 *   disconnected_24h  status disconnected since (disconnected_at, else
 *                     updated_at) more than the threshold (24 h);
 *   duplicate         another live row of the same workspace and phone ranks
 *                     higher; rank = (currently connected, last_connected_at,
 *                     id), so the keeper is the connected one that connected
 *                     most recently, and the newest row breaks ties;
 *   manual_request    exactly the account asked for.
 *
 * A sweep lists candidates in large chunks without locking (one pass over
 * the table per rule; the duplicate rule first narrows the table to
 * workspace + phone groups with more than one live row, by hashing), then
 * removes each batch of listed ids with the same rule restricted to those
 * ids and locked, so the rule is re-checked on exactly the rows it removes.
 *
 * "now" is always a parameter (milliseconds since the epoch), never SQL
 * now(), so the caller's clock decides (tests move it freely). Candidates are
 * paged by id (keyset: id > after_id, ORDER BY id LIMIT n), so a sweep is
 * one pass over the table in bounded batches. With lock set, the rows are
 * selected FOR UPDATE SKIP LOCKED: PostgreSQL re-evaluates the rule on each
 * row it locks, so a row another transaction just removed or changed is
 * dropped, and a row another sweeper holds is skipped, never waited for.
 */
#ifndef BZ_WA_SESSION_CLEANUP_H
#define BZ_WA_SESSION_CLEANUP_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define BZ_CLEANUP_DEFAULT_STALE_QR_MINUTES 30
#define BZ_CLEANUP_DEFAULT_DISCONNECTED_HOURS 24

/* In the order a sweep applies them: a row matching several rules is
 * removed (and logged) under the first. */
typedef enum bz_cleanup_rule {
    BZ_CLEANUP_RULE_STALE_QR = 0,
    BZ_CLEANUP_RULE_DISCONNECTED,
    BZ_CLEANUP_RULE_DUPLICATE,
    BZ_CLEANUP_RULE_SESSION,
    BZ_CLEANUP_RULE_COUNT
} bz_cleanup_rule;

/* session_cleanup_logs.reason of a rule ("stale_qr", "disconnected_24h",
 * "duplicate", "manual_request"); static string, NULL when out of range. */
const char *bz_cleanup_rule_reason(bz_cleanup_rule rule);

typedef struct bz_cleanup_query {
    bz_cleanup_rule rule;
    int64_t now_ms;       /* the caller's clock */
    int64_t threshold_s;  /* STALE_QR, DISCONNECTED: age beyond which a row goes */
    int64_t workspace_id; /* scope; 0 = every workspace */
    int64_t account_id;   /* scope; 0 = every account (SESSION requires one) */
    int64_t after_id;     /* keyset: only ids above this */
    int limit;            /* batch size */
    int lock;             /* FOR UPDATE SKIP LOCKED (inside a transaction) */
    const int64_t *ids;   /* when set: only these ids (re-checking a listed batch) */
    size_t nids;
} bz_cleanup_query;

/* One selected row. Strings point into the batch's result (NULL for SQL
 * NULL) and live until bz_cleanup_batch_free. */
typedef struct bz_cleanup_candidate {
    int64_t id;
    int64_t workspace_id;
    int64_t keeper_id;           /* DUPLICATE: the row that stays; else 0 */
    int64_t disconnected_at_ms;  /* 0 when NULL */
    int instance_index;          /* assigned_instance_index, -1 when NULL */
    int64_t assignment_epoch;    /* 0: not under the backbone's command */
    int health_score;
    const char *uuid;
    const char *session_id;
    const char *phone_number;
    const char *status;
    const char *provider_type;
    const char *instance_url;
    const char *disconnect_reason;
    const char *details;         /* why the rule picked it, for logs and reports */
} bz_cleanup_candidate;

typedef struct bz_cleanup_batch {
    PGresult *res;
    bz_cleanup_candidate *items;
    size_t n;
    int64_t last_id; /* highest id in the batch: the next after_id */
} bz_cleanup_batch;

/* Run q on conn and fill out (heap memory, released with
 * bz_cleanup_batch_free even on failure). n == 0 means the rule has nothing
 * more above after_id. */
bz_status bz_cleanup_select(PGconn *conn, const bz_cleanup_query *q, bz_cleanup_batch *out, bz_error *err);
void bz_cleanup_batch_free(bz_cleanup_batch *batch);

/* Called for each candidate a preview finds, with the rule that picked it. */
typedef void (*bz_cleanup_preview_fn)(void *ctx, bz_cleanup_rule rule, const bz_cleanup_candidate *c);

/* A dry run: page through rules[0..nrules) in order without locking,
 * reporting each row once, under the first rule that picks it (as a sweep
 * would). thresholds_s is indexed by rule. Changes nothing. The duplicate
 * rule sees the rows other rules would remove as still live, so a group
 * whose keeper is itself stale previews one removal more than a sweep
 * makes. */
bz_status bz_cleanup_preview(PGconn *conn, const bz_cleanup_rule *rules, size_t nrules,
                     const int64_t thresholds_s[BZ_CLEANUP_RULE_COUNT], int64_t now_ms,
                     int64_t workspace_id, int64_t account_id, int batch_size,
                     bz_cleanup_preview_fn fn, void *ctx, bz_error *err);

#endif
