/*
 * write.c - writing back the rows the simulation changed: one multi-row
 * UPDATE ... FROM unnest(...) per table, touching only dirty rows. The rows
 * are locked since the load phase, so absolute values are safe to write.
 * message_usage (and message_usage_priced) is the exception: an increment
 * per (account, day, category; pricing type and model), since other
 * batches count into the same rows.
 */
#include <stdlib.h>

#include "chat_sync.h"
#include "pg/columns.h"

#define TS(col) "to_timestamp(" col " / 1000.0)"

/* wam_id and whatsapp_account_id change only for a CRM send, whose echo
 * (or first receipt) names them; for every other row they are rewritten
 * with the values they have. */
#define SQL_CHATS_UPDATE                                                                          \
    "UPDATE chats c SET message_status = u.status, is_read = u.rd, sent_at = " TS("u.sent") ", "  \
    "delivered_at = " TS("u.delivered") ", read_at = " TS("u.rdat") ", "                          \
    "wam_id = nullif(u.wam, ''), whatsapp_account_id = nullif(u.acct, 0), "                      \
    "metadata = CASE WHEN u.ecode IS NULL AND u.emsg IS NULL THEN c.metadata ELSE c.metadata || " \
    "jsonb_strip_nulls(jsonb_build_object('error_code', u.ecode, 'error_message', u.emsg)) END "  \
    "FROM unnest($1::bigint[], $2::text[], $3::boolean[], $4::bigint[], $5::bigint[], "           \
    "$6::bigint[], $7::text[], $8::text[], $9::text[], $10::bigint[]) AS u(id, status, rd, sent, " \
    "delivered, rdat, ecode, emsg, wam, acct) WHERE c.id = u.id"

#define SQL_CONTACTS_UPDATE                                                                       \
    "UPDATE contacts c SET first_name = nullif(u.name, ''), unread_messages = u.unread, "         \
    "latest_chat_created_at = " TS("u.latest") ", last_message_at = " TS("u.lastmsg") ", "        \
    "whatsapp_account_id = coalesce(nullif(u.acct, 0), c.whatsapp_account_id) "                   \
    "FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bigint[], $5::bigint[], $6::bigint[]) " \
    "AS u(id, name, unread, latest, lastmsg, acct) WHERE c.id = u.id"

#define SQL_GROUPS_UPDATE                                                                         \
    "UPDATE whatsapp_groups g SET whatsapp_account_id = u.acct, name = u.name, "                  \
    "description = nullif(u.descr, ''), owner_phone = nullif(u.owner, ''), "                      \
    "participants = u.p::jsonb, participants_count = jsonb_array_length(u.p::jsonb), "            \
    "group_created_at = " TS("u.created") ", invite_code = nullif(u.inv, ''), "                   \
    "settings = u.st::jsonb, group_metadata = u.gm::jsonb, "                                      \
    "latest_chat_created_at = " TS("u.latest") " "                                                \
    "FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], "    \
    "$7::bigint[], $8::text[], $9::text[], $10::text[], $11::bigint[]) "                          \
    "AS u(id, acct, name, descr, owner, p, created, inv, st, gm, latest) WHERE g.id = u.id"

/* A group that only had new messages: its latest message and account, not
 * the participants (a large group's array would be rewritten per batch). */
#define SQL_GROUPS_ADVANCE                                                                        \
    "UPDATE whatsapp_groups g SET whatsapp_account_id = u.acct, "                                 \
    "latest_chat_created_at = " TS("u.latest") " "                                                \
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(id, acct, latest) "              \
    "WHERE g.id = u.id"

