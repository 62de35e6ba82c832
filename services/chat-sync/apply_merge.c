/*
 * apply_merge.c - two contacts found to be one person joined into one
 * (decision 0010, "LIDs and merging"), on the word of whoever knows: a
 * whatsapp-web.js gateway's mapping (a contact update naming a LID and the
 * phone it stands for), or Meta naming a phone and a BSUID in one event
 * that two contacts held (identity.c notes the pair; cs_merge_meta_pairs
 * merges it once the batch is written, the BSUID's row into the phone's).
 *
 * A person whose first messages came from a LID alone is a contact whose
 * phone column holds the LID; the same person writing from the phone is
 * another. When a gateway learns the pair it says so, and here, alone and
 * in order with the batch's other records (handler.c), the two rows become
 * one: the phone's row survives (the CRM knows the person by it), the LID's
 * row gives it its chats and calls (moved), unread count, latest times, name and
 * picture where the survivor has none, its opt-out when the LID's was the
 * newer decision, and, through blazz_merge_contact_rows (0056), its
 * campaign logs, audiences, reach and warm-up; then it is soft-deleted,
 * metadata.merged_into naming the survivor. One CONTACT_UPDATED carrying
 * the merge (webhook contact.merged) announces it, in the same
 * transaction, before any later event of the survivor's conversation.
 *
 * Exactly once: a replayed or second mapping finds one row under both
 * identifiers and merges nothing. A LID whose row has another phone, or a
 * phone whose row has another LID, is two people by the gateway's own
 * word: refused (identity_conflict, dead-lettered), both rows unchanged.
 * After the merge the record goes on to the ordinary contact apply, which
 * completes the survivor's LID and profile as for any contact update.
 * Meta's pair is never refused (its message is stored already, under the
 * phone's row): a BSUID row with another phone, or a phone row with
 * another BSUID, is left as it is and logged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/log.h"

#define SQL_MOVE_CONTACT_ROWS "SELECT blazz_merge_contact_rows($1::bigint, $2::bigint, $3::bigint)"

#define SQL_MOVE_CHATS                                                                            \
    "UPDATE chats SET contact_id = $2::bigint WHERE workspace_id = $1::bigint "                   \
    "AND contact_id = $3::bigint"

#define SQL_MOVE_CALLS                                                                            \
    "UPDATE calls SET contact_id = $2::bigint WHERE workspace_id = $1::bigint "                   \
    "AND contact_id = $3::bigint"

/* The keys leave the merged row with its life (the unique indexes are of
 * live rows); its unread count went to the survivor with its chats. */
#define SQL_RETIRE_MERGED                                                                         \
    "UPDATE contacts SET deleted_at = now(), unread_messages = 0, metadata = metadata || "        \
    "jsonb_build_object('merged_into', $2::text) WHERE id = $1::bigint"

int cs_is_lid_mapping(const Blazz__V1__SyncCommand *cmd)
{
    if (cmd->command_case != BLAZZ__V1__SYNC_COMMAND__COMMAND_CONTACT_UPDATE)
        return 0;
    const Blazz__V1__ContactUpdate *u = cmd->contact_update;
    return !u->identity_change && u->contact_phone && u->contact_phone[0] == '+' &&
           *cs_lid_of(u->contact_jid);
}

