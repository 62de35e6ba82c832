/*
 * leader.h - one active worker per database: a PostgreSQL session-level
 * advisory lock, held by the worker's own connection, which also LISTENs
 * for the NOTIFY that says there is work.
 *
 * The outbox relay (libs/kafka/outbox.c) and chat-sync's assignment sweep
 * run in every instance of their service; the one whose connection holds
 * the lock works, the others wait for it to go (the lock goes with the
 * connection, so a SIGKILLed leader's is free as soon as PostgreSQL sees its
 * socket close). A worker's loop is:
 *
 *   if (bz_pg_leader_acquire(&l, "the outbox relay", &err) == BZ_OK)
 *       ... one round on bz_pg_conn(l.pg) ...
 *   else
 *       bz_pg_leader_failed(&l);      (BZ_ERR_CONFLICT: another leads)
 *   bz_pg_leader_wait(&l, idle_ms);
 *
 * The bz_pg belongs to the caller (its prepared statements too); the leader
 * only remembers what the current session was given.
 */
#ifndef BZ_PG_LEADER_H
#define BZ_PG_LEADER_H

#include "core/status.h"
#include "pg/pg.h"

typedef struct bz_pg_leader {
    bz_pg *pg;             /* the worker's connection */
    long long lock_key;    /* pg_try_advisory_lock's key */
    const char *channel;   /* LISTEN channel; NULL: none */
    const char *setup_sql; /* run once per session before LISTEN; NULL: none */
    int listening, locked; /* what the current session holds */
} bz_pg_leader;

/* Make sure l's connection is up, set up, listening and holds the lock.
 * BZ_OK while this worker leads; BZ_ERR_CONFLICT while another does;
 * BZ_ERR_TRANSIENT when the database cannot be reached. what names the work
 * in messages ("the outbox relay"); taking the lock is logged. */
bz_status bz_pg_leader_acquire(bz_pg_leader *l, const char *what, bz_error *err);

/* After a failure of acquire or of a round: a connection that broke is
 * reset (its lock and LISTEN went with it) for the next acquire. */
void bz_pg_leader_failed(bz_pg_leader *l);

/* Sleep until a NOTIFY on the channel arrives or timeout_ms pass. */
void bz_pg_leader_wait(bz_pg_leader *l, int timeout_ms);

#endif
