/*
 * load.c - reading and locking the rows a batch changes (see chat_sync.h).
 *
 * Contacts and groups are got-or-created lock first: a SELECT ... FOR NO KEY
 * UPDATE of every key the batch needs (nearly all exist once a conversation has
 * started), then, only for the keys it did not find, a multi-row INSERT ...
 * ON CONFLICT DO NOTHING (a concurrent insert of the same key waits and then
 * does nothing) and a second SELECT ... FOR NO KEY UPDATE of those keys in
 * a new statement, which sees rows committed meanwhile. Rows are locked in
 * id order within each statement to make deadlocks between instances rare;
 * when one happens PostgreSQL reports 40P01 and the consumer retries.
 * NO KEY UPDATE because chat-sync never changes a key: it still excludes
 * other writers, but not the key-share locks that foreign-key checks take
 * (webhook fan-out inserting deliveries for an account, campaign logs for a
 * contact). FOR UPDATE blocked those and deadlocked with them, and every
 * deadlock cost a second before PostgreSQL broke it.
 * Campaign logs are campaign_logs.c's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/uuid.h"
#include "pg/columns.h"

#define MS(col) "coalesce((extract(epoch FROM " col ") * 1000)::bigint, 0)"

#define SQL_ACCOUNTS_LOAD                                                                         \
    "SELECT id, workspace_id, uuid::text, session_id, status, "                                   \
    "coalesce(assigned_instance_index, -1), coalesce(assigned_instance_url, ''), "                \
    "coalesce(previous_instance_index, -1), instance_migration_count, "                           \
    MS("last_instance_migration_at") ", " MS("last_activity_at") ", " MS("last_connected_at") ", " \
    MS("disconnected_at") ", disconnect_reason, disconnect_details, phone_number, qr_code, "      \
    "health_score, metadata::text, session_restore_count, " MS("qr_expires_at") ", "              \
    "assignment_epoch, coalesce(gateway_id, ''), coalesce(remote_session_path, ''), "             \
    "coalesce(session_file_size_bytes, -1), is_primary, coalesce(session_storage, ''), "           \
    MS("session_storage_verified_at") ", sync_enabled "                                            \
    "FROM whatsapp_accounts WHERE id = ANY($1::bigint[]) AND deleted_at IS NULL "                 \
    "ORDER BY id FOR NO KEY UPDATE"

/* Any of the live keys (phone, BSUID, LID) taken concurrently: nothing
 * inserted, the second lock finds that row. */
#define SQL_CONTACTS_ENSURE                                                                       \
    "INSERT INTO contacts (workspace_id, whatsapp_account_id, source_session_id, source_type, "   \
    "provider_type, first_name, phone, metadata, bsuid, parent_bsuid, username, lid) "            \
    "SELECT ws, acct, acct, prov, prov, nullif(name, ''), phone, "                                \
    "CASE WHEN jid <> '' THEN jsonb_build_object('jid', jid) ELSE '{}'::jsonb END, "              \
    "nullif(bsuid, ''), nullif(parent, ''), nullif(username, ''), nullif(lid, '') "               \
    "FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], "    \
    "$7::text[], $8::text[], $9::text[], $10::text[]) "                                           \
    "AS t(ws, acct, prov, name, phone, jid, bsuid, parent, username, lid) ORDER BY ws, phone "    \
    "ON CONFLICT DO NOTHING"

#define CONTACT_COLUMNS                                                                           \
    "c.id, c.uuid::text, c.workspace_id, c.phone, coalesce(c.first_name, ''), "                   \
    "c.unread_messages, " MS("c.latest_chat_created_at") ", " MS("c.last_message_at") ", "        \
    "coalesce(c.profile_picture, ''), coalesce(c.metadata->>'jid', ''), "                        \
    MS("c.last_activity") ", jsonb_strip_nulls(jsonb_build_object('profile_clock', "              \
    "c.metadata->'profile_clock', 'business_profile', c.metadata->'business_profile', "           \
    "'identity_clock', c.metadata->'identity_clock', 'saved_name', c.metadata->'saved_name', "    \
    "'saved_name_clock', c.metadata->'saved_name_clock', "                                     \
    "'crm_named_at', c.metadata->'crm_named_at'))::text, "                                        \
    "coalesce(c.whatsapp_account_id, 0), " MS("c.opted_out_at") ", c.opt_out_source, "          \
    "c.opt_out_keyword, " MS("c.opt_out_changed_at") ", coalesce(c.bsuid, ''), "                 \
    "coalesce(c.parent_bsuid, ''), coalesce(c.username, ''), coalesce(c.lid, '') "

