/*
 * event.c - the arena the event builders allocate from, and the envelope +
 * packing step every published event goes through (see event.h).
 *
 * Blocks are at least 16 KiB; a request larger than that gets a block of its
 * own. Blocks are kept in a singly linked list, newest first, and bump
 * allocation only ever looks at the newest one: simple, and the waste at the
 * end of a block does not matter for short-lived events.
 */
#include "event.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

#define ARENA_BLOCK_MIN 16384
#define ARENA_ALIGN 16

struct bz_sim_arena_block {
    bz_sim_arena_block *next;
    size_t used;
    size_t cap;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

void bz_sim_arena_init(bz_sim_arena *a)
{
    a->head = NULL;
    a->failed = 0;
}

void *bz_sim_arena_alloc(bz_sim_arena *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    bz_sim_arena_block *b = a->head;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > ARENA_BLOCK_MIN ? need : ARENA_BLOCK_MIN;
        b = malloc(sizeof *b + cap);
        if (!b) {
            a->failed = 1;
            return NULL;
        }
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    memset(p, 0, n);
    return p;
}

void *bz_sim_arena_pointers(bz_sim_arena *a, size_t n)
{
    return bz_sim_arena_alloc(a, n * sizeof(void *));
}

char *bz_sim_arena_strdup(bz_sim_arena *a, const char *s)
{
    size_t len = strlen(s);
    char *copy = bz_sim_arena_alloc(a, len + 1);
    if (!copy)
        return (char *)"";
    memcpy(copy, s, len + 1);
    return copy;
}

char *bz_sim_arena_printf(bz_sim_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return (char *)"";
    char *out = bz_sim_arena_alloc(a, (size_t)len + 1);
    if (!out)
        return (char *)"";
    va_start(ap, fmt);
    vsnprintf(out, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return out;
}

void bz_sim_arena_free(bz_sim_arena *a)
{
    while (a->head) {
        bz_sim_arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    a->failed = 0;
}

/* A W3C-style trace id: the 32 hex digits of a fresh UUID. */
static bz_status new_trace_id(char out[BZ_SIM_TRACE_ID_SIZE], bz_error *err)
{
    char uuid[BZ_UUID_STR_SIZE];
    bz_status st = bz_uuid_v4(uuid, err);
    if (st != BZ_OK)
        return st;
    size_t j = 0;
    for (size_t i = 0; uuid[i]; i++)
        if (uuid[i] != '-')
            out[j++] = uuid[i];
    out[j] = '\0';
    return BZ_OK;
}

bz_status bz_sim_event_seal(bz_sim_arena *a, Blazz__V1__InboundEvent *ev, bz_sim_kind kind,
                            const char *session_id, int64_t occurred_at_ms, bz_sim_event *out,
                            bz_error *err)
{
    out->kind = kind;
    snprintf(out->session_id, sizeof out->session_id, "%s", session_id);
    bz_status st = bz_uuid_v4(out->event_id, err);
    if (st == BZ_OK)
        st = new_trace_id(out->trace_id, err);
    if (st != BZ_OK)
        return bz_wrap(err, "seal %s event for session %s", bz_sim_kind_name(kind), session_id);

    /* an instance under the backbone's command has set envelope.instance */
    Blazz__V1__Envelope *env = ev->envelope ? ev->envelope : bz_sim_arena_alloc(a, sizeof *env);
    if (!env || a->failed)
        return bz_fail(err, BZ_ERR_NOMEM, "build %s event for session %s: out of memory",
                       bz_sim_kind_name(kind), session_id);
    if (env != ev->envelope)
        blazz__v1__envelope__init(env);
    env->event_id = out->event_id;
    env->trace_id = out->trace_id;
    env->session_id = out->session_id;
    env->occurred_at_ms = occurred_at_ms;
    env->produced_at_ms = bz_wall_ms();
    env->source = (char *)"blazz-gateway-sim";
    env->provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    ev->envelope = env;

    size_t len = blazz__v1__inbound_event__get_packed_size(ev);
    out->data = malloc(len ? len : 1);
    if (!out->data)
        return bz_fail(err, BZ_ERR_NOMEM, "pack %s event %s: out of memory",
                       bz_sim_kind_name(kind), out->event_id);
    out->len = blazz__v1__inbound_event__pack(ev, out->data);
    return BZ_OK;
}

void bz_sim_event_clear(bz_sim_event *ev)
{
    free(ev->data);
    memset(ev, 0, sizeof *ev);
}

const char *bz_sim_kind_name(bz_sim_kind kind)
{
    static const char *const names[BZ_SIM_KIND_COUNT] = {
        "session_status", "history_sync", "message_private", "message_group",
        "message_echo",   "ack",          "group_update", "contact_mapping"};
    return (unsigned)kind < BZ_SIM_KIND_COUNT ? names[kind] : "unknown";
}
