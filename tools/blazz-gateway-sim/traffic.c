/*
 * traffic.c - the seeded traffic generator described in traffic.h.
 *
 * State, all drawn from the seed at creation:
 *  - a contact pool per workspace: a phone (+62, unique within the
 *    workspace: the 8 trailing digits are index * 7919 mod 10^8), its
 *    @c.us JID and a push name (some contacts have none). Contacts below
 *    `known` have talked to the workspace before; live traffic mostly picks
 *    them and sometimes takes the next unknown one (a new customer);
 *  - groups per account (history groups plus a few that first show up live),
 *    with members from the pool and an admin mask, kept up to date by the
 *    group updates the generator emits;
 *  - the history plan: which synced chats are private and which are groups
 *    (every fifth), the same for every account;
 *  - a ring of messages sent from the phone awaiting receipts, and per
 *    account the last few message ids, for replies and reactions.
 * Each call to bz_sim_traffic_next builds one event in an arena, seals it
 * and frees the arena.
 */
#include "traffic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "corpus.h"

#define HISTORY_BATCH_MAX 50 /* seed 002: 50 chats per batch */
#define LIVE_EXTRA_CONTACTS 200
#define LIVE_EXTRA_GROUPS 3
#define GROUP_MEMBERS_MAX 24
#define RECENT_MAX 16
#define ECHO_RING 256
#define WAM_ID_SIZE 24

typedef struct contact {
    char phone[20];
    char jid[40];
    char name[64];
} contact;

typedef struct group {
    char jid[48];
    char name[96];
    char description[160];
    int members[GROUP_MEMBERS_MAX]; /* pool indices */
    int nmembers;
    uint32_t admins; /* bit i: members[i] is an admin */
    int64_t created_ms;
} group;

typedef struct account_state {
    bool connected;
    long reconnect_at; /* live event count at which a disconnected account comes back */
    int sync_runs;     /* history syncs started: one per connect */
    int resync_batch;  /* next batch of the re-sync after a reconnect; -1 = none */
    int instance;
    group *groups;
    int ngroups;
    char recent[RECENT_MAX][WAM_ID_SIZE];
    int nrecent;
    int recent_next;
} account_state;

typedef struct pending_echo {
    bool used;
    int account;
    int contact;
    Blazz__V1__DeliveryStatus status; /* last receipt emitted */
    char wam_id[WAM_ID_SIZE];
} pending_echo;

typedef struct chat_plan {
    bool is_group;
    int index; /* private: offset in the account's contact range; group: group index */
} chat_plan;

struct bz_sim_traffic {
    const bz_sim_options *o;
    const bz_sim_world *w;
    bz_sim_rng rng;
    bz_sim_rng *cur;    /* what builders draw from: rng, or a synced chat's own */
    int64_t history_base_ms; /* synced chats' times count back from here */
    size_t per_ws;
    size_t pool;        /* contacts per workspace */
    contact *contacts;  /* nworkspaces * pool */
    size_t *known;      /* per workspace */
    account_state *acc; /* per account */
    chat_plan *plan;    /* history_chats entries */
    int h_private;
    int h_group;
    int batches;        /* per account */
    size_t connect_next;
    size_t history_step;
    int stray_sent;
    char stray_session[BZ_SIM_SESSION_ID_MAX];
    long live_events;
    pending_echo echoes[ECHO_RING];
    int echo_next;
    bz_sim_arena arena;
};

typedef Blazz__V1__InboundMessage message;

/* ---- the world in memory ---------------------------------------------- */

static const char *const MOBILE_PREFIXES[] = {"811", "812", "813", "821", "822", "852",
                                              "853", "857", "877", "878", "895", "896"};

