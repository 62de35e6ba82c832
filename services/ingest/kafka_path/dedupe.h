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
 * must be forgotten (ing_dedupe_rollback); ing_dedupe_commit keeps them.
 * Pending entries are always the newest, which makes rollback a pop from the
 * ring's tail. Not thread-safe: the pipeline thread owns it.
 */
#ifndef ING_DEDUPE_H
#define ING_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct ing_dedupe ing_dedupe;

/* capacity >= 2. Free with ing_dedupe_free. */
bz_status ing_dedupe_new(size_t capacity, int64_t window_ms, ing_dedupe **out, bz_error *err);
void ing_dedupe_free(ing_dedupe *d);

/* True when event_id (a canonical UUID) was added within the window. */
bool ing_dedupe_seen(ing_dedupe *d, const char *event_id, int64_t now_ms);

/* Remember event_id as pending. When the ring is full of pending entries
 * the id is not remembered (the window degrades, nothing breaks). */
void ing_dedupe_add(ing_dedupe *d, const char *event_id, int64_t now_ms);

/* The transaction committed: pending entries become permanent. */
void ing_dedupe_commit(ing_dedupe *d);

/* The transaction aborted: forget the pending entries. */
void ing_dedupe_rollback(ing_dedupe *d);

/* Entries currently remembered (pending included). */
size_t ing_dedupe_size(const ing_dedupe *d);

#endif
