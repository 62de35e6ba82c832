/*
 * dlq_reader.h - read a dead-letter topic over a time window, for the
 * `blazzctl dlq` commands.
 *
 * The reader assigns every partition of the topic (no consumer group, no
 * commits: reading never disturbs anyone), starts each partition at the
 * first record at or after `since` (Kafka's time index), or early enough
 * to read the last `tail` records before its end, and reads up to the end offsets it saw when it started,
 * so records dead-lettered meanwhile (perhaps by a replay) are not read in
 * the same run. With follow it then keeps reading new records until a
 * shutdown signal. Records come back in per-partition order, each with its
 * DeadLetter decoded (NULL when the value is not one).
 */
#ifndef BZ_CTL_DLQ_READER_H
#define BZ_CTL_DLQ_READER_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "core/status.h"

typedef struct bz_ctl_dlq_window {
    int64_t since_ms; /* first record time, or -1 for the start */
    int64_t until_ms; /* records at or after this time are skipped, or -1 */
    int64_t tail;     /* > 0: start early enough before each end to read at least
                         this many records (more may come: keep the newest) */
    int follow;       /* keep reading after the end until a shutdown signal */
} bz_ctl_dlq_window;

typedef struct bz_ctl_dlq_reader_fns {
    /* Called for each record; dl is NULL when the value is no DeadLetter.
     * Both are valid only during the call. Non-zero stops the reading. */
    int (*on_record)(void *ctx, const rd_kafka_message_t *m, const Blazz__V1__DeadLetter *dl);
    /* Called once when every partition reached its starting end, before
     * follow mode begins (may be NULL). */
    void (*on_caught_up)(void *ctx);
    /* Called once before the first record with the number of records the
     * window spans at most (may be NULL). */
    void (*on_total)(void *ctx, int64_t records);
} bz_ctl_dlq_reader_fns;

/* Read topic on brokers over window w, calling fns with ctx. */
bz_status bz_ctl_dlq_read(const char *brokers, const char *topic, const bz_ctl_dlq_window *w,
                          const bz_ctl_dlq_reader_fns *fns, void *ctx, bz_error *err);

#endif
