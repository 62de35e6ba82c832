/*
 * pg_probe.c - the PostgreSQL probe behind ingest's /readyz (see
 * pg_probe.h).
 *
 * The probe runs on a thread of its own (periodic.h), so stopping it wakes
 * it at once; the verdict and the reason of the last failure are kept under
 * a mutex (the reason is text the admin thread copies). A probe that fails
 * drops the session (bz_pg_reset), so the next one reconnects rather than
 * trusting a connection in an unknown state; bz_pg's own backoff keeps a
 * dead database from being hammered.
 */
#include "pg_probe.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "periodic.h"
#include "pg/pg.h"

struct ing_pg_probe {
    ing_periodic *thread;
    pthread_mutex_t mu;
    bool up;
    char why[BZ_ERROR_MSG_MAX];
    int interval_ms;
    bz_pg *pg;
};

static void record(ing_pg_probe *p, bool up, const char *why)
{
    pthread_mutex_lock(&p->mu);
    p->up = up;
    snprintf(p->why, sizeof p->why, "%s", why);
    pthread_mutex_unlock(&p->mu);
}

static int64_t probe_once(void *arg)
{
    ing_pg_probe *p = arg;
    bz_error err;
    bz_status st = bz_pg_ensure(p->pg, &err);
    if (st == BZ_OK)
        st = bz_pg_exec(bz_pg_conn(p->pg), "SELECT 1", &err);
    if (st != BZ_OK)
        bz_pg_reset(p->pg);
    record(p, st == BZ_OK, st == BZ_OK ? "up" : err.msg);
    return p->interval_ms;
}

bz_status ing_pg_probe_start(const char *dsn, int interval_ms, ing_pg_probe **out, bz_error *err)
{
    ing_pg_probe *p = calloc(1, sizeof *p);
    if (!p)
        return bz_fail(err, BZ_ERR_NOMEM, "start the PostgreSQL probe: out of memory");
    pthread_mutex_init(&p->mu, NULL);
    p->interval_ms = interval_ms;
    snprintf(p->why, sizeof p->why, "not probed yet");
    bz_status st = bz_pg_open(dsn, &p->pg, err);
    if (st == BZ_OK)
        st = ing_periodic_start("the PostgreSQL probe", probe_once, p, &p->thread, err);
    if (st != BZ_OK) {
        bz_pg_close(p->pg);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return st;
    }
    *out = p;
    return BZ_OK;
}

void ing_pg_probe_stop(ing_pg_probe *p)
{
    if (!p)
        return;
    ing_periodic_stop(p->thread);
    bz_pg_close(p->pg);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void ing_pg_probe_report_readiness(ing_pg_probe *p, bz_readiness *r)
{
    char why[BZ_ERROR_MSG_MAX];
    pthread_mutex_lock(&p->mu);
    bool up = p->up;
    memcpy(why, p->why, sizeof why);
    pthread_mutex_unlock(&p->mu);
    bz_readiness_add(r, "postgresql", up, "%s", why);
}
