/*
 * apply_group.c - whatsapp_groups: name, description, owner and the
 * participants list ([{phone, name, isAdmin, isSuperAdmin, joinedAt, jid}],
 * the seeds' JSON schema plus the JID, and Meta's BSUID when it gave one),
 * kept from messages, history sync and group updates.
 *
 * A group update with participants_snapshot replaces the list; otherwise its
 * participants are the members the action affected: added (appended unless
 * present), removed, promoted or demoted (isAdmin). A member is matched by
 * the first of JID, phone and BSUID both sides have. The list is kept
 * sorted by the first of them it has: its order carries no meaning, and a
 * canonical order makes a replayed sequence of additions and removals end
 * in the very same JSON.
 *
 * A group update also sets the invite code, the settings ({announce,
 * restrict}), the picture (group_metadata.picture_url), LEFT (this
 * account left or was removed) sets group_metadata.left_at, SUSPENDED
 * group_metadata.suspended_at (Meta stopped activity in the group) and
 * SUSPENSION_CLEARED removes it. A join request (JOIN_REQUESTED) waits in
 * group_metadata.join_requests, by its id, until it is withdrawn
 * (JOIN_REQUEST_REVOKED) or its person joins (PARTICIPANTS_ADDED); it goes
 * by its person's member clock, as their joins and leaves do. Each update
 * that changed the row emits one GROUP_UPDATED (webhook group.updated) with
 * the columns it changed, the members it named and the values after it.
 * Updates apply once (update_clock.c, group_metadata.clock): a replayed
 * update, or one older than what the row already shows, changes nothing
 * and emits nothing, while several updates within one timestamp all
 * apply. Every update admitted is recorded, also one that changed
 * nothing, so its replay is skipped whatever happened in between. A
 * change of members alone goes by each member's clock instead
 * (group_metadata.member_clocks, one per JID, phone and BSUID, and
 * members_listed_at, the last full list's time): a member's older change
 * is skipped, another member's newer one does not hide it, and the event
 * names the members it applied. History
 * sync refreshes the name and the members too (once per sync run), and live
 * messages the name until the group's first update, without an event (they
 * report what is, not a change).
 */
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/timespec.h"

static json_t *participant_json(const Blazz__V1__GroupParticipant *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "phone", json_string(p->phone ? p->phone : ""));
    json_object_set_new(o, "name", json_string(p->name ? p->name : ""));
    json_object_set_new(o, "isAdmin", json_boolean(p->is_admin || p->is_super_admin));
    json_object_set_new(o, "isSuperAdmin", json_boolean(p->is_super_admin));
    if (p->joined_at_ms > 0) {
        char iso[32];
        bz_time_format(p->joined_at_ms, iso, sizeof iso);
        json_object_set_new(o, "joinedAt", json_string(iso));
    } else {
        json_object_set_new(o, "joinedAt", json_null());
    }
    if (p->jid && *p->jid)
        json_object_set_new(o, "jid", json_string(p->jid));
    if (p->bsuid && *p->bsuid)
        json_object_set_new(o, "bsuid", json_string(p->bsuid));
    return o;
}

static const char *member_key(json_t *member)
{
    const char *keys[] = {"jid", "phone", "bsuid"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *id = json_string_value(json_object_get(member, keys[i]));
        if (id && *id)
            return id;
    }
    return "";
}

static int compare_members(const void *a, const void *b)
{
    return strcmp(member_key(*(json_t *const *)a), member_key(*(json_t *const *)b));
}

/* Reorder list in place by member key. */
static void sort_members(json_t *list)
{
    size_t n = json_array_size(list);
    if (n < 2)
        return;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the elements are pointers */
    json_t **items = malloc(n * sizeof *items);
    if (!items)
        return; /* unsorted is still correct, only not canonical */
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(list, i));
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the elements are pointers */
    qsort(items, n, sizeof *items, compare_members);
    json_array_clear(list);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, items[i]);
    free(items);
}

static json_t *participants_json(Blazz__V1__GroupParticipant *const *ps, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, participant_json(ps[i]));
    return arr;
}

static void replace_text(char **field, const char *value, int *dirty)
{
    if (!value || !*value || strcmp(*field ? *field : "", value) == 0)
        return;
    *field = (char *)value; /* the command outlives the batch */
    *dirty = 1;
}

