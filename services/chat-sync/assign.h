/*
 * assign.h - the assignment sweep: which gateway instance serves each
 * whatsapp-web.js session under the backbone's command, and failover when
 * an instance dies (ARCHITECTURE.md §15).
 *
 * A thread in every chat-sync instance; the one whose connection holds the
 * advisory lock "blazzses" sweeps (pg/leader.h), woken by NOTIFY
 * blazz_sessions (a session created, a heartbeat) or every interval. A
 * round, in one transaction:
 *  1. instances whose last heartbeat is older than the timeout are declared
 *     dead;
 *  2. the sessions to place, oldest first, locked SKIP LOCKED: those waiting
 *     (pending_assignment) and those still assigned to a dead instance;
 *  3. each goes to a live instance of its gateway (any whatsapp-web.js
 *     gateway when it names none) that serves its workspace (a gateway
 *     granted to some workspaces serves only those, 0046; a session whose
 *     own gateway no longer serves it waits), that reaches the shared
 *     store its credentials are in (when the session's store is known and
 *     the instance's heartbeats list theirs, 0067), with room (its capacity,
 *     counting every session assigned to it) and under the round's bound of moves per
 *     instance: by default the least loaded, preferring one that already
 *     serves the session's workspace while it carries no more than
 *     affinity_slack sessions above the least loaded (a workspace's
 *     sessions together, on as few instances as room allows); or, with
 *     policy modulo, seed 003's instance workspace_id % (live instances of
 *     the gateway, by index);
 *  4. a placed session gets epoch + 1, the instance (and the previous one,
 *     instance_migration_count + 1 and last_instance_migration_at when it
 *     had one), a CREATE (never assigned before) or RESTART (with shared
 *     session storage it resumes without a QR) to the new instance, and a
 *     SessionEvent ASSIGNED or INSTANCE_MIGRATED; a session of a dead
 *     instance that finds no room waits as pending_assignment (a
 *     STATUS_CHANGED says so) until room appears.
 * Event and command ids derive from (account, new epoch), so the round's
 * outcome is written once whatever happens to the sweep.
 */
#ifndef CS_ASSIGN_H
#define CS_ASSIGN_H

#include <stdint.h>

#include "chat_sync.h"
#include "core/admin_http.h"

enum { CS_ASSIGN_LEAST_LOADED = 0, CS_ASSIGN_MODULO = 1 };

typedef struct cs_assign_config {
    const char *pg_dsn;
    int64_t instance_timeout_ms; /* sessions.instance_timeout_s */
    int interval_ms;             /* sessions.sweep_interval_ms */
    int moves_per_instance;      /* placed on one instance per round at most */
    int sessions_per_round;      /* sessions looked at per round at most */
    int policy;                  /* CS_ASSIGN_* */
    int affinity_slack;
} cs_assign_config;

typedef struct cs_assigner cs_assigner;

/* Start the sweep thread; its events count in ctx's metrics. Stop and free
 * with cs_assigner_stop. */
bz_status cs_assigner_start(const cs_assign_config *cfg, cs_ctx *ctx, cs_assigner **out,
                            bz_error *err);
void cs_assigner_stop(cs_assigner *a);

/* The "sessions" readiness line: whether this instance sweeps, and the
 * last round's outcome. */
void cs_assigner_report_readiness(cs_assigner *a, bz_readiness *r);

#endif
