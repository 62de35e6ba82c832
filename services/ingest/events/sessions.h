/*
 * sessions.h - session_id -> (whatsapp_account_id, workspace_id, owning
 * gateway), from PostgreSQL, cached.
 *
 * A live session is a whatsapp_accounts row with that session_id and no
 * deleted_at. Answers are cached: found sessions for ttl_ms, unknown ones
 * for negative_ttl_ms (so a flood of events for an unknown session does not
 * become a flood of queries, yet a new account is usable within seconds).
 * Cached answers are dropped early when session.events says something
 * happened to the session (removed by cleanup, status changed): a watcher
 * reads every partition of that topic from its end, without a consumer
 * group, so each ingest instance sees all of them (a session.events
 * topic of NULL runs no watcher: answers then live their TTL). The owner
 * calls ing_sessions_poll from its loop. Not thread-safe: one owner thread.
 *
 * With a lookup timeout, a lookup waits at most that long for PostgreSQL,
 * and after a transient failure the lookups of the next second fail at
 * once: a locked table (a migration) or an unreachable server costs the
 * owner one timeout a second, not one per uncached session.
 */
#ifndef ING_SESSIONS_H
#define ING_SESSIONS_H

#include <stdint.h>

#include "core/metrics.h"
#include "core/status.h"
#include "kafka/topics.h"

/* Session ids are identifiers of at most this many bytes (field_checks.h). */
#define ING_SESSION_ID_MAX 128

typedef struct ing_session_info {
    int64_t account_id;
    int64_t workspace_id;
    char gateway_id[BZ_GATEWAY_ID_MAX + 1]; /* "": no (enabled) gateway serves it */
    char session_id[ING_SESSION_ID_MAX + 1];
} ing_session_info;

typedef struct ing_sessions_config {
    const char *pg_dsn;
    const char *brokers;
    const char *session_events_topic; /* full name; NULL: no watcher (TTL only) */
    int64_t ttl_ms;
    int64_t negative_ttl_ms;
    /* >0: a lookup PostgreSQL has not answered in this long is given up
     * (transient), and for UNAVAILABLE_HOLD_MS after a transient failure
     * lookups fail at once: for an owner that must never be held up long
     * by a locked or slow database (the HTTP path's router). 0: lookups
     * wait as long as the database takes. */
    int lookup_timeout_ms;
} ing_sessions_config;

typedef struct ing_sessions ing_sessions;

/* Free with ing_sessions_free. The database need not be up yet. */
bz_status ing_sessions_new(const ing_sessions_config *cfg, ing_sessions **out, bz_error *err);
void ing_sessions_free(ing_sessions *s);

/* Resolve session_id. BZ_OK fills *out; BZ_ERR_NOT_FOUND for an unknown or
 * deleted session; BZ_ERR_TRANSIENT when PostgreSQL cannot answer now. */
bz_status ing_sessions_resolve(ing_sessions *s, const char *session_id, int64_t now_ms,
                              ing_session_info *out, bz_error *err);

/* The live account whose id is account_id, a decimal id (the seeds'
 * notifier names its session so): as ing_sessions_resolve, cached the same
 * way; BZ_ERR_NOT_FOUND also when account_id is no decimal id. */
bz_status ing_sessions_resolve_account(ing_sessions *s, const char *account_id, int64_t now_ms,
                                      ing_session_info *out, bz_error *err);

/* A live Meta account naming the WhatsApp Business Account waba_id
 * (whatsapp_accounts.meta_waba_id), as ing_sessions_resolve, cached the
 * same way (a WABA set with `blazzctl meta business` is known within
 * negative_ttl_ms). */
bz_status ing_sessions_resolve_business(ing_sessions *s, const char *waba_id, int64_t now_ms,
                                       ing_session_info *out, bz_error *err);

/* Serve the session.events watcher without blocking. */
void ing_sessions_poll(ing_sessions *s);

/* Lookups that went to PostgreSQL (for metrics). */
uint64_t ing_sessions_queries(const ing_sessions *s);

#endif
