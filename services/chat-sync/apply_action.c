/*
 * apply_action.c - reactions, edits and deletes for everyone: messages
 * that act on another message (InboundMessage.target_wam_id) instead of
 * being stored as a row of their own.
 *
 * Their effects live on the target's chats row:
 *  - a reaction sets, replaces or (empty emoji) removes the actor's entry
 *    in metadata.reactions {actor: {emoji, reacted_at}}; the actor is the
 *    phone (or JID) of who reacted, "me" for the account itself;
 *  - an edit replaces the body and appends the body it replaced to
 *    metadata.edits [{body, edited_at}], with metadata.edited_at;
 *  - a delete for everyone sets chats.deleted_at and metadata.revoked.
 * None of them is a message: no row, no counter moves (the target's unread
 * state and the contact's unread_messages stay as they are), one event
 * each (MESSAGE_REACTION, MESSAGE_EDITED, MESSAGE_DELETED) with the target
 * as it stands after it.
 *
 * Every effect moves forward only, so replays and reordering change
 * nothing twice: a reaction applies when it is newer than the actor's last
 * one (metadata.reaction_clock keeps the time of each actor's last
 * reaction, removals included), an edit when it is newer than the last
 * edit, a delete once. An action whose target is not stored yet waits for
 * it as receipts do (parked.c, pending_receipts), and is applied right
 * after the target's receipts when the target is stored.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/timespec.h"
#include "pg/columns.h"
#include "wa/message_action.h"

#define SQL_CHATS_ACTIONS_UPDATE                                                                  \
    "UPDATE chats c SET metadata = c.metadata || u.patch::jsonb, deleted_at = CASE WHEN u.del "   \
    "IS NULL THEN c.deleted_at ELSE coalesce(c.deleted_at, to_timestamp(u.del / 1000.0)) END "    \
    "FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS u(id, patch, del) WHERE c.id = u.id"

/* The metadata keys this file owns on a target row. */
static const char *const state_keys[] = {"reactions", "reaction_clock", "edits", "edited_at",
                                         "edited_at_ms", "revoked", NULL};

const char *cs_action_text(int message_type)
{
    switch (message_type) {
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION: return "reaction";
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_EDIT: return "edit";
    default: return "revoke";
    }
}

int64_t cs_action_time(const cs_record *r)
{
    const Blazz__V1__InboundMessage *m = r->cmd->message;
    return m->timestamp_ms > 0 ? m->timestamp_ms : r->cmd->envelope->occurred_at_ms;
}

int cs_chat_adopt_action_state(cs_batch *b, cs_chat *c, json_t *metadata)
{
    c->actions = NULL;
    for (const char *const *k = state_keys; *k; k++) {
        json_t *v = json_object_get(metadata, *k);
        if (!v)
            continue;
        if (!c->actions && (!(c->actions = json_object()) ||
                            cs_vec_push(&b->owned_json, c->actions) != 0)) {
            json_decref(c->actions);
            c->actions = NULL;
            return -1;
        }
        json_object_set(c->actions, *k, v);
    }
    return 0;
}

/* The row's action state, created on first use; NULL when out of memory. */
static json_t *state_of(cs_batch *b, cs_chat *c)
{
    if (c->actions)
        return c->actions;
    json_t *s = json_object();
    if (!s || cs_vec_push(&b->owned_json, s) != 0) {
        json_decref(s);
        return NULL;
    }
    c->actions = s;
    return s;
}

/* A member object of the state, created on first use. */
static json_t *member(json_t *state, const char *key, int array)
{
    json_t *v = json_object_get(state, key);
    if (!v) {
        v = array ? json_array() : json_object();
        if (!v || json_object_set_new(state, key, v) != 0)
            return NULL;
    }
    return v;
}

static json_t *iso(int64_t ms)
{
    char text[32];
    bz_time_format(ms, text, sizeof text);
    return json_string(text);
}

