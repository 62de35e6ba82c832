/*
 * traffic.c - the seeded traffic generator described in traffic.h: its
 * creation and the stream of events, phase by phase.
 *
 * Each call to bz_sim_traffic_next builds one event in the generator's
 * arena, seals it and frees the arena: a SessionStatus CONNECTED per
 * account first, then every account's history batches, interleaved
 * (traffic_history.c), then the stray messages and the live traffic
 * (traffic_live.c). The people the events are drawn from (traffic_pool.c)
 * and the state the generator's files share are described in
 * traffic_state.h.
 */
#include "traffic.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "media_upload.h"
#include "traffic_state.h"

bz_status bz_sim_traffic_new(const bz_sim_options *o, const bz_sim_world *w,
                             bz_sim_traffic **out, bz_error *err)
{
    bz_sim_traffic *t = calloc(1, sizeof *t);
    if (!t)
        return bz_fail(err, BZ_ERR_NOMEM, "traffic: out of memory");
    t->o = o;
    t->w = w;
    t->rng.state = o->seed;
    t->cur = &t->rng;
    t->history_base_ms = bz_wall_ms();
    t->per_ws = (size_t)o->accounts_per_workspace;
    snprintf(t->stray_session, sizeof t->stray_session, "sim-%s-stray", o->tag);
    bz_sim_arena_init(&t->arena);
    bz_status st = bz_sim_traffic_build_state(t, err);
    if (st != BZ_OK) {
        bz_sim_traffic_free(t);
        return st;
    }
    *out = t;
    return BZ_OK;
}

void bz_sim_traffic_free(bz_sim_traffic *t)
{
    if (!t)
        return;
    if (t->acc)
        for (size_t a = 0; a < t->w->naccounts; a++)
            free(t->acc[a].groups);
    free(t->acc);
    free(t->known);
    free(t->contacts);
    free(t->plan);
    bz_sim_arena_free(&t->arena);
    free(t);
}

void bz_sim_traffic_upload_media(bz_sim_traffic *t, struct bz_sim_media_uploader *u)
{
    t->media = u;
}

const char *bz_sim_traffic_phase(const bz_sim_traffic *t)
{
    if (t->connect_next < t->w->naccounts)
        return "connect";
    if (t->history_step < t->w->naccounts * (size_t)t->batches)
        return "history";
    return "live";
}

/* Whether the payload the builder chose was actually built. */
static bool payload_built(const Blazz__V1__InboundEvent *ev)
{
    switch (ev->payload_case) {
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE: return ev->message != NULL;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK: return ev->ack != NULL;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS: return ev->session_status != NULL;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC: return ev->history_sync != NULL;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE: return ev->group_update != NULL;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE: return ev->contact_update != NULL;
    default: return false;
    }
}

bz_status bz_sim_traffic_next(bz_sim_traffic *t, bz_sim_event *out, bz_error *err)
{
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    size_t n = t->w->naccounts;
    int account;
    bz_sim_kind kind;
    const char *session_id = NULL;
    if (t->connect_next < n) {
        account = (int)t->connect_next++;
        t->acc[account].connected = true;
        ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS;
        ev.session_status = bz_sim_session_status(
            t, account, BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED,
            BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_UNSPECIFIED, "");
        kind = BZ_SIM_KIND_SESSION_STATUS;
    } else if (t->history_step < n * (size_t)t->batches) {
        account = (int)(t->history_step % n);
        int batch = (int)(t->history_step / n);
        t->history_step++;
        ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC;
        ev.history_sync = bz_sim_history_batch(t, account, batch);
        kind = BZ_SIM_KIND_HISTORY_SYNC;
    } else if (t->stray_sent < t->o->stray_events) {
        t->stray_sent++;
        kind = bz_sim_stray_message(t, &account, &ev);
        session_id = t->stray_session;
    } else {
        kind = bz_sim_live_event(t, &account, &ev);
    }
    if (!session_id)
        session_id = t->w->accounts[account].session_id;
    /* a live message's bytes (not a stray's: no gateway serves its session) */
    if (session_id != t->stray_session && ev.message &&
        (kind == BZ_SIM_KIND_MESSAGE_PRIVATE || kind == BZ_SIM_KIND_MESSAGE_GROUP))
        bz_sim_media_attach(t->media, &t->arena, session_id, ev.message);
    bz_status st;
    if (!payload_built(&ev) || t->arena.failed)
        st = bz_fail(err, BZ_ERR_NOMEM, "generate %s event: out of memory", bz_sim_kind_name(kind));
    else
        st = bz_sim_event_seal(&t->arena, &ev, kind, session_id, bz_wall_ms(), out, err);
    bz_sim_arena_free(&t->arena);
    return st;
}