static void make_contact(bz_sim_rng *r, size_t index, contact *c)
{
    const char *prefix = MOBILE_PREFIXES[bz_sim_rng_below(r, 12)];
    unsigned long long digits = (unsigned long long)((index * 7919u) % 100000000u);
    snprintf(c->phone, sizeof c->phone, "+62%s%08llu", prefix, digits);
    snprintf(c->jid, sizeof c->jid, "62%s%08llu@c.us", prefix, digits);
    if (bz_sim_rng_chance(r, 0.1))
        c->name[0] = '\0'; /* no push name: the CRM shows the number */
    else if (bz_sim_rng_chance(r, 0.7))
        snprintf(c->name, sizeof c->name, "%s %s", bz_sim_pick(r, &bz_sim_first_names),
                 bz_sim_pick(r, &bz_sim_last_names));
    else
        snprintf(c->name, sizeof c->name, "%s", bz_sim_pick(r, &bz_sim_first_names));
}

static contact *pool_of(bz_sim_traffic *t, int account)
{
    return &t->contacts[(size_t)t->w->accounts[account].workspace_index * t->pool];
}

static void make_group(bz_sim_traffic *t, size_t global_index, group *g, int64_t now)
{
    bz_sim_rng *r = &t->rng;
    unsigned long long digits =
        (unsigned long long)((global_index * 7919u + t->o->seed) % 1000000000000ull);
    snprintf(g->jid, sizeof g->jid, "120363%012llu@g.us", digits);
    snprintf(g->name, sizeof g->name, "%s", bz_sim_pick(r, &bz_sim_group_names));
    snprintf(g->description, sizeof g->description, "Grup %s. Harap sopan dan tidak spam.",
             g->name);
    g->created_ms = now - bz_sim_rng_between(r, 30, 900) * 86400000LL;
    g->nmembers = (int)bz_sim_rng_between(r, 3, 12);
    for (int i = 0; i < g->nmembers; i++)
        g->members[i] = (int)bz_sim_rng_below(r, t->pool);
    g->admins = 1u; /* the first member created it */
    if (bz_sim_rng_chance(r, 0.3))
        g->admins |= 2u;
}

static void plan_history(bz_sim_traffic *t)
{
    int n = t->o->history_chats;
    for (int c = 0; c < n; c++) {
        bool is_group = c % 5 == 4;
        t->plan[c].is_group = is_group;
        t->plan[c].index = is_group ? t->h_group++ : t->h_private++;
    }
    t->batches = (n + HISTORY_BATCH_MAX - 1) / HISTORY_BATCH_MAX;
}

static bz_status build_state(bz_sim_traffic *t, bz_error *err)
{
    const bz_sim_world *w = t->w;
    int64_t now = bz_wall_ms();
    t->plan = calloc((size_t)t->o->history_chats + 1, sizeof *t->plan);
    if (!t->plan)
        return bz_fail(err, BZ_ERR_NOMEM, "traffic: history plan: out of memory");
    plan_history(t);
    t->pool = t->per_ws * (size_t)t->h_private + LIVE_EXTRA_CONTACTS;
    t->contacts = calloc(w->nworkspaces * t->pool, sizeof *t->contacts);
    t->known = calloc(w->nworkspaces, sizeof *t->known);
    t->acc = calloc(w->naccounts, sizeof *t->acc);
    if (!t->contacts || !t->known || !t->acc)
        return bz_fail(err, BZ_ERR_NOMEM, "traffic: contact pool: out of memory");
    for (size_t k = 0; k < w->nworkspaces; k++) {
        for (size_t i = 0; i < t->pool; i++)
            make_contact(&t->rng, i, &t->contacts[k * t->pool + i]);
        t->known[k] = t->per_ws * (size_t)t->h_private;
    }
    size_t group_index = 0;
    for (size_t a = 0; a < w->naccounts; a++) {
        account_state *s = &t->acc[a];
        s->instance = w->accounts[a].instance_index;
        s->resync_batch = -1;
        s->ngroups = t->h_group + LIVE_EXTRA_GROUPS;
        s->groups = calloc((size_t)s->ngroups, sizeof *s->groups);
        if (!s->groups)
            return bz_fail(err, BZ_ERR_NOMEM, "traffic: groups: out of memory");
        for (int g = 0; g < s->ngroups; g++)
            make_group(t, group_index++, &s->groups[g], now);
    }
    return BZ_OK;
}

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
    bz_status st = build_state(t, err);
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