static void replace_participants(cs_group *g, json_t *list)
{
    sort_members(list);
    if (json_equal(g->participants, list)) {
        json_decref(list);
        return;
    }
    json_decref(g->participants);
    g->participants = list;
    g->dirty = 1;
}

void cs_group_refresh(cs_group *g, const char *name, const char *description,
                      const char *owner_phone, Blazz__V1__GroupParticipant *const *participants,
                      size_t nparticipants)
{
    if (!g)
        return;
    replace_text(&g->name, name, &g->dirty);
    replace_text(&g->description, description, &g->dirty);
    replace_text(&g->owner_phone, owner_phone, &g->dirty);
    if (nparticipants > 0)
        replace_participants(g, participants_json(participants, nparticipants));
}

/* Messages carry the group's name as the gateway saw it when they were
 * sent; a replayed message would then undo a later subject change that its
 * replayed update no longer applies (the clock stops it). */
void cs_group_name_from_message(cs_group *g, const char *name)
{
    if (g && !json_object_get(g->meta, "clock"))
        replace_text(&g->name, name, &g->dirty);
}

/* 1 or 0 when both name the member by this kind of id, -1 when not. */
static int same_id(json_t *member, const char *key, const char *id)
{
    const char *mine = json_string_value(json_object_get(member, key));
    if (!mine || !*mine || !id || !*id)
        return -1;
    return strcmp(mine, id) == 0;
}

/* By the first kind of id both name the member by: JID, phone, BSUID (a
 * Meta member known by its BSUID in one update and its phone in another). */
static int same_member(json_t *member, const Blazz__V1__GroupParticipant *p)
{
    int same = same_id(member, "jid", p->jid);
    if (same < 0)
        same = same_id(member, "phone", p->phone);
    if (same < 0)
        same = same_id(member, "bsuid", p->bsuid);
    return same > 0;
}

/* Index of p in the list, or -1. */
static long find_member(json_t *list, const Blazz__V1__GroupParticipant *p)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    if (same_member(v, p))
        return (long)i;
    return -1;
}

static void change_members(cs_group *g, const Blazz__V1__GroupUpdate *u,
                           Blazz__V1__GroupParticipant *const *members, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const Blazz__V1__GroupParticipant *p = members[i];
        long at = find_member(g->participants, p);
        switch (u->action) {
        case BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_ADDED:
            if (at < 0) {
                json_array_append_new(g->participants, participant_json(p));
                sort_members(g->participants);
                g->dirty = 1;
            }
            break;
        case BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_REMOVED:
            if (at >= 0) {
                json_array_remove(g->participants, (size_t)at);
                g->dirty = 1;
            }
            break;
        case BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_PROMOTED:
        case BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_DEMOTED: {
            int admin = u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_PROMOTED;
            json_t *member = at >= 0 ? json_array_get(g->participants, (size_t)at) : NULL;
            if (member && json_is_true(json_object_get(member, "isAdmin")) != admin) {
                json_object_set_new(member, "isAdmin", json_boolean(admin));
                g->dirty = 1;
            }
            break;
        }
        default:
            break;
        }
    }
}

static int same_text(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static int same_json(json_t *a, json_t *b)
{
    return (!a && !b) || (a && b && json_equal(a, b));
}

/* ---- member deltas, each on its members' clocks ---------------------------------------- */

/* group_metadata: a clock ({at, ids}, update_clock.c) per id of each
 * member a delta named, and the time of the last full list. */
#define MEMBER_CLOCKS "member_clocks"
#define JOIN_REQUESTS "join_requests"
#define MEMBERS_LISTED "members_listed_at"

/* A change of members alone (added, removed, promoted or demoted, no
 * full list, no value of the group): it applies member by member, each
 * against its own clock, so a change delivered late (Meta redelivers a
 * notification it got no 200 for) is not lost to a newer change of
 * another member, while a member's own older change still is. */
static int is_member_delta(const Blazz__V1__GroupUpdate *u)
{
    int members = u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_ADDED ||
                  u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_REMOVED ||
                  u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_PROMOTED ||
                  u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_DEMOTED ||
                  u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_JOIN_REQUESTED ||
                  u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_JOIN_REQUEST_REVOKED;
    return members && !u->participants_snapshot && u->n_participants > 0 &&
           same_text(u->name, NULL) && same_text(u->description, NULL) &&
           same_text(u->owner_phone, NULL) && same_text(u->invite_code, NULL) &&
           same_text(u->picture_url, NULL) && !u->settings && u->group_created_at_ms == 0;
}

/* Whether the group shows p as of ts or later: a clock of one of its ids
 * has seen (ts, event_id), or a full list came after ts. */
static int member_has_seen(json_t *clocks, json_t *meta, const Blazz__V1__GroupParticipant *p,
                           int64_t ts, const char *event_id)
{
    const char *ids[] = {p->jid, p->phone, p->bsuid};
    json_t *listed = json_object_get(meta, MEMBERS_LISTED);
    if (listed && ts < json_integer_value(listed))
        return 1;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i] && *ids[i] && cs_clock_has_seen(clocks, ids[i], ts, event_id))
            return 1;
    return 0;
}

