/*
 * peers.h - the dispatcher instances sharing one queue, counted in
 * PostgreSQL, so that together they keep each endpoint's rate limit.
 *
 * Every instance claims from the same webhook_retry_queue, endpoint by
 * endpoint, so each sends part of every busy endpoint's traffic. An
 * endpoint's rate_limit_per_sec is a promise to its receiver, not to one
 * process: each instance's token bucket runs at the rate divided by the
 * live instances (its share). Claims spread an endpoint's rows across
 * the instances with room for them (fairness.h), so equal shares match
 * how the work is split; the cost on the send path is nil, against a
 * database round trip per batch of tokens for a bucket kept in a table.
 *
 * Each instance has a row in webhook_dispatchers (instance id, host, pid)
 * whose heartbeat_at it renews every WH_PEERS_HEARTBEAT_MS; an instance
 * is live while its heartbeat is younger than WH_PEERS_TTL_MS. One
 * statement renews the own row, counts the others that are live and drops
 * rows dead for an hour. When the count changes, the worker sets every
 * bucket to its new share.
 *
 * A joining instance does not claim until one heartbeat interval after it
 * registered (wh_peers_settled): by then every peer has counted it, so
 * the shares of all instances never add up to more than the limit. An
 * instance that stops cleanly deletes its row (wh_peers_leave) and its
 * peers take its share at their next heartbeat; one that dies leaves its
 * share unused until its row expires (WH_PEERS_TTL_MS): the limit is
 * then under-used for a few seconds, never exceeded. While the database is
 * unreachable the last count stands (nobody can claim meanwhile).
 *
 * Owned by the worker thread; time is passed in.
 */
#ifndef WH_PEERS_H
#define WH_PEERS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "core/uuid.h"

#define WH_PEERS_HEARTBEAT_MS 1000
#define WH_PEERS_TTL_MS 3500

typedef struct wh_peers {
    char instance_id[BZ_UUID_STR_SIZE];
    char host[256];
    int pid;
    int live;                 /* instances counted by the last heartbeat, >= 1 */
    int64_t registered_ms;    /* first successful heartbeat; 0 before */
    int64_t next_beat_ms;
} wh_peers;

/* A fresh identity (UUID v4, host name, pid); not registered yet. */
bz_status wh_peers_init(wh_peers *p, bz_error *err);

/* The statements wh_peers_beat and wh_peers_leave run, to prepare on
 * conn's bz_pg under these names. */
#define WH_PEERS_BEAT_STMT "wh_peers_beat"
extern const char wh_peers_beat_sql[];
#define WH_PEERS_LEAVE_STMT "wh_peers_leave"
extern const char wh_peers_leave_sql[];

/* Renew the heartbeat on conn when due (now_ms monotonic) and recount the
 * live instances. Returns true when p->live changed. A failure is left to
 * the caller's next turn: the count stays, err says why (when not NULL). */
bool wh_peers_beat(wh_peers *p, PGconn *conn, int64_t now_ms, bz_error *err);

/* True once every peer has had a heartbeat interval to count this one. */
bool wh_peers_settled(const wh_peers *p, int64_t now_ms);

/* This instance's share of a rate limit of rate_per_s. */
double wh_peers_share(const wh_peers *p, int rate_per_s);

/* Delete this instance's row (clean stop), best effort. */
void wh_peers_leave(wh_peers *p, PGconn *conn);

#endif
