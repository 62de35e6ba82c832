/*
 * batch.c - the life cycle of one batch's working state and its lookups
 * (see chat_sync.h for how a batch is applied).
 *
 * Map keys name the table and the row's business key: "c<ws>:<phone>" for
 * contacts, "g<ws>:<jid>" for groups, "m<account>:<wam_id>" for chats,
 * "<kind>#<id>" for rows by id, and the bare chats.uuid for CRM sends.
 * Every key lives in the batch arena.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"

#define BATCH_MAPS 11

/* Every lookup map of b, into maps. */
static void batch_maps(cs_batch *b, cs_map *maps[BATCH_MAPS])
{
    cs_map *all[BATCH_MAPS] = {&b->seen,         &b->contacts_by_key, &b->contacts_by_id,
                               &b->groups_by_key, &b->groups_by_id,    &b->accounts,
                               &b->chats,        &b->logs_by_uuid,    &b->logs_by_wam,
                               &b->agent_rows,   &b->opt_out_config};
    memcpy(maps, all, sizeof all);
}

bz_status cs_batch_init(cs_batch *b, cs_ctx *ctx, const rd_kafka_message_t *const *msgs,
                        const Blazz__V1__SyncCommand *const *cmds, size_t n, bz_error *err)
{
    memset(b, 0, sizeof *b);
    b->ctx = ctx;
    cs_map *maps[BATCH_MAPS];
    batch_maps(b, maps);
    for (size_t i = 0; i < BATCH_MAPS; i++)
        cs_map_init(maps[i], &b->arena);
    b->recs = cs_arena_alloc(&b->arena, (n ? n : 1) * sizeof *b->recs);
    if (!b->recs)
        return bz_fail(err, BZ_ERR_TRANSIENT, "apply batch of %zu: out of memory", n);
    for (size_t i = 0; i < n; i++) {
        b->recs[i].msg = msgs[i];
        b->recs[i].cmd = cmds[i];
    }
    b->nrecs = n;
    return BZ_OK;
}

bz_status cs_apply_alone(cs_ctx *ctx, PGconn *conn, const rd_kafka_message_t *msg,
                         const Blazz__V1__SyncCommand *cmd, cs_apply_alone_fn apply,
                         const void *work, bz_error *err)
{
    cs_batch b;
    bz_status st = cs_batch_init(&b, ctx, &msg, &cmd, cmd ? 1 : 0, err);
    if (st == BZ_OK)
        st = apply(&b, conn, work, err);
    if (st == BZ_OK)
        st = cs_write_outbox(&b, conn, err);
    cs_batch_free(&b);
    return st;
}

/* cs_apply_own_batch's commands, as one piece of work. */
typedef struct {
    const Blazz__V1__SyncCommand *const *cmds;
    size_t n;
    cs_apply_one_fn apply;
} own_commands;

static bz_status apply_each(cs_batch *b, PGconn *conn, const void *work, bz_error *err)
{
    const own_commands *oc = work;
    bz_status st = BZ_OK;
    for (size_t i = 0; st == BZ_OK && i < oc->n; i++)
        st = oc->apply(b, conn, oc->cmds[i], err);
    return st;
}

bz_status cs_apply_own_batch(cs_ctx *ctx, PGconn *conn, const Blazz__V1__SyncCommand *const *cmds,
                             size_t n, cs_apply_one_fn apply, bz_error *err)
{
    if (n == 0)
        return BZ_OK;
    own_commands oc = {.cmds = cmds, .n = n, .apply = apply};
    return cs_apply_alone(ctx, conn, NULL, NULL, apply_each, &oc, err);
}

static void free_rows(cs_batch *b)
{
    for (size_t i = 0; i < b->groups.n; i++) {
        cs_group *g = b->groups.items[i];
        json_decref(g->participants);
        json_decref(g->settings);
        json_decref(g->meta);
    }
    for (size_t i = 0; i < b->account_list.n; i++)
        json_decref(((cs_account *)b->account_list.items[i])->metadata);
    for (size_t i = 0; i < b->owned_json.n; i++)
        json_decref(b->owned_json.items[i]);
}

void cs_batch_free(cs_batch *b)
{
    free_rows(b);
    for (size_t i = 0; i < b->nevents; i++) {
        free(b->events[i].payload);
    }
    free(b->events);
    free(b->occ);
    for (size_t i = 0; i < b->unparked_cmds.n; i++)
        cs_command_free(b->unparked_cmds.items[i]);
    cs_map *maps[BATCH_MAPS];
    batch_maps(b, maps);
    for (size_t i = 0; i < BATCH_MAPS; i++)
        cs_map_free(maps[i]);
    cs_vec *vecs[] = {&b->contact_seeds, &b->group_seeds, &b->account_ids, &b->targets,
                      &b->campaign_refs, &b->contacts,    &b->groups,      &b->account_list,
                      &b->chat_list,     &b->to_park,      &b->unparked_recs,
                      &b->unparked_cmds, &b->unparked_ids,  &b->owned_json,
                      &b->send_proofs,   &b->meta_pairs};
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
        cs_vec_free(vecs[i]);
    cs_arena_free(&b->arena);
}

