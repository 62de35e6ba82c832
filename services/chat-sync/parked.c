/*
 * parked.c - receipts that arrived before their message, kept in the
 * pending_receipts table (db/migrations/0013) until the message is stored;
 * reactions, edits and deletes that arrived before their target wait there
 * the same way (status "reaction", "edit" or "revoke", wam_id the target).
 *
 * A receipt parks the chat.sync record it came in (the SyncCommand's bytes
 * and the Kafka key), so applying it later rebuilds the very record the
 * receipt rules and the event builders read: same envelope, same trace id,
 * same event ids. Per batch:
 *  - load: after the messages are inserted, one query locks and reads the
 *    parked rows of every message the batch stored (FOR UPDATE, so two
 *    transactions never apply the same row) and hangs each on its row; the
 *    occurrence that stored the message applies them (apply_receipt.c);
 *  - write: one INSERT ... ON CONFLICT DO NOTHING parks the receipts that
 *    found no message (a replayed receipt parks once), one DELETE removes
 *    the rows the batch applied.
 * A receipt whose message comes later in the same batch is parked in memory
 * only (apply_receipt.c) and never reaches the table.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "wa/message_action.h"
#include "core/log.h"
#include "pg/columns.h"

#define SQL_PARKED_LOAD                                                                           \
    "SELECT p.id, p.command, p.msg_key FROM pending_receipts p "                                  \
    "JOIN unnest($1::bigint[], $2::text[]) AS k(acct, wam) "                                      \
    "ON p.whatsapp_account_id = k.acct AND p.wam_id = k.wam ORDER BY p.id FOR UPDATE OF p"

#define SQL_PARKED_INSERT                                                                         \
    "INSERT INTO pending_receipts (whatsapp_account_id, wam_id, status, occurred_at, event_id, "  \
    "error_code, error_message, command, msg_key) "                                               \
    "SELECT acct, wam, st, to_timestamp(ts / 1000.0), ev, ecode, emsg, cmd, k "             \
    "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], "    \
    "$7::text[], $8::bytea[], $9::bytea[]) WITH ORDINALITY "                                      \
    "AS t(acct, wam, st, ts, ev, ecode, emsg, cmd, k, ord) ORDER BY ord "                         \
    "ON CONFLICT ON CONSTRAINT pending_receipts_key DO NOTHING"

#define SQL_PARKED_DELETE "DELETE FROM pending_receipts WHERE id = ANY($1::bigint[])"

#define NPARK 9

static const char *empty_as_null(const char *s)
{
    return s && *s ? s : NULL;
}

/* The message a parkable command waits for: a receipt's, or the target of
 * a reaction, an edit or a delete; NULL for anything else. */
static const char *target_of(const Blazz__V1__SyncCommand *cmd)
{
    if (cmd->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT)
        return cmd->receipt->wam_id;
    if (cmd->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE &&
        bz_wa_message_is_action(cmd->message))
        return cmd->message->target_wam_id;
    return NULL;
}

/* A bytea column of res as heap bytes (PQfreemem); NULL when out of memory. */
static unsigned char *col_bytes(const PGresult *res, int row, int col, size_t *len)
{
    return PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), len);
}

/* The Kafka message a parked receipt came in, as far as the rules read it:
 * its key. Lives in the arena. */
static rd_kafka_message_t *parked_message(cs_batch *b, const PGresult *res, int row)
{
    rd_kafka_message_t *m = cs_arena_alloc(&b->arena, sizeof *m);
    if (!m || PQgetisnull(res, row, 2))
        return m;
    size_t len = 0;
    unsigned char *key = col_bytes(res, row, 2, &len);
    if (!key)
        return NULL;
    m->key = cs_arena_strndup(&b->arena, (const char *)key, len);
    m->key_len = len;
    PQfreemem(key);
    return m->key ? m : NULL;
}

/* The record of one parked row, registered for freeing; NULL with *bad set
 * when its command no longer decodes. */
static cs_record *parked_record(cs_batch *b, const PGresult *res, int row, int *bad)
{
    size_t len = 0;
    unsigned char *bytes = col_bytes(res, row, 1, &len);
    if (!bytes)
        return NULL;
    Blazz__V1__SyncCommand *cmd = NULL;
    bz_error derr = {0};
    bz_status st = cs_command_decode(bytes, len, &cmd, &derr);
    PQfreemem(bytes);
    if (st != BZ_OK || !target_of(cmd)) {
        if (cmd)
            cs_command_free(cmd);
        *bad = 1;
        return NULL;
    }
    if (cs_vec_push(&b->unparked_cmds, cmd) != 0) {
        cs_command_free(cmd);
        return NULL;
    }
    cs_record *r = cs_arena_alloc(&b->arena, sizeof *r);
    if (!r || !(r->msg = parked_message(b, res, row)))
        return NULL;
    r->cmd = cmd;
    r->ord = -1;
    return r;
}

