/*
 * plan.c - the first pass over a batch, without the database: number every
 * effect in order, list each message occurrence with its conversation facts,
 * and collect the keys the load phase must lock (contacts and groups to
 * get-or-create, accounts, the messages receipts, reactions, edits and
 * deletes point at, campaign log references). Those actions are no
 * occurrence: they store no row. Keys are deduplicated; for contacts and groups the first
 * sighting is the seed get-or-create inserts.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "wa/message_action.h"
#include "core/clock.h"
#include "core/uuid.h"

/* 1 the first time key is seen in this batch. */
static int first_sighting(cs_batch *b, const char *key, int *oom)
{
    if (cs_map_get(&b->seen, key))
        return 0;
    if (cs_map_put(&b->seen, key, (void *)1) != 0)
        *oom = 1;
    return 1;
}

/* The seed of seen_key for record rec, new: NULL when the batch has one
 * already. A find-only one becomes a seed to create, from rec on. */
static cs_seed *add_seed(cs_batch *b, cs_vec *seeds, const char *seen_key, size_t rec,
                         int64_t ws, int64_t acct, int provider, const char *key,
                         const char *name, const char *jid, int *oom)
{
    if (!seen_key) {
        *oom = 1;
        return NULL;
    }
    cs_seed *seen = cs_map_get(&b->seen, seen_key);
    if (seen && seen->find_only) {
        seen->find_only = 0;
        seen->rec = rec;
    }
    if (seen)
        return NULL;
    cs_seed *s = cs_arena_alloc(&b->arena, sizeof *s);
    if (!s || cs_vec_push(seeds, s) != 0 || cs_map_put(&b->seen, seen_key, s) != 0) {
        *oom = 1;
        return NULL;
    }
    *s = (cs_seed){.workspace_id = ws, .account_id = acct, .provider = provider, .key = key,
                   .name = name ? name : "", .jid = jid ? jid : "", .bsuid = "",
                   .parent_bsuid = "", .username = "", .rec = rec};
    return s;
}

/* A contact update's contact, created unless the update only removes it
 * from the address book (then a seed the batch has already serves). */
static void plan_contact_update(cs_batch *b, size_t rec, int *oom)
{
    const Blazz__V1__SyncCommand *cmd = b->recs[rec].cmd;
    const Blazz__V1__ContactUpdate *u = cmd->contact_update;
    int64_t ws = cmd->envelope->workspace_id;
    const char *key = cs_person_key(u->contact_phone, u->contact_bsuid, u->contact_jid);
    const char *seen_key = cs_contact_key(b, ws, key);
    int find_only = cs_contact_update_finds_only(cmd);
    if (find_only && seen_key && cs_map_get(&b->seen, seen_key))
        return;
    cs_seed *s = add_seed(b, &b->contact_seeds, seen_key, rec, ws,
                          cmd->envelope->whatsapp_account_id, cmd->envelope->provider, key,
                          u->push_name, u->contact_jid, oom);
    if (s) {
        s->bsuid = u->contact_bsuid;
        s->find_only = find_only;
    }
}

static void add_campaign_ref(cs_batch *b, const char *ref, int *oom)
{
    if (!ref || !bz_uuid_is_valid(ref))
        return;
    char *k = cs_arena_printf(&b->arena, "u:%s", ref);
    if (!k || (first_sighting(b, k, oom) && cs_vec_push(&b->campaign_refs, (void *)ref) != 0))
        *oom = 1;
}

static int64_t message_time(const Blazz__V1__InboundMessage *m, const Blazz__V1__Envelope *env)
{
    if (m->timestamp_ms > 0)
        return m->timestamp_ms;
    return env->occurred_at_ms > 0 ? env->occurred_at_ms : bz_wall_ms();
}