char *cs_contact_key(cs_batch *b, int64_t workspace_id, const char *key)
{
    return cs_arena_printf(&b->arena, "c%" PRId64 ":%s", workspace_id, key);
}

char *cs_group_key(cs_batch *b, int64_t workspace_id, const char *jid)
{
    return cs_arena_printf(&b->arena, "g%" PRId64 ":%s", workspace_id, jid);
}

char *cs_chat_key(cs_batch *b, int64_t account_id, const char *wam_id)
{
    return cs_arena_printf(&b->arena, "m%" PRId64 ":%s", account_id, wam_id);
}

char *cs_id_key(cs_batch *b, char kind, int64_t id)
{
    return cs_arena_printf(&b->arena, "%c#%" PRId64, kind, id);
}

/* Lookups build their key on the stack: they run often and keep nothing. */
#define STACK_KEY(buf, fmt, ...) char buf[512]; snprintf(buf, sizeof buf, fmt, __VA_ARGS__)

cs_contact *cs_find_contact(cs_batch *b, int64_t workspace_id, const char *key)
{
    STACK_KEY(k, "c%" PRId64 ":%s", workspace_id, key);
    return cs_map_get(&b->contacts_by_key, k);
}

cs_group *cs_find_group(cs_batch *b, int64_t workspace_id, const char *jid)
{
    STACK_KEY(k, "g%" PRId64 ":%s", workspace_id, jid);
    return cs_map_get(&b->groups_by_key, k);
}

cs_chat *cs_find_chat(cs_batch *b, int64_t account_id, const char *wam_id)
{
    STACK_KEY(k, "m%" PRId64 ":%s", account_id, wam_id);
    return cs_map_get(&b->chats, k);
}

cs_account *cs_find_account(cs_batch *b, int64_t id)
{
    STACK_KEY(k, "a#%" PRId64, id);
    return cs_map_get(&b->accounts, k);
}

cs_contact *cs_find_contact_id(cs_batch *b, int64_t id)
{
    STACK_KEY(k, "c#%" PRId64, id);
    return cs_map_get(&b->contacts_by_id, k);
}

cs_group *cs_find_group_id(cs_batch *b, int64_t id)
{
    STACK_KEY(k, "g#%" PRId64, id);
    return cs_map_get(&b->groups_by_id, k);
}

int cs_add_contact(cs_batch *b, cs_contact *c)
{
    if (cs_find_contact_id(b, c->id))
        return 0;
    char *idk = cs_id_key(b, 'c', c->id);
    if (!idk || cs_alias_contact(b, c, c->phone) || cs_map_put(&b->contacts_by_id, idk, c) ||
        (*c->bsuid && cs_alias_contact(b, c, c->bsuid)) ||
        (*c->lid && cs_alias_contact(b, c, c->lid)))
        return -1;
    return cs_vec_push(&b->contacts, c);
}

int cs_alias_contact(cs_batch *b, cs_contact *c, const char *key)
{
    char *k = cs_contact_key(b, c->workspace_id, key);
    return !k || cs_map_put(&b->contacts_by_key, k, c) ? -1 : 0;
}

int cs_add_group(cs_batch *b, cs_group *g)
{
    if (cs_find_group_id(b, g->id)) {
        json_decref(g->participants);
        g->participants = NULL;
        return 0;
    }
    char *key = cs_group_key(b, g->workspace_id, g->jid);
    char *idk = cs_id_key(b, 'g', g->id);
    if (!key || !idk || cs_map_put(&b->groups_by_key, key, g) || cs_map_put(&b->groups_by_id, idk, g) ||
        cs_vec_push(&b->groups, g)) {
        json_decref(g->participants);
        g->participants = NULL;
        return -1;
    }
    return 0;
}

int cs_add_chat(cs_batch *b, cs_chat *c)
{
    char *key = cs_chat_key(b, c->account_id, c->wam_id);
    if (!key || cs_map_put(&b->chats, key, c))
        return -1;
    return cs_vec_push(&b->chat_list, c);
}

int cs_index_agent_row(cs_batch *b, cs_chat *c)
{
    char *key = cs_chat_key(b, c->account_id, c->wam_id);
    return key && !cs_map_get(&b->chats, key) ? cs_map_put(&b->chats, key, c) : key ? 0 : -1;
}

int cs_add_agent_row(cs_batch *b, cs_chat *c)
{
    if (cs_map_put(&b->agent_rows, c->uuid, c) != 0 || cs_vec_push(&b->chat_list, c) != 0)
        return -1;
    return c->wam_id && *c->wam_id ? cs_index_agent_row(b, c) : 0;
}

cs_chat *cs_find_agent_row(cs_batch *b, int64_t workspace_id, const char *ref)
{
    cs_chat *c = ref && *ref ? cs_map_get(&b->agent_rows, ref) : NULL;
    return c && c->workspace_id == workspace_id ? c : NULL;
}
