/*
 * lost_sends.c - failing the sends a dead gateway instance took with it
 * (see lost_sends.h).
 *
 * One statement marks the round's lost releases and returns them; each
 * becomes one FAILED receipt on chat.sync, keyed like a gateway's receipt
 * (<workspace>:<recipient>) and with an id derived from its reference, so
 * a receipt written twice (it cannot be: the mark is in the same
 * transaction) would still be applied once.
 */
#include "lost_sends.h"

#include <stdio.h>
#include <string.h>

#include "blazz/v1/sync.pb-c.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/uuid.h"
#include "kafka/topics.h"
#include "pg/pg.h"

#define LOST_REASON "gateway_instance_lost"

/* The hour is the send budget's (§11.3): cleanup keeps send_ledger longer
 * (2 h at least), and a release still unanswered after it is not one a
 * live instance was about to answer. */
#define SQL_MARK_LOST                                                                             \
    "UPDATE send_ledger l SET lost_at = now() FROM whatsapp_accounts a "                          \
    "WHERE a.instance_lost_at > now() - interval '1 hour' AND a.provider_type = 'webjs' "         \
    "AND l.whatsapp_account_id = a.id AND l.lost_at IS NULL "                                     \
    "AND l.released_at > a.instance_lost_at - interval '1 hour' "                                 \
    "AND (a.last_connected_at IS NULL OR a.last_connected_at <= a.instance_lost_at "              \
    "OR l.released_at < a.last_connected_at) "                                                    \
    "AND CASE WHEN l.kind = 'agent' THEN EXISTS (SELECT 1 FROM chats c WHERE c.uuid = "           \
    "l.reference::uuid AND c.message_status = 'pending') ELSE EXISTS (SELECT 1 FROM "             \
    "campaign_logs g WHERE g.uuid = l.reference::uuid AND g.status = 'queued') END "             \
    "RETURNING l.reference, l.workspace_id, a.id, a.session_id, coalesce(l.recipient, ''), "      \
    "(extract(epoch FROM a.instance_lost_at) * 1000)::bigint"

enum { COL_REFERENCE, COL_WORKSPACE, COL_ACCOUNT, COL_SESSION, COL_RECIPIENT, COL_LOST_AT };

/* The FAILED receipt of one lost release, as campaign-sender writes one
 * for an agent's message it could not release. */
static bz_status emit_failure(cs_batch *b, const PGresult *res, int row, bz_error *err)
{
    const char *reference = PQgetvalue(res, row, COL_REFERENCE);
    const char *recipient = PQgetvalue(res, row, COL_RECIPIENT);
    int64_t workspace = bz_pg_get_int64(res, row, COL_WORKSPACE);
    char name[128], event_id[BZ_UUID_STR_SIZE];
    int n = snprintf(name, sizeof name, "blazz.v1/chat-sync/send-lost/%s", reference);
    bz_uuid_derive(name, (size_t)n, event_id);
    char *trace = cs_arena_strdup(&b->arena, event_id);
    char *key = cs_arena_printf(&b->arena, "%lld:%s", (long long)workspace,
                                *recipient ? recipient : reference);
    if (!trace || !key)
        return bz_fail(err, BZ_ERR_TRANSIENT, "fail lost send %s: out of memory", reference);
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = bz_pg_get_int64(res, row, COL_LOST_AT);
    env.produced_at_ms = bz_wall_ms();
    env.source = "chat-sync";
    env.workspace_id = workspace;
    env.session_id = (char *)PQgetvalue(res, row, COL_SESSION);
    env.whatsapp_account_id = bz_pg_get_int64(res, row, COL_ACCOUNT);
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    env.trace_id = trace;
    Blazz__V1__MessageAck ack = BLAZZ__V1__MESSAGE_ACK__INIT;
    ack.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED;
    ack.error_code = LOST_REASON;
    ack.error_message = "released to a gateway instance that died before answering it; not "
                        "re-sent (it may have left the phone)";
    ack.timestamp_ms = env.occurred_at_ms;
    ack.client_reference = (char *)reference;
    ack.recipient_phone = (char *)recipient;
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.envelope = &env;
    cmd.conversation = (char *)(*recipient ? recipient : reference);
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT;
    cmd.receipt = &ack;
    return cs_emit_record(b, bz_topic_base(BZ_TOPIC_CHAT_SYNC), event_id, key, &cmd.base, trace,
                          err);
}

bz_status cs_fail_lost_sends(cs_batch *b, PGconn *conn, int *failed, bz_error *err)
{
    *failed = 0;
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "mark the sends lost with their instance",
                                     SQL_MARK_LOST, 0, NULL, &res, err);
    int n = st == BZ_OK ? PQntuples(res) : 0;
    for (int i = 0; st == BZ_OK && i < n; i++)
        st = emit_failure(b, res, i, err);
    PQclear(res);
    if (st == BZ_OK && n > 0) {
        *failed = n;
        bz_warn("%d send(s) released to gateway instances that died before answering them: "
                "failed (%s), not re-sent",
                n, LOST_REASON);
    }
    return st;
}