static void add_occurrence(cs_batch *b, size_t rec, int chat_index,
                           const Blazz__V1__InboundMessage *m, int group,
                           const char *contact_key, const char *contact_jid,
                           const char *group_jid, int *oom)
{
    const Blazz__V1__Envelope *env = b->recs[rec].cmd->envelope;
    cs_occurrence *o = &b->occ[b->nocc++];
    *o = (cs_occurrence){.ord = b->next_ord++, .rec = rec, .chat_index = chat_index, .m = m,
                         .workspace_id = env->workspace_id,
                         .account_id = env->whatsapp_account_id, .provider = env->provider,
                         .group = group, .contact_key = contact_key,
                         .contact_jid = contact_jid, .group_jid = group_jid,
                         .created_ms = message_time(m, env)};
    char *k = cs_chat_key(b, o->account_id, m->wam_id);
    o->first = k ? first_sighting(b, k, oom) : (*oom = 1, 0);
    if (!m->from_me || !*m->client_reference)
        return;
    add_campaign_ref(b, m->client_reference, oom);
}

/* Seeds and occurrences of one conversation's messages; ids: the other Meta
 * identifiers of a live message's contact (NULL for history). */
static void plan_conversation(cs_batch *b, size_t rec, int chat_index, int group,
                              const char *phone, const char *bsuid, const char *jid,
                              const char *name, const char *group_jid, const char *group_name,
                              const Blazz__V1__InboundMessage *ids,
                              Blazz__V1__InboundMessage *const *msgs, size_t nmsgs, int *oom)
{
    const Blazz__V1__Envelope *env = b->recs[rec].cmd->envelope;
    int64_t ws = env->workspace_id, acct = env->whatsapp_account_id;
    const char *contact_key = group ? NULL : cs_person_key(phone, bsuid, jid);
    if (group) {
        add_seed(b, &b->group_seeds, cs_group_key(b, ws, group_jid), rec, ws, acct,
                 env->provider, group_jid, group_name, "", oom);
    } else {
        cs_seed *s = add_seed(b, &b->contact_seeds, cs_contact_key(b, ws, contact_key), rec, ws,
                              acct, env->provider, contact_key, name, jid, oom);
        if (s)
            s->bsuid = bsuid;
        if (s && ids) {
            s->parent_bsuid = ids->contact_parent_bsuid;
            s->username = ids->contact_username;
        }
    }
    for (size_t i = 0; i < nmsgs; i++)
        add_occurrence(b, rec, chat_index, msgs[i], group, contact_key, jid, group_jid, oom);
}

static void plan_message(cs_batch *b, size_t rec, int *oom)
{
    Blazz__V1__InboundMessage *m = b->recs[rec].cmd->message;
    int group = m->chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
    /* An echo's contact_name is the account's own push name: never a seed. */
    plan_conversation(b, rec, -1, group, m->contact_phone, m->contact_bsuid, m->contact_jid,
                      m->from_me ? "" : m->contact_name, m->group_jid, m->group_name, m, &m, 1,
                      oom);
}

static void plan_history(cs_batch *b, size_t rec, int *oom)
{
    const Blazz__V1__HistorySyncBatch *h = b->recs[rec].cmd->history_sync;
    for (size_t j = 0; j < h->n_chats; j++) {
        const Blazz__V1__SyncedChat *c = h->chats[j];
        plan_conversation(b, rec, (int)j, c->chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP,
                          c->contact_phone, c->contact_bsuid, c->contact_jid, c->contact_name,
                          c->group_jid, c->group_name, NULL, c->messages, c->n_messages, oom);
    }
}

static void plan_account(cs_batch *b, int64_t id, int *oom)
{
    char *k = cs_id_key(b, 'A', id);
    if (!k) {
        *oom = 1;
        return;
    }
    if (!first_sighting(b, k, oom))
        return;
    int64_t *p = cs_arena_alloc(&b->arena, sizeof *p);
    if (!p || cs_vec_push(&b->account_ids, p) != 0) {
        *oom = 1;
        return;
    }
    *p = id;
}

