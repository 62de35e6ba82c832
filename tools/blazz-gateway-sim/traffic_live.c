/*
 * traffic_live.c - the live phase of the generated traffic: endless
 * messages, receipts, group updates and session flaps.
 *
 * Each event first serves what is due: the next batch of an account's
 * re-sync, then a disconnected account coming back (with a new history
 * sync run, as whatsapp-web.js syncs on every 'ready'). Otherwise a
 * connected account gets, per mille: 520 inbound private messages (mostly
 * from known contacts, sometimes a new customer; with --lid-people a LID
 * person's message is now and then the gateway's mapping of their LID to
 * their phone instead), 200 group messages, 120
 * messages sent from the phone, 120 receipts of those (sent -> delivered ->
 * read, now and then a stale one), 37 group updates and 3 disconnects.
 */
#include <stdio.h>

#include "core/clock.h"
#include "corpus.h"
#include "traffic_state.h"

static int pick_connected_account(bz_sim_traffic *t)
{
    size_t n = t->w->naccounts;
    size_t start = bz_sim_rng_below(t->cur, n);
    for (size_t i = 0; i < n; i++)
        if (t->acc[(start + i) % n].connected)
            return (int)((start + i) % n);
    return -1;
}

static int due_reconnect(bz_sim_traffic *t)
{
    bool any_connected = false;
    int earliest = -1;
    for (size_t a = 0; a < t->w->naccounts; a++) {
        if (t->acc[a].connected) {
            any_connected = true;
            continue;
        }
        if (earliest < 0 || t->acc[a].reconnect_at < t->acc[earliest].reconnect_at)
            earliest = (int)a;
    }
    if (earliest >= 0 && (!any_connected || t->acc[earliest].reconnect_at <= t->live_events))
        return earliest;
    return -1;
}

/* A new customer is a LID person with --lid-people: the LID is derived
 * from the pool index and the seed, like the phone. */
static void maybe_lid_person(bz_sim_traffic *t, size_t ws, bz_sim_contact *c)
{
    if (t->o->lid_people <= 0 || !bz_sim_rng_chance(t->cur, t->o->lid_people))
        return;
    unsigned long long digits =
        (unsigned long long)(((size_t)(c - t->contacts) * 104729u + ws + t->o->seed) %
                             100000000000000ull);
    snprintf(c->lid, sizeof c->lid, "1%014llu@lid", digits);
    c->lid_state = BZ_SIM_LID_UNPAIRED;
    c->lid_phone_first = bz_sim_rng_chance(t->cur, 0.5);
}

/* The newest LID person of the account's workspace not paired yet, or
 * NULL: such a person writes again soon, so that both their contacts
 * exist before the mapping joins them. */
static bz_sim_contact *unpaired_lid_person(bz_sim_traffic *t, int account, size_t ws)
{
    bz_sim_contact *pool = bz_sim_pool_of(t, account);
    for (size_t i = t->known[ws]; i-- > 0;)
        if (pool[i].lid_state == BZ_SIM_LID_UNPAIRED)
            return &pool[i];
    return NULL;
}

static bz_sim_contact *live_contact(bz_sim_traffic *t, int account)
{
    size_t ws = (size_t)t->w->accounts[account].workspace_index;
    bz_sim_rng *r = t->cur;
    bz_sim_contact *again = t->o->lid_people > 0 && bz_sim_rng_chance(r, 0.3)
                                ? unpaired_lid_person(t, account, ws)
                                : NULL;
    if (again)
        return again;
    if (t->known[ws] == 0 || (t->known[ws] < t->pool && bz_sim_rng_chance(r, 0.15))) {
        bz_sim_contact *c = &bz_sim_pool_of(t, account)[t->known[ws]++];
        maybe_lid_person(t, ws, c);
        return c;
    }
    return &bz_sim_pool_of(t, account)[bz_sim_rng_below(r, t->known[ws])];
}

