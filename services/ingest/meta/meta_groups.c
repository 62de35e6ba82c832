/*
 * meta_groups.c - Meta's group fields mapped to GroupUpdates (see
 * meta_groups.h), with the helpers of meta_mapping.h.
 *
 * Each item of value.groups[] is one change of one group (group_id, the
 * Groups API's id, which keys the group as its messages do):
 *  - group_participants_add: added_participants[] joined (by invite link,
 *    or their join requests approved): PARTICIPANTS_ADDED;
 *  - group_participants_remove: removed_participants[] are out, removed
 *    by the business (initiated_by "business", each named by the `input`
 *    the business gave: a phone or a BSUID) or having left (initiated_by
 *    "participant", the member its own actor): PARTICIPANTS_REMOVED. Its
 *    failed_participants[] are still members: a removal that failed for
 *    all of them changes nothing and makes no event.
 *  - group_join_request_created / _revoked: someone (wa_id and/or user_id
 *    on the item) asks to join a group that needs approval, or withdraws:
 *    JOIN_REQUESTED / JOIN_REQUEST_REVOKED naming them and the request
 *    (join_request_id); not a member yet.
 * A member is named by wa_id (its phone, which Meta withholds from a
 * username user) and/or user_id (its BSUID), else by `input`. Any other
 * type is not understood here and its change goes to a dead letter, its
 * other items still mapped.
 *
 * group_lifecycle_update's group_create is CREATED (subject, description,
 * and the invite link's code), its group_delete LEFT (the number is no
 * longer in the group); group_settings_update is UPDATED with the subject
 * and the description Meta says it set (update_successful), a picture
 * being nothing the group keeps. A create or delete Meta answered with
 * errors[], or settings none of which was set, changed nothing and makes
 * no event. group_status_update's group_suspend is SUSPENDED (Meta stopped
 * all activity in the group), its group_suspend_cleared
 * SUSPENSION_CLEARED.
 */
#include "meta/meta_groups.h"

#include <stdlib.h>
#include <string.h>

/* A BSUID is "<country>.<digits>" (US.1349...); a phone has no dot. */
static int names_a_bsuid(const char *id)
{
    return id && strchr(id, '.') != NULL;
}

/* obj's string member key, NULL when absent or empty (Meta writes wa_id ""
 * for a username user in some versions of its pages). */
static const char *given(json_t *obj, const char *key)
{
    const char *s = ing_meta_str_of(obj, key);
    return s && *s ? s : NULL;
}

/* Whether a member item names someone: its phone, its BSUID or the input
 * the business gave. */
static int member_named(json_t *member)
{
    return json_is_object(member) &&
           (given(member, "wa_id") || given(member, "user_id") || given(member, "input"));
}

static int members_named(json_t *members)
{
    size_t i;
    json_t *member;
    json_array_foreach(members, i, member) {
        if (!member_named(member))
            return 0;
    }
    return 1;
}

static int is_type(json_t *item, const char *type)
{
    const char *t = ing_meta_str_of(item, "type");
    return t && strcmp(t, type) == 0;
}

static int is_join_request(json_t *item)
{
    return is_type(item, "group_join_request_created") ||
           is_type(item, "group_join_request_revoked");
}

/* A join or a removal of a group Meta names, whose members all name
 * someone. */
static int group_change_understood(json_t *item)
{
    if (!json_is_object(item) || !ing_meta_str_of(item, "group_id"))
        return 0;
    json_t *added = json_object_get(item, "added_participants");
    json_t *removed = json_object_get(item, "removed_participants");
    json_t *failed = json_object_get(item, "failed_participants");
    if (is_type(item, "group_participants_add"))
        return json_is_array(added) && json_array_size(added) > 0 && members_named(added);
    if (is_type(item, "group_participants_remove"))
        return (json_is_array(removed) && members_named(removed)) ||
               (!removed && json_is_array(failed));
    /* a withdrawal may name the request alone */
    if (is_join_request(item))
        return given(item, "join_request_id") &&
               (is_type(item, "group_join_request_revoked") || given(item, "wa_id") ||
                given(item, "user_id"));
    return 0;
}

/* The member an item names, as a participant the caller owns. */
static Blazz__V1__GroupParticipant *member_of(ing_meta_mapping *mp, json_t *member)
{
    Blazz__V1__GroupParticipant *p = ing_meta_alloc_or_fail(mp, ing_participant_new());
    if (!p)
        return NULL;
    const char *wa_id = given(member, "wa_id"), *user_id = given(member, "user_id");
    const char *input = given(member, "input");
    ing_meta_copy(mp, &p->phone, wa_id);
    ing_meta_copy(mp, &p->bsuid, user_id);
    if (!wa_id && !user_id)
        ing_meta_copy(mp, names_a_bsuid(input) ? &p->bsuid : &p->phone, input);
    return p;
}

/* A GroupUpdate of item's group, dated by it, doing action; the caller
 * owns it (its payload unset when allocation failed: mp knows). */
static Blazz__V1__InboundEvent *new_group_update(ing_meta_mapping *mp, json_t *item,
                                                 const char *phone_number_id,
                                                 Blazz__V1__GroupAction action)
{
    Blazz__V1__InboundEvent *ev = ing_meta_new_event(
        mp, item, phone_number_id, BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE)
        return ev;
    ing_meta_copy(mp, &ev->group_update->group_jid, ing_meta_str_of(item, "group_id"));
    ev->group_update->action = action;
    ev->group_update->timestamp_ms = ev->envelope->occurred_at_ms;
    return ev;
}

