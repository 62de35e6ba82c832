/*
 * autopause.c - sliding-window failure rate (see autopause.h).
 */
#include "autopause.h"

#include <stdio.h>
#include <string.h>

static void push_sample(cmp_window *w, int64_t now_ms, int64_t sent, int64_t failed)
{
    if (w->count == CMP_WINDOW_SAMPLES) {
        w->head = (w->head + 1) % CMP_WINDOW_SAMPLES;
        w->count--;
    }
    size_t i = (w->head + w->count) % CMP_WINDOW_SAMPLES;
    w->t_ms[i] = now_ms;
    w->sent[i] = sent;
    w->failed[i] = failed;
    w->count++;
}

static void drop_samples_before(cmp_window *w, int64_t cutoff_ms)
{
    while (w->count > 1 && w->t_ms[w->head] < cutoff_ms) {
        w->head = (w->head + 1) % CMP_WINDOW_SAMPLES;
        w->count--;
    }
}

int cmp_window_should_pause(cmp_window *w, int64_t now_ms, int64_t sent_total,
                            int64_t failed_total, int window_s, int min_samples,
                            double threshold, char *reason, size_t cap)
{
    push_sample(w, now_ms, sent_total, failed_total);
    drop_samples_before(w, now_ms - (int64_t)window_s * 1000);
    int64_t sent = sent_total - w->sent[w->head];
    int64_t failed = failed_total - w->failed[w->head];
    if (sent < 0)
        sent = 0; /* a sent message that later failed moves one count across */
    int64_t outcomes = sent + failed;
    if (outcomes < min_samples || outcomes == 0)
        return 0;
    double rate = (double)failed / (double)outcomes;
    if (rate <= threshold)
        return 0;
    snprintf(reason, cap,
             CMP_AUTOPAUSE_PREFIX ": failure rate %.2f > %.2f (%lld of %lld send attempts failed in the "
             "last %d s)",
             rate, threshold, (long long)failed, (long long)outcomes, window_s);
    return 1;
}