static int record_member(json_t *clocks, const Blazz__V1__GroupParticipant *p, int64_t ts,
                         const char *event_id)
{
    const char *ids[] = {p->jid, p->phone, p->bsuid};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i] && *ids[i] && cs_clock_record(clocks, ids[i], ts, event_id) != 0)
            return -1;
    return 0;
}

/* The members of delta u the group has not seen as of its time, into
 * out (*n of them), their clocks advanced; -1 when out of memory. */
static int take_unseen_members(cs_group *g, const Blazz__V1__GroupUpdate *u, const char *event_id,
                               Blazz__V1__GroupParticipant **out, size_t *n)
{
    json_t *clocks = json_object_get(g->meta, MEMBER_CLOCKS);
    if (!clocks && (!(clocks = json_object()) ||
                    json_object_set_new(g->meta, MEMBER_CLOCKS, clocks) != 0))
        return -1;
    *n = 0;
    for (size_t i = 0; i < u->n_participants; i++) {
        Blazz__V1__GroupParticipant *p = u->participants[i];
        if (member_has_seen(clocks, g->meta, p, u->timestamp_ms, event_id))
            continue;
        if (record_member(clocks, p, u->timestamp_ms, event_id) != 0)
            return -1;
        out[(*n)++] = p;
        g->dirty = 1;
    }
    return 0;
}

/* Whether a pending request is one of p's: the same phone or BSUID. */
static int requested_by(json_t *request, const Blazz__V1__GroupParticipant *p)
{
    return same_id(request, "phone", p->phone) == 1 || same_id(request, "bsuid", p->bsuid) == 1;
}

/* The join requests members (of a delta) make, withdraw or settle by
 * joining; 0, or -1 when out of memory. */
static int track_join_requests(cs_group *g, const Blazz__V1__GroupUpdate *u,
                               Blazz__V1__GroupParticipant *const *members, size_t n)
{
    json_t *requests = json_object_get(g->meta, JOIN_REQUESTS);
    int asked = u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_JOIN_REQUESTED;
    if (asked && n > 0 && u->join_request_id && *u->join_request_id) {
        if (!requests && (!(requests = json_object()) ||
                          json_object_set_new(g->meta, JOIN_REQUESTS, requests) != 0))
            return -1;
        const Blazz__V1__GroupParticipant *p = members[0];
        char iso[32];
        bz_time_format(u->timestamp_ms, iso, sizeof iso);
        json_t *request = json_pack("{s:s?, s:s?, s:s}", "phone", *p->phone ? p->phone : NULL,
                                    "bsuid", *p->bsuid ? p->bsuid : NULL, "requested_at", iso);
        return request && json_object_set_new(requests, u->join_request_id, request) == 0 ? 0 : -1;
    }
    /* a withdrawal naming the request alone goes by the group's clock */
    if (u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_JOIN_REQUEST_REVOKED &&
        u->join_request_id && *u->join_request_id)
        json_object_del(requests, u->join_request_id);
    if (u->action != BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_ADDED || !requests)
        return 0;
    const char *id;
    json_t *request, *tmp;
    json_object_foreach_safe(requests, tmp, id, request) {
        for (size_t i = 0; i < n; i++)
            if (requested_by(request, members[i])) {
                json_object_del(requests, id);
                break;
            }
    }
    return 0;
}

