/*
 * apply_call.c - Meta's calls (CallEvent: the `calls` webhook field)
 * applied to the calls table (0060), one row a call, in the consumer's
 * transaction.
 *
 * Each fact of a call (its connect, its terminate, a status of a call the
 * business placed) is applied alone, in a batch of its own, after the
 * batch's other records: its customer is found, or made, as a message's
 * contact is (cs_ensure_contacts: by phone, else by BSUID, the row
 * completed with the identifiers it lacked; decision 0010), then
 * blazz_call_report (0060) makes the call's row or completes it. That
 * function is the one place the rules live: the row keeps the first word
 * of each of its facts (direction, customer, connect, start, end, length,
 * error) and takes the status of a fact of higher rank, so a terminate
 * Meta delivers before its connect is not undone by it. When the row was
 * made or moved, the row as it stands goes out as CALL_UPDATED (webhook
 * call.updated), keyed like the customer's messages; a fact applied again
 * (Meta's redelivery, a replay) moves nothing and announces nothing. A
 * call does not move the conversation in the inbox: it is no message.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/clock.h"

#define TS(n) "to_timestamp(nullif($" #n "::bigint, 0) / 1000.0)"

#define SQL_CALL_REPORT                                                                           \
    "SELECT call_row_id, changed FROM blazz_call_report($1::bigint, $2::bigint, "                 \
    "nullif($3::bigint, 0), $4, $5, nullif($6, ''), $7, " TS(8) ", " TS(9) ", " TS(10) ", "        \
    "nullif($11::integer, 0), nullif($12, ''), nullif($13, ''))"

#define MS_OF(col) "coalesce((extract(epoch FROM " col ") * 1000)::bigint, 0)"

/* After the report: a separate statement, since a statement does not see
 * what a function it calls wrote. */
#define SQL_CALL_ROW                                                                              \
    "SELECT uuid::text, meta_call_id, whatsapp_account_id, coalesce(contact_id, 0), "             \
    "coalesce(direction, ''), status, " MS_OF("connected_at") ", " MS_OF("started_at") ", "       \
    MS_OF("ended_at") ", coalesce(duration_s, 0), coalesce(error_code, ''), "                     \
    "coalesce(error_message, ''), " MS_OF("terminated_at") " FROM calls WHERE id = $1::bigint"

static Blazz__V1__Direction direction_of(const char *text)
{
    if (strcmp(text, "inbound") == 0)
        return BLAZZ__V1__DIRECTION__DIRECTION_INBOUND;
    if (strcmp(text, "outbound") == 0)
        return BLAZZ__V1__DIRECTION__DIRECTION_OUTBOUND;
    return BLAZZ__V1__DIRECTION__DIRECTION_UNSPECIFIED;
}

static const char *direction_text(Blazz__V1__Direction d)
{
    return d == BLAZZ__V1__DIRECTION__DIRECTION_INBOUND    ? "inbound"
           : d == BLAZZ__V1__DIRECTION__DIRECTION_OUTBOUND ? "outbound"
                                                           : "";
}

/* The call's customer, found or made (and completed) as a message's
 * contact is; NULL with err set when that failed. */
static cs_contact *customer_of(cs_batch *b, PGconn *conn, const Blazz__V1__SyncCommand *cmd,
                               bz_error *err)
{
    const Blazz__V1__CallEvent *c = cmd->call;
    const Blazz__V1__Envelope *env = cmd->envelope;
    cs_seed *s = cs_arena_alloc(&b->arena, sizeof *s);
    if (!s || cs_vec_push(&b->contact_seeds, s) != 0) {
        bz_fail(err, BZ_ERR_TRANSIENT, "call %s: out of memory", c->call_id);
        return NULL;
    }
    *s = (cs_seed){.workspace_id = env->workspace_id,
                   .account_id = env->whatsapp_account_id,
                   .provider = env->provider,
                   .key = cs_person_key(c->contact_phone, c->contact_bsuid, ""),
                   .name = c->contact_name,
                   .jid = "",
                   .bsuid = c->contact_bsuid,
                   .parent_bsuid = "",
                   .username = ""};
    if (cs_ensure_contacts(b, conn, err) != BZ_OK) {
        bz_wrap(err, "event %s: call %s's customer", env->event_id, c->call_id);
        return NULL;
    }
    cs_contact *found = cs_find_contact(b, s->workspace_id, s->key);
    if (!found)
        bz_fail(err, BZ_ERR_TRANSIENT, "event %s: call %s: customer %s neither found nor made",
                env->event_id, c->call_id, s->key);
    return found;
}

