/*
 * instance_history.c - an instance's initial history sync after a connect,
 * by the backbone's limits (see instance_history.h).
 */
#include "instance_history.h"

#include <inttypes.h>
#include <stdio.h>

#include "core/hash.h"

#define CHAT_SPACING_MS (47 * 60000LL)
#define MESSAGE_SPACING_MS 60000LL
#define DAY_MS 86400000LL

void bz_sim_history_limits_of(const Blazz__V1__SessionCommand *c, bz_sim_history_limits *out)
{
    const Blazz__V1__HistorySyncLimits *l = c->history_sync;
    *out = (bz_sim_history_limits){0};
    if (!l)
        return;
    *out = (bz_sim_history_limits){
        .enabled = l->enabled, .max_chats = l->max_chats, .window_days = l->window_days,
        .messages_per_chat = l->messages_per_chat, .chats_per_second = l->chats_per_second,
        .batch_chats = l->batch_chats, .batches_in_flight = l->batches_in_flight};
}

/* Of the phone's chats, how many the limits let through: the newest, those
 * last active within the window, at most max_chats. */
static int chats_allowed(int phone_chats, const bz_sim_history_limits *l)
{
    int n = phone_chats;
    if (l->window_days > 0) {
        /* chat i is in the window when i * spacing < window */
        int64_t in_window = (l->window_days * DAY_MS - 1) / CHAT_SPACING_MS + 1;
        if (in_window < n)
            n = (int)in_window;
    }
    if (l->max_chats > 0 && l->max_chats < n)
        n = l->max_chats;
    return n;
}

void bz_sim_history_start(bz_sim_history_run *run, const bz_sim_history_limits *limits,
                          const bz_sim_options *o, const char *session_id, int64_t now_ms)
{
    *run = (bz_sim_history_run){0};
    if (!limits->enabled || limits->batch_chats <= 0)
        return;
    run->limits = *limits;
    run->nchats = chats_allowed(o->phone_chats, limits);
    run->phone_messages = o->history_messages;
    run->messages = o->history_messages < limits->messages_per_chat ? o->history_messages
                                                                    : limits->messages_per_chat;
    if (run->nchats == 0)
        return;
    run->active = 1;
    run->phone_key = bz_hash_string(session_id);
    run->connected_ms = now_ms;
    run->next_batch_ms = now_ms;
    run->batch_total = (run->nchats + limits->batch_chats - 1) / limits->batch_chats;
    snprintf(run->sync_id, sizeof run->sync_id, "sync-%s-%" PRId64, session_id, now_ms);
}

static Blazz__V1__InboundMessage *phone_message(const bz_sim_history_run *run, bz_sim_arena *a,
                                                const char *phone, int chat, int index,
                                                int64_t at_ms)
{
    Blazz__V1__InboundMessage *m = bz_sim_arena_alloc(a, sizeof *m);
    if (!m)
        return NULL;
    blazz__v1__inbound_message__init(m);
    m->wam_id = bz_sim_arena_printf(a, "false_%s@c.us_H%016" PRIX64 "%05d%04d", phone + 1,
                                    run->phone_key, chat, index);
    m->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    m->contact_phone = (char *)phone;
    m->body = bz_sim_arena_printf(a, "history %d of chat %d", index + 1, chat + 1);
    m->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    m->timestamp_ms = at_ms;
    m->is_read = 1;
    return m;
}

static Blazz__V1__SyncedChat *phone_chat(const bz_sim_history_run *run, bz_sim_arena *a,
                                         int chat)
{
    Blazz__V1__SyncedChat *sc = bz_sim_arena_alloc(a, sizeof *sc);
    if (!sc)
        return NULL;
    blazz__v1__synced_chat__init(sc);
    /* three digits of the session's key, then the chat: at most 10,000 */
    sc->contact_phone = bz_sim_arena_printf(a, "+62878%03" PRIu64 "%04d", run->phone_key % 1000,
                                            chat);
    sc->contact_name = bz_sim_arena_printf(a, "Phone contact %d", chat + 1);
    sc->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    sc->last_activity_ms = run->connected_ms - chat * CHAT_SPACING_MS;
    if (run->messages == 0)
        return sc;
    sc->messages = bz_sim_arena_pointers(a, (size_t)run->messages);
    if (!sc->messages)
        return NULL;
    /* the chat's last messages, oldest first */
    for (int i = run->phone_messages - run->messages; i < run->phone_messages; i++) {
        int64_t at = sc->last_activity_ms - (run->phone_messages - 1 - i) * MESSAGE_SPACING_MS;
        if (!(sc->messages[sc->n_messages] = phone_message(run, a, sc->contact_phone, chat, i, at)))
            return NULL;
        sc->n_messages++;
    }
    return sc;
}

Blazz__V1__HistorySyncBatch *bz_sim_history_next(bz_sim_history_run *run, bz_sim_arena *arena,
                                                 int64_t now_ms, uint64_t in_flight)
{
    if (!run->active || now_ms < run->next_batch_ms ||
        in_flight >= (uint64_t)(run->limits.batches_in_flight > 0 ? run->limits.batches_in_flight
                                                                  : 1))
        return NULL;
    int first = run->next_chat;
    int n = run->nchats - first < run->limits.batch_chats ? run->nchats - first
                                                          : run->limits.batch_chats;
    Blazz__V1__HistorySyncBatch *b = bz_sim_arena_alloc(arena, sizeof *b);
    if (!b)
        return NULL;
    blazz__v1__history_sync_batch__init(b);
    b->sync_id = run->sync_id;
    b->batch_index = run->batch_index;
    b->batch_total = run->batch_total;
    b->total_chats = run->nchats;
    b->chats = bz_sim_arena_pointers(arena, (size_t)n);
    if (!b->chats)
        return NULL;
    for (int c = first; c < first + n; c++)
        if (!(b->chats[b->n_chats++] = phone_chat(run, arena, c)))
            return NULL;
    run->next_chat += n;
    run->batch_index++;
    int rate = run->limits.chats_per_second > 0 ? run->limits.chats_per_second : 1;
    run->next_batch_ms = now_ms + (int64_t)n * 1000 / rate;
    run->active = run->next_chat < run->nchats;
    return b;
}