/* A contact by its key (phone, or what stands for it), its BSUID or its LID. Each
 * identifier is its own equality join, which an index or a hash serves:
 * "phone = .. OR bsuid = .." is served by neither (the planner joined on
 * the workspace alone and filtered every contact of it for every key, and
 * chat-sync's backlog fell from about 8,500 to 4,000 commands/s at 5,000
 * contacts). The ids are gathered once (ARRAY(..) is evaluated before the
 * scan), then locked through the primary key, whatever the statistics. */
#define KEYS_UNNEST                                                                               \
    "unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS k(ws, phone, bsuid, lid) "
#define SQL_CONTACTS_LOAD_BY_KEY                                                                  \
    "SELECT " CONTACT_COLUMNS "FROM contacts c WHERE c.deleted_at IS NULL AND c.id = ANY(ARRAY("  \
    "SELECT p.id FROM " KEYS_UNNEST "JOIN contacts p ON p.workspace_id = k.ws "                   \
    "AND p.phone = k.phone AND p.deleted_at IS NULL "                                             \
    "UNION ALL SELECT b.id FROM " KEYS_UNNEST "JOIN contacts b ON b.workspace_id = k.ws "         \
    "AND b.bsuid = k.bsuid AND b.deleted_at IS NULL WHERE k.bsuid <> '' "                         \
    "UNION ALL SELECT l.id FROM " KEYS_UNNEST "JOIN contacts l ON l.workspace_id = k.ws "         \
    "AND l.lid = k.lid AND l.deleted_at IS NULL WHERE k.lid <> '')) "                             \
    "ORDER BY c.id FOR NO KEY UPDATE OF c"

#define SQL_CONTACTS_LOAD_BY_ID                                                                   \
    "SELECT " CONTACT_COLUMNS "FROM contacts c WHERE c.id = ANY($1::bigint[]) "                   \
    "ORDER BY c.id FOR NO KEY UPDATE OF c"

#define SQL_GROUPS_ENSURE                                                                         \
    "INSERT INTO whatsapp_groups (workspace_id, whatsapp_account_id, group_jid, name) "           \
    "SELECT ws, acct, jid, name FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) " \
    "AS t(ws, acct, jid, name) ORDER BY ws, jid "                                                  \
    "ON CONFLICT (workspace_id, group_jid) DO NOTHING"

#define GROUP_COLUMNS                                                                             \
    "g.id, g.uuid::text, g.workspace_id, coalesce(g.whatsapp_account_id, 0), g.group_jid, "       \
    "g.name, coalesce(g.description, ''), coalesce(g.owner_phone, ''), g.participants::text, "    \
    MS("g.group_created_at") ", coalesce(g.invite_code, ''), coalesce(g.settings::text, ''), "    \
    "g.group_metadata::text, " MS("g.latest_chat_created_at") " "

#define SQL_GROUPS_LOAD_BY_KEY                                                                    \
    "SELECT " GROUP_COLUMNS "FROM whatsapp_groups g "                                             \
    "JOIN unnest($1::bigint[], $2::text[]) AS k(ws, jid) "                                        \
    "ON g.workspace_id = k.ws AND g.group_jid = k.jid ORDER BY g.id FOR NO KEY UPDATE OF g"

#define SQL_GROUPS_LOAD_BY_ID                                                                     \
    "SELECT " GROUP_COLUMNS "FROM whatsapp_groups g WHERE g.id = ANY($1::bigint[]) "              \
    "ORDER BY g.id FOR NO KEY UPDATE OF g"

#define CHAT_COLUMNS                                                                              \
    "c.id, c.uuid::text, c.workspace_id, coalesce(c.whatsapp_account_id, 0), "                    \
    "coalesce(c.wam_id, ''), coalesce(c.type, 'inbound'), c.chat_type, c.provider_type, "         \
    "coalesce(c.message_status, ''), c.is_read, " MS("c.created_at") ", " MS("c.sent_at") ", "    \
    MS("c.delivered_at") ", " MS("c.read_at") ", coalesce(c.contact_id, 0), "                     \
    "coalesce(c.group_id, 0), c.metadata::text, coalesce(c.user_id, 0), " MS("c.deleted_at") ", " \
    "c.media_id IS NOT NULL "

#define SQL_CHATS_LOAD                                                                            \
    "SELECT " CHAT_COLUMNS "FROM chats c "                                                        \
    "JOIN unnest($1::bigint[], $2::text[]) AS k(acct, wam) "                                      \
    "ON c.whatsapp_account_id = k.acct AND c.wam_id = k.wam ORDER BY c.id FOR NO KEY UPDATE OF c"