static void take_members(ing_meta_mapping *mp, Blazz__V1__GroupUpdate *g, json_t *members)
{
    size_t n = json_array_size(members);
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the elements are pointers */
    g->participants = n ? ing_meta_alloc_or_fail(mp, calloc(n, sizeof *g->participants)) : NULL;
    size_t i;
    json_t *member;
    json_array_foreach(members, i, member) {
        if (!g->participants || mp->st != BZ_OK)
            return;
        if (!(g->participants[i] = member_of(mp, member)))
            return;
        g->n_participants = i + 1;
    }
}

/* A join request made or withdrawn: its one would-be member (the item
 * names them) and the request's id. */
static Blazz__V1__InboundEvent *map_join_request(ing_meta_mapping *mp, json_t *item,
                                                 const char *phone_number_id)
{
    Blazz__V1__InboundEvent *ev = new_group_update(
        mp, item, phone_number_id,
        is_type(item, "group_join_request_created")
            ? BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_JOIN_REQUESTED
            : BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_JOIN_REQUEST_REVOKED);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE)
        return ev;
    Blazz__V1__GroupUpdate *g = ev->group_update;
    ing_meta_copy(mp, &g->join_request_id, given(item, "join_request_id"));
    if (!given(item, "wa_id") && !given(item, "user_id"))
        return ev;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the elements are pointers */
    g->participants = ing_meta_alloc_or_fail(mp, calloc(1, sizeof *g->participants));
    if (g->participants && (g->participants[0] = member_of(mp, item)))
        g->n_participants = 1;
    return ev;
}

static Blazz__V1__InboundEvent *map_group_change(ing_meta_mapping *mp, json_t *item, json_t *value,
                                                 const char *phone_number_id)
{
    (void)value;
    if (is_join_request(item))
        return map_join_request(mp, item, phone_number_id);
    int added = is_type(item, "group_participants_add");
    json_t *members = json_object_get(item, added ? "added_participants" : "removed_participants");
    if (json_array_size(members) == 0)
        return NULL; /* a removal that failed for every member */
    Blazz__V1__InboundEvent *ev =
        new_group_update(mp, item, phone_number_id,
                         added ? BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_ADDED
                               : BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_REMOVED);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE)
        return ev;
    Blazz__V1__GroupUpdate *g = ev->group_update;
    take_members(mp, g, members);
    const char *by = ing_meta_str_of(item, "initiated_by");
    const char *leaver = given(json_array_get(members, 0), "wa_id");
    if (!added && by && strcmp(by, "participant") == 0 && leaver)
        ing_meta_copy(mp, &g->actor_phone, leaver);
    return ev;
}

int ing_meta_map_group_participants_field(ing_meta_mapping *mp, json_t *value, ing_events *out)
{
    return ing_meta_map_items(mp, value, "groups", group_change_understood, map_group_change,
                              out);
}

/* ---- the group itself: created, deleted, its subject and description ----------------- */

/* A group created or deleted (group_lifecycle_update), its subject or
 * description changed (group_settings_update), or suspended or no more
 * (group_status_update), naming its group_id. */
static int group_fact_understood(json_t *item)
{
    return json_is_object(item) && ing_meta_str_of(item, "group_id") &&
           (is_type(item, "group_create") || is_type(item, "group_delete") ||
            is_type(item, "group_settings_update") || is_type(item, "group_suspend") ||
            is_type(item, "group_suspend_cleared"));
}

/* A request Meta answered with errors[] changed nothing. */
static int failed(json_t *item)
{
    return json_array_size(json_object_get(item, "errors")) > 0;
}

/* The code of an invite link (https://chat.whatsapp.com/<code>), NULL
 * when it is none. */
static const char *invite_code_of(const char *link)
{
    const char *slash = link ? strrchr(link, '/') : NULL;
    return slash && slash[1] ? slash + 1 : NULL;
}

/* A setting's new text, when Meta says it was set. */
static const char *setting_set(json_t *item, const char *key)
{
    json_t *setting = json_object_get(item, key);
    return json_is_true(json_object_get(setting, "update_successful"))
               ? given(setting, "text")
               : NULL;
}

static Blazz__V1__InboundEvent *map_group_fact(ing_meta_mapping *mp, json_t *item, json_t *value,
                                               const char *phone_number_id)
{
    (void)value;
    const char *subject = NULL, *description = NULL;
    Blazz__V1__GroupAction action = BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_CREATED;
    if (is_type(item, "group_delete")) {
        action = BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_LEFT; /* the number is in it no more */
    } else if (is_type(item, "group_suspend")) {
        action = BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_SUSPENDED;
    } else if (is_type(item, "group_suspend_cleared")) {
        action = BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_SUSPENSION_CLEARED;
    } else if (is_type(item, "group_settings_update")) {
        action = BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_UPDATED;
        subject = setting_set(item, "group_subject");
        description = setting_set(item, "group_description");
        if (!subject && !description)
            return NULL; /* nothing Meta set that the group keeps (a picture) */
    } else {
        subject = given(item, "subject");
        description = given(item, "description");
    }
    if (failed(item) && action != BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_UPDATED)
        return NULL;
    Blazz__V1__InboundEvent *ev = new_group_update(mp, item, phone_number_id, action);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE)
        return ev;
    Blazz__V1__GroupUpdate *g = ev->group_update;
    ing_meta_copy(mp, &g->name, subject);
    ing_meta_copy(mp, &g->description, description);
    ing_meta_copy(mp, &g->invite_code, invite_code_of(given(item, "invite_link")));
    if (action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_CREATED)
        g->group_created_at_ms = g->timestamp_ms;
    return ev;
}

int ing_meta_map_group_fields(ing_meta_mapping *mp, json_t *value, ing_events *out)
{
    return ing_meta_map_items(mp, value, "groups", group_fact_understood, map_group_fact, out);
}