#define SQL_ACCOUNTS_UPDATE                                                                       \
    "UPDATE whatsapp_accounts a SET status = u.status, assigned_instance_index = u.idx, "         \
    "assigned_instance_url = u.url, previous_instance_index = u.prev, "                           \
    "instance_migration_count = u.migs, last_instance_migration_at = " TS("u.migat") ", "         \
    "last_activity_at = " TS("u.act") ", last_connected_at = " TS("u.conn") ", "                  \
    "disconnected_at = " TS("u.disc") ", disconnect_reason = u.reason, "                          \
    "disconnect_details = u.details, phone_number = u.phone, qr_code = u.qr, "                    \
    "metadata = u.meta::jsonb, health_score = u.health, session_restore_count = u.restores, "     \
    "qr_expires_at = " TS("u.qrexp") ", remote_session_path = u.rpath, "                          \
    "session_file_size_bytes = u.fsize, session_storage_path = u.rpath, "                         \
    "session_storage = u.store, session_storage_verified_at = " TS("u.verified") " "              \
    "FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::text[], $5::smallint[], "          \
    "$6::int[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], "           \
    "$12::text[], $13::text[], $14::text[], $15::text[], $16::smallint[], $17::int[], "           \
    "$18::bigint[], $19::text[], $20::bigint[], $21::text[], $22::bigint[]) "                     \
    "AS u(id, status, idx, url, prev, migs, migat, act, conn, disc, reason, details, phone, qr, "  \
    "meta, health, restores, qrexp, rpath, fsize, store, verified) WHERE a.id = u.id"

/* One per message delivered for the first time, summed by account, day
 * and category into message_usage, and with its pricing type and model
 * into message_usage_priced when its status named either (a batch may
 * deliver many of one account); one statement (0055 says why two tables). */
#define SQL_USAGE_ADD                                                                             \
    "WITH u AS (SELECT acct, (" TS("at") " AT TIME ZONE 'UTC')::date AS day, cat, ws, ptype, "    \
    "pmodel, count(*) AS n FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], "   \
    "$5::text[], $6::text[]) AS x(acct, at, cat, ws, ptype, pmodel) GROUP BY 1, 2, 3, 4, 5, 6), " \
    "by_category AS (INSERT INTO message_usage (whatsapp_account_id, day, category, "             \
    "workspace_id, delivered) SELECT acct, day, cat, ws, sum(n) FROM u GROUP BY 1, 2, 3, 4 "      \
    "ON CONFLICT (whatsapp_account_id, day, category) DO UPDATE "                                 \
    "SET delivered = message_usage.delivered + excluded.delivered) "                              \
    "INSERT INTO message_usage_priced (whatsapp_account_id, day, category, pricing_type, "        \
    "pricing_model, workspace_id, delivered) SELECT acct, day, cat, ptype, pmodel, ws, n FROM u " \
    "WHERE ptype <> '' OR pmodel <> '' "                                                          \
    "ON CONFLICT (whatsapp_account_id, day, category, pricing_type, pricing_model) DO UPDATE "    \
    "SET delivered = message_usage_priced.delivered + excluded.delivered"

static const char *empty_as_null(const char *s)
{
    return s && *s ? s : NULL;
}

static bz_status write_chats(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[10];
    bz_pg_array_init_all(a, 10);
    for (size_t i = 0; i < b->chat_list.n; i++) {
        const cs_chat *c = b->chat_list.items[i];
        if (!c->dirty)
            continue;
        int failed = c->status == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED;
        bz_pg_array_int64(&a[0], c->id);
        bz_pg_array_text(&a[1], cs_delivery_text(c->status));
        bz_pg_array_bool(&a[2], c->is_read);
        bz_pg_array_int64_or_null(&a[3], c->sent_ms);
        bz_pg_array_int64_or_null(&a[4], c->delivered_ms);
        bz_pg_array_int64_or_null(&a[5], c->read_ms);
        bz_pg_array_text(&a[6], failed ? empty_as_null(c->error_code) : NULL);
        bz_pg_array_text(&a[7], failed ? empty_as_null(c->error_message) : NULL);
        bz_pg_array_text(&a[8], c->wam_id);
        bz_pg_array_int64(&a[9], c->account_id);
    }
    bz_status st = BZ_OK;
    if (a[0].n > 0)
        st = bz_pg_arrays_exec(conn, "update message statuses", SQL_CHATS_UPDATE, a, 10, NULL, err);
    bz_pg_array_free_all(a, 10);
    return st;
}