/* Remember that the batch applied (or dropped) parked row id. */
static int applied(cs_batch *b, int64_t id)
{
    int64_t *idp = cs_arena_alloc(&b->arena, sizeof *idp);
    if (!idp || cs_vec_push(&b->unparked_ids, idp) != 0)
        return -1;
    *idp = id;
    return 0;
}

/* Hang row's receipt on its message; 0, or -1 when out of memory. */
static int unpark(cs_batch *b, const PGresult *res, int row)
{
    int64_t id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    int bad = 0;
    cs_record *r = parked_record(b, res, row, &bad);
    if (bad) {
        bz_warn("pending receipt %" PRId64 " is neither a receipt nor a reaction, edit or "
                "delete: deleted unapplied", id);
        return applied(b, id);
    }
    if (!r)
        return -1;
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    cs_chat *c = cs_find_chat(b, env->whatsapp_account_id, target_of(r->cmd));
    if (!c)
        return 0; /* the query only returns rows of messages the batch stored */
    cs_parked *p = cs_arena_alloc(&b->arena, sizeof *p);
    if (!p || cs_vec_push(&b->unparked_recs, r) != 0 || applied(b, id) != 0)
        return -1;
    *p = (cs_parked){.r = r, .id = id, .next = c->parked};
    c->parked = p;
    return 0;
}

bz_status cs_load_parked_receipts(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[2];
    bz_pg_array_init(&a[0]);
    bz_pg_array_init(&a[1]);
    for (size_t i = 0; i < b->chat_list.n; i++) {
        const cs_chat *c = b->chat_list.items[i];
        if (c->inserted_ord < 0)
            continue;
        bz_pg_array_int64(&a[0], c->account_id);
        bz_pg_array_text(&a[1], c->wam_id);
    }
    bz_status st = BZ_OK;
    if (a[0].n > 0) {
        PGresult *res = NULL;
        st = bz_pg_arrays_exec(conn, "load parked receipts", SQL_PARKED_LOAD, a, 2, &res, err);
        for (int i = 0; st == BZ_OK && i < PQntuples(res); i++)
            if (unpark(b, res, i) != 0)
                st = bz_fail(err, BZ_ERR_TRANSIENT, "load parked receipts: out of memory");
        PQclear(res);
    }
    bz_pg_array_free_all(a, 2);
    return st;
}

static void add_park_row(bz_pg_array *a, const cs_record *r)
{
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    /* one of the two: they share the command's oneof */
    int receipt = r->cmd->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT;
    const Blazz__V1__MessageAck *ack = receipt ? r->cmd->receipt : NULL;
    const Blazz__V1__InboundMessage *m = receipt ? NULL : r->cmd->message;
    bz_pg_array_int64(&a[0], env->whatsapp_account_id);
    bz_pg_array_text(&a[1], target_of(r->cmd));
    if (ack) {
        bz_pg_array_text(&a[2], cs_delivery_text(ack->status));
        bz_pg_array_int64_or_null(&a[3],
                               ack->timestamp_ms > 0 ? ack->timestamp_ms : env->occurred_at_ms);
    } else {
        bz_pg_array_text(&a[2], cs_action_text(m->message_type));
        bz_pg_array_int64_or_null(&a[3], cs_action_time(r));
    }
    bz_pg_array_text(&a[4], env->event_id);
    bz_pg_array_text(&a[5], ack ? empty_as_null(ack->error_code) : NULL);
    bz_pg_array_text(&a[6], ack ? empty_as_null(ack->error_message) : NULL);
    bz_pg_array_bytea(&a[7], r->msg->payload, r->msg->len);
    if (r->msg->key_len)
        bz_pg_array_bytea(&a[8], r->msg->key, r->msg->key_len);
    else
        bz_pg_array_null(&a[8]);
}

static bz_status park(cs_batch *b, PGconn *conn, bz_error *err)
{
    if (b->to_park.n == 0)
        return BZ_OK;
    bz_pg_array a[NPARK];
    bz_pg_array_init_all(a, NPARK);
    for (size_t i = 0; i < b->to_park.n; i++)
        add_park_row(a, b->to_park.items[i]);
    bz_status st = bz_pg_arrays_exec(conn, "park receipts", SQL_PARKED_INSERT, a, NPARK, NULL, err);
    bz_pg_array_free_all(a, NPARK);
    return st;
}

static bz_status delete_applied(cs_batch *b, PGconn *conn, bz_error *err)
{
    if (b->unparked_ids.n == 0)
        return BZ_OK;
    bz_pg_array ids;
    bz_pg_array_init(&ids);
    for (size_t i = 0; i < b->unparked_ids.n; i++)
        bz_pg_array_int64(&ids, *(const int64_t *)b->unparked_ids.items[i]);
    bz_status st = bz_pg_arrays_exec(conn, "delete applied parked receipts", SQL_PARKED_DELETE, &ids, 1,
                             NULL, err);
    bz_pg_array_free(&ids);
    return st;
}

bz_status cs_write_parked_receipts(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_status st = park(b, conn, err);
    if (st == BZ_OK)
        st = delete_applied(b, conn, err);
    return st;
}
