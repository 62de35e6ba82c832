/*
 * pg_probe.c - the PostgreSQL probe behind ingest's /readyz (see
 * pg_probe.h).
 *
 * The probe thread sleeps on a condition variable, so stopping it wakes it
 * at once; the verdict and the reason of the last failure are kept under a
 * mutex (the reason is text the admin thread copies). A probe that fails
 * drops the session (bz_pg_reset), so the next one reconnects rather than
 * trusting a connection in an unknown state; bz_pg's own backoff keeps a
 * dead database from being hammered.
 */
#include "pg_probe.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg/pg.h"

struct ing_pg_probe {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool stop, up;
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

static void probe_once(ing_pg_probe *p)
{
    bz_error err;
    bz_status st = bz_pg_ensure(p->pg, &err);
    if (st == BZ_OK)
        st = bz_pg_exec(bz_pg_conn(p->pg), "SELECT 1", &err);
    if (st != BZ_OK)
        bz_pg_reset(p->pg);
    record(p, st == BZ_OK, st == BZ_OK ? "up" : err.msg);
}

/* Sleep interval_ms, or less when stopped. True when it should go on. */
static bool wait_for_next(ing_pg_probe *p)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (long long)p->interval_ms * 1000000;
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&p->mu);
    while (!p->stop && pthread_cond_timedwait(&p->wake, &p->mu, &until) == 0)
        ;
    bool go_on = !p->stop;
    pthread_mutex_unlock(&p->mu);
    return go_on;
}

static void *probe_main(void *arg)
{
    ing_pg_probe *p = arg;
    do
        probe_once(p);
    while (wait_for_next(p));
    return NULL;
}

bz_status ing_pg_probe_start(const char *dsn, int interval_ms, ing_pg_probe **out, bz_error *err)
{
    ing_pg_probe *p = calloc(1, sizeof *p);
    if (!p)
        return bz_fail(err, BZ_ERR_NOMEM, "start the PostgreSQL probe: out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->interval_ms = interval_ms;
    snprintf(p->why, sizeof p->why, "not probed yet");
    bz_status st = bz_pg_open(dsn, &p->pg, err);
    if (st == BZ_OK && pthread_create(&p->thread, NULL, probe_main, p) != 0)
        st = bz_fail(err, BZ_ERR_INTERNAL, "start the PostgreSQL probe: pthread_create failed");
    if (st != BZ_OK) {
        bz_pg_close(p->pg);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->wake);
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
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    bz_pg_close(p->pg);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
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