static bz_status write_contacts(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[6];
    bz_pg_array_init_all(a, 6);
    for (size_t i = 0; i < b->contacts.n; i++) {
        const cs_contact *c = b->contacts.items[i];
        if (!c->dirty)
            continue;
        bz_pg_array_int64(&a[0], c->id);
        bz_pg_array_text(&a[1], c->name);
        bz_pg_array_int64(&a[2], c->unread);
        bz_pg_array_int64_or_null(&a[3], c->latest_chat_ms);
        bz_pg_array_int64_or_null(&a[4], c->last_message_ms);
        bz_pg_array_int64(&a[5], c->account_id);
    }
    bz_status st = BZ_OK;
    if (a[0].n > 0)
        st = bz_pg_arrays_exec(conn, "update contacts", SQL_CONTACTS_UPDATE, a, 6, NULL, err);
    bz_pg_array_free_all(a, 6);
    return st;
}

#define GROUP_COLS 11

static bz_status write_groups(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[GROUP_COLS];
    bz_pg_array_init_all(a, GROUP_COLS);
    bz_status st = BZ_OK;
    for (size_t i = 0; i < b->groups.n && st == BZ_OK; i++) {
        const cs_group *g = b->groups.items[i];
        if (!g->dirty)
            continue;
        char *participants = json_dumps(g->participants, JSON_COMPACT);
        char *settings = g->settings ? json_dumps(g->settings, JSON_COMPACT) : NULL;
        char *meta = json_dumps(g->meta, JSON_COMPACT);
        if (!participants || !meta || (g->settings && !settings))
            st = bz_fail(err, BZ_ERR_TRANSIENT, "update groups: out of memory");
        if (st == BZ_OK) {
            bz_pg_array_int64(&a[0], g->id);
            bz_pg_array_int64_or_null(&a[1], g->account_id);
            bz_pg_array_text(&a[2], g->name);
            bz_pg_array_text(&a[3], g->description);
            bz_pg_array_text(&a[4], g->owner_phone);
            bz_pg_array_text(&a[5], participants);
            bz_pg_array_int64_or_null(&a[6], g->created_ms);
            bz_pg_array_text(&a[7], g->invite_code);
            bz_pg_array_text(&a[8], settings);
            bz_pg_array_text(&a[9], meta);
            bz_pg_array_int64_or_null(&a[10], g->latest_chat_ms);
        }
        free(participants);
        free(settings);
        free(meta);
    }
    if (st == BZ_OK && a[0].n > 0)
        st = bz_pg_arrays_exec(conn, "update groups", SQL_GROUPS_UPDATE, a, GROUP_COLS, NULL, err);
    bz_pg_array_free_all(a, GROUP_COLS);
    return st;
}

static bz_status write_group_advances(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[3];
    bz_pg_array_init_all(a, 3);
    for (size_t i = 0; i < b->groups.n; i++) {
        const cs_group *g = b->groups.items[i];
        if (g->dirty || !g->latest_dirty)
            continue;
        bz_pg_array_int64(&a[0], g->id);
        bz_pg_array_int64_or_null(&a[1], g->account_id);
        bz_pg_array_int64_or_null(&a[2], g->latest_chat_ms);
    }
    bz_status st = BZ_OK;
    if (a[0].n > 0)
        st = bz_pg_arrays_exec(conn, "move groups' latest messages", SQL_GROUPS_ADVANCE, a, 3, NULL, err);
    bz_pg_array_free_all(a, 3);
    return st;
}

static void add_optional_index(bz_pg_array *a, int has, int index)
{
    if (has)
        bz_pg_array_int64(a, index);
    else
        bz_pg_array_null(a);
}