/* The gateway learned that c's LID is its phone: a contact update naming
 * both, which joins the two contacts the backbone may hold for c. */
static bz_sim_kind live_mapping(bz_sim_traffic *t, bz_sim_contact *c, Blazz__V1__InboundEvent *ev)
{
    Blazz__V1__ContactUpdate *u = bz_sim_arena_alloc(&t->arena, sizeof *u);
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE;
    ev->contact_update = u;
    if (!u)
        return BZ_SIM_KIND_CONTACT_MAPPING;
    blazz__v1__contact_update__init(u);
    u->contact_phone = c->phone;
    u->contact_jid = c->lid;
    u->timestamp_ms = bz_wall_ms();
    c->lid_state = BZ_SIM_LID_PAIRED;
    return BZ_SIM_KIND_CONTACT_MAPPING;
}

static bz_sim_kind live_private(bz_sim_traffic *t, int account, Blazz__V1__InboundEvent *ev)
{
    bz_sim_contact *c = live_contact(t, account);
    if (c->lid_state == BZ_SIM_LID_UNPAIRED && c->lid_messages >= 2 &&
        bz_sim_rng_chance(t->cur, 0.5))
        return live_mapping(t, c, ev);
    bz_sim_message *msg = bz_sim_private_message(t, account, c, false, bz_wall_ms(), true,
                                                 bz_sim_recent_wam_id(t, &t->acc[account]));
    /* unpaired: from the LID and from the phone in turn (either first), as
     * whatsapp-web.js shows them; paired: the LID with the phone beside it */
    if (msg && c->lid_state == BZ_SIM_LID_PAIRED) {
        msg->contact_jid = c->lid;
    } else if (msg && c->lid_state == BZ_SIM_LID_UNPAIRED &&
               (c->lid_messages++ + c->lid_phone_first) % 2 == 0) {
        msg->contact_phone = (char *)"";
        msg->contact_jid = c->lid;
    }
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev->message = msg;
    return BZ_SIM_KIND_MESSAGE_PRIVATE;
}

static bz_sim_kind live_group(bz_sim_traffic *t, int account, Blazz__V1__InboundEvent *ev)
{
    bz_sim_account_state *s = &t->acc[account];
    const bz_sim_group *g = &s->groups[bz_sim_rng_below(t->cur, (uint64_t)s->ngroups)];
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev->message = bz_sim_group_message(t, account, g, false, bz_wall_ms(), true,
                                       bz_sim_recent_wam_id(t, s));
    return BZ_SIM_KIND_MESSAGE_GROUP;
}

/* An inbound text from the account's first contact, to be sent under the
 * stray session instead of the account's. */
bz_sim_kind bz_sim_stray_message(bz_sim_traffic *t, int *account, Blazz__V1__InboundEvent *ev)
{
    int a = pick_connected_account(t);
    *account = a >= 0 ? a : 0;
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev->message = bz_sim_private_message(t, *account, &bz_sim_pool_of(t, *account)[0], false,
                                         bz_wall_ms(), false, NULL);
    return BZ_SIM_KIND_MESSAGE_PRIVATE;
}

/* A message typed on the phone: its receipts follow later in the stream. */
static bz_sim_kind live_echo(bz_sim_traffic *t, int account, Blazz__V1__InboundEvent *ev)
{
    size_t ws = (size_t)t->w->accounts[account].workspace_index;
    int ci = t->known[ws] ? (int)bz_sim_rng_below(t->cur, t->known[ws]) : 0;
    bz_sim_message *msg = bz_sim_private_message(t, account, &bz_sim_pool_of(t, account)[ci], true,
                                                 bz_wall_ms(), false, NULL);
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev->message = msg;
    if (msg) {
        bz_sim_pending_echo *p = &t->echoes[t->echo_next];
        t->echo_next = (t->echo_next + 1) % ECHO_RING;
        p->used = true;
        p->account = account;
        p->contact = ci;
        p->status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_PENDING;
        snprintf(p->wam_id, sizeof p->wam_id, "%s", msg->wam_id);
    }
    return BZ_SIM_KIND_MESSAGE_ECHO;
}