/* Who acted: "me" for the account, else the sender (groups) or the
 * contact (private chats), phone before JID before BSUID (a username
 * user's or a Meta participant's only identifier, decision 0010). */
static const char *actor_key(const Blazz__V1__InboundMessage *m)
{
    if (m->from_me)
        return "me";
    if (m->chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP)
        return *m->sender_phone ? m->sender_phone
               : *m->sender_jid ? m->sender_jid
                                : m->sender_bsuid;
    return *m->contact_phone ? m->contact_phone
           : *m->contact_jid ? m->contact_jid
                             : m->contact_bsuid;
}

/* 1 when the reaction changed the actor's entry. */
static int react(cs_batch *b, json_t *state, const Blazz__V1__InboundMessage *m, int64_t ts,
                 Blazz__V1__MessageAction *out, int *oom)
{
    const char *actor = actor_key(m);
    json_t *clock = member(state, "reaction_clock", 0), *all = member(state, "reactions", 0);
    if (!clock || !all) {
        *oom = 1;
        return 0;
    }
    json_int_t last = json_integer_value(json_object_get(clock, actor));
    json_t *entry = json_object_get(all, actor);
    const char *before = json_string_value(json_object_get(entry, "emoji"));
    const char *emoji = m->reaction_emoji ? m->reaction_emoji : "";
    if (ts < last || (before ? strcmp(before, emoji) == 0 : !*emoji))
        return 0;
    /* copied: the entry goes away below */
    if (!(out->previous_emoji = cs_arena_strdup(&b->arena, before ? before : ""))) {
        *oom = 1;
        return 0;
    }
    json_object_set_new(clock, actor, json_integer(ts));
    if (*emoji) {
        json_t *now = json_pack("{s:s, s:o}", "emoji", emoji, "reacted_at", iso(ts));
        if (!now || json_object_set_new(all, actor, now) != 0)
            *oom = 1;
    } else {
        json_object_del(all, actor);
    }
    return 1;
}

/* 1 when the edit replaced the body. */
static int edit(cs_batch *b, cs_chat *c, json_t *state, const Blazz__V1__InboundMessage *m,
                int64_t ts, Blazz__V1__MessageAction *out, int *oom)
{
    json_int_t last = json_integer_value(json_object_get(state, "edited_at_ms"));
    const char *body = m->body ? m->body : "";
    if (ts <= last || strcmp(c->body ? c->body : "", body) == 0)
        return 0;
    json_t *edits = member(state, "edits", 1);
    json_t *old = json_pack("{s:s, s:o}", "body", c->body ? c->body : "", "edited_at", iso(ts));
    char *copy = cs_arena_strdup(&b->arena, body);
    if (!edits || !old || json_array_append_new(edits, old) != 0 || !copy) {
        *oom = 1;
        return 0;
    }
    out->previous_body = c->body ? c->body : "";
    json_object_set_new(state, "edited_at", iso(ts));
    json_object_set_new(state, "edited_at_ms", json_integer(ts));
    c->body = copy;
    c->body_edited = 1;
    return 1;
}

/* 1 when the message was not deleted yet. */
static int revoke(cs_chat *c, json_t *state, int64_t ts)
{
    if (c->deleted_ms)
        return 0;
    c->deleted_ms = ts;
    json_object_set_new(state, "revoked", json_true());
    return 1;
}

