/*
 * fairness.h - how much of a worker one endpoint may hold.
 *
 * The worker claims due deliveries into memory (at most
 * webhook.max_local_jobs) and sends them within each endpoint's
 * concurrency, rate limit and circuit. Shared first come first served, a
 * burst for endpoints that accept connections and never answer filled that
 * budget with attempts waiting for their timeouts and queues behind them,
 * and every other endpoint waited for those timeouts. So an endpoint may
 * hold (queued + in flight) at most
 *
 *     concurrency + one second of the attempts it finishes,
 *                   no less than concurrency, no more than its rate limit
 *
 * and never more than half the worker's budget. A healthy endpoint's queue
 * follows its throughput; an endpoint that finishes nothing holds twice its
 * concurrency. Claims ask for no more rows per endpoint than that (see
 * claim.c), so the claim order cannot hand one endpoint's backlog the
 * whole budget either.
 *
 * Throughput is counted in windows of METER_WINDOW_MS: finished attempts,
 * successes and failures alike (both free a slot). It follows a rise at
 * once and halves its distance to a fall each window, so a busy endpoint's
 * queue grows quickly and one that stops answering gives its share back
 * within a few windows. Plain data, owned by one thread; time is passed in.
 */
#ifndef WH_FAIRNESS_H
#define WH_FAIRNESS_H

#include <stdint.h>

typedef struct wh_meter {
    int64_t window_start_ms;
    int64_t count;   /* finished in the current window */
    double per_s;    /* smoothed rate as of the last closed window */
} wh_meter;

/* One attempt finished at now_ms. */
void wh_meter_add(wh_meter *m, int64_t now_ms);

/* Finished attempts per second as of now_ms. */
double wh_meter_rate(wh_meter *m, int64_t now_ms);

/* Deliveries an endpoint may hold (queued + in flight), >= 1. */
int wh_endpoint_cap(int concurrency, int rate_per_s, double finished_per_s,
                       int max_local_jobs);

#endif