const char *bz_sim_traffic_phase(const bz_sim_traffic *t)
{
    if (t->connect_next < t->w->naccounts)
        return "connect";
    if (t->history_step < t->w->naccounts * (size_t)t->batches)
        return "history";
    return "live";
}

/* ---- messages ----------------------------------------------------------- */

/* An array of n pointers (protobuf-c repeated message fields). */
static void *alloc_pointers(bz_sim_traffic *t, size_t n)
{
    return bz_sim_arena_alloc(&t->arena, n * sizeof(void *));
}

static void new_wam_id(bz_sim_traffic *t, bool from_me, char out[WAM_ID_SIZE])
{
    unsigned long long v = (unsigned long long)bz_sim_rng_next(t->cur);
    snprintf(out, WAM_ID_SIZE, from_me ? "3EB0%016llX" : "3A%016llX", v);
}

static void remember_recent(account_state *s, const char *wam_id)
{
    snprintf(s->recent[s->recent_next], WAM_ID_SIZE, "%s", wam_id);
    s->recent_next = (s->recent_next + 1) % RECENT_MAX;
    if (s->nrecent < RECENT_MAX)
        s->nrecent++;
}

static const char *recent_wam_id(bz_sim_traffic *t, account_state *s)
{
    if (s->nrecent == 0)
        return NULL;
    return s->recent[bz_sim_rng_below(t->cur, (uint64_t)s->nrecent)];
}

static Blazz__V1__MediaInfo *new_media(bz_sim_traffic *t, const char *mime, int64_t size,
                                       const char *caption)
{
    Blazz__V1__MediaInfo *m = bz_sim_arena_alloc(&t->arena, sizeof *m);
    if (!m)
        return NULL;
    blazz__v1__media_info__init(m);
    bz_sim_arena *a = &t->arena;
    unsigned long long h1 = (unsigned long long)bz_sim_rng_next(t->cur);
    unsigned long long h2 = (unsigned long long)bz_sim_rng_next(t->cur);
    m->mime_type = bz_sim_arena_strdup(a, mime);
    m->url = bz_sim_arena_printf(a, "https://mmg.whatsapp.net/v/t62.7118-24/%llu_n.enc?ccb=11-4",
                                 h1 % 100000000000ull);
    m->sha256 = bz_sim_arena_printf(a, "%016llx%016llx", h1, h2);
    m->caption = bz_sim_arena_strdup(a, caption);
    m->size_bytes = size;
    return m;
}

/* Give msg a type and content: one of WhatsApp's types with realistic
 * weights; replies and reactions refer to quoted (NULL: none to refer to). */
