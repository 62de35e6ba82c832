/*
 * periodic.c - a task run again and again on a thread of its own (see
 * periodic.h). The thread waits on a condition variable bound to the
 * monotonic clock, so a change of the wall clock neither delays nor hurries
 * a run, and a stop signals it awake.
 */
#include "periodic.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct ing_periodic {
    ing_periodic_fn run;
    void *ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool stop;
};

/* Sleep ms, or less when stopped. True when it should go on. */
static bool wait_for_next(ing_periodic *p, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long long ns = until.tv_nsec + (long long)(ms > 0 ? ms : 0) * 1000000;
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&p->mu);
    while (!p->stop && pthread_cond_timedwait(&p->wake, &p->mu, &until) == 0)
        ;
    bool go_on = !p->stop;
    pthread_mutex_unlock(&p->mu);
    return go_on;
}

static void *run_again_and_again(void *arg)
{
    ing_periodic *p = arg;
    while (wait_for_next(p, p->run(p->ctx)))
        ;
    return NULL;
}

bz_status ing_periodic_start(const char *what, ing_periodic_fn run, void *ctx, ing_periodic **out,
                            bz_error *err)
{
    ing_periodic *p = calloc(1, sizeof *p);
    if (!p)
        return bz_fail(err, BZ_ERR_NOMEM, "start %s: out of memory", what);
    p->run = run;
    p->ctx = ctx;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&p->mu, NULL);
    if (pthread_create(&p->thread, NULL, run_again_and_again, p) != 0) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->wake);
        free(p);
        return bz_fail(err, BZ_ERR_INTERNAL, "start %s: pthread_create failed", what);
    }
    *out = p;
    return BZ_OK;
}

void ing_periodic_stop(ing_periodic *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p);
}