static bz_sim_pending_echo *pick_pending_echo(bz_sim_traffic *t)
{
    int start = (int)bz_sim_rng_below(t->cur, ECHO_RING);
    for (int i = 0; i < ECHO_RING; i++) {
        bz_sim_pending_echo *p = &t->echoes[(start + i) % ECHO_RING];
        if (p->used && t->acc[p->account].connected)
            return p;
    }
    return NULL;
}

/* The next receipt of a message sent from the phone; now and then a stale
 * one (a lower status after a higher one), as receipts really arrive. */
static bz_sim_kind live_ack(bz_sim_traffic *t, bz_sim_pending_echo *p, int *account,
                            Blazz__V1__InboundEvent *ev)
{
    Blazz__V1__MessageAck *ack = bz_sim_arena_alloc(&t->arena, sizeof *ack);
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK;
    ev->ack = ack;
    if (!ack)
        return BZ_SIM_KIND_ACK;
    blazz__v1__message_ack__init(ack);
    Blazz__V1__DeliveryStatus status;
    if (p->status > BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT &&
        bz_sim_rng_chance(t->cur, 0.05)) {
        status = p->status - 1; /* stale */
    } else {
        status = p->status < BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT
                     ? BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT
                     : p->status + 1;
        p->status = status;
    }
    const bz_sim_contact *c = &bz_sim_pool_of(t, p->account)[p->contact];
    ack->wam_id = bz_sim_arena_strdup(&t->arena, p->wam_id);
    ack->status = status;
    ack->timestamp_ms = bz_wall_ms();
    ack->recipient_phone = (char *)c->phone;
    ack->recipient_jid = (char *)c->jid;
    *account = p->account;
    if (p->status == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ)
        p->used = false;
    return BZ_SIM_KIND_ACK;
}

static bz_sim_kind live_group_update(bz_sim_traffic *t, int account, Blazz__V1__InboundEvent *ev)
{
    bz_sim_rng *r = t->cur;
    bz_sim_account_state *s = &t->acc[account];
    bz_sim_group *g = &s->groups[bz_sim_rng_below(r, (uint64_t)s->ngroups)];
    Blazz__V1__GroupUpdate *u = bz_sim_arena_alloc(&t->arena, sizeof *u);
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE;
    ev->group_update = u;
    if (!u)
        return BZ_SIM_KIND_GROUP_UPDATE;
    blazz__v1__group_update__init(u);
    u->timestamp_ms = bz_wall_ms();
    u->group_created_at_ms = g->created_ms;
    int roll = (int)bz_sim_rng_below(r, 100);
    int member = -1;
    if (roll < 30) {
        u->action = BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_UPDATED;
        snprintf(g->name, sizeof g->name, "%s %d", bz_sim_pick(r, &bz_sim_group_names),
                 (int)bz_sim_rng_between(r, 2024, 2026));
    } else if (roll < 60 && g->nmembers < GROUP_MEMBERS_MAX) {
        u->action = BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_ADDED;
        member = g->nmembers;
        g->members[g->nmembers++] = (int)bz_sim_rng_below(r, t->pool);
    } else if (roll < 80 && g->nmembers > 2) {
        u->action = BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_REMOVED;
        member = g->nmembers - 1;
    } else {
        u->action = BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_PROMOTED;
        member = (int)bz_sim_rng_between(r, 1, g->nmembers - 1);
        g->admins |= 1u << member;
    }
    u->group_jid = (char *)g->jid;
    u->name = (char *)g->name;
    u->description = (char *)g->description;
    u->owner_phone = (char *)bz_sim_pool_of(t, account)[g->members[0]].phone;
    u->actor_phone = (char *)bz_sim_pool_of(t, account)[g->members[0]].phone;
    if (member >= 0) {
        u->participants = bz_sim_arena_pointers(&t->arena, 1);
        if (!u->participants)
            return BZ_SIM_KIND_GROUP_UPDATE;
        u->participants[0] = bz_sim_participant_of(t, account, g, member);
        u->n_participants = u->participants[0] ? 1 : 0;
        if (u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_REMOVED) {
            g->nmembers--;
            g->admins &= ~(1u << member);
        }
    }
    return BZ_SIM_KIND_GROUP_UPDATE;
}

