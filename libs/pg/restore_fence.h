/*
 * restore_fence.h - is a restore's replay still under way, and lift its
 * fence once it is not (docs/OPERATIONS.md §6.5, db/migrations/0045, 0054).
 *
 * `stack.sh restore` records a fence: where the data of each partition of
 * chat.sync, campaign.commands and campaign.receipts ended when the
 * database was restored, for every consumer group whose restored offsets
 * name it. Senders hold what the replay may yet prove sent (meta-sender
 * its claims, campaign-sender its releases) until every group has read
 * back to those ends. Whoever checks first and finds them all reached
 * lifts the fence; lifting twice is harmless.
 */
#ifndef BZ_PG_RESTORE_FENCE_H
#define BZ_PG_RESTORE_FENCE_H

#include <stdint.h>
#include <libpq-fe.h>

#include "core/status.h"

typedef struct bz_restore_fence {
    int held;              /* 1: a fence is up whose ends are not all reached */
    int64_t records_to_go; /* over the fences still up: records left to read */
    char fence_id[24];     /* the oldest fence still up ("" when none) */
    char restored_to[64];  /* its restore point, as the operator gave it */
} bz_restore_fence;

/* Read the unlifted fences on conn; lift each whose ends every group has
 * reached (logged, naming who), and fill *out with what still holds. */
bz_status bz_restore_fence_check(PGconn *conn, const char *who, bz_restore_fence *out,
                                 bz_error *err);

#endif
