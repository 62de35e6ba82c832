/*
 * pg_pool.h - the PostgreSQL connections of the CRM's worker threads
 * (crm_api.h): one per worker, so a worker never waits for one; the API
 * key cache (api_keys.h) borrows the calling worker's turn.
 *
 * A request borrows one (waiting at most wait_ms when all are busy) and
 * gives it back; each connection reconnects by itself (libs/pg), so a
 * database restart costs the requests in flight a 503, not the pool.
 */
#ifndef ING_PG_POOL_H
#define ING_PG_POOL_H

#include "core/status.h"
#include "pg/pg.h"

typedef struct ing_pg_pool ing_pg_pool;

/* size connections to dsn (opened lazily by bz_pg). Free with ing_pg_pool_free. */
bz_status ing_pg_pool_new(const char *dsn, int size, ing_pg_pool **out, bz_error *err);
void ing_pg_pool_free(ing_pg_pool *p);

/* Borrow a connected connection. BZ_ERR_TRANSIENT when none became free
 * within wait_ms or the database cannot be reached. */
bz_status ing_pg_pool_acquire(ing_pg_pool *p, int wait_ms, bz_pg **out, bz_error *err);

/* Give it back (after a failure that may have left the session in an
 * unknown state, pass broken = 1: it reconnects before its next use). One
 * handed back closed or still inside a transaction (a ROLLBACK that
 * failed) is broken too: the next request would inherit its state. */
void ing_pg_pool_release(ing_pg_pool *p, bz_pg *pg, int broken);

#endif