static bool fill_content(bz_sim_traffic *t, message *msg, const bz_sim_words *bodies,
                         bool allow_special, const char *quoted)
{
    bz_sim_rng *r = t->cur;
    bz_sim_arena *a = &t->arena;
    int roll = (int)bz_sim_rng_below(r, 100);
    if (!allow_special && roll >= 89)
        roll = 0; /* text instead of reaction / revoked / vcard / location */
    if (roll < 71 || (roll >= 95 && roll < 98 && !quoted)) {
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
        msg->raw_type = (char *)"chat";
        msg->body = bz_sim_arena_strdup(a, bz_sim_pick(r, bodies));
        if (quoted && bz_sim_rng_chance(r, 0.1))
            msg->quoted_wam_id = bz_sim_arena_strdup(a, quoted);
        msg->is_forwarded = bz_sim_rng_chance(r, 0.03);
        return true;
    }
    if (roll < 80) {
        const char *caption = bz_sim_pick(r, &bz_sim_captions);
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE;
        msg->raw_type = (char *)"image";
        msg->body = bz_sim_arena_strdup(a, caption);
        msg->media = new_media(t, "image/jpeg", bz_sim_rng_between(r, 40000, 900000), caption);
    } else if (roll < 85) {
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE;
        msg->raw_type = (char *)"ptt";
        msg->media = new_media(t, "audio/ogg; codecs=opus", bz_sim_rng_between(r, 5000, 300000), "");
        if (msg->media)
            msg->media->duration_seconds = (int32_t)bz_sim_rng_between(r, 2, 120);
    } else if (roll < 88) {
        const char *file = bz_sim_pick(r, &bz_sim_documents);
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_DOCUMENT;
        msg->raw_type = (char *)"document";
        msg->media = new_media(t, strstr(file, ".pdf") ? "application/pdf"
                                                       : "application/octet-stream",
                               bz_sim_rng_between(r, 20000, 4000000), "");
        if (msg->media)
            msg->media->filename = bz_sim_arena_strdup(a, file);
    } else if (roll < 91) {
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_STICKER;
        msg->raw_type = (char *)"sticker";
        msg->media = new_media(t, "image/webp", bz_sim_rng_between(r, 8000, 90000), "");
    } else if (roll < 93) {
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VIDEO;
        msg->raw_type = (char *)"video";
        msg->media = new_media(t, "video/mp4", bz_sim_rng_between(r, 500000, 16000000), "");
        if (msg->media)
            msg->media->duration_seconds = (int32_t)bz_sim_rng_between(r, 3, 90);
    } else if (roll < 95) {
        char place[160];
        snprintf(place, sizeof place, "%s", bz_sim_pick(r, &bz_sim_places));
        char *save = NULL;
        const char *name = strtok_r(place, "|", &save);
        const char *address = strtok_r(NULL, "|", &save);
        const char *lat = strtok_r(NULL, "|", &save);
        const char *lon = strtok_r(NULL, "|", &save);
        Blazz__V1__Location *loc = bz_sim_arena_alloc(a, sizeof *loc);
        if (!loc)
            return false;
        blazz__v1__location__init(loc);
        loc->name = bz_sim_arena_strdup(a, name ? name : "");
        loc->address = bz_sim_arena_strdup(a, address ? address : "");
        loc->latitude = lat ? strtod(lat, NULL) : 0.0;
        loc->longitude = lon ? strtod(lon, NULL) : 0.0;
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_LOCATION;
        msg->raw_type = (char *)"location";
        msg->location = loc;
        return true;
    } else if (roll < 98) {
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION;
        msg->raw_type = (char *)"reaction";
        msg->reaction_emoji = bz_sim_arena_strdup(a, bz_sim_pick(r, &bz_sim_emojis));
        msg->target_wam_id = bz_sim_arena_strdup(a, quoted);
        return true;
    } else if (roll < 99) {
        contact *c = &t->contacts[bz_sim_rng_below(r, t->pool)];
        const char *name = c->name[0] ? c->name : c->phone;
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_CONTACTS;
        msg->raw_type = (char *)"vcard";
        msg->vcards = bz_sim_arena_alloc(a, sizeof *msg->vcards);
        if (!msg->vcards)
            return false;
        msg->n_vcards = 1;
        msg->vcards[0] = bz_sim_arena_printf(
            a, "BEGIN:VCARD\nVERSION:3.0\nFN:%s\nTEL;type=CELL;waid=%s:%s\nEND:VCARD", name,
            c->phone + 1, c->phone);
        return true;
    } else {
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REVOKED;
        msg->raw_type = (char *)"revoked";
        msg->body = (char *)"";
        return true;
    }
    msg->has_media = true;
    return msg->media != NULL;
}

/* A message of a private chat with c, received or sent from the phone. */
static message *private_message(bz_sim_traffic *t, int account, const contact *c, bool from_me,
                                int64_t ts, bool allow_special, const char *quoted)
{
    message *msg = bz_sim_arena_alloc(&t->arena, sizeof *msg);
    if (!msg)
        return NULL;
    blazz__v1__inbound_message__init(msg);
    char wam_id[WAM_ID_SIZE];
    new_wam_id(t, from_me, wam_id);
    msg->wam_id = bz_sim_arena_strdup(&t->arena, wam_id);
    msg->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    msg->contact_phone = (char *)c->phone;
    msg->contact_jid = (char *)c->jid;
    msg->contact_name = (char *)c->name;
    msg->from_me = from_me;
    msg->timestamp_ms = ts;
    if (!fill_content(t, msg, from_me ? &bz_sim_outbound_bodies : &bz_sim_inbound_bodies,
                      allow_special, quoted))
        return NULL;
    remember_recent(&t->acc[account], wam_id);
    return msg;
}

