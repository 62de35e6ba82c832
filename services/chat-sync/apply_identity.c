/*
 * apply_identity.c - a customer's identity change (Meta's system messages
 * user_changed_number and user_changed_user_id; decision 0010): the
 * contact the old identifiers name takes the new ones, on the same row, so
 * it keeps its id, its conversation, its history and its opt-out.
 *
 * Each change is applied alone, in order with the batch's other records
 * (handler.c applies the records before it first), in a batch of its own:
 * the contacts the old and the new identifiers name are locked, the old
 * one's row (found by its old phone, else its old BSUID) gets the new
 * phone or BSUID, and one CONTACT_UPDATED (webhook contact.updated) names
 * what changed and what it was.
 *
 * Apply once: the row keeps metadata.identity_clock (update_clock.c), so a
 * replayed or older change moves nothing back; and a change whose old
 * identifiers name no live contact (already moved, or never seen) changes
 * nothing and creates nothing. A new identifier another live contact
 * already holds is refused (identity_conflict, dead-lettered): both rows
 * may be one person, or the other may be the identifier's previous owner,
 * which only a person can tell; the CRM's merge (crm_merge.c) then a
 * replay of the dead letter resolves the first (decision 0010).
 */
#include <string.h>

#include "chat_sync.h"
#include "core/log.h"
#include "wa/jid.h"

/* The change, its contact's old and new keys, and what it moved. */
typedef struct id_change {
    const Blazz__V1__SyncCommand *cmd;
    const Blazz__V1__ContactUpdate *u;
    const Blazz__V1__IdentityChange *ic;
    int64_t workspace_id;
    const char *changed[3];
    size_t n;
} id_change;

static int is_set(const char *s)
{
    return s && *s;
}

/* The contacts the change's old and new identifiers name, locked. */
static bz_status lock_both(cs_batch *b, PGconn *conn, const id_change *x, bz_error *err)
{
    const Blazz__V1__ContactUpdate *u = x->u;
    cs_seed old = {.workspace_id = x->workspace_id,
                   .key = cs_person_key(u->contact_phone, u->contact_bsuid, u->contact_jid),
                   .bsuid = u->contact_bsuid ? u->contact_bsuid : ""};
    cs_seed now = {.workspace_id = x->workspace_id,
                   .key = is_set(x->ic->new_phone) ? x->ic->new_phone : "",
                   .bsuid = x->ic->new_bsuid ? x->ic->new_bsuid : ""};
    const cs_seed *seeds[] = {&old, &now};
    return cs_lock_contacts(b, conn, seeds, 2, err);
}

static cs_contact *find_by(cs_batch *b, int64_t workspace_id, const char *key)
{
    return is_set(key) ? cs_find_contact(b, workspace_id, key) : NULL;
}

/* A live contact other than c holding the new identifier: refused. */
static bz_status refuse_taken(cs_batch *b, const id_change *x, const cs_contact *c,
                              bz_error *err)
{
    const char *fields[] = {"new_phone", "new_bsuid"};
    const char *values[] = {x->ic->new_phone, x->ic->new_bsuid};
    for (size_t i = 0; i < 2; i++) {
        const cs_contact *other = find_by(b, x->workspace_id, values[i]);
        if (other && other != c)
            return bz_reject(err, "identity_conflict",
                             "field contact_update.identity_change.%s: %s is contact %s's in "
                             "workspace %lld, not %s's (one person: merge it into %s, then replay)",
                             fields[i], values[i], other->uuid, (long long)x->workspace_id,
                             c->uuid, c->uuid);
    }
    return BZ_OK;
}

/* *field = value (a copy in the batch) when value is set and differs,
 * noting name among the changes; -1 when out of memory. */
static int move(cs_batch *b, id_change *x, char **field, const char *value, const char *name)
{
    if (!is_set(value) || strcmp(*field, value) == 0)
        return 0;
    char *copy = cs_arena_strdup(&b->arena, value);
    if (!copy)
        return -1;
    *field = copy;
    if (name)
        x->changed[x->n++] = name;
    return 0;
}

/* The new identifiers on c: a phone-less contact's phone column holds its
 * BSUID (decision 0010), so it follows the BSUID until a phone comes; a
 * JID made from the old phone follows the phone. */
