/*
 * apply_group.c - whatsapp_groups: name, description, owner and the
 * participants list ([{phone, name, isAdmin, isSuperAdmin, joinedAt, jid}],
 * the seeds' JSON schema plus the JID), kept from messages, history sync and
 * group updates.
 *
 * A group update with participants_snapshot replaces the list; otherwise its
 * participants are the members the action affected: added (appended unless
 * present), removed, promoted or demoted (isAdmin). A member is matched by
 * JID when both sides have one, else by phone. The list is kept sorted by
 * JID-or-phone: its order carries no meaning, and a canonical order makes a
 * replayed sequence of additions and removals end in the very same JSON.
 * GROUP_ACTION_LEFT has no
 * column to land in and changes nothing. Group updates emit no event: the
 * chat.events kinds are about messages and sync progress.
 */
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"

static json_t *participant_json(const Blazz__V1__GroupParticipant *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "phone", json_string(p->phone ? p->phone : ""));
    json_object_set_new(o, "name", json_string(p->name ? p->name : ""));
    json_object_set_new(o, "isAdmin", json_boolean(p->is_admin || p->is_super_admin));
    json_object_set_new(o, "isSuperAdmin", json_boolean(p->is_super_admin));
    if (p->joined_at_ms > 0) {
        char iso[32];
        cs_iso8601(p->joined_at_ms, iso);
        json_object_set_new(o, "joinedAt", json_string(iso));
    } else {
        json_object_set_new(o, "joinedAt", json_null());
    }
    if (p->jid && *p->jid)
        json_object_set_new(o, "jid", json_string(p->jid));
    return o;
}

static const char *member_key(json_t *member)
{
    const char *jid = json_string_value(json_object_get(member, "jid"));
    if (jid && *jid)
        return jid;
    const char *phone = json_string_value(json_object_get(member, "phone"));
    return phone ? phone : "";
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

static int same_member(json_t *member, const Blazz__V1__GroupParticipant *p)
{
    const char *jid = json_string_value(json_object_get(member, "jid"));
    if (jid && *jid && p->jid && *p->jid)
        return strcmp(jid, p->jid) == 0;
    const char *phone = json_string_value(json_object_get(member, "phone"));
    return phone && *phone && p->phone && strcmp(phone, p->phone) == 0;
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

static void change_members(cs_group *g, const Blazz__V1__GroupUpdate *u)
{
    for (size_t i = 0; i < u->n_participants; i++) {
        const Blazz__V1__GroupParticipant *p = u->participants[i];
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

bz_status cs_simulate_group_update(cs_batch *b, const cs_record *r, bz_error *err)
{
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    const Blazz__V1__GroupUpdate *u = r->cmd->group_update;
    cs_group *g = cs_find_group(b, env->workspace_id, u->group_jid);
    if (!g)
        return bz_fail(err, BZ_ERR_TRANSIENT, "group update %s: group %s vanished after get-or-create",
                       env->event_id, u->group_jid);
    if (u->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_LEFT)
        return BZ_OK;
    replace_text(&g->name, u->name, &g->dirty);
    replace_text(&g->description, u->description, &g->dirty);
    replace_text(&g->owner_phone, u->owner_phone, &g->dirty);
    if (u->group_created_at_ms > 0 && g->created_ms != u->group_created_at_ms) {
        g->created_ms = u->group_created_at_ms;
        g->dirty = 1;
    }
    if (u->participants_snapshot)
        replace_participants(g, participants_json(u->participants, u->n_participants));
    else
        change_members(g, u);
    if (g->account_id != env->whatsapp_account_id) {
        g->account_id = env->whatsapp_account_id;
        g->dirty = 1;
    }
    if (b->ctx->have_metrics)
        bz_counter_inc(b->ctx->m.group_updates);
    return BZ_OK;
}
