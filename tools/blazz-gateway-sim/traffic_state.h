/*
 * traffic_state.h - what the files of the traffic generator share, and
 * nothing outside them sees (the simulator's other modules use traffic.h).
 *
 * One bz_sim_traffic holds the run's people and their conversations, all
 * drawn from the seed at creation (traffic_pool.c):
 *  - a contact pool per workspace: a phone (+62, unique within the
 *    workspace: the 8 trailing digits are index * 7919 mod 10^8), its
 *    @c.us JID and a push name (some contacts have none). Contacts below
 *    `known` have talked to the workspace before; live traffic mostly picks
 *    them and sometimes takes the next unknown one (a new customer), who
 *    with --lid-people may be a LID person (traffic_live.c);
 *  - groups per account (history groups plus a few that first show up live),
 *    with members from the pool and an admin mask, kept up to date by the
 *    group updates the generator emits;
 *  - the history plan: which synced chats are private and which are groups
 *    (every fifth), the same for every account;
 *  - a ring of messages sent from the phone awaiting receipts, and per
 *    account the last few message ids, for replies and reactions.
 * The event builders (traffic_messages.c, traffic_history.c,
 * traffic_live.c) allocate what they build in the arena, which
 * bz_sim_traffic_next (traffic.c) frees once the event is sealed. They draw
 * from `cur`: the generator's own rng, or a synced chat's while it is built.
 */
#ifndef BZ_SIM_TRAFFIC_STATE_H
#define BZ_SIM_TRAFFIC_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "event.h"
#include "sim.h"
#include "world.h"

#define HISTORY_BATCH_MAX 50 /* seed 002: 50 chats per batch */
#define GROUP_MEMBERS_MAX 24
#define RECENT_MAX 16
#define ECHO_RING 256
#define WAM_ID_SIZE 24

/* The same typedef as traffic.h's: the generator's files need nothing else
 * of it. */
typedef struct bz_sim_traffic bz_sim_traffic;

/* A LID person (--lid-people): whatsapp-web.js names them by their LID,
 * by their phone, or both once the gateway learned the pair. */
typedef enum bz_sim_lid_state {
    BZ_SIM_PHONE_ONLY = 0, /* a phone person: messages name the phone */
    BZ_SIM_LID_UNPAIRED,   /* messages come from the LID or from the phone */
    BZ_SIM_LID_PAIRED,     /* the mapping was sent: messages name both */
} bz_sim_lid_state;

typedef struct bz_sim_contact {
    char phone[20];
    char jid[40];
    char name[64];
    char lid[40]; /* "<digits>@lid" of a LID person, else "" */
    bz_sim_lid_state lid_state;
    int lid_messages;     /* sent while unpaired */
    bool lid_phone_first; /* the first of them named the phone, not the LID */
} bz_sim_contact;

typedef struct bz_sim_group {
    char jid[48];
    char name[96];
    char description[160];
    int members[GROUP_MEMBERS_MAX]; /* pool indices */
    int nmembers;
    uint32_t admins; /* bit i: members[i] is an admin */
    int64_t created_ms;
} bz_sim_group;

typedef struct bz_sim_account_state {
    bool connected;
    long reconnect_at; /* live event count at which a disconnected account comes back */
    int sync_runs;     /* history syncs started: one per connect */
    int resync_batch;  /* next batch of the re-sync after a reconnect; -1 = none */
    int instance;
    bz_sim_group *groups;
    int ngroups;
    char recent[RECENT_MAX][WAM_ID_SIZE];
    int nrecent;
    int recent_next;
} bz_sim_account_state;

typedef struct bz_sim_pending_echo {
    bool used;
    int account;
    int contact;
    Blazz__V1__DeliveryStatus status; /* last receipt emitted */
    char wam_id[WAM_ID_SIZE];
} bz_sim_pending_echo;

typedef struct bz_sim_chat_plan {
    bool is_group;
    int index; /* private: offset in the account's contact range; group: group index */
} bz_sim_chat_plan;

