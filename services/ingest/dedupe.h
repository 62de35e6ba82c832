/*
 * dedupe.h - the duplicate event_id window of the Kafka path.
 *
 * Remembers the event_ids of the last `capacity` events seen within
 * `window_ms`; an event whose id is remembered is a duplicate (a gateway
 * retry, a Meta redelivery, a replayed raw record) and is dropped and
 * counted. Entries live in a ring in arrival order (so expiry and eviction
 * pop the oldest) indexed by an open-addressing hash table.
 *
 * Ids added during a Kafka transaction are pending: if the transaction
 * aborts, the consumer rewinds and will see those events again, so they
 * must be forgotten (bz_dedupe_rollback); bz_dedupe_commit keeps them.
 * Pending entries are always the newest, which makes rollback a pop from the
 * ring's tail. Not thread-safe: the pipeline thread owns it.
 */
#ifndef BZ_INGEST_DEDUPE_H
#define BZ_INGEST_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct bz_dedupe bz_dedupe;

/* capacity >= 2. Free with bz_dedupe_free. */
bz_status bz_dedupe_new(size_t capacity, int64_t window_ms, bz_dedupe **out, bz_error *err);
void bz_dedupe_free(bz_dedupe *d);

/* True when event_id (a canonical UUID) was added within the window. */
bool bz_dedupe_seen(bz_dedupe *d, const char *event_id, int64_t now_ms);

/* Remember event_id as pending. When the ring is full of pending entries
 * the id is not remembered (the window degrades, nothing breaks). */
void bz_dedupe_add(bz_dedupe *d, const char *event_id, int64_t now_ms);

/* The transaction committed: pending entries become permanent. */
void bz_dedupe_commit(bz_dedupe *d);

/* The transaction aborted: forget the pending entries. */
void bz_dedupe_rollback(bz_dedupe *d);

/* Entries currently remembered (pending included). */
size_t bz_dedupe_size(const bz_dedupe *d);

#endif