static bz_status write_accounts(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[22];
    bz_pg_array_init_all(a, 22);
    bz_status st = BZ_OK;
    for (size_t i = 0; i < b->account_list.n && st == BZ_OK; i++) {
        const cs_account *x = b->account_list.items[i];
        if (!x->dirty)
            continue;
        char *meta = json_dumps(x->metadata, JSON_COMPACT);
        if (!meta) {
            st = bz_fail(err, BZ_ERR_TRANSIENT, "update accounts: out of memory");
            break;
        }
        bz_pg_array_int64(&a[0], x->id);
        bz_pg_array_text(&a[1], cs_session_text(x->status));
        add_optional_index(&a[2], x->has_instance, x->instance_index);
        bz_pg_array_text(&a[3], empty_as_null(x->instance_url));
        add_optional_index(&a[4], x->has_previous_instance, x->previous_instance_index);
        bz_pg_array_int64(&a[5], x->migration_count);
        bz_pg_array_int64_or_null(&a[6], x->last_migration_ms);
        bz_pg_array_int64_or_null(&a[7], x->last_activity_ms);
        bz_pg_array_int64_or_null(&a[8], x->last_connected_ms);
        bz_pg_array_int64_or_null(&a[9], x->disconnected_ms);
        bz_pg_array_text(&a[10], x->disconnect_reason);
        bz_pg_array_text(&a[11], x->disconnect_details);
        bz_pg_array_text(&a[12], x->phone_number);
        bz_pg_array_text(&a[13], x->qr_code);
        bz_pg_array_text(&a[14], meta);
        bz_pg_array_int64(&a[15], x->health_score);
        bz_pg_array_int64(&a[16], x->restore_count);
        bz_pg_array_int64_or_null(&a[17], x->qr_expires_ms);
        bz_pg_array_text(&a[18], empty_as_null(x->remote_session_path));
        if (x->session_file_size >= 0)
            bz_pg_array_int64(&a[19], x->session_file_size);
        else
            bz_pg_array_null(&a[19]);
        bz_pg_array_text(&a[20], empty_as_null(x->session_storage));
        bz_pg_array_int64_or_null(&a[21], x->storage_verified_ms);
        free(meta);
    }
    if (st == BZ_OK && a[0].n > 0)
        st = bz_pg_arrays_exec(conn, "update accounts", SQL_ACCOUNTS_UPDATE, a, 22, NULL, err);
    bz_pg_array_free_all(a, 22);
    return st;
}

static bz_status write_usage(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[6];
    bz_pg_array_init_all(a, 6);
    for (size_t i = 0; i < b->chat_list.n; i++) {
        const cs_chat *c = b->chat_list.items[i];
        if (!c->priced_as || !c->account_id)
            continue;
        bz_pg_array_int64(&a[0], c->account_id);
        bz_pg_array_int64(&a[1], c->delivered_ms);
        bz_pg_array_text(&a[2], c->priced_as);
        bz_pg_array_int64(&a[3], c->workspace_id);
        bz_pg_array_text(&a[4], c->pricing_type ? c->pricing_type : "");
        bz_pg_array_text(&a[5], c->pricing_model ? c->pricing_model : "");
        if (b->ctx->have_metrics)
            bz_counter_inc(bz_counter_family_with(b->ctx->m.delivered_by_category, c->priced_as));
    }
    bz_status st = BZ_OK;
    if (a[0].n > 0)
        st = bz_pg_arrays_exec(conn, "count delivered messages", SQL_USAGE_ADD, a, 6, NULL, err);
    bz_pg_array_free_all(a, 6);
    return st;
}

bz_status cs_write_changes(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_status st = write_accounts(b, conn, err);
    if (st == BZ_OK)
        st = write_contacts(b, conn, err);
    if (st == BZ_OK)
        st = write_groups(b, conn, err);
    if (st == BZ_OK)
        st = write_group_advances(b, conn, err);
    if (st == BZ_OK)
        st = write_chats(b, conn, err);
    if (st == BZ_OK)
        st = write_usage(b, conn, err);
    if (st == BZ_OK)
        st = cs_write_actions(b, conn, err);
    if (st == BZ_OK)
        st = cs_write_contact_profiles(b, conn, err);
    if (st == BZ_OK)
        st = cs_write_contact_opt_outs(b, conn, err);
    return st;
}