/* CRM sends are the outbound rows whose uuid a client reference names. */
#define SQL_AGENT_ROWS_LOAD                                                                       \
    "SELECT " CHAT_COLUMNS "FROM chats c WHERE c.uuid = ANY($1::uuid[]) AND c.type = 'outbound' " \
    "ORDER BY c.id FOR NO KEY UPDATE OF c"

#define SQL_CONTACT_LOCK_BY_ID                                                                    \
    "SELECT " CONTACT_COLUMNS "FROM contacts c WHERE c.workspace_id = $1 AND c.id = $2 "          \
    "AND c.deleted_at IS NULL FOR NO KEY UPDATE OF c"

/* Both contacts of a merge in one statement, in id order (above). */
#define SQL_CONTACTS_LOCK_LIVE_BY_ID                                                              \
    "SELECT " CONTACT_COLUMNS "FROM contacts c WHERE c.workspace_id = $1::bigint "                \
    "AND c.id = ANY($2::bigint[]) AND c.deleted_at IS NULL ORDER BY c.id FOR NO KEY UPDATE OF c"

#define SQL_CONTACT_LOCK_BY_KEY                                                                   \
    "SELECT " CONTACT_COLUMNS "FROM contacts c WHERE c.workspace_id = $1 AND c.phone = $2 "       \
    "AND c.deleted_at IS NULL FOR NO KEY UPDATE OF c"

#define SQL_GROUP_LOCK_BY_ID                                                                      \
    "SELECT " GROUP_COLUMNS "FROM whatsapp_groups g WHERE g.workspace_id = $1 AND g.id = $2 "     \
    "FOR NO KEY UPDATE OF g"

#define SQL_GROUP_LOCK_BY_JID                                                                     \
    "SELECT " GROUP_COLUMNS "FROM whatsapp_groups g WHERE g.workspace_id = $1 "                   \
    "AND g.group_jid = $2 FOR NO KEY UPDATE OF g"

#include "load_columns.h"

/* ---- accounts ------------------------------------------------------------------------ */

static bz_status parse_account(cs_batch *b, const PGresult *res, int row, bz_error *err)
{
    cs_account *a = cs_arena_alloc(&b->arena, sizeof *a);
    if (!a)
        return oom(err, "load accounts");
    a->id = col_int(res, row, 0);
    a->workspace_id = col_int(res, row, 1);
    col_uuid(res, row, 2, a->uuid);
    a->session_id = col_text(b, res, row, 3);
    a->status = cs_session_from_text(PQgetvalue(res, row, 4));
    int64_t idx = col_int(res, row, 5);
    a->has_instance = idx >= 0;
    a->instance_index = a->has_instance ? (int)idx : 0;
    a->instance_url = col_text(b, res, row, 6);
    int64_t prev = col_int(res, row, 7);
    a->has_previous_instance = prev >= 0;
    a->previous_instance_index = a->has_previous_instance ? (int)prev : 0;
    a->migration_count = (int)col_int(res, row, 8);
    a->last_migration_ms = col_int(res, row, 9);
    a->last_activity_ms = col_int(res, row, 10);
    a->last_connected_ms = col_int(res, row, 11);
    a->disconnected_ms = col_int(res, row, 12);
    a->disconnect_reason = col_text(b, res, row, 13);
    a->disconnect_details = col_text(b, res, row, 14);
    a->phone_number = col_text(b, res, row, 15);
    a->qr_code = col_text(b, res, row, 16);
    a->health_score = (int)col_int(res, row, 17);
    a->restore_count = (int)col_int(res, row, 19);
    a->qr_expires_ms = col_int(res, row, 20);
    a->epoch = col_int(res, row, 21);
    a->gateway_id = col_text(b, res, row, 22);
    a->remote_session_path = col_text(b, res, row, 23);
    a->session_file_size = col_int(res, row, 24);
    a->is_primary = strcmp(PQgetvalue(res, row, 25), "t") == 0;
    a->session_storage = col_text(b, res, row, 26);
    a->storage_verified_ms = col_int(res, row, 27);
    a->sync_enabled = strcmp(PQgetvalue(res, row, 28), "t") == 0;
    a->metadata = json_loads(PQgetvalue(res, row, 18), 0, NULL);
    if (!a->metadata || !json_is_object(a->metadata)) {
        json_decref(a->metadata);
        a->metadata = json_object();
    }
    char *k = cs_id_key(b, 'a', a->id);
    if (!a->metadata || !k || cs_map_put(&b->accounts, k, a) || cs_vec_push(&b->account_list, a)) {
        json_decref(a->metadata);
        return oom(err, "load accounts");
    }
    return BZ_OK;
}

