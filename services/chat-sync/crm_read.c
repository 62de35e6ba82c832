/*
 * crm_read.c - the CRM read a conversation (ARCHITECTURE.md §11).
 *
 * For a MarkChatRead, in the consumer's transaction:
 *  1. lock the contact or group (unknown -> dead letter);
 *  2. the bound: the message up_to_wam_id of that conversation (unknown ->
 *     dead letter unknown_message), else up_to_ms, else the moment ingest
 *     accepted the command; so the same command always covers the same
 *     messages;
 *  3. one UPDATE marks the conversation's unread inbound messages created at
 *     or before the bound read (is_read, read_at = the acceptance time) and
 *     returns exactly the rows it changed (the unread-inbound partial
 *     indexes of migration 0021 find them);
 *  4. the contact's unread_messages falls by that number, never below zero
 *     (seed 000 Chat::updating: one decrement per message that became read),
 *     so the counter stays exact however often the command is repeated or
 *     replayed: a repeat finds nothing unread and changes nothing;
 *  5. when something changed: one CHAT_READ event (webhook "chat.read"), and
 *     for each account whose messages were read, one read receipt to
 *     WhatsApp: a SendMessage kind MARK_READ on wa.outbound (key session_id)
 *     naming the chat and the messages (newest last), written to the outbox
 *     with the event. A webjs gateway marks the chat seen; meta-sender marks
 *     the newest message read through the Cloud API, which marks the earlier
 *     ones too (ARCHITECTURE.md §12). Read receipts are not messages: they
 *     do not draw on the send budget and go straight to the outbox.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/clock.h"
#include "kafka/topics.h"
#include "pg/columns.h"
#include "wa/chat_lookup.h"

#define RECEIPT_WAM_IDS_MAX 100

#define RETURNING_READ                                                                            \
    " RETURNING c.id, coalesce(c.whatsapp_account_id, 0), coalesce(c.wam_id, ''), "               \
    "(extract(epoch FROM c.created_at) * 1000)::bigint"

#define SQL_READ_CONTACT                                                                          \
    "UPDATE chats c SET is_read = true, read_at = to_timestamp($3::bigint / 1000.0) "             \
    "WHERE c.contact_id = $1 AND c.type = 'inbound' AND NOT c.is_read "                           \
    "AND c.created_at <= to_timestamp($2::bigint / 1000.0)" RETURNING_READ

#define SQL_READ_GROUP                                                                            \
    "UPDATE chats c SET is_read = true, read_at = to_timestamp($3::bigint / 1000.0) "             \
    "WHERE c.group_id = $1 AND c.type = 'inbound' AND NOT c.is_read "                             \
    "AND c.created_at <= to_timestamp($2::bigint / 1000.0)" RETURNING_READ

#define SQL_READ_ACCOUNTS                                                                         \
    "SELECT id, session_id, coalesce(assigned_instance_index, -1), "                              \
    "coalesce(assigned_instance_url, '') FROM whatsapp_accounts "                                 \
    "WHERE id = ANY($1::bigint[]) ORDER BY id"

/* One message the command marked read. */
typedef struct marked {
    int64_t chat_id, account_id, created_ms;
    const char *wam_id;
} marked;

typedef struct read_plan {
    const Blazz__V1__CrmCommand *cmd;
    const Blazz__V1__MarkChatRead *r;
    const char *key;
    cs_party to;
    int64_t bound_ms, read_at_ms;
    marked *rows;
    size_t n;
} read_plan;

static int by_time(const void *x, const void *y)
{
    const marked *a = x, *b = y;
    if (a->created_ms != b->created_ms)
        return a->created_ms < b->created_ms ? -1 : 1;
    return a->chat_id < b->chat_id ? -1 : a->chat_id > b->chat_id;
}

