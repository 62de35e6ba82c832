/*
 * autopause.h - the failure-rate window that pauses a failing campaign.
 *
 * The sender samples two monotonic counters of each running campaign at
 * every refresh: messages that reached "sent" and failed send attempts
 * (campaigns.metadata.failed_attempts, retried ones included). The window
 * keeps the samples of the last window_s seconds; the failure rate is
 * failed / (sent + failed) between the oldest sample in the window and now.
 * Once at least min_samples outcomes are in the window and the rate is
 * above the threshold, the campaign is paused with the figures as reason.
 * The window lives in memory: a restart or a resume starts a fresh one.
 */
#ifndef CMP_AUTOPAUSE_H
#define CMP_AUTOPAUSE_H

#include <stddef.h>
#include <stdint.h>

/* The pause_reason prefix of a campaign paused for its failure rate. */
#define CMP_AUTOPAUSE_PREFIX "auto-paused"

#define CMP_WINDOW_SAMPLES 512

typedef struct cmp_window {
    int64_t t_ms[CMP_WINDOW_SAMPLES], sent[CMP_WINDOW_SAMPLES], failed[CMP_WINDOW_SAMPLES];
    size_t head, count; /* ring: oldest at head */
} cmp_window;

/* Add a sample and judge the window: 1 when the campaign should pause,
 * with the reason written to reason. */
int cmp_window_should_pause(cmp_window *w, int64_t now_ms, int64_t sent_total,
                            int64_t failed_total, int window_s, int min_samples,
                            double threshold, char *reason, size_t cap);

#endif