bz_status cs_load_accounts(cs_batch *b, PGconn *conn, bz_error *err)
{
    if (b->account_ids.n == 0)
        return BZ_OK;
    bz_pg_array ids;
    bz_pg_array_init(&ids);
    for (size_t i = 0; i < b->account_ids.n; i++)
        bz_pg_array_int64(&ids, *(int64_t *)b->account_ids.items[i]);
    PGresult *res = NULL;
    bz_status st = bz_pg_arrays_exec(conn, "lock accounts", SQL_ACCOUNTS_LOAD, &ids, 1, &res, err);
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++)
        st = parse_account(b, res, i, err);
    PQclear(res);
    bz_pg_array_free_all(&ids, 1);
    return st;
}

/* ---- contacts ------------------------------------------------------------------------ */

static bz_status parse_contacts(cs_batch *b, const PGresult *res, bz_error *err)
{
    for (int i = 0; i < PQntuples(res); i++) {
        cs_contact *c = cs_arena_alloc(&b->arena, sizeof *c);
        if (!c)
            return oom(err, "load contacts");
        c->id = col_int(res, i, 0);
        col_uuid(res, i, 1, c->uuid);
        c->workspace_id = col_int(res, i, 2);
        c->phone = col_text(b, res, i, 3);
        c->name = col_text(b, res, i, 4);
        c->unread = (int)col_int(res, i, 5);
        c->latest_chat_ms = col_int(res, i, 6);
        c->last_message_ms = col_int(res, i, 7);
        c->picture = col_text(b, res, i, 8);
        c->jid = col_text(b, res, i, 9);
        c->last_activity_ms = col_int(res, i, 10);
        c->account_id = col_int(res, i, 12);
        c->opted_out_ms = col_int(res, i, 13);
        c->opt_source = col_text(b, res, i, 14);
        c->opt_keyword = col_text(b, res, i, 15);
        c->opt_changed_ms = col_int(res, i, 16);
        c->bsuid = col_text(b, res, i, 17);
        c->parent_bsuid = col_text(b, res, i, 18);
        c->username = col_text(b, res, i, 19);
        c->lid = col_text(b, res, i, 20);
        if (!c->phone || !c->name || !c->picture || !c->jid || !c->bsuid || !c->parent_bsuid ||
            !c->username || !c->lid || cs_add_contact(b, c) != 0 ||
            cs_contact_adopt_profile(b, c, PQgetvalue(res, i, 11)) != 0)
            return oom(err, "load contacts");
    }
    return BZ_OK;
}

static bz_status create_contacts(PGconn *conn, const cs_seed *const *seeds, size_t n, bz_error *err)
{
    bz_pg_array a[10];
    bz_pg_array_init_all(a, 10);
    for (size_t i = 0; i < n; i++) {
        const cs_seed *s = seeds[i];
        bz_pg_array_int64(&a[0], s->workspace_id);
        bz_pg_array_int64(&a[1], s->account_id);
        bz_pg_array_text(&a[2], cs_provider_text(s->provider));
        bz_pg_array_text(&a[3], s->name);
        bz_pg_array_text(&a[4], s->key);
        bz_pg_array_text(&a[5], s->jid);
        bz_pg_array_text(&a[6], s->bsuid);
        bz_pg_array_text(&a[7], s->parent_bsuid);
        bz_pg_array_text(&a[8], s->username);
        bz_pg_array_text(&a[9], cs_lid_of(s->jid));
    }
    bz_status st = bz_pg_arrays_exec(conn, "create contacts", SQL_CONTACTS_ENSURE, a, 10, NULL, err);
    bz_pg_array_free_all(a, 10);
    return st;
}

/* ---- groups ------------------------------------------------------------------------------ */

static bz_status parse_groups(cs_batch *b, const PGresult *res, bz_error *err)
{
    for (int i = 0; i < PQntuples(res); i++) {
        cs_group *g = cs_arena_alloc(&b->arena, sizeof *g);
        if (!g)
            return oom(err, "load groups");
        g->id = col_int(res, i, 0);
        col_uuid(res, i, 1, g->uuid);
        g->workspace_id = col_int(res, i, 2);
        g->account_id = col_int(res, i, 3);
        g->jid = col_text(b, res, i, 4);
        g->name = col_text(b, res, i, 5);
        g->description = col_text(b, res, i, 6);
        g->owner_phone = col_text(b, res, i, 7);
        g->participants = json_loads(PQgetvalue(res, i, 8), 0, NULL);
        if (!json_is_array(g->participants)) {
            json_decref(g->participants);
            g->participants = json_array();
        }
        g->created_ms = col_int(res, i, 9);
        g->invite_code = col_text(b, res, i, 10);
        g->settings = json_loads(PQgetvalue(res, i, 11), 0, NULL); /* NULL when '' */
        g->meta = json_loads(PQgetvalue(res, i, 12), 0, NULL);
        g->latest_chat_ms = col_int(res, i, 13);
        if (!json_is_object(g->meta)) {
            json_decref(g->meta);
            g->meta = json_object();
        }
        /* added before it can fail, so the batch frees what it holds */
        if (cs_add_group(b, g) != 0 || !g->participants || !g->meta)
            return oom(err, "load groups");
    }
    return BZ_OK;
}

