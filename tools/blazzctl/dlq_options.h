/*
 * dlq_options.h - what `blazzctl dlq` (cmd_dlq.c) hands its actions: the
 * parsed and checked options, and the actions themselves.
 *
 * Times are wall-clock milliseconds, -1 when not given. TOPIC is already
 * the full topic name. An action returns the process exit code (blazzctl.h)
 * after printing its result or what failed.
 */
#ifndef BZ_CTL_DLQ_OPTIONS_H
#define BZ_CTL_DLQ_OPTIONS_H

#include <stdint.h>

#include "kafka/topics.h"

#define MAX_FILTERS 8

typedef enum bz_ctl_dlq_action {
    BZ_CTL_DLQ_TAIL,
    BZ_CTL_DLQ_STATS,
    BZ_CTL_DLQ_REPLAY
} bz_ctl_dlq_action;

typedef struct bz_ctl_dlq_filters {
    const char *errors[MAX_FILTERS];
    int nerrors;
    const char *services[MAX_FILTERS];
    int nservices;
} bz_ctl_dlq_filters;

typedef struct bz_ctl_dlq_options {
    bz_ctl_dlq_action action;
    const char *brokers, *prefix, *dsn;
    char topic[BZ_TOPIC_NAME_MAX];
    const char *since_text, *until_text;
    int64_t since_ms, until_ms;
    int limit;
    int follow, dry_run, json;
    bz_ctl_dlq_filters filters;
} bz_ctl_dlq_options;

/* Print the newest dead letters (o->limit, or all since o->since_ms), then,
 * with o->follow, new ones as they arrive until a shutdown signal. */
int bz_ctl_dlq_tail(const bz_ctl_dlq_options *o);

/* Print the counts by error code, service and original topic in
 * [o->since_ms, o->until_ms). */
int bz_ctl_dlq_stats(const bz_ctl_dlq_options *o);

/* Republish the dead letters that match o->filters in the window (only
 * count them with o->dry_run) and print what was replayed. */
int bz_ctl_dlq_replay(const bz_ctl_dlq_options *o);

#endif
