/*
 * peers.c - the live dispatcher instances, counted through PostgreSQL (see
 * peers.h).
 */
#include "peers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "pg/pg.h"

/* Renew this instance's row, drop rows dead for an hour, count the other
 * live instances ($4: the TTL in milliseconds). The count reads the table
 * as it was before this statement's own writes, hence "others + 1". */
const char wh_peers_beat_sql[] =
    "WITH gone AS (DELETE FROM webhook_dispatchers "
    "              WHERE heartbeat_at < now() - interval '1 hour'), "
    "beat AS (INSERT INTO webhook_dispatchers (instance_id, host, pid) "
    "         VALUES ($1::uuid, $2, $3::int) "
    "         ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = now()) "
    "SELECT 1 + count(*) FROM webhook_dispatchers "
    "WHERE instance_id <> $1::uuid AND heartbeat_at > now() - $4::bigint * interval '1 millisecond'";

const char wh_peers_leave_sql[] = "DELETE FROM webhook_dispatchers WHERE instance_id = $1::uuid";

bz_status wh_peers_init(wh_peers *p, bz_error *err)
{
    memset(p, 0, sizeof *p);
    p->live = 1;
    p->pid = (int)getpid();
    if (gethostname(p->host, sizeof p->host - 1) != 0)
        snprintf(p->host, sizeof p->host, "unknown");
    return bz_uuid_v4(p->instance_id, err);
}

bool wh_peers_beat(wh_peers *p, PGconn *conn, int64_t now_ms, bz_error *err)
{
    if (now_ms < p->next_beat_ms || !conn)
        return false;
    p->next_beat_ms = now_ms + WH_PEERS_HEARTBEAT_MS;
    char pid[16], ttl[24];
    snprintf(pid, sizeof pid, "%d", p->pid);
    snprintf(ttl, sizeof ttl, "%d", WH_PEERS_TTL_MS);
    const char *params[] = {p->instance_id, p->host, pid, ttl};
    PGresult *res = NULL;
    if (bz_pg_exec_prepared(conn, WH_PEERS_BEAT_STMT, 4, params, NULL, NULL, &res, err) !=
        BZ_OK)
        return false;
    int live = (int)bz_pg_get_int64(res, 0, 0);
    PQclear(res);
    if (p->registered_ms == 0)
        p->registered_ms = now_ms;
    if (live < 1 || live == p->live)
        return false;
    bz_info("webhook dispatchers: %d live instance(s), each sends its share of every endpoint's "
            "rate limit", live);
    p->live = live;
    return true;
}

bool wh_peers_settled(const wh_peers *p, int64_t now_ms)
{
    return p->registered_ms > 0 && now_ms >= p->registered_ms + WH_PEERS_HEARTBEAT_MS;
}

double wh_peers_share(const wh_peers *p, int rate_per_s)
{
    return (double)rate_per_s / (double)(p->live > 0 ? p->live : 1);
}

void wh_peers_leave(wh_peers *p, PGconn *conn)
{
    if (!conn || p->registered_ms == 0)
        return;
    const char *params[] = {p->instance_id};
    bz_error err;
    if (bz_pg_exec_prepared(conn, WH_PEERS_LEAVE_STMT, 1, params, NULL, NULL, NULL, &err) !=
        BZ_OK)
        bz_warn("webhook dispatchers: could not deregister: %s", err.msg);
}