static bz_status create_groups(PGconn *conn, const cs_seed *const *seeds, size_t n, bz_error *err)
{
    bz_pg_array a[4];
    bz_pg_array_init_all(a, 4);
    for (size_t i = 0; i < n; i++) {
        const cs_seed *s = seeds[i];
        bz_pg_array_int64(&a[0], s->workspace_id);
        bz_pg_array_int64(&a[1], s->account_id);
        bz_pg_array_text(&a[2], s->key);
        bz_pg_array_text(&a[3], s->name);
    }
    bz_status st = bz_pg_arrays_exec(conn, "create groups", SQL_GROUPS_ENSURE, a, 4, NULL, err);
    bz_pg_array_free_all(a, 4);
    return st;
}

/* ---- get-or-create, for contacts and groups ------------------------------------------------ */

/* What differs between contacts and groups; the procedure is the same. */
typedef struct seed_kind {
    const char *noun; /* "contacts", "groups": for error context */
    const char *lock_sql;
    bz_status (*parse)(cs_batch *b, const PGresult *res, bz_error *err);
    bz_status (*create)(PGconn *conn, const cs_seed *const *seeds, size_t n, bz_error *err);
    int is_group;
} seed_kind;

static const seed_kind contact_kind = {"contacts", SQL_CONTACTS_LOAD_BY_KEY, parse_contacts,
                                       create_contacts, 0};
static const seed_kind group_kind = {"groups", SQL_GROUPS_LOAD_BY_KEY, parse_groups,
                                     create_groups, 1};

/* Lock the rows of seeds[0..n) that exist; parse them into the batch.
 * Contacts are also looked up by their BSUID and their LID (two more key
 * arrays). */
static bz_status lock_seeds(const seed_kind *kind, cs_batch *b, PGconn *conn,
                            const cs_seed *const *seeds, size_t n, const char *what, bz_error *err)
{
    int nkeys = kind->is_group ? 2 : 4;
    bz_pg_array k[4];
    bz_pg_array_init_all(k, 4);
    for (size_t i = 0; i < n; i++) {
        bz_pg_array_int64(&k[0], seeds[i]->workspace_id);
        bz_pg_array_text(&k[1], seeds[i]->key);
        if (!kind->is_group) {
            bz_pg_array_text(&k[2], seeds[i]->bsuid);
            bz_pg_array_text(&k[3], cs_lid_of(seeds[i]->jid));
        }
    }
    PGresult *res = NULL;
    bz_status st = bz_pg_arrays_exec(conn, what, kind->lock_sql, k, nkeys, &res, err);
    if (st == BZ_OK)
        st = kind->parse(b, res, err);
    PQclear(res);
    bz_pg_array_free_all(k, 4);
    return st;
}

/* The seeds whose row the batch has not loaded yet (in the batch arena;
 * NULL when out of memory). */
static const cs_seed **missing_seeds(cs_batch *b, const cs_vec *seeds, int groups, size_t *n)
{
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the elements are pointers */
    const cs_seed **out = cs_arena_alloc(&b->arena, (seeds->n ? seeds->n : 1) * sizeof *out);
    *n = 0;
    for (size_t i = 0; out && i < seeds->n; i++) {
        const cs_seed *s = seeds->items[i];
        int found = groups ? cs_find_group(b, s->workspace_id, s->key) != NULL
                           : cs_find_contact(b, s->workspace_id, s->key) != NULL ||
                                 (*s->bsuid && cs_find_contact(b, s->workspace_id, s->bsuid)) ||
                                 (*cs_lid_of(s->jid) &&
                                  cs_find_contact(b, s->workspace_id, cs_lid_of(s->jid)));
        if (!found && !s->find_only)
            out[(*n)++] = s;
    }
    return out;
}

