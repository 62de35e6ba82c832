/*
 * event.h - building InboundEvents without a free() per field, and sealing
 * them into the bytes that go on the wire.
 *
 * A generated event is a tree of protobuf-c structs and strings. They are
 * all carved from one bz_sim_arena (a list of blocks freed in one go), so a
 * builder never has to track what it allocated. An allocation that fails
 * marks the arena as failed: string helpers then hand back "" and struct
 * allocations NULL, and bz_sim_event_seal refuses to pack a failed arena.
 *
 * bz_sim_event_seal adds the envelope every producer must set (a fresh
 * event_id and trace_id, timestamps, source, session, provider WEBJS; never
 * workspace_id, which ingest resolves) and packs the event into heap bytes
 * owned by the bz_sim_event. An envelope the builder set already (an
 * instance's, with envelope.instance) is kept and filled in.
 */
#ifndef BZ_SIM_EVENT_H
#define BZ_SIM_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "core/uuid.h"
#include "sim.h"

typedef struct bz_sim_arena_block bz_sim_arena_block;

typedef struct bz_sim_arena {
    bz_sim_arena_block *head;
    int failed;
} bz_sim_arena;

void bz_sim_arena_init(bz_sim_arena *a);

/* n zeroed bytes, aligned for any type; NULL (and a->failed) when out of
 * memory. Lives until bz_sim_arena_free. */
void *bz_sim_arena_alloc(bz_sim_arena *a, size_t n);

/* An array of n pointers (a protobuf-c repeated message field); NULL (and
 * a->failed) when out of memory. */
void *bz_sim_arena_pointers(bz_sim_arena *a, size_t n);

/* Copies of strings in the arena; "" when out of memory (a->failed set). */
char *bz_sim_arena_strdup(bz_sim_arena *a, const char *s);
char *bz_sim_arena_printf(bz_sim_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Release every block; the arena is empty and reusable afterwards. */
void bz_sim_arena_free(bz_sim_arena *a);

#define BZ_SIM_TRACE_ID_SIZE 33 /* 32 hex digits and the NUL */

/* One event ready to publish. data is heap memory owned by the event. */
typedef struct bz_sim_event {
    bz_sim_kind kind;
    char session_id[BZ_SIM_SESSION_ID_MAX];
    char event_id[BZ_UUID_STR_SIZE];
    char trace_id[BZ_SIM_TRACE_ID_SIZE];
    uint8_t *data;
    size_t len;
} bz_sim_event;

/* Give ev its envelope (allocated from a) and pack it into out, which must
 * be empty (zeroed or cleared). */
bz_status bz_sim_event_seal(bz_sim_arena *a, Blazz__V1__InboundEvent *ev, bz_sim_kind kind,
                            const char *session_id, int64_t occurred_at_ms, bz_sim_event *out,
                            bz_error *err);

/* Free out's bytes and zero it. */
void bz_sim_event_clear(bz_sim_event *ev);

#endif
