/*
 * pg_pool.h - the PostgreSQL connections of the CRM's worker threads
 * (crm_api.h): one per worker, so a worker never waits for one; the API
 * key cache (api_keys.h) borrows the calling worker's turn.
 *
 * A request borrows one (waiting at most wait_ms when all are busy) and
 * gives it back; each connection reconnects by itself (libs/pg), so a
 * database restart costs the requests in flight a 503, not the pool.
 */
#ifndef BZ_INGEST_PG_POOL_H
#define BZ_INGEST_PG_POOL_H

#include "core/status.h"
#include "pg/pg.h"

typedef struct bz_pg_pool bz_pg_pool;

/* size connections to dsn (opened lazily by bz_pg). Free with bz_pg_pool_free. */
bz_status bz_pg_pool_new(const char *dsn, int size, bz_pg_pool **out, bz_error *err);
void bz_pg_pool_free(bz_pg_pool *p);

/* Borrow a connected connection. BZ_ERR_TRANSIENT when none became free
 * within wait_ms or the database cannot be reached. */
bz_status bz_pg_pool_acquire(bz_pg_pool *p, int wait_ms, bz_pg **out, bz_error *err);

/* Give it back (after a failure that may have left the session in an
 * unknown state, pass broken = 1: it reconnects before its next use). */
void bz_pg_pool_release(bz_pg_pool *p, bz_pg *pg, int broken);

#endif