/* What an update may change, captured before it to tell what it changed. */
typedef struct group_before {
    const char *name, *description, *owner_phone, *invite_code;
    json_t *participants, *settings, *picture, *left, *suspended, *join_requests;
} group_before;

static void capture(group_before *x, const cs_group *g)
{
    x->name = g->name;
    x->description = g->description;
    x->owner_phone = g->owner_phone;
    x->invite_code = g->invite_code;
    x->participants = json_deep_copy(g->participants);
    x->settings = g->settings ? json_deep_copy(g->settings) : NULL;
    x->picture = json_incref(json_object_get(g->meta, "picture_url"));
    x->left = json_incref(json_object_get(g->meta, "left_at"));
    x->suspended = json_incref(json_object_get(g->meta, "suspended_at"));
    json_t *requests = json_object_get(g->meta, JOIN_REQUESTS);
    x->join_requests = requests ? json_deep_copy(requests) : NULL;
}

static void release(group_before *x)
{
    json_decref(x->participants);
    json_decref(x->settings);
    json_decref(x->picture);
    json_decref(x->left);
    json_decref(x->suspended);
    json_decref(x->join_requests);
}

/* The names of the columns that changed, into change->changed (arena). */
static int list_changes(cs_batch *b, const group_before *x, const cs_group *g,
                        Blazz__V1__GroupChange *change)
{
    const char *names[10];
    size_t n = 0;
    if (!same_text(x->name, g->name))
        names[n++] = "name";
    if (!same_text(x->description, g->description))
        names[n++] = "description";
    if (!same_json(x->participants, g->participants))
        names[n++] = "participants";
    if (!same_json(x->settings, g->settings))
        names[n++] = "settings";
    if (!same_text(x->invite_code, g->invite_code))
        names[n++] = "invite_code";
    if (!same_json(x->picture, json_object_get(g->meta, "picture_url")))
        names[n++] = "picture_url";
    if (!same_text(x->owner_phone, g->owner_phone))
        names[n++] = "owner_phone";
    if (!same_json(x->left, json_object_get(g->meta, "left_at")))
        names[n++] = "left";
    if (!same_json(x->suspended, json_object_get(g->meta, "suspended_at")))
        names[n++] = "suspended";
    if (!same_json(x->join_requests, json_object_get(g->meta, JOIN_REQUESTS)))
        names[n++] = "join_requests";
    if (n == 0)
        return 0;
    change->changed = cs_arena_alloc(&b->arena, n * sizeof *change->changed);
    if (!change->changed)
        return -1;
    for (size_t i = 0; i < n; i++)
        change->changed[i] = (char *)names[i];
    change->n_changed = n;
    return 1;
}

/* The columns a group update sets besides the members. */
static void apply_values(cs_group *g, const Blazz__V1__GroupUpdate *u, int64_t ts)
{
    replace_text(&g->name, u->name, &g->dirty);
    replace_text(&g->description, u->description, &g->dirty);
    replace_text(&g->owner_phone, u->owner_phone, &g->dirty);
    replace_text(&g->invite_code, u->invite_code, &g->dirty);
    if (u->group_created_at_ms > 0 && g->created_ms != u->group_created_at_ms) {
        g->created_ms = u->group_created_at_ms;
        g->dirty = 1;
    }
    if (u->settings) {
        json_t *now = json_pack("{s:b, s:b}", "announce", u->settings->announce, "restrict",
                                u->settings->restrict_info);
        if (now && !same_json(now, g->settings)) {
            json_decref(g->settings);
            g->settings = json_incref(now);
            g->dirty = 1;
        }
        json_decref(now);
    }
    if (u->picture_url && *u->picture_url &&
        !same_text(json_string_value(json_object_get(g->meta, "picture_url")), u->picture_url)) {
        json_object_set_new(g->meta, "picture_url", json_string(u->picture_url));
        g->dirty = 1;
    }
    const char *mark = u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_LEFT ? "left_at"
                       : u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_SUSPENDED
                           ? "suspended_at"
                           : NULL;
    if (mark && !json_object_get(g->meta, mark)) {
        char iso[32];
        bz_time_format(ts, iso, sizeof iso);
        json_object_set_new(g->meta, mark, json_string(iso));
        g->dirty = 1;
    }
    if (u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_SUSPENSION_CLEARED &&
        json_object_del(g->meta, "suspended_at") == 0)
        g->dirty = 1;
}