/* A message in group g, by one of its members or (from_me) the account. */
static message *group_message(bz_sim_traffic *t, int account, const group *g, bool from_me,
                              int64_t ts, bool allow_special, const char *quoted)
{
    message *msg = bz_sim_arena_alloc(&t->arena, sizeof *msg);
    if (!msg)
        return NULL;
    blazz__v1__inbound_message__init(msg);
    char wam_id[WAM_ID_SIZE];
    new_wam_id(t, from_me, wam_id);
    msg->wam_id = bz_sim_arena_strdup(&t->arena, wam_id);
    msg->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
    msg->group_jid = (char *)g->jid;
    msg->group_name = (char *)g->name;
    msg->from_me = from_me;
    msg->timestamp_ms = ts;
    if (!from_me) {
        const contact *sender =
            &pool_of(t, account)[g->members[bz_sim_rng_below(t->cur, (uint64_t)g->nmembers)]];
        msg->sender_phone = (char *)sender->phone;
        msg->sender_jid = (char *)sender->jid;
        msg->sender_name = (char *)sender->name;
    }
    if (!fill_content(t, msg, from_me ? &bz_sim_outbound_bodies : &bz_sim_group_bodies,
                      allow_special, quoted))
        return NULL;
    remember_recent(&t->acc[account], wam_id);
    return msg;
}

static Blazz__V1__GroupParticipant *participant_of(bz_sim_traffic *t, int account, const group *g,
                                                   int member)
{
    Blazz__V1__GroupParticipant *p = bz_sim_arena_alloc(&t->arena, sizeof *p);
    if (!p)
        return NULL;
    blazz__v1__group_participant__init(p);
    const contact *c = &pool_of(t, account)[g->members[member]];
    p->phone = (char *)c->phone;
    p->jid = (char *)c->jid;
    p->name = (char *)c->name;
    p->is_admin = (g->admins >> member) & 1u;
    p->is_super_admin = member == 0;
    p->joined_at_ms = g->created_ms + member * 3600000LL;
    return p;
}

/* ---- connect and history ------------------------------------------------ */

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

static Blazz__V1__SessionStatus *session_status(bz_sim_traffic *t, int account,
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
    const chat_plan *plan = &t->plan[chat];
    const bz_sim_account *acct = &t->w->accounts[account];
    int nmsg = t->o->history_messages;
    int unread = bz_sim_rng_chance(r, 0.3) && nmsg > 0
                     ? (int)bz_sim_rng_between(r, 1, nmsg < 5 ? nmsg : 5) : 0;
    /* Chats come newest first; each is older than the one before. */
    sc->last_activity_ms = now - (int64_t)chat * 47 * 60000 - bz_sim_rng_between(r, 0, 2400000);
    sc->unread_count = unread;
    sc->archived = bz_sim_rng_chance(r, 0.05);
    const contact *c = NULL;
    const group *g = NULL;
    if (plan->is_group) {
        g = &t->acc[account].groups[plan->index];
        sc->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
        sc->group_jid = (char *)g->jid;
        sc->group_name = (char *)g->name;
        sc->group_description = (char *)g->description;
        sc->group_owner_phone = (char *)pool_of(t, account)[g->members[0]].phone;
        sc->participants = alloc_pointers(t, (size_t)g->nmembers);
        if (!sc->participants)
            return NULL;
        for (int m = 0; m < g->nmembers; m++)
            if (!(sc->participants[sc->n_participants++] = participant_of(t, account, g, m)))
                return NULL;
    } else {
        c = &pool_of(t, account)[(size_t)acct->account_index * (size_t)t->h_private +
                                 (size_t)plan->index];
        sc->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
        sc->contact_phone = (char *)c->phone;
        sc->contact_name = (char *)c->name;
        sc->contact_jid = (char *)c->jid;
    }
    if (nmsg == 0)
        return sc;
    sc->messages = alloc_pointers(t, (size_t)nmsg);
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
        message *msg = plan->is_group
                           ? group_message(t, account, g, from_me, stamps[i], true, quoted)
                           : private_message(t, account, c, from_me, stamps[i], true, quoted);
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

static Blazz__V1__HistorySyncBatch *history_batch(bz_sim_traffic *t, int account, int batch)
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
    b->chats = alloc_pointers(t, (size_t)(last - first));
    if (!b->chats)
        return NULL;
    for (int c = first; c < last; c++)
        if (!(b->chats[b->n_chats++] = synced_chat(t, account, c)))
            return NULL;
    return b;
}