/* A stored message the batch will act on (receipts, reactions, edits,
 * deletes): loaded and locked with the others. */
static void add_target(cs_batch *b, int64_t account_id, const char *wam_id, int *oom)
{
    char *k = cs_arena_printf(&b->arena, "t%" PRId64 ":%s", account_id, wam_id);
    if (!k) {
        *oom = 1;
        return;
    }
    if (!first_sighting(b, k, oom))
        return;
    cs_target *t = cs_arena_alloc(&b->arena, sizeof *t);
    if (!t || cs_vec_push(&b->targets, t) != 0) {
        *oom = 1;
        return;
    }
    t->account_id = account_id;
    t->wam_id = wam_id;
}

static void plan_receipt(cs_batch *b, size_t rec, int *oom)
{
    const Blazz__V1__SyncCommand *cmd = b->recs[rec].cmd;
    const Blazz__V1__MessageAck *ack = cmd->receipt;
    add_campaign_ref(b, ack->client_reference, oom);
    add_target(b, cmd->envelope->whatsapp_account_id, ack->wam_id, oom);
}

static size_t count_messages(const cs_batch *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nrecs; i++) {
        const Blazz__V1__SyncCommand *cmd = b->recs[i].cmd;
        if (cmd->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE)
            n++;
        else if (cmd->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_HISTORY_SYNC)
            for (size_t j = 0; j < cmd->history_sync->n_chats; j++)
                n += cmd->history_sync->chats[j]->n_messages;
    }
    return n;
}

bz_status cs_plan(cs_batch *b, bz_error *err)
{
    size_t nmsgs = count_messages(b);
    b->occ = malloc((nmsgs ? nmsgs : 1) * sizeof *b->occ);
    if (!b->occ)
        return bz_fail(err, BZ_ERR_TRANSIENT, "plan batch: out of memory for %zu messages", nmsgs);
    int oom = 0;
    for (size_t i = 0; i < b->nrecs && !oom; i++) {
        cs_record *r = &b->recs[i];
        const Blazz__V1__SyncCommand *cmd = r->cmd;
        r->first_occ = b->nocc;
        switch (cmd->command_case) {
        case BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE:
            if (bz_wa_message_is_action(cmd->message))
                add_target(b, cmd->envelope->whatsapp_account_id, cmd->message->target_wam_id,
                           &oom);
            else
                plan_message(b, i, &oom);
            break;
        case BLAZZ__V1__SYNC_COMMAND__COMMAND_HISTORY_SYNC:
            plan_account(b, cmd->envelope->whatsapp_account_id, &oom);
            plan_history(b, i, &oom);
            break;
        case BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT:
            plan_receipt(b, i, &oom);
            break;
        case BLAZZ__V1__SYNC_COMMAND__COMMAND_SESSION_STATUS:
            plan_account(b, cmd->envelope->whatsapp_account_id, &oom);
            break;
        case BLAZZ__V1__SYNC_COMMAND__COMMAND_CONTACT_UPDATE:
            plan_contact_update(b, i, &oom);
            break;
        case BLAZZ__V1__SYNC_COMMAND__COMMAND_GROUP_UPDATE: {
            const Blazz__V1__GroupUpdate *u = cmd->group_update;
            int64_t ws = cmd->envelope->workspace_id;
            add_seed(b, &b->group_seeds, cs_group_key(b, ws, u->group_jid), i, ws,
                     cmd->envelope->whatsapp_account_id, cmd->envelope->provider, u->group_jid,
                     u->name, "", &oom);
            break;
        }
        default:
            break;
        }
        r->nocc = b->nocc - r->first_occ;
        r->ord = b->next_ord++;
    }
    if (oom)
        return bz_fail(err, BZ_ERR_TRANSIENT, "plan batch of %zu: out of memory", b->nrecs);
    return BZ_OK;
}