static void mark_created_contacts(cs_batch *b, const cs_seed **seeds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cs_contact *c = cs_find_contact(b, seeds[i]->workspace_id, seeds[i]->key);
        if (c && (!c->created || seeds[i]->rec < c->created_for_rec))
            c->created_for_rec = seeds[i]->rec;
        if (c)
            c->created = 1;
    }
}

static bz_status ensure_seeds(const seed_kind *kind, cs_batch *b, PGconn *conn,
                              const cs_vec *seeds, bz_error *err)
{
    if (seeds->n == 0)
        return BZ_OK;
    char what[48];
    snprintf(what, sizeof what, "lock %s", kind->noun);
    bz_status st = lock_seeds(kind, b, conn, (const cs_seed *const *)seeds->items, seeds->n,
                              what, err);
    size_t nmissing = 0;
    const cs_seed **missing =
        st == BZ_OK ? missing_seeds(b, seeds, kind->is_group, &nmissing) : NULL;
    if (st == BZ_OK && !missing) {
        snprintf(what, sizeof what, "get-or-create %s", kind->noun);
        return oom(err, what);
    }
    if (st == BZ_OK && nmissing > 0)
        st = kind->create(conn, missing, nmissing, err);
    snprintf(what, sizeof what, "lock created %s", kind->noun);
    if (st == BZ_OK && nmissing > 0)
        st = lock_seeds(kind, b, conn, missing, nmissing, what, err);
    if (st == BZ_OK && !kind->is_group)
        mark_created_contacts(b, missing, nmissing);
    return st;
}

bz_status cs_ensure_contacts(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_status st = ensure_seeds(&contact_kind, b, conn, &b->contact_seeds, err);
    return st == BZ_OK ? cs_complete_identities(b, conn, err) : st;
}

bz_status cs_lock_contacts(cs_batch *b, PGconn *conn, const cs_seed *const *seeds, size_t n,
                           bz_error *err)
{
    return n ? lock_seeds(&contact_kind, b, conn, seeds, n, "lock contacts", err) : BZ_OK;
}

bz_status cs_ensure_groups(cs_batch *b, PGconn *conn, bz_error *err)
{
    return ensure_seeds(&group_kind, b, conn, &b->group_seeds, err);
}

/* ---- receipt targets --------------------------------------------------------------------- */

static const char *json_text(cs_batch *b, json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    return cs_arena_strdup(&b->arena, s ? s : "");
}

static bz_status parse_chat(cs_batch *b, const PGresult *res, int i, int agent, bz_error *err)
{
    cs_chat *c = cs_arena_alloc(&b->arena, sizeof *c);
    if (!c)
        return oom(err, "load chats");
    c->id = col_int(res, i, 0);
    col_uuid(res, i, 1, c->uuid);
    c->workspace_id = col_int(res, i, 2);
    c->account_id = col_int(res, i, 3);
    c->wam_id = col_text(b, res, i, 4);
    c->outbound = strcmp(PQgetvalue(res, i, 5), "outbound") == 0;
    c->group = strcmp(PQgetvalue(res, i, 6), "group") == 0;
    c->provider = cs_provider_from_text(PQgetvalue(res, i, 7));
    c->status = cs_delivery_from_text(PQgetvalue(res, i, 8));
    c->is_read = PQgetvalue(res, i, 9)[0] == 't';
    c->created_ms = col_int(res, i, 10);
    c->sent_ms = col_int(res, i, 11);
    c->delivered_ms = col_int(res, i, 12);
    c->read_ms = col_int(res, i, 13);
    c->contact_id = col_int(res, i, 14);
    c->group_id = col_int(res, i, 15);
    c->inserted_ord = -1;
    json_t *meta = json_loads(PQgetvalue(res, i, 16), 0, NULL);
    c->body = (char *)json_text(b, meta, "body");
    c->client_reference = (char *)json_text(b, meta, "client_reference");
    c->sender_phone = (char *)json_text(b, meta, "sender_phone");
    c->sender_name = (char *)json_text(b, meta, "sender_name");
    c->quoted_wam_id = (char *)json_text(b, meta, "quoted_wam_id");
    c->error_code = (char *)json_text(b, meta, "error_code");
    c->error_message = (char *)json_text(b, meta, "error_message");
    c->message_type = cs_message_type_from_text(json_string_value(json_object_get(meta, "message_type")));
    c->has_media = json_is_true(json_object_get(meta, "has_media"));
    /* its events (a status, an edit) show its media as message.created did */
    int oom_state = 0;
    c->media = cs_media_from_json(b, json_object_get(meta, "media"),
                                  PQgetvalue(res, i, 19)[0] == 't', &oom_state);
    c->campaign_id = json_integer_value(json_object_get(meta, "campaign_id"));
    c->referral_json = cs_object_text(b, json_object_get(meta, "referral"), &oom_state);
    c->interactive_reply_json =
        cs_object_text(b, json_object_get(meta, "interactive_reply"), &oom_state);
    c->user_id = col_int(res, i, 17);
    c->deleted_ms = col_int(res, i, 18);
    oom_state |= cs_chat_adopt_action_state(b, c, meta);
    json_decref(meta);
    if (oom_state != 0)
        return oom(err, "load chats");
    if (!c->wam_id || (agent ? cs_add_agent_row(b, c) : cs_add_chat(b, c)) != 0)
        return oom(err, "load chats");
    c->agent = agent;
    return BZ_OK;
}