/* ---- live traffic ------------------------------------------------------- */

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

static const contact *live_contact(bz_sim_traffic *t, int account)
{
    size_t ws = (size_t)t->w->accounts[account].workspace_index;
    bz_sim_rng *r = t->cur;
    if (t->known[ws] == 0 || (t->known[ws] < t->pool && bz_sim_rng_chance(r, 0.15)))
        return &pool_of(t, account)[t->known[ws]++];
    return &pool_of(t, account)[bz_sim_rng_below(r, t->known[ws])];
}

static bz_sim_kind live_private(bz_sim_traffic *t, int account, Blazz__V1__InboundEvent *ev)
{
    message *msg = private_message(t, account, live_contact(t, account), false, bz_wall_ms(), true,
                                   recent_wam_id(t, &t->acc[account]));
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev->message = msg;
    return BZ_SIM_KIND_MESSAGE_PRIVATE;
}

static bz_sim_kind live_group(bz_sim_traffic *t, int account, Blazz__V1__InboundEvent *ev)
{
    account_state *s = &t->acc[account];
    const group *g = &s->groups[bz_sim_rng_below(t->cur, (uint64_t)s->ngroups)];
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev->message = group_message(t, account, g, false, bz_wall_ms(), true, recent_wam_id(t, s));
    return BZ_SIM_KIND_MESSAGE_GROUP;
}

/* An inbound text from the account's first contact, to be sent under the
 * stray session instead of the account's. */
static bz_sim_kind stray_message(bz_sim_traffic *t, int *account, Blazz__V1__InboundEvent *ev)
{
    int a = pick_connected_account(t);
    *account = a >= 0 ? a : 0;
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev->message = private_message(t, *account, &pool_of(t, *account)[0], false, bz_wall_ms(),
                                  false, NULL);
    return BZ_SIM_KIND_MESSAGE_PRIVATE;
}

/* A message typed on the phone: its receipts follow later in the stream. */
static bz_sim_kind live_echo(bz_sim_traffic *t, int account, Blazz__V1__InboundEvent *ev)
{
    size_t ws = (size_t)t->w->accounts[account].workspace_index;
    int ci = t->known[ws] ? (int)bz_sim_rng_below(t->cur, t->known[ws]) : 0;
    message *msg = private_message(t, account, &pool_of(t, account)[ci], true, bz_wall_ms(), false,
                                   NULL);
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev->message = msg;
    if (msg) {
        pending_echo *p = &t->echoes[t->echo_next];
        t->echo_next = (t->echo_next + 1) % ECHO_RING;
        p->used = true;
        p->account = account;
        p->contact = ci;
        p->status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_PENDING;
        snprintf(p->wam_id, sizeof p->wam_id, "%s", msg->wam_id);
    }
    return BZ_SIM_KIND_MESSAGE_ECHO;
}

static pending_echo *pick_pending_echo(bz_sim_traffic *t)
{
    int start = (int)bz_sim_rng_below(t->cur, ECHO_RING);
    for (int i = 0; i < ECHO_RING; i++) {
        pending_echo *p = &t->echoes[(start + i) % ECHO_RING];
        if (p->used && t->acc[p->account].connected)
            return p;
    }
    return NULL;
}