/* CALL_UPDATED with row id as it stands after the fact cmd. */
static bz_status emit_call(cs_batch *b, PGconn *conn, const Blazz__V1__SyncCommand *cmd,
                           const char *id, const cs_contact *customer, bz_error *err)
{
    const char *params[] = {id};
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "read call", SQL_CALL_ROW, 1, params, &res, err);
    if (st != BZ_OK)
        return bz_wrap(err, "call %s", cmd->call->call_id);
    if (PQntuples(res) != 1) {
        PQclear(res);
        return bz_fail(err, BZ_ERR_TRANSIENT, "call %s: gone right after its report",
                       cmd->call->call_id);
    }
    Blazz__V1__CallSnapshot snap = BLAZZ__V1__CALL_SNAPSHOT__INIT;
    snap.id = strtoll(id, NULL, 10);
    snap.uuid = PQgetvalue(res, 0, 0);
    snap.call_id = PQgetvalue(res, 0, 1);
    snap.whatsapp_account_id = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    snap.contact_id = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    snap.direction = direction_of(PQgetvalue(res, 0, 4));
    snap.status = PQgetvalue(res, 0, 5);
    snap.connected_at_ms = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    snap.started_at_ms = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
    snap.ended_at_ms = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
    snap.duration_s = (int32_t)strtol(PQgetvalue(res, 0, 9), NULL, 10);
    snap.error_code = PQgetvalue(res, 0, 10);
    snap.error_message = PQgetvalue(res, 0, 11);
    snap.terminated_at_ms = strtoll(PQgetvalue(res, 0, 12), NULL, 10);
    snap.event = cmd->call->event;
    st = cs_emit_call_updated(b, cmd, &snap,
                              customer && customer->id == snap.contact_id ? customer : NULL, err);
    PQclear(res);
    return st;
}

static bz_status apply_call(cs_batch *b, PGconn *conn, const void *work, bz_error *err)
{
    const Blazz__V1__SyncCommand *cmd = work;
    const Blazz__V1__CallEvent *c = cmd->call;
    const Blazz__V1__Envelope *env = cmd->envelope;
    cs_contact *customer = customer_of(b, conn, cmd, err);
    if (!customer)
        return err->code;
    char ws[24], acct[24], contact[24], at[24], started[24], ended[24], duration[16];
    snprintf(ws, sizeof ws, "%" PRId64, env->workspace_id);
    snprintf(acct, sizeof acct, "%" PRId64, env->whatsapp_account_id);
    snprintf(contact, sizeof contact, "%" PRId64, customer->id);
    snprintf(at, sizeof at, "%" PRId64,
             c->timestamp_ms > 0 ? c->timestamp_ms
             : env->occurred_at_ms > 0 ? env->occurred_at_ms
                                       : bz_wall_ms());
    snprintf(started, sizeof started, "%" PRId64, c->started_at_ms);
    snprintf(ended, sizeof ended, "%" PRId64, c->ended_at_ms);
    snprintf(duration, sizeof duration, "%" PRId32, c->duration_s);
    const char *params[] = {ws,       acct,    contact,  c->call_id,    c->event,
                            direction_text(c->direction), c->status, at,  started,
                            ended,    duration, c->error_code, c->error_message};
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "apply call report", SQL_CALL_REPORT, 13, params, &res,
                                     err);
    if (st != BZ_OK)
        return bz_wrap(err, "event %s: call %s (%s)", env->event_id, c->call_id, c->event);
    char id[24];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    int changed = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);
    return changed ? emit_call(b, conn, cmd, id, customer, err) : BZ_OK;
}

bz_status cs_apply_calls(cs_ctx *ctx, PGconn *conn, const Blazz__V1__SyncCommand *const *cmds,
                         size_t n, bz_error *err)
{
    bz_status st = BZ_OK;
    /* one batch each: a batch's contact seeds are all looked up again on
     * every cs_ensure_contacts */
    for (size_t i = 0; st == BZ_OK && i < n; i++)
        st = cs_apply_alone(ctx, conn, NULL, NULL, apply_call, cmds[i], err);
    return st;
}