/* Contacts and groups of loaded chats that the batch has not locked yet. */
static bz_status load_chat_parties(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array contacts, groups;
    bz_pg_array_init(&contacts);
    bz_pg_array_init(&groups);
    for (size_t i = 0; i < b->chat_list.n; i++) {
        const cs_chat *c = b->chat_list.items[i];
        if (c->contact_id && !cs_find_contact_id(b, c->contact_id))
            bz_pg_array_int64(&contacts, c->contact_id);
        if (c->group_id && !cs_find_group_id(b, c->group_id))
            bz_pg_array_int64(&groups, c->group_id);
    }
    bz_status st = BZ_OK;
    PGresult *res = NULL;
    if (contacts.n > 0) {
        st = bz_pg_arrays_exec(conn, "lock contacts of receipts", SQL_CONTACTS_LOAD_BY_ID, &contacts, 1, &res, err);
        if (st == BZ_OK)
            st = parse_contacts(b, res, err);
        PQclear(res);
        res = NULL;
    }
    if (st == BZ_OK && groups.n > 0) {
        st = bz_pg_arrays_exec(conn, "lock groups of receipts", SQL_GROUPS_LOAD_BY_ID, &groups, 1, &res, err);
        if (st == BZ_OK)
            st = parse_groups(b, res, err);
        PQclear(res);
    }
    bz_pg_array_free(&contacts);
    bz_pg_array_free(&groups);
    return st;
}

bz_status cs_load_receipt_targets(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[2];
    bz_pg_array_init(&a[0]);
    bz_pg_array_init(&a[1]);
    for (size_t i = 0; i < b->targets.n; i++) {
        const cs_target *t = b->targets.items[i];
        if (cs_find_chat(b, t->account_id, t->wam_id))
            continue;
        bz_pg_array_int64(&a[0], t->account_id);
        bz_pg_array_text(&a[1], t->wam_id);
    }
    bz_status st = BZ_OK;
    if (a[0].n > 0) {
        PGresult *res = NULL;
        st = bz_pg_arrays_exec(conn, "lock receipt targets", SQL_CHATS_LOAD, a, 2, &res, err);
        for (int i = 0; st == BZ_OK && i < PQntuples(res); i++)
            st = parse_chat(b, res, i, 0, err);
        PQclear(res);
    }
    bz_pg_array_free_all(a, 2);
    if (st == BZ_OK)
        st = load_chat_parties(b, conn, err);
    return st;
}

/* ---- CRM sends and the parties of CRM commands ----------------------------------------- */

bz_status cs_load_agent_rows(cs_batch *b, PGconn *conn, bz_error *err)
{
    if (b->campaign_refs.n == 0)
        return BZ_OK;
    bz_pg_array refs;
    bz_pg_array_init(&refs);
    for (size_t i = 0; i < b->campaign_refs.n; i++)
        bz_pg_array_text(&refs, b->campaign_refs.items[i]);
    PGresult *res = NULL;
    bz_status st = bz_pg_arrays_exec(conn, "lock CRM sends", SQL_AGENT_ROWS_LOAD, &refs, 1, &res, err);
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++)
        st = parse_chat(b, res, i, 1, err);
    PQclear(res);
    bz_pg_array_free(&refs);
    return st;
}

/* Run a one-row lock statement with (workspace, id or key) and parse it. */
static bz_status lock_one(cs_batch *b, PGconn *conn, const char *what, const char *sql,
                          int64_t workspace_id, const char *value,
                          bz_status (*parse)(cs_batch *, const PGresult *, bz_error *), int *found,
                          bz_error *err)
{
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, workspace_id);
    const char *params[] = {ws, value};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, what, sql, 2, params, &res, err);
    *found = st == BZ_OK && PQntuples(res) == 1;
    if (*found)
        st = parse(b, res, err);
    PQclear(res);
    return st;
}

