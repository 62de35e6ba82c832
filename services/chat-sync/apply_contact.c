/*
 * apply_contact.c - contact profile changes: the push name (first_name),
 * the profile picture, a WhatsApp Business profile
 * (metadata.business_profile) and when the contact was last seen active
 * (last_activity), from the gateway's contact_update; and a Meta
 * contact's marketing preference (user_preferences), applied by optout.c.
 *
 * The contact is got or created like a message's (plan.c seeds it with the
 * push name). An update applies once (update_clock.c,
 * metadata.profile_clock): a replay or an older one changes nothing. One
 * that changed the name, the picture or the business profile emits one
 * CONTACT_UPDATED (webhook contact.updated) naming what changed;
 * last_activity moves forward silently. Once the gateway reports a
 * contact's profile, the push names of its messages no longer rename it
 * (cs_contact_refresh_name): a replayed message would otherwise undo a
 * later change whose replay the clock skips.
 *
 * The name the account's owner saved the contact under (the phone's
 * address book: metadata.saved_name, null once removed from it) is kept
 * beside the profile name, on a clock of its own (saved_name_clock): an
 * address-book change is not the contact's own profile, so it neither
 * renames first_name nor stops its messages' push names from doing so.
 * One that changed it emits CONTACT_UPDATED naming saved_name.
 *
 * A name the CRM gave (POST or PATCH /v1/contacts: metadata.crm_named_at)
 * is the contact's first_name for good: neither a profile update nor a
 * message's push name replaces it, as seed 002 sets the name once, when
 * the contact is made.
 */
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "pg/columns.h"

#define SQL_CONTACT_PROFILES_UPDATE                                                               \
    "UPDATE contacts c SET profile_picture = nullif(u.pic, ''), last_activity = CASE WHEN u.act " \
    "IS NULL THEN c.last_activity ELSE to_timestamp(u.act / 1000.0) END, "                        \
    "metadata = c.metadata || u.patch::jsonb "                                                    \
    "FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[]) AS u(id, pic, act, patch) "  \
    "WHERE c.id = u.id"

int cs_contact_adopt_profile(cs_batch *b, cs_contact *c, const char *profile_json)
{
    c->profile = profile_json ? json_loads(profile_json, 0, NULL) : NULL;
    if (!json_is_object(c->profile)) {
        json_decref(c->profile);
        c->profile = json_object();
    }
    if (!c->profile || cs_vec_push(&b->owned_json, c->profile) != 0) {
        json_decref(c->profile);
        c->profile = NULL;
        return -1;
    }
    return 0;
}

static json_t *business_json(const Blazz__V1__BusinessProfile *bp)
{
    json_t *o = json_object();
    const char *names[] = {"description", "category", "email", "website", "address"};
    const char *values[] = {bp->description, bp->category, bp->email, bp->website, bp->address};
    for (size_t i = 0; o && i < sizeof names / sizeof names[0]; i++)
        if (values[i] && *values[i])
            json_object_set_new(o, names[i], json_string(values[i]));
    return o;
}

int cs_contact_named_by_crm(const cs_contact *c)
{
    return json_object_get(c->profile, "crm_named_at") != NULL;
}

int cs_contact_keep_crm_name(cs_contact *c, int64_t at_ms)
{
    if (!c->profile || json_object_set_new(c->profile, "crm_named_at", json_integer(at_ms)) != 0)
        return -1;
    c->profile_dirty = 1;
    return 0;
}

/* Apply u to c; the names of what changed go to changed[] (n). -1 when out
 * of memory. */
static int apply_profile(cs_batch *b, cs_contact *c, const Blazz__V1__ContactUpdate *u,
                         const char **changed, size_t *n)
{
    if (u->push_name && *u->push_name && !cs_contact_named_by_crm(c) &&
        strcmp(c->name ? c->name : "", u->push_name) != 0) {
        if (!(c->name = cs_arena_strdup(&b->arena, u->push_name)))
            return -1;
        c->dirty = 1;
        changed[(*n)++] = "first_name";
    }
    if (u->profile_picture_url && *u->profile_picture_url &&
        strcmp(c->picture ? c->picture : "", u->profile_picture_url) != 0) {
        if (!(c->picture = cs_arena_strdup(&b->arena, u->profile_picture_url)))
            return -1;
        changed[(*n)++] = "profile_picture";
    }
    if (u->business_profile) {
        json_t *now = business_json(u->business_profile);
        if (!now)
            return -1;
        json_t *before = json_object_get(c->profile, "business_profile");
        if (!before || !json_equal(before, now)) {
            json_object_set(c->profile, "business_profile", now);
            changed[(*n)++] = "business_profile";
        }
        json_decref(now);
    }
    if (u->timestamp_ms > c->last_activity_ms)
        c->last_activity_ms = u->timestamp_ms;
    return 0;
}

static bz_status emit_change(cs_batch *b, const cs_record *r, cs_contact *c,
                             const char *const *changed, size_t n, const char *saved_name,
                             bz_error *err)
{
    const Blazz__V1__ContactUpdate *u = r->cmd->contact_update;
    Blazz__V1__ContactChange change = BLAZZ__V1__CONTACT_CHANGE__INIT;
    Blazz__V1__BusinessProfile bp = BLAZZ__V1__BUSINESS_PROFILE__INIT;
    json_t *now = json_object_get(c->profile, "business_profile");
    if (now) {
        bp.description = (char *)json_string_value(json_object_get(now, "description"));
        bp.category = (char *)json_string_value(json_object_get(now, "category"));
        bp.email = (char *)json_string_value(json_object_get(now, "email"));
        bp.website = (char *)json_string_value(json_object_get(now, "website"));
        bp.address = (char *)json_string_value(json_object_get(now, "address"));
        change.business_profile = &bp;
    }
    change.changed = (char **)changed;
    change.n_changed = n;
    change.changed_at_ms = u->timestamp_ms;
    change.saved_name = (char *)(saved_name ? saved_name : "");
    return cs_emit_contact_updated(b, r, c, &change, err);
}

