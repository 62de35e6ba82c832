/*
 * traffic_history.c - a session's status and its history sync: what a
 * gateway publishes when an account connects (seed 002).
 *
 * A history batch carries at most HISTORY_BATCH_MAX chats, newest first,
 * each with its last --history-messages messages, oldest first, unread
 * counts and, for groups, the participants. Each synced chat is built from
 * a generator of its own, seeded by (seed, account, chat), and dated from
 * the generator's creation, so the re-sync after a reconnect repeats
 * exactly the same messages, as a phone would; one sync id per connect.
 */
#include <stdio.h>

#include "traffic_state.h"

static Blazz__V1__InstanceRef *instance_ref(bz_sim_traffic *t, int index)
{
    Blazz__V1__InstanceRef *ref = bz_sim_arena_alloc(&t->arena, sizeof *ref);
    if (!ref)
        return NULL;
    blazz__v1__instance_ref__init(ref);
    ref->index = index;
    ref->url = bz_sim_arena_printf(&t->arena, "http://instance-%d:3001", index);
    return ref;
}

Blazz__V1__SessionStatus *bz_sim_session_status(bz_sim_traffic *t, int account,
                                                Blazz__V1__SessionState state,
                                                Blazz__V1__DisconnectReason reason,
                                                const char *details)
{
    const bz_sim_account *acct = &t->w->accounts[account];
    Blazz__V1__SessionStatus *s = bz_sim_arena_alloc(&t->arena, sizeof *s);
    if (!s)
        return NULL;
    blazz__v1__session_status__init(s);
    s->status = state;
    s->reason = reason;
    s->details = (char *)details;
    s->instance = instance_ref(t, t->acc[account].instance);
    s->phone_number = (char *)acct->phone;
    s->push_name = (char *)acct->push_name;
    s->platform = (char *)(acct->account_index % 2 ? "iphone" : "android");
    return s->instance ? s : NULL;
}

static Blazz__V1__SyncedChat *build_synced_chat(bz_sim_traffic *t, int account, int chat,
                                                int64_t now)
{
    bz_sim_rng *r = t->cur;
    Blazz__V1__SyncedChat *sc = bz_sim_arena_alloc(&t->arena, sizeof *sc);
    if (!sc)
        return NULL;
    blazz__v1__synced_chat__init(sc);
    const bz_sim_chat_plan *plan = &t->plan[chat];
    const bz_sim_account *acct = &t->w->accounts[account];
    int nmsg = t->o->history_messages;
    int unread = bz_sim_rng_chance(r, 0.3) && nmsg > 0
                     ? (int)bz_sim_rng_between(r, 1, nmsg < 5 ? nmsg : 5) : 0;
    /* Chats come newest first; each is older than the one before. */
    sc->last_activity_ms = now - (int64_t)chat * 47 * 60000 - bz_sim_rng_between(r, 0, 2400000);
    sc->unread_count = unread;
    sc->archived = bz_sim_rng_chance(r, 0.05);
    const bz_sim_contact *c = NULL;
    const bz_sim_group *g = NULL;
    if (plan->is_group) {
        g = &t->acc[account].groups[plan->index];
        sc->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
        sc->group_jid = (char *)g->jid;
        sc->group_name = (char *)g->name;
        sc->group_description = (char *)g->description;
        sc->group_owner_phone = (char *)bz_sim_pool_of(t, account)[g->members[0]].phone;
        sc->participants = bz_sim_arena_pointers(&t->arena, (size_t)g->nmembers);
        if (!sc->participants)
            return NULL;
        for (int m = 0; m < g->nmembers; m++)
            if (!(sc->participants[sc->n_participants++] = bz_sim_participant_of(t, account, g, m)))
                return NULL;
    } else {
        c = &bz_sim_pool_of(t, account)[(size_t)acct->account_index * (size_t)t->h_private +
                                 (size_t)plan->index];
        sc->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
        sc->contact_phone = (char *)c->phone;
        sc->contact_name = (char *)c->name;
        sc->contact_jid = (char *)c->jid;
    }
    if (nmsg == 0)
        return sc;
    sc->messages = bz_sim_arena_pointers(&t->arena, (size_t)nmsg);
    if (!sc->messages)
        return NULL;
    /* Oldest first: walk back from the last activity, then fill forwards. */
    int64_t ts = sc->last_activity_ms;
    int64_t *stamps = bz_sim_arena_alloc(&t->arena, (size_t)nmsg * sizeof *stamps);
    if (!stamps)
        return NULL;
    for (int i = nmsg - 1; i >= 0; i--) {
        stamps[i] = ts;
        ts -= bz_sim_rng_between(r, 60000, 3 * 3600000);
    }
    for (int i = 0; i < nmsg; i++) {
        bool is_unread = i >= nmsg - unread;
        bool from_me = !is_unread && bz_sim_rng_chance(r, plan->is_group ? 0.15 : 0.4);
        const char *quoted = i > 0 ? sc->messages[i - 1]->wam_id : NULL;
        bz_sim_message *msg =
            plan->is_group
                ? bz_sim_group_message(t, account, g, from_me, stamps[i], true, quoted)
                : bz_sim_private_message(t, account, c, from_me, stamps[i], true, quoted);
        if (!msg)
            return NULL;
        msg->is_read = !is_unread;
        sc->messages[sc->n_messages++] = msg;
    }
    return sc;
}

/* A synced chat draws from its own generator, seeded by (seed, account,
 * chat), and dates its messages from history_base_ms, so the re-sync after
 * a reconnect repeats exactly the same messages, as a phone would. */
static Blazz__V1__SyncedChat *synced_chat(bz_sim_traffic *t, int account, int chat)
{
    bz_sim_rng sub = {t->o->seed * 1000003u + (uint64_t)account * 7919u + (uint64_t)chat};
    t->cur = &sub;
    Blazz__V1__SyncedChat *sc = build_synced_chat(t, account, chat, t->history_base_ms);
    t->cur = &t->rng;
    return sc;
}

Blazz__V1__HistorySyncBatch *bz_sim_history_batch(bz_sim_traffic *t, int account, int batch)
{
    Blazz__V1__HistorySyncBatch *b = bz_sim_arena_alloc(&t->arena, sizeof *b);
    if (!b)
        return NULL;
    blazz__v1__history_sync_batch__init(b);
    /* One id per sync run (a connect): the same for a replay of the run. */
    b->sync_id = bz_sim_arena_printf(&t->arena, "sync-%s-%llx-%d",
                                     t->w->accounts[account].session_id,
                                     (unsigned long long)t->o->seed, t->acc[account].sync_runs);
    b->batch_index = batch;
    b->batch_total = t->batches;
    b->total_chats = t->o->history_chats;
    int first = batch * HISTORY_BATCH_MAX;
    int last = first + HISTORY_BATCH_MAX < t->o->history_chats ? first + HISTORY_BATCH_MAX
                                                               : t->o->history_chats;
    b->chats = bz_sim_arena_pointers(&t->arena, (size_t)(last - first));
    if (!b->chats)
        return NULL;
    for (int c = first; c < last; c++)
        if (!(b->chats[b->n_chats++] = synced_chat(t, account, c)))
            return NULL;
    return b;
}
