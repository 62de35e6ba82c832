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
 * whose heartbeat_at it renews every BZ_WH_PEERS_HEARTBEAT_MS; an instance
 * is live while its heartbeat is younger than BZ_WH_PEERS_TTL_MS. One
 * statement renews the own row, counts the others that are live and drops
 * rows dead for an hour. When the count changes, the worker sets every
 * bucket to its new share.
 *
 * A joining instance does not claim until one heartbeat interval after it
 * registered (bz_wh_peers_settled): by then every peer has counted it, so
 * the shares of all instances never add up to more than the limit. An
 * instance that stops cleanly deletes its row (bz_wh_peers_leave) and its
 * peers take its share at their next heartbeat; one that dies leaves its
 * share unused until its row expires (BZ_WH_PEERS_TTL_MS): the limit is
 * then under-used for a few seconds, never exceeded. While the database is
 * unreachable the last count stands (nobody can claim meanwhile).
 *
 * Owned by the worker thread; time is passed in.
 */
#ifndef BZ_WH_PEERS_H
#define BZ_WH_PEERS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "core/uuid.h"

#define BZ_WH_PEERS_HEARTBEAT_MS 1000
#define BZ_WH_PEERS_TTL_MS 3500

typedef struct bz_wh_peers {
    char instance_id[BZ_UUID_STR_SIZE];
    char host[256];
    int pid;
    int live;                 /* instances counted by the last heartbeat, >= 1 */
    int64_t registered_ms;    /* first successful heartbeat; 0 before */
    int64_t next_beat_ms;
} bz_wh_peers;

/* A fresh identity (UUID v4, host name, pid); not registered yet. */
bz_status bz_wh_peers_init(bz_wh_peers *p, bz_error *err);

/* The statements bz_wh_peers_beat and bz_wh_peers_leave run, to prepare on
 * conn's bz_pg under these names. */
#define BZ_WH_PEERS_BEAT_STMT "wh_peers_beat"
extern const char bz_wh_peers_beat_sql[];
#define BZ_WH_PEERS_LEAVE_STMT "wh_peers_leave"
extern const char bz_wh_peers_leave_sql[];

/* Renew the heartbeat on conn when due (now_ms monotonic) and recount the
 * live instances. Returns true when p->live changed. A failure is left to
 * the caller's next turn: the count stays, err says why (when not NULL). */
bool bz_wh_peers_beat(bz_wh_peers *p, PGconn *conn, int64_t now_ms, bz_error *err);

/* True once every peer has had a heartbeat interval to count this one. */
bool bz_wh_peers_settled(const bz_wh_peers *p, int64_t now_ms);

/* This instance's share of a rate limit of rate_per_s. */
double bz_wh_peers_share(const bz_wh_peers *p, int rate_per_s);

/* Delete this instance's row (clean stop), best effort. */
void bz_wh_peers_leave(bz_wh_peers *p, PGconn *conn);

#endif