static int64_t later(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* What the survivor s takes of the merged row m, in memory; written by
 * cs_write_identities and cs_write_changes. lid: the LID the pair named
 * ("" when none: s keeps its own, else takes m's). -1 when out of memory. */
static int take_merged(cs_batch *b, cs_contact *s, const cs_contact *m, const char *lid)
{
    s->unread += m->unread;
    s->latest_chat_ms = later(s->latest_chat_ms, m->latest_chat_ms);
    if (m->last_message_ms > s->last_message_ms) {
        s->last_message_ms = m->last_message_ms;
        s->account_id = m->account_id ? m->account_id : s->account_id;
    }
    s->last_activity_ms = later(s->last_activity_ms, m->last_activity_ms);
    /* a survivor known without a phone (its phone column holds its BSUID
     * or LID: only the CRM's merge chooses such a one) takes the other's */
    if (s->phone[0] != '+' && m->phone[0] == '+') {
        s->phone = m->phone;
        s->jid = m->jid;
    }
    /* a name the CRM gave outlives a push name, whichever contact had it */
    if (cs_contact_named_by_crm(m) && !cs_contact_named_by_crm(s)) {
        s->name = m->name;
        if (!s->profile || json_object_set(s->profile, "crm_named_at",
                                           json_object_get(m->profile, "crm_named_at")) != 0)
            return -1;
    } else if (!*s->name) {
        s->name = m->name;
    }
    if (!*s->picture)
        s->picture = m->picture;
    if (!*s->bsuid)
        s->bsuid = m->bsuid;
    if (!*s->parent_bsuid)
        s->parent_bsuid = m->parent_bsuid;
    if (!*s->username)
        s->username = m->username;
    if (!*s->lid)
        s->lid = m->lid;
    if (m->opt_changed_ms > s->opt_changed_ms) {
        s->opted_out_ms = m->opted_out_ms;
        s->opt_changed_ms = m->opt_changed_ms;
        s->opt_source = m->opt_source;
        s->opt_keyword = m->opt_keyword;
        s->opt_dirty = 1;
    }
    s->dirty = s->profile_dirty = 1;
    if (*lid)
        s->lid = cs_arena_strdup(&b->arena, lid);
    return s->lid ? 0 : -1;
}

/* Two people by the gateway's own word: the LID's row has another phone,
 * or the phone's row another LID. */
static bz_status refuse_two_people(const cs_contact *by_phone, const cs_contact *by_lid,
                                   const char *phone, const char *lid, bz_error *err)
{
    if (by_lid->phone[0] == '+' && strcmp(by_lid->phone, phone) != 0)
        return bz_reject(err, "identity_conflict",
                         "field contact_update.contact_jid: %s is contact %s's, whose phone is "
                         "%s, not %s (contact %s)",
                         lid, by_lid->uuid, by_lid->phone, phone, by_phone->uuid);
    if (*by_phone->lid && strcmp(by_phone->lid, lid) != 0)
        return bz_reject(err, "identity_conflict",
                         "field contact_update.contact_phone: %s is contact %s's, whose LID is "
                         "%s, not %s (contact %s)",
                         phone, by_phone->uuid, by_phone->lid, lid, by_lid->uuid);
    return BZ_OK;
}

/* Move the merged row's rows to the survivor; *moved: its chats. */
static bz_status move_rows(PGconn *conn, const cs_contact *s, const cs_contact *m, int *moved,
                           bz_error *err)
{
    char ws[24], sid[24], mid[24];
    snprintf(ws, sizeof ws, "%" PRId64, s->workspace_id);
    snprintf(sid, sizeof sid, "%" PRId64, s->id);
    snprintf(mid, sizeof mid, "%" PRId64, m->id);
    const char *ids[] = {ws, sid, mid};
    char what[160];
    snprintf(what, sizeof what, "merge contact %s into %s: move chats", m->uuid, s->uuid);
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, what, SQL_MOVE_CHATS, 3, ids, &res, err);
    if (st == BZ_OK)
        *moved = (int)strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    snprintf(what, sizeof what, "merge contact %s into %s: move calls", m->uuid, s->uuid);
    if (st == BZ_OK)
        st = bz_pg_exec_params(conn, what, SQL_MOVE_CALLS, 3, ids, NULL, err);
    snprintf(what, sizeof what, "merge contact %s into %s: move campaign rows", m->uuid, s->uuid);
    if (st == BZ_OK)
        st = bz_pg_exec_params(conn, what, SQL_MOVE_CONTACT_ROWS, 3, ids, NULL, err);
    const char *retire[] = {mid, s->uuid};
    snprintf(what, sizeof what, "merge contact %s into %s: retire it", m->uuid, s->uuid);
    if (st == BZ_OK)
        st = bz_pg_exec_params(conn, what, SQL_RETIRE_MERGED, 2, retire, NULL, err);
    return st;
}

bz_status cs_merge_contacts(cs_batch *b, PGconn *conn, cs_contact *s, cs_contact *m,
                            const cs_record *r, Blazz__V1__ContactMerge *why, bz_error *err)
{
    int moved = 0;
    bz_status st = move_rows(conn, s, m, &moved, err);
    if (st != BZ_OK)
        return st;
    if (take_merged(b, s, m, why->lid) != 0)
        return bz_fail(err, BZ_ERR_TRANSIENT, "merge contact %s into %s: out of memory", m->uuid,
                       s->uuid);
    st = cs_write_identities(conn, &s, 1, err);
    if (st == BZ_OK)
        st = cs_write_changes(b, conn, err);
    if (st != BZ_OK)
        return st;
    why->merged_contact_id = m->id;
    why->merged_contact_uuid = m->uuid;
    why->chats_moved = moved;
    return cs_emit_contact_merged(b, r, s, why, err);
}

static bz_status apply_mapping(cs_batch *b, PGconn *conn, const void *work, bz_error *err)
{
    const Blazz__V1__SyncCommand *cmd = work;
    const Blazz__V1__ContactUpdate *u = cmd->contact_update;
    int64_t ws = cmd->envelope->workspace_id;
    const char *lid = cs_lid_of(u->contact_jid);
    cs_seed pair = {.workspace_id = ws, .key = u->contact_phone, .jid = u->contact_jid,
                    .bsuid = ""};
    const cs_seed *seeds[] = {&pair};
    bz_status st = cs_lock_contacts(b, conn, seeds, 1, err);
    if (st != BZ_OK)
        return st;
    cs_contact *by_phone = cs_find_contact(b, ws, u->contact_phone);
    cs_contact *by_lid = cs_find_contact(b, ws, lid);
    if (!by_phone || !by_lid || by_phone == by_lid) {
        bz_log_event(BZ_LOG_DEBUG, cmd->envelope->event_id, cmd->envelope->trace_id,
                     "mapping %s = %s: %s", lid, u->contact_phone,
                     by_phone == by_lid && by_phone ? "one contact already" : "nothing to merge");
        return BZ_OK;
    }
    if ((st = refuse_two_people(by_phone, by_lid, u->contact_phone, lid, err)) != BZ_OK)
        return st;
    Blazz__V1__ContactMerge why = BLAZZ__V1__CONTACT_MERGE__INIT;
    why.lid = (char *)lid;
    why.phone = u->contact_phone;
    why.merged_at_ms = u->timestamp_ms;
    why.merged_by = (char *)"gateway";
    st = cs_merge_contacts(b, conn, by_phone, by_lid, &b->recs[0], &why, err);
    if (st == BZ_OK)
        bz_log_event(BZ_LOG_INFO, cmd->envelope->event_id, cmd->envelope->trace_id,
                     "contact %s merged into %s: %s is %s", by_lid->uuid, by_phone->uuid, lid,
                     u->contact_phone);
    return st;
}

bz_status cs_apply_lid_mapping(cs_ctx *ctx, PGconn *conn, const rd_kafka_message_t *msg,
                               const Blazz__V1__SyncCommand *cmd, bz_error *err)
{
    return cs_apply_alone(ctx, conn, msg, cmd, apply_mapping, cmd, err);
}

/* Meta named the phone and the BSUID in one event: the BSUID's contact
 * joins the phone's, unless either holds another identifier of the pair's
 * kind (the BSUID's a phone, the phone's a BSUID: two people, or a change
 * Meta announces with a system message), which is logged and both kept. */
static bz_status merge_meta_pair(cs_batch *b, PGconn *conn, const void *work, bz_error *err)
{
    const cs_seed *pair = work;
    int64_t ws = pair->workspace_id;
    cs_seed seed = {.workspace_id = ws, .key = pair->key, .jid = "", .bsuid = pair->bsuid};
    const cs_seed *seeds[] = {&seed};
    bz_status st = cs_lock_contacts(b, conn, seeds, 1, err);
    if (st != BZ_OK)
        return st;
    cs_contact *by_phone = cs_find_contact(b, ws, pair->key);
    cs_contact *by_bsuid = cs_find_contact(b, ws, pair->bsuid);
    const Blazz__V1__Envelope *env = b->recs[0].cmd->envelope;
    if (!by_phone || !by_bsuid || by_phone == by_bsuid)
        return BZ_OK;
    if (by_bsuid->phone[0] == '+' ||
        (*by_phone->bsuid && strcmp(by_phone->bsuid, pair->bsuid) != 0)) {
        bz_log_event(BZ_LOG_WARN, env->event_id, env->trace_id,
                     "contacts %s and %s not merged: Meta names %s and %s together, but %s is "
                     "contact %s's and %s contact %s's",
                     by_phone->uuid, by_bsuid->uuid, pair->key, pair->bsuid, by_bsuid->phone,
                     by_bsuid->uuid, *by_phone->bsuid ? by_phone->bsuid : pair->key,
                     by_phone->uuid);
        return BZ_OK;
    }
    Blazz__V1__ContactMerge why = BLAZZ__V1__CONTACT_MERGE__INIT;
    why.phone = (char *)pair->key;
    why.bsuid = (char *)pair->bsuid;
    why.merged_at_ms = env->occurred_at_ms;
    why.merged_by = (char *)"meta";
    st = cs_merge_contacts(b, conn, by_phone, by_bsuid, &b->recs[0], &why, err);
    if (st == BZ_OK)
        bz_log_event(BZ_LOG_INFO, env->event_id, env->trace_id,
                     "contact %s merged into %s: Meta names %s and %s together", by_bsuid->uuid,
                     by_phone->uuid, pair->bsuid, pair->key);
    return st;
}

bz_status cs_merge_meta_pairs(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_status st = BZ_OK;
    for (size_t i = 0; st == BZ_OK && i < b->meta_pairs.n; i++) {
        const cs_seed *pair = b->meta_pairs.items[i];
        const cs_record *r = &b->recs[pair->rec];
        st = cs_apply_alone(b->ctx, conn, r->msg, r->cmd, merge_meta_pair, pair, err);
    }
    return st;
}
