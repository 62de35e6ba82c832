/*
 * fairness.c - the per-endpoint share and its throughput meter (see
 * fairness.h).
 */
#include "fairness.h"

#define METER_WINDOW_MS 250

/* Close the current window when it is over: a rise is taken at once, a
 * fall halves the distance. */
static void roll(wh_meter *m, int64_t now_ms)
{
    int64_t elapsed = now_ms - m->window_start_ms;
    if (m->window_start_ms == 0) {
        m->window_start_ms = now_ms;
        return;
    }
    if (elapsed < METER_WINDOW_MS)
        return;
    double rate = (double)m->count * 1000.0 / (double)elapsed;
    m->per_s = rate >= m->per_s ? rate : (m->per_s + rate) / 2;
    m->count = 0;
    m->window_start_ms = now_ms;
}

void wh_meter_add(wh_meter *m, int64_t now_ms)
{
    roll(m, now_ms);
    m->count++;
}

double wh_meter_rate(wh_meter *m, int64_t now_ms)
{
    roll(m, now_ms);
    return m->per_s;
}

int wh_endpoint_cap(int concurrency, int rate_per_s, double finished_per_s,
                       int max_local_jobs)
{
    if (concurrency < 1)
        concurrency = 1;
    double queue = finished_per_s;
    if (queue > rate_per_s)
        queue = rate_per_s;
    if (queue < concurrency)
        queue = concurrency;
    double cap = (double)concurrency + queue;
    double ceiling = max_local_jobs / 2 > concurrency ? max_local_jobs / 2 : concurrency;
    return (int)(cap < ceiling ? cap : ceiling);
}