/* The change's event, naming the members it applied (members, n). */
static bz_status emit_change(cs_batch *b, const cs_record *r, cs_group *g, const group_before *x,
                             Blazz__V1__GroupParticipant **members, size_t n, bz_error *err)
{
    const Blazz__V1__GroupUpdate *u = r->cmd->group_update;
    Blazz__V1__GroupChange change = BLAZZ__V1__GROUP_CHANGE__INIT;
    int listed = list_changes(b, x, g, &change);
    if (listed < 0)
        return bz_fail(err, BZ_ERR_TRANSIENT, "group update %s: out of memory",
                       r->cmd->envelope->event_id);
    if (listed == 0)
        return BZ_OK;
    Blazz__V1__GroupSettings settings = BLAZZ__V1__GROUP_SETTINGS__INIT;
    change.action = u->action;
    change.participants = members;
    change.n_participants = n;
    change.actor_phone = u->actor_phone;
    change.changed_at_ms = u->timestamp_ms;
    change.description = g->description;
    change.invite_code = g->invite_code;
    change.join_request_id = u->join_request_id;
    change.picture_url = (char *)json_string_value(json_object_get(g->meta, "picture_url"));
    if (g->settings) {
        settings.announce = json_is_true(json_object_get(g->settings, "announce"));
        settings.restrict_info = json_is_true(json_object_get(g->settings, "restrict"));
        change.settings = &settings;
    }
    return cs_emit_group_updated(b, r, g, &change, err);
}

bz_status cs_simulate_group_update(cs_batch *b, const cs_record *r, bz_error *err)
{
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    const Blazz__V1__GroupUpdate *u = r->cmd->group_update;
    cs_group *g = cs_find_group(b, env->workspace_id, u->group_jid);
    if (!g)
        return bz_fail(err, BZ_ERR_TRANSIENT, "group update %s: group %s vanished after get-or-create",
                       env->event_id, u->group_jid);
    int delta = is_member_delta(u);
    Blazz__V1__GroupParticipant **members = u->participants;
    size_t n = u->n_participants;
    if (delta) {
        /* the arena's: the batch outlives the event */
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): the elements are pointers */
        members = cs_arena_alloc(&b->arena, n * sizeof *members);
        if (!members || take_unseen_members(g, u, env->event_id, members, &n) != 0)
            return bz_fail(err, BZ_ERR_TRANSIENT, "group update %s: out of memory",
                           env->event_id);
        if (n == 0)
            return BZ_OK;
    } else if (cs_clock_has_seen(g->meta, "clock", u->timestamp_ms, env->event_id)) {
        return BZ_OK;
    } else if (cs_clock_record(g->meta, "clock", u->timestamp_ms, env->event_id) != 0) {
        /* recorded even when nothing changes: a replay must skip it as
         * well, whatever changed the row in between */
        return bz_fail(err, BZ_ERR_TRANSIENT, "group update %s: out of memory", env->event_id);
    }
    g->dirty = 1;
    group_before before;
    capture(&before, g);
    apply_values(g, u, u->timestamp_ms);
    if (u->participants_snapshot && json_object_set_new(g->meta, MEMBERS_LISTED,
                                                        json_integer(u->timestamp_ms)) != 0) {
        release(&before);
        return bz_fail(err, BZ_ERR_TRANSIENT, "group update %s: out of memory", env->event_id);
    }
    if (u->participants_snapshot)
        replace_participants(g, participants_json(u->participants, u->n_participants));
    else
        change_members(g, u, members, n);
    if (track_join_requests(g, u, members, n) != 0) {
        release(&before);
        return bz_fail(err, BZ_ERR_TRANSIENT, "group update %s: out of memory", env->event_id);
    }
    /* the account is the inbox's: its latest message's (apply_message.c),
     * the reporting one only for a group no message has named yet */
    if (!g->account_id) {
        g->account_id = env->whatsapp_account_id;
        g->dirty = 1;
    }
    bz_status st = emit_change(b, r, g, &before, members, n, err);
    release(&before);
    if (b->ctx->have_metrics)
        bz_counter_inc(b->ctx->m.group_updates);
    return st;
}