bz_status cs_apply_action(cs_batch *b, const cs_record *r, cs_chat *c, bz_error *err)
{
    const Blazz__V1__InboundMessage *m = r->cmd->message;
    int64_t ts = cs_action_time(r);
    json_t *state = state_of(b, c);
    Blazz__V1__MessageAction action = BLAZZ__V1__MESSAGE_ACTION__INIT;
    int oom = !state, changed = 0, kind = 0;
    if (state && m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION) {
        changed = react(b, state, m, ts, &action, &oom);
        kind = BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_REACTION;
    } else if (state && m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_EDIT) {
        changed = edit(b, c, state, m, ts, &action, &oom);
        kind = BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_EDITED;
    } else if (state) {
        changed = revoke(c, state, ts);
        kind = BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_DELETED;
    }
    if (oom)
        return bz_fail(err, BZ_ERR_TRANSIENT, "apply %s %s to %s: out of memory",
                       cs_action_text(m->message_type), m->wam_id, c->wam_id);
    if (!changed)
        return BZ_OK;
    c->actions_dirty = 1;
    action.wam_id = m->wam_id;
    action.from_me = m->from_me;
    action.actor_phone = m->from_me ? "" : m->chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP
                                              ? m->sender_phone
                                              : m->contact_phone;
    action.actor_jid = m->from_me ? "" : m->chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP
                                            ? m->sender_jid
                                            : m->contact_jid;
    action.actor_bsuid = m->from_me ? "" : m->chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP
                                              ? m->sender_bsuid
                                              : m->contact_bsuid;
    action.emoji = m->reaction_emoji;
    action.acted_at_ms = ts;
    return cs_emit_message_action(b, r, c, kind, &action, err);
}

/* Park r on c, to be applied when the occurrence that stores c runs. */
static int park_in_memory(cs_batch *b, const cs_record *r, cs_chat *c)
{
    cs_parked *p = cs_arena_alloc(&b->arena, sizeof *p);
    if (!p)
        return -1;
    *p = (cs_parked){.r = r, .next = c->parked};
    c->parked = p;
    return 0;
}

bz_status cs_simulate_action(cs_batch *b, const cs_record *r, bz_error *err)
{
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    const Blazz__V1__InboundMessage *m = r->cmd->message;
    cs_chat *c = cs_find_chat(b, env->whatsapp_account_id, m->target_wam_id);
    /* One at a time, it would not have seen a target stored after it. */
    if (c && c->inserted_ord >= 0 && c->inserted_ord > r->ord)
        return park_in_memory(b, r, c) == 0
                   ? BZ_OK
                   : bz_fail(err, BZ_ERR_TRANSIENT, "park %s: out of memory", env->event_id);
    if (!c)
        return cs_vec_push(&b->to_park, (void *)r) == 0
                   ? BZ_OK
                   : bz_fail(err, BZ_ERR_TRANSIENT, "park %s: out of memory", env->event_id);
    return cs_apply_action(b, r, c, err);
}

/* The metadata patch of a changed row: its action state, and the body an
 * edit replaced. Heap text (free), NULL when out of memory. */
static char *patch_of(const cs_chat *c)
{
    json_t *patch = json_deep_copy(c->actions);
    if (patch && c->body_edited)
        json_object_set_new(patch, "body", json_string(c->body));
    char *text = patch ? json_dumps(patch, JSON_COMPACT) : NULL;
    json_decref(patch);
    return text;
}

bz_status cs_write_actions(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[3];
    bz_pg_array_init_all(a, 3);
    bz_status st = BZ_OK;
    for (size_t i = 0; i < b->chat_list.n && st == BZ_OK; i++) {
        const cs_chat *c = b->chat_list.items[i];
        if (!c->actions_dirty)
            continue;
        char *patch = patch_of(c);
        if (!patch) {
            st = bz_fail(err, BZ_ERR_TRANSIENT, "write reactions, edits, deletes: out of memory");
            break;
        }
        bz_pg_array_int64(&a[0], c->id);
        bz_pg_array_text(&a[1], patch);
        bz_pg_array_int64_or_null(&a[2], c->deleted_ms);
        free(patch);
    }
    if (st == BZ_OK && a[0].n > 0)
        st = bz_pg_arrays_exec(conn, "write reactions, edits, deletes", SQL_CHATS_ACTIONS_UPDATE, a, 3,
                       NULL, err);
    bz_pg_array_free_all(a, 3);
    return st;
}