static int names_saved_name(const Blazz__V1__ContactUpdate *u)
{
    return (u->saved_name && *u->saved_name) || u->saved_name_removed;
}

/* Whether u goes to the profile's clock: anything but an address-book
 * change alone (which says nothing of the contact's own profile). */
static int names_profile(const Blazz__V1__ContactUpdate *u)
{
    return !names_saved_name(u) || (u->push_name && *u->push_name) ||
           (u->profile_picture_url && *u->profile_picture_url) || u->business_profile;
}

/* The saved name as u leaves it, unless its clock has seen u; *changed
 * when that moved it. -1 when out of memory. */
static int apply_saved_name(const cs_record *r, cs_contact *c, int *changed)
{
    const Blazz__V1__ContactUpdate *u = r->cmd->contact_update;
    const char *event_id = r->cmd->envelope->event_id;
    *changed = 0;
    if (cs_clock_has_seen(c->profile, "saved_name_clock", u->timestamp_ms, event_id))
        return 0;
    const char *now = u->saved_name_removed ? NULL : u->saved_name;
    const char *before = json_string_value(json_object_get(c->profile, "saved_name"));
    *changed = now ? !before || strcmp(before, now) != 0 : before != NULL;
    if (cs_clock_record(c->profile, "saved_name_clock", u->timestamp_ms, event_id) != 0 ||
        json_object_set_new(c->profile, "saved_name", now ? json_string(now) : json_null()) != 0)
        return -1;
    c->profile_dirty = 1;
    return 0;
}

/* The profile as u leaves it, unless the profile's clock has seen u; what
 * changed goes to changed[] (n). -1 when out of memory. */
static int apply_profile_once(cs_batch *b, const cs_record *r, cs_contact *c,
                              const char **changed, size_t *n)
{
    const Blazz__V1__ContactUpdate *u = r->cmd->contact_update;
    const char *event_id = r->cmd->envelope->event_id;
    if (cs_clock_has_seen(c->profile, "profile_clock", u->timestamp_ms, event_id))
        return 0;
    if (cs_clock_record(c->profile, "profile_clock", u->timestamp_ms, event_id) != 0 ||
        apply_profile(b, c, u, changed, n) != 0)
        return -1;
    c->profile_dirty = 1;
    return 0;
}

int cs_contact_update_finds_only(const Blazz__V1__SyncCommand *cmd)
{
    const Blazz__V1__ContactUpdate *u = cmd->contact_update;
    return u->saved_name_removed && !names_profile(u) && !u->identity_change &&
           !(u->marketing_preference && *u->marketing_preference) && !cs_is_lid_mapping(cmd);
}

/* One CONTACT_UPDATED for all an update changed: the saved name and the
 * profile, each under its own clock (a gateway may report both at once).
 * Removing from the address book a contact never seen changes nothing,
 * nor one the batch created for a later record (its first message). */
bz_status cs_simulate_contact_update(cs_batch *b, const cs_record *r, bz_error *err)
{
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    const Blazz__V1__ContactUpdate *u = r->cmd->contact_update;
    cs_contact *c = cs_find_contact(
        b, env->workspace_id, cs_person_key(u->contact_phone, u->contact_bsuid, u->contact_jid));
    int before_its_creation = c && c->created && c->created_for_rec > (size_t)(r - b->recs);
    if ((!c || before_its_creation) && cs_contact_update_finds_only(r->cmd))
        return BZ_OK;
    if (!c)
        return bz_fail(err, BZ_ERR_TRANSIENT, "contact update %s: contact vanished after "
                       "get-or-create (deleted concurrently?)", env->event_id);
    /* the opt-out keeps its own clock (optout.c) */
    bz_status st = cs_apply_marketing_preference(b, r, c, err);
    if (st != BZ_OK)
        return st;
    const char *changed[4];
    size_t n = 0;
    int saved_changed = 0;
    if ((names_saved_name(u) && apply_saved_name(r, c, &saved_changed) != 0) ||
        (names_profile(u) && apply_profile_once(b, r, c, changed, &n) != 0))
        return bz_fail(err, BZ_ERR_TRANSIENT, "contact update %s: out of memory", env->event_id);
    if (saved_changed)
        changed[n++] = "saved_name";
    const char *saved_now = saved_changed && !u->saved_name_removed ? u->saved_name : NULL;
    return n ? emit_change(b, r, c, changed, n, saved_now, err) : BZ_OK;
}

bz_status cs_write_contact_profiles(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[4];
    bz_pg_array_init_all(a, 4);
    bz_status st = BZ_OK;
    for (size_t i = 0; i < b->contacts.n && st == BZ_OK; i++) {
        const cs_contact *c = b->contacts.items[i];
        if (!c->profile_dirty)
            continue;
        char *patch = json_dumps(c->profile, JSON_COMPACT);
        if (!patch) {
            st = bz_fail(err, BZ_ERR_TRANSIENT, "write contact profiles: out of memory");
            break;
        }
        bz_pg_array_int64(&a[0], c->id);
        bz_pg_array_text(&a[1], c->picture);
        bz_pg_array_int64_or_null(&a[2], c->last_activity_ms);
        bz_pg_array_text(&a[3], patch);
        free(patch);
    }
    if (st == BZ_OK && a[0].n > 0)
        st = bz_pg_arrays_exec(conn, "write contact profiles", SQL_CONTACT_PROFILES_UPDATE, a, 4, NULL,
                       err);
    bz_pg_array_free_all(a, 4);
    return st;
}