struct bz_sim_traffic {
    const bz_sim_options *o;
    const bz_sim_world *w;
    struct bz_sim_media_uploader *media; /* NULL: media stay references */
    bz_sim_rng rng;
    bz_sim_rng *cur;           /* what builders draw from: rng, or a synced chat's own */
    int64_t history_base_ms;   /* synced chats' times count back from here */
    size_t per_ws;
    size_t pool;               /* contacts per workspace */
    bz_sim_contact *contacts;  /* nworkspaces * pool */
    size_t *known;             /* per workspace */
    bz_sim_account_state *acc; /* per account */
    bz_sim_chat_plan *plan;    /* history_chats entries */
    int h_private;
    int h_group;
    int batches;               /* per account */
    size_t connect_next;
    size_t history_step;
    int stray_sent;
    char stray_session[BZ_SIM_SESSION_ID_MAX];
    long live_events;
    bz_sim_pending_echo echoes[ECHO_RING];
    int echo_next;
    bz_sim_arena arena;
};

typedef Blazz__V1__InboundMessage bz_sim_message;

/* ---- traffic_pool.c: the people, their groups and the history plan ------ */

/* Draw the history plan, the contact pools and every account's groups from
 * t->rng; on failure what was allocated is left for bz_sim_traffic_free. */
bz_status bz_sim_traffic_build_state(bz_sim_traffic *t, bz_error *err);

/* The contact pool (t->pool contacts) of account's workspace. */
bz_sim_contact *bz_sim_pool_of(bz_sim_traffic *t, int account);

/* ---- traffic_messages.c: one message, one participant ------------------- */

/* One of the account's recent message ids, drawn from t->cur; NULL: none yet. */
const char *bz_sim_recent_wam_id(bz_sim_traffic *t, bz_sim_account_state *s);

/* A message of a private chat with c, received or sent from the phone, of
 * any type (allow_special: reactions, revokes, vCards and locations too),
 * replying or reacting to quoted (NULL: none); NULL when out of memory. It
 * becomes one of the account's recent messages. */
bz_sim_message *bz_sim_private_message(bz_sim_traffic *t, int account, const bz_sim_contact *c,
                                       bool from_me, int64_t ts, bool allow_special,
                                       const char *quoted);

/* The same for group g, sent by one of its members or (from_me) the account. */
bz_sim_message *bz_sim_group_message(bz_sim_traffic *t, int account, const bz_sim_group *g,
                                     bool from_me, int64_t ts, bool allow_special,
                                     const char *quoted);

/* Member number member of group g as a participant; NULL when out of memory. */
Blazz__V1__GroupParticipant *bz_sim_participant_of(bz_sim_traffic *t, int account,
                                                   const bz_sim_group *g, int member);

/* ---- traffic_history.c: session status and history sync ---------------- */

/* The account's session status in state (reason and details for a
 * disconnect) on its current instance; NULL when out of memory. */
Blazz__V1__SessionStatus *bz_sim_session_status(bz_sim_traffic *t, int account,
                                                Blazz__V1__SessionState state,
                                                Blazz__V1__DisconnectReason reason,
                                                const char *details);

/* History-sync batch number batch of the account's current sync run; NULL
 * when out of memory. */
Blazz__V1__HistorySyncBatch *bz_sim_history_batch(bz_sim_traffic *t, int account, int batch);

/* ---- traffic_live.c: the endless live phase ------------------------------ */

/* An inbound text from the account's first contact, to be sent under the
 * stray session; *account = a connected account (0 when none is). */
bz_sim_kind bz_sim_stray_message(bz_sim_traffic *t, int *account, Blazz__V1__InboundEvent *ev);

/* The next live event into ev: a pending re-sync batch, a due reconnect, or
 * a message, receipt, group update or disconnect; *account = whose. */
bz_sim_kind bz_sim_live_event(bz_sim_traffic *t, int *account, Blazz__V1__InboundEvent *ev);

#endif
