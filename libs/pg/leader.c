/*
 * leader.c - one active worker per database (see leader.h).
 */
#include "pg/leader.h"

#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

static bz_status set_up_session(bz_pg_leader *l, PGconn *conn, bz_error *err)
{
    bz_status st = BZ_OK;
    if (l->setup_sql)
        st = bz_pg_exec(conn, l->setup_sql, err);
    if (st == BZ_OK && l->channel) {
        char listen[96];
        snprintf(listen, sizeof listen, "LISTEN %s", l->channel);
        st = bz_pg_exec(conn, listen, err);
    }
    l->listening = st == BZ_OK;
    return st;
}

static bz_status take_lock(bz_pg_leader *l, PGconn *conn, const char *what, bz_error *err)
{
    char key[24];
    snprintf(key, sizeof key, "%lld", l->lock_key);
    const char *params[] = {key};
    /* session-level: held until this connection ends, across rounds */
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "take the leader's lock",
                                     "SELECT pg_try_advisory_lock($1::bigint)", 1, params, &res,
                                     err);
    l->locked = st == BZ_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (st != BZ_OK)
        return st;
    if (!l->locked)
        return bz_fail(err, BZ_ERR_CONFLICT, "another instance runs %s", what);
    bz_info("%s active", what);
    return BZ_OK;
}

bz_status bz_pg_leader_acquire(bz_pg_leader *l, const char *what, bz_error *err)
{
    /* A session that broke outside a round (bz_pg_leader_wait read its
     * end) took the lock and LISTEN with it: bz_pg_ensure's next session
     * holds neither. */
    PGconn *was = bz_pg_conn(l->pg);
    if (!was || PQstatus(was) != CONNECTION_OK)
        l->listening = l->locked = 0;
    bz_status st = bz_pg_ensure(l->pg, err);
    if (st != BZ_OK) {
        l->listening = l->locked = 0;
        return st;
    }
    PGconn *conn = bz_pg_conn(l->pg);
    if (!l->listening && (st = set_up_session(l, conn, err)) != BZ_OK)
        return st;
    return l->locked ? BZ_OK : take_lock(l, conn, what, err);
}

void bz_pg_leader_failed(bz_pg_leader *l)
{
    PGconn *conn = bz_pg_conn(l->pg);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        bz_pg_reset(l->pg);
        l->listening = l->locked = 0;
    }
}

void bz_pg_leader_wait(bz_pg_leader *l, int timeout_ms)
{
    PGconn *conn = bz_pg_conn(l->pg);
    if (!conn || !l->listening) {
        bz_sleep_ms(timeout_ms);
        return;
    }
    bz_pg_wait_notify(conn, timeout_ms);
}