static int take_new(cs_batch *b, id_change *x, cs_contact *c)
{
    const Blazz__V1__IdentityChange *ic = x->ic;
    char old_jid[BZ_JID_SIZE] = "", new_jid[BZ_JID_SIZE] = "";
    int phone_less = c->phone[0] != '+';
    if (is_set(ic->new_phone)) {
        if (!phone_less)
            bz_jid_from_phone(c->phone, old_jid, sizeof old_jid, NULL);
        bz_jid_from_phone(ic->new_phone, new_jid, sizeof new_jid, NULL);
    }
    const char *phone = is_set(ic->new_phone) ? ic->new_phone : phone_less ? ic->new_bsuid : NULL;
    int rc = move(b, x, &c->phone, phone, "phone");
    if (rc == 0 && (phone_less || strcmp(c->jid, old_jid) == 0))
        rc = move(b, x, &c->jid, new_jid, NULL);
    if (rc == 0)
        rc = move(b, x, &c->bsuid, ic->new_bsuid, "bsuid");
    if (rc == 0)
        rc = move(b, x, &c->parent_bsuid, ic->new_parent_bsuid, "parent_bsuid");
    return rc;
}

static bz_status announce(cs_batch *b, const id_change *x, const cs_contact *c,
                          const char *previous_phone, const char *previous_bsuid, bz_error *err)
{
    Blazz__V1__ContactChange change = BLAZZ__V1__CONTACT_CHANGE__INIT;
    change.changed = (char **)x->changed;
    change.n_changed = x->n;
    change.changed_at_ms = x->u->timestamp_ms;
    change.previous_phone = (char *)(strcmp(previous_phone, c->phone) ? previous_phone : "");
    change.previous_bsuid = (char *)(strcmp(previous_bsuid, c->bsuid) ? previous_bsuid : "");
    change.bsuid = c->bsuid;
    return cs_emit_contact_updated(b, &b->recs[0], c, &change, err);
}

static bz_status change_identity(cs_batch *b, PGconn *conn, id_change *x, bz_error *err)
{
    const Blazz__V1__Envelope *env = x->cmd->envelope;
    const Blazz__V1__ContactUpdate *u = x->u;
    bz_status st = lock_both(b, conn, x, err);
    if (st != BZ_OK)
        return st;
    cs_contact *c = find_by(b, x->workspace_id, u->contact_phone);
    if (!c)
        c = find_by(b, x->workspace_id, u->contact_bsuid);
    if (!c || cs_clock_has_seen(c->profile, "identity_clock", u->timestamp_ms, env->event_id)) {
        bz_log_event(BZ_LOG_DEBUG, env->event_id, env->trace_id,
                     "identity change %s: %s", x->ic->kind,
                     c ? "seen already" : "no live contact has the old identifiers");
        return BZ_OK;
    }
    if ((st = refuse_taken(b, x, c, err)) != BZ_OK)
        return st;
    const char *previous_phone = c->phone, *previous_bsuid = c->bsuid;
    if (take_new(b, x, c) != 0 ||
        cs_clock_record(c->profile, "identity_clock", u->timestamp_ms, env->event_id) != 0)
        return bz_fail(err, BZ_ERR_TRANSIENT, "identity change %s: out of memory", env->event_id);
    c->profile_dirty = 1;
    if (x->n == 0)
        return cs_write_contact_profiles(b, conn, err);
    st = cs_write_identities(conn, &c, 1, err);
    if (st == BZ_OK)
        st = cs_write_contact_profiles(b, conn, err);
    return st == BZ_OK ? announce(b, x, c, previous_phone, previous_bsuid, err) : st;
}

/* cs_apply_alone's work: cmd, the SyncCommand carrying the change. */
static bz_status apply_change(cs_batch *b, PGconn *conn, const void *cmd, bz_error *err)
{
    const Blazz__V1__SyncCommand *c = cmd;
    id_change x = {.cmd = c,
                   .u = c->contact_update,
                   .ic = c->contact_update->identity_change,
                   .workspace_id = c->envelope->workspace_id};
    return change_identity(b, conn, &x, err);
}

bz_status cs_apply_identity_change(cs_ctx *ctx, PGconn *conn, const rd_kafka_message_t *msg,
                                   const Blazz__V1__SyncCommand *cmd, bz_error *err)
{
    return cs_apply_alone(ctx, conn, msg, cmd, apply_change, cmd, err);
}