static bz_status find_bound(PGconn *conn, read_plan *p, bz_error *err)
{
    const Blazz__V1__MarkChatRead *r = p->r;
    int64_t occurred = p->cmd->envelope->occurred_at_ms;
    p->read_at_ms = occurred > 0 ? occurred : bz_wall_ms();
    if (!*r->up_to_wam_id) {
        p->bound_ms = r->up_to_ms > 0 ? r->up_to_ms : p->read_at_ms;
        return BZ_OK;
    }
    int found = 0;
    bz_status st = bz_chat_message_time(conn, p->cmd->envelope->workspace_id,
                                        p->to.contact ? p->to.contact->id : 0,
                                        p->to.group ? p->to.group->id : 0, r->up_to_wam_id,
                                        &p->bound_ms, &found, err);
    if (st == BZ_OK && !found)
        st = bz_reject(err, "unknown_message",
                       "field up_to_wam_id: no such message in this conversation");
    return st;
}

static bz_status mark_rows(cs_batch *b, PGconn *conn, read_plan *p, bz_error *err)
{
    char party[24], bound[24], read_at[24];
    snprintf(party, sizeof party, "%" PRId64, p->to.group ? p->to.group->id : p->to.contact->id);
    snprintf(bound, sizeof bound, "%" PRId64, p->bound_ms);
    snprintf(read_at, sizeof read_at, "%" PRId64, p->read_at_ms);
    const char *params[] = {party, bound, read_at};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "mark the conversation read",
                                     p->to.group ? SQL_READ_GROUP : SQL_READ_CONTACT, 3, params,
                                     &res, err);
    int n = st == BZ_OK ? PQntuples(res) : 0;
    if (n > 0 && !(p->rows = cs_arena_alloc(&b->arena, (size_t)n * sizeof *p->rows)))
        st = bz_fail(err, BZ_ERR_TRANSIENT, "mark read: out of memory");
    for (int i = 0; st == BZ_OK && i < n; i++) {
        marked *m = &p->rows[p->n++];
        m->chat_id = bz_pg_get_int64(res, i, 0);
        m->account_id = bz_pg_get_int64(res, i, 1);
        m->wam_id = cs_arena_strdup(&b->arena, PQgetvalue(res, i, 2));
        m->created_ms = bz_pg_get_int64(res, i, 3);
        if (!m->wam_id)
            st = bz_fail(err, BZ_ERR_TRANSIENT, "mark read: out of memory");
    }
    PQclear(res);
    if (st == BZ_OK && p->n > 1)
        qsort(p->rows, p->n, sizeof *p->rows, by_time);
    if (st == BZ_OK && p->to.contact && p->n > 0) {
        int unread = p->to.contact->unread - (int)p->n;
        p->to.contact->unread = unread < 0 ? 0 : unread;
        p->to.contact->dirty = 1;
    }
    return st;
}

static bz_status emit_read_event(cs_batch *b, const read_plan *p, bz_error *err)
{
    int64_t *ids = cs_arena_alloc(&b->arena, p->n * sizeof *ids);
    if (!ids)
        return bz_fail(err, BZ_ERR_TRANSIENT, "chat read event: out of memory");
    for (size_t i = 0; i < p->n; i++)
        ids[i] = p->rows[i].chat_id;
    Blazz__V1__ChatRead read = BLAZZ__V1__CHAT_READ__INIT;
    read.messages_read = (int32_t)p->n;
    read.read_at_ms = p->read_at_ms;
    read.up_to_ms = p->bound_ms;
    read.up_to_wam_id = p->r->up_to_wam_id;
    read.user_id = p->r->user_id;
    read.chat_ids = ids;
    read.n_chat_ids = p->n;
    return cs_emit_chat_read(b, p->cmd->envelope, p->to.contact, p->to.group, &read, p->key,
                             err);
}

