/*
 * pg_pool.c - a fixed set of bz_pg connections behind a mutex and a
 * condition variable (see pg_pool.h).
 */
#include "crm/pg_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct ing_pg_pool {
    pthread_mutex_t mu;
    pthread_cond_t freed;
    bz_pg **conns;
    int *busy;
    int size;
};

bz_status ing_pg_pool_new(const char *dsn, int size, ing_pg_pool **out, bz_error *err)
{
    ing_pg_pool *p = calloc(1, sizeof *p);
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the elements are pointers */
    if (!p || !(p->conns = calloc((size_t)size, sizeof *p->conns)) ||
        !(p->busy = calloc((size_t)size, sizeof *p->busy))) {
        ing_pg_pool_free(p);
        return bz_fail(err, BZ_ERR_NOMEM, "PostgreSQL pool: out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->size = size;
    for (int i = 0; i < size; i++) {
        bz_status st = bz_pg_open(dsn, &p->conns[i], err);
        if (st != BZ_OK) {
            ing_pg_pool_free(p);
            return st;
        }
    }
    *out = p;
    return BZ_OK;
}

void ing_pg_pool_free(ing_pg_pool *p)
{
    if (!p)
        return;
    if (p->conns) {
        for (int i = 0; i < p->size; i++)
            bz_pg_close(p->conns[i]);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->freed);
    }
    free(p->conns);
    free(p->busy);
    free(p);
}

static int take_free(ing_pg_pool *p)
{
    for (int i = 0; i < p->size; i++)
        if (!p->busy[i]) {
            p->busy[i] = 1;
            return i;
        }
    return -1;
}

bz_status ing_pg_pool_acquire(ing_pg_pool *p, int wait_ms, bz_pg **out, bz_error *err)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    long long ns = deadline.tv_nsec + (long long)wait_ms * 1000000;
    deadline.tv_sec += (time_t)(ns / 1000000000);
    deadline.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&p->mu);
    int i;
    while ((i = take_free(p)) < 0)
        if (pthread_cond_timedwait(&p->freed, &p->mu, &deadline) != 0) {
            i = take_free(p);
            break;
        }
    pthread_mutex_unlock(&p->mu);
    if (i < 0)
        return bz_fail(err, BZ_ERR_TRANSIENT, "every PostgreSQL connection is busy");
    bz_pg_drop_if_closed(p->conns[i]);
    bz_status st = bz_pg_ensure(p->conns[i], err);
    if (st != BZ_OK) {
        ing_pg_pool_release(p, p->conns[i], 0);
        return st;
    }
    *out = p->conns[i];
    return BZ_OK;
}

static int left_idle(bz_pg *pg)
{
    PGconn *conn = bz_pg_conn(pg);
    return conn && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE;
}

void ing_pg_pool_release(ing_pg_pool *p, bz_pg *pg, int broken)
{
    if (broken || !left_idle(pg))
        bz_pg_reset(pg);
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->size; i++)
        if (p->conns[i] == pg)
            p->busy[i] = 0;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
}