/* The next receipt of a message sent from the phone; now and then a stale
 * one (a lower status after a higher one), as receipts really arrive. */
static bz_sim_kind live_ack(bz_sim_traffic *t, pending_echo *p, int *account,
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
    const contact *c = &pool_of(t, p->account)[p->contact];
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
    account_state *s = &t->acc[account];
    group *g = &s->groups[bz_sim_rng_below(r, (uint64_t)s->ngroups)];
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
    u->owner_phone = (char *)pool_of(t, account)[g->members[0]].phone;
    u->actor_phone = (char *)pool_of(t, account)[g->members[0]].phone;
    if (member >= 0) {
        u->participants = alloc_pointers(t, 1);
        if (!u->participants)
            return BZ_SIM_KIND_GROUP_UPDATE;
        u->participants[0] = participant_of(t, account, g, member);
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
    account_state *s = &t->acc[account];
    Blazz__V1__DisconnectReason reason = reasons[bz_sim_rng_below(r, 7)];
    s->connected = false;
    s->reconnect_at = t->live_events + bz_sim_rng_between(r, 10, 60);
    /* An instance restart may bring the session back elsewhere (seed 003). */
    if (reason == BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_INSTANCE_RESTART &&
        t->o->instance_count > 1 && bz_sim_rng_chance(r, 0.5))
        s->instance = (s->instance + 1) % t->o->instance_count;
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS;
    ev->session_status =
        session_status(t, account, BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED, reason,
                       bz_sim_pick(r, &bz_sim_disconnect_details));
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

static bz_sim_kind live_event(bz_sim_traffic *t, int *account, Blazz__V1__InboundEvent *ev)
{
    t->live_events++;
    int syncing = resyncing_account(t);
    if (syncing >= 0) {
        account_state *s = &t->acc[syncing];
        *account = syncing;
        ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC;
        ev->history_sync = history_batch(t, syncing, s->resync_batch++);
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
        ev->session_status = session_status(t, back, BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED,
                                            BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_UNSPECIFIED,
                                            "");
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
        pending_echo *p = pick_pending_echo(t);
        return p ? live_ack(t, p, account, ev) : live_private(t, *account, ev);
    }
    if (roll < 997)
        return live_group_update(t, *account, ev);
    return live_disconnect(t, *account, ev);
}

/* ---- the stream ----------------------------------------------------------- */

/* Whether the payload the builder chose was actually built. */
static bool payload_built(const Blazz__V1__InboundEvent *ev)
{
    switch (ev->payload_case) {
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE: return ev->message != NULL;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK: return ev->ack != NULL;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS: return ev->session_status != NULL;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC: return ev->history_sync != NULL;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE: return ev->group_update != NULL;
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
        ev.session_status = session_status(t, account, BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED,
                                           BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_UNSPECIFIED,
                                           "");
        kind = BZ_SIM_KIND_SESSION_STATUS;
    } else if (t->history_step < n * (size_t)t->batches) {
        account = (int)(t->history_step % n);
        int batch = (int)(t->history_step / n);
        t->history_step++;
        ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC;
        ev.history_sync = history_batch(t, account, batch);
        kind = BZ_SIM_KIND_HISTORY_SYNC;
    } else if (t->stray_sent < t->o->stray_events) {
        t->stray_sent++;
        kind = stray_message(t, &account, &ev);
        session_id = t->stray_session;
    } else {
        kind = live_event(t, &account, &ev);
    }
    if (!session_id)
        session_id = t->w->accounts[account].session_id;
    bz_status st;
    if (!payload_built(&ev) || t->arena.failed)
        st = bz_fail(err, BZ_ERR_NOMEM, "generate %s event: out of memory", bz_sim_kind_name(kind));
    else
        st = bz_sim_event_seal(&t->arena, &ev, kind, session_id, bz_wall_ms(), out, err);
    bz_sim_arena_free(&t->arena);
    return st;
}