static bz_sim_kind live_disconnect(bz_sim_traffic *t, int account, Blazz__V1__InboundEvent *ev)
{
    static const Blazz__V1__DisconnectReason reasons[] = {
        BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_TIMEOUT,
        BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_TIMEOUT,
        BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_ERROR,
        BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_INSTANCE_RESTART,
        BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_INSTANCE_RESTART,
        BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_USER_INITIATED,
        BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_UNKNOWN};
    bz_sim_rng *r = t->cur;
    bz_sim_account_state *s = &t->acc[account];
    Blazz__V1__DisconnectReason reason = reasons[bz_sim_rng_below(r, 7)];
    s->connected = false;
    s->reconnect_at = t->live_events + bz_sim_rng_between(r, 10, 60);
    /* An instance restart may bring the session back elsewhere (seed 003). */
    if (reason == BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_INSTANCE_RESTART &&
        t->o->instance_count > 1 && bz_sim_rng_chance(r, 0.5))
        s->instance = (s->instance + 1) % t->o->instance_count;
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS;
    ev->session_status =
        bz_sim_session_status(t, account, BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED,
                              reason, bz_sim_pick(r, &bz_sim_disconnect_details));
    return BZ_SIM_KIND_SESSION_STATUS;
}

/* An account whose re-sync (after a reconnect) still has batches to send. */
static int resyncing_account(const bz_sim_traffic *t)
{
    for (size_t a = 0; a < t->w->naccounts; a++)
        if (t->acc[a].resync_batch >= 0 && t->acc[a].connected)
            return (int)a;
    return -1;
}

bz_sim_kind bz_sim_live_event(bz_sim_traffic *t, int *account, Blazz__V1__InboundEvent *ev)
{
    t->live_events++;
    int syncing = resyncing_account(t);
    if (syncing >= 0) {
        bz_sim_account_state *s = &t->acc[syncing];
        *account = syncing;
        ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC;
        ev->history_sync = bz_sim_history_batch(t, syncing, s->resync_batch++);
        if (s->resync_batch >= t->batches)
            s->resync_batch = -1;
        return BZ_SIM_KIND_HISTORY_SYNC;
    }
    int back = due_reconnect(t);
    if (back >= 0) {
        *account = back;
        t->acc[back].connected = true;
        /* whatsapp-web.js syncs history on every 'ready'. */
        if (t->batches > 0) {
            t->acc[back].sync_runs++;
            t->acc[back].resync_batch = 0;
        }
        ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS;
        ev->session_status = bz_sim_session_status(
            t, back, BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED,
            BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_UNSPECIFIED, "");
        return BZ_SIM_KIND_SESSION_STATUS;
    }
    *account = pick_connected_account(t);
    /* Per mille: sessions flap rarely, each flap brings a re-sync. */
    int roll = (int)bz_sim_rng_below(t->cur, 1000);
    if (roll < 520)
        return live_private(t, *account, ev);
    if (roll < 720)
        return live_group(t, *account, ev);
    if (roll < 840)
        return live_echo(t, *account, ev);
    if (roll < 960) {
        bz_sim_pending_echo *p = pick_pending_echo(t);
        return p ? live_ack(t, p, account, ev) : live_private(t, *account, ev);
    }
    if (roll < 997)
        return live_group_update(t, *account, ev);
    return live_disconnect(t, *account, ev);
}
