/*
 * pg_probe.h - whether ingest can reach PostgreSQL now, for /readyz.
 *
 * ingest resolves every session in PostgreSQL (sessions.h) and the CRM's
 * endpoints look up keys and rows there, yet the session cache can hide an
 * outage for its TTL: an ingest that cannot reach the database must leave
 * the load balancer before its cache runs dry, not after. A thread of its
 * own runs SELECT 1 on a connection of its own every interval_ms and keeps
 * the verdict and its reason; the readiness callback only reads them (it
 * runs on the admin thread and must not wait for a database).
 */
#ifndef ING_PG_PROBE_H
#define ING_PG_PROBE_H

#include "core/admin_http.h"
#include "core/status.h"

typedef struct ing_pg_probe ing_pg_probe;

/* Start probing dsn every interval_ms (the first probe runs at once). Stop
 * and free with ing_pg_probe_stop. */
bz_status ing_pg_probe_start(const char *dsn, int interval_ms, ing_pg_probe **out, bz_error *err);
void ing_pg_probe_stop(ing_pg_probe *p);

/* Add the check "postgresql" to a readiness report: ok while the last
 * probe succeeded, else the reason it failed ("not probed yet" at first). */
void ing_pg_probe_report_readiness(ing_pg_probe *p, bz_readiness *r);

#endif