/* One MARK_READ SendMessage for account (row of res), naming its messages. */
static bz_status emit_receipt(cs_batch *b, const read_plan *p, const PGresult *res, int row,
                              bz_error *err)
{
    int64_t account = bz_pg_get_int64(res, row, 0);
    char **wams = cs_arena_alloc(&b->arena, RECEIPT_WAM_IDS_MAX * sizeof *wams);
    if (!wams)
        return bz_fail(err, BZ_ERR_TRANSIENT, "read receipt: out of memory");
    size_t n = 0;
    for (size_t i = p->n; i-- > 0 && n < RECEIPT_WAM_IDS_MAX;)
        if (p->rows[i].account_id == account && *p->rows[i].wam_id)
            n++;
    size_t k = n;
    for (size_t i = p->n; i-- > 0 && k > 0;) /* the newest last */
        if (p->rows[i].account_id == account && *p->rows[i].wam_id)
            wams[--k] = (char *)p->rows[i].wam_id;
    if (n == 0)
        return BZ_OK;
    const Blazz__V1__Envelope *in = p->cmd->envelope;
    char event_id[CS_UUID_LEN];
    cs_event_id(in->event_id, "read_receipt", row, event_id);
    char *session = cs_arena_strdup(&b->arena, PQgetvalue(res, row, 1));
    if (!session)
        return bz_fail(err, BZ_ERR_TRANSIENT, "read receipt: out of memory");
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = p->read_at_ms;
    env.produced_at_ms = bz_wall_ms();
    env.source = "chat-sync";
    env.workspace_id = in->workspace_id;
    env.session_id = session;
    env.whatsapp_account_id = account;
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    env.trace_id = in->trace_id;
    Blazz__V1__InstanceRef inst = BLAZZ__V1__INSTANCE_REF__INIT;
    inst.index = (int32_t)bz_pg_get_int64(res, row, 2);
    inst.url = PQgetvalue(res, row, 3);
    Blazz__V1__SendMessage m = BLAZZ__V1__SEND_MESSAGE__INIT;
    m.envelope = &env;
    m.kind = BLAZZ__V1__SEND_KIND__SEND_KIND_MARK_READ;
    m.idempotency_key = event_id;
    m.session_id = session;
    cs_party_address(&p->to, &m);
    m.read_wam_ids = wams;
    m.n_read_wam_ids = n;
    m.contact_id = p->to.contact ? p->to.contact->id : 0;
    m.user_id = p->r->user_id;
    m.assigned_instance = inst.index >= 0 ? &inst : NULL;
    return cs_emit_record(b, bz_topic_base(BZ_TOPIC_WA_OUTBOUND), event_id, session, &m.base,
                          in->trace_id, err);
}

static bz_status emit_receipts(cs_batch *b, PGconn *conn, const read_plan *p, bz_error *err)
{
    int64_t *accounts = cs_arena_alloc(&b->arena, p->n * sizeof *accounts);
    if (!accounts)
        return bz_fail(err, BZ_ERR_TRANSIENT, "read receipts: out of memory");
    size_t na = 0;
    for (size_t i = 0; i < p->n; i++) {
        int seen = p->rows[i].account_id == 0;
        for (size_t j = 0; j < na && !seen; j++)
            seen = accounts[j] == p->rows[i].account_id;
        if (!seen)
            accounts[na++] = p->rows[i].account_id;
    }
    if (na == 0)
        return BZ_OK;
    char *ids = bz_pg_int64_array(accounts, na);
    if (!ids)
        return bz_fail(err, BZ_ERR_TRANSIENT, "read receipts: out of memory");
    const char *params[] = {ids};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "find the accounts to send read receipts for",
                                     SQL_READ_ACCOUNTS, 1, params, &res, err);
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++)
        st = emit_receipt(b, p, res, i, err);
    PQclear(res);
    free(ids);
    return st;
}

bz_status cs_crm_mark_read(cs_batch *b, PGconn *conn, const Blazz__V1__CrmCommand *cmd,
                           const char *key, bz_error *err)
{
    const Blazz__V1__MarkChatRead *r = cmd->mark_read;
    read_plan p = {.cmd = cmd, .r = r, .key = key};
    const char *contact_key = *r->contact_phone ? r->contact_phone : r->contact_jid;
    bz_status st = cs_lock_party(b, conn, cmd->envelope->workspace_id, r->contact_id, contact_key,
                                 r->group_id, r->group_jid, &p.to, err);
    if (st == BZ_OK)
        st = find_bound(conn, &p, err);
    if (st == BZ_OK)
        st = mark_rows(b, conn, &p, err);
    if (st == BZ_OK && p.n > 0)
        st = emit_read_event(b, &p, err);
    if (st == BZ_OK && p.n > 0)
        st = emit_receipts(b, conn, &p, err);
    return st;
}