static bz_status unknown_contact(int64_t id, int64_t workspace_id, bz_error *err)
{
    if (id > 0)
        return bz_reject(err, "unknown_contact",
                         "field contact_id: no contact %" PRId64 " in workspace %" PRId64, id,
                         workspace_id);
    return bz_reject(err, "unknown_contact",
                     "field contact_phone: no contact with that phone or JID in workspace %" PRId64,
                     workspace_id);
}

static bz_status lock_contact(cs_batch *b, PGconn *conn, int64_t workspace_id, int64_t id,
                              const char *key, cs_contact **out, bz_error *err)
{
    *out = id > 0 ? cs_find_contact_id(b, id) : cs_find_contact(b, workspace_id, key);
    if (!*out) {
        char idtext[24];
        snprintf(idtext, sizeof idtext, "%" PRId64, id);
        int found = 0;
        bz_status st = lock_one(b, conn, "lock the contact of a CRM command",
                                id > 0 ? SQL_CONTACT_LOCK_BY_ID : SQL_CONTACT_LOCK_BY_KEY,
                                workspace_id, id > 0 ? idtext : key, parse_contacts, &found, err);
        if (st != BZ_OK || !found)
            return st != BZ_OK ? st : unknown_contact(id, workspace_id, err);
        *out = id > 0 ? cs_find_contact_id(b, id) : cs_find_contact(b, workspace_id, key);
    }
    return *out && (*out)->workspace_id == workspace_id ? BZ_OK
                                                        : unknown_contact(id, workspace_id, err);
}

static bz_status lock_group(cs_batch *b, PGconn *conn, int64_t workspace_id, int64_t id,
                            const char *jid, cs_group **out, bz_error *err)
{
    *out = id > 0 ? cs_find_group_id(b, id) : cs_find_group(b, workspace_id, jid);
    if (!*out) {
        char idtext[24];
        snprintf(idtext, sizeof idtext, "%" PRId64, id);
        int found = 0;
        bz_status st = lock_one(b, conn, "lock the group of a CRM command",
                                id > 0 ? SQL_GROUP_LOCK_BY_ID : SQL_GROUP_LOCK_BY_JID,
                                workspace_id, id > 0 ? idtext : jid, parse_groups, &found, err);
        if (st != BZ_OK)
            return st;
        if (found)
            *out = id > 0 ? cs_find_group_id(b, id) : cs_find_group(b, workspace_id, jid);
    }
    if (*out && (*out)->workspace_id == workspace_id)
        return BZ_OK;
    return bz_reject(err, "unknown_group", "field %s: no such group in workspace %" PRId64,
                     id > 0 ? "group_id" : "group_jid", workspace_id);
}

bz_status cs_lock_live_contacts(cs_batch *b, PGconn *conn, int64_t workspace_id,
                                const int64_t *ids, size_t n, bz_error *err)
{
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, workspace_id);
    char *list = bz_pg_int64_array(ids, n);
    if (!list)
        return oom(err, "lock contacts by id");
    const char *params[] = {ws, list};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "lock contacts by id", SQL_CONTACTS_LOCK_LIVE_BY_ID, 2,
                                     params, &res, err);
    if (st == BZ_OK)
        st = parse_contacts(b, res, err);
    PQclear(res);
    free(list);
    return st;
}

bz_status cs_lock_party(cs_batch *b, PGconn *conn, int64_t workspace_id, int64_t contact_id,
                        const char *contact_key, int64_t group_id, const char *group_jid,
                        cs_party *out, bz_error *err)
{
    out->contact = NULL;
    out->group = NULL;
    if (group_id > 0 || (group_jid && *group_jid))
        return lock_group(b, conn, workspace_id, group_id, group_jid, &out->group, err);
    return lock_contact(b, conn, workspace_id, contact_id, contact_key, &out->contact, err);
}

void cs_party_address(const cs_party *p, Blazz__V1__SendMessage *m)
{
    m->to_phone = m->to_jid = m->to_bsuid = (char *)"";
    if (p->group) {
        m->to_jid = p->group->jid;
        return;
    }
    const cs_contact *c = p->contact;
    m->to_bsuid = c->bsuid ? c->bsuid : (char *)"";
    if (c->phone[0] == '+') {
        m->to_phone = c->phone;
        m->to_jid = c->jid ? c->jid : (char *)"";
    } else if (strcmp(c->phone, m->to_bsuid) != 0) {
        m->to_jid = c->phone; /* a LID-only contact: its phone holds the LID */
    } else {
        /* a BSUID-only contact (decision 0010): its phone holds the BSUID,
         * which is no JID */
        m->to_jid = c->jid ? c->jid : (char *)"";
    }
}
