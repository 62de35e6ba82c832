/*
 * send_proofs.c - what proves a Meta send reached Meta, kept per client
 * reference and wamid in meta_message_proofs (db/migrations/0058) for
 * meta-sender to look up before any request leaves (ARCHITECTURE.md §6.5,
 * §12.2). meta_send_proofs (0045), one row a reference, is no longer
 * written here: a release's chat-sync may still write it during an
 * upgrade, and meta-sender reads its rows too.
 *
 * Every record of a Meta account on chat.sync that names a client
 * reference and a wamid is such a proof or its undoing: meta-sender's echo
 * of a send Meta accepted (from_me, with the wamid Meta answered), and
 * Meta's status webhooks (sent, delivered, read: that message is at Meta;
 * failed: it is not, and a campaign may retry it under the same client
 * reference). A proof is one message: a failure marks its wamid's row
 * failed for good, inserting it when the failure comes first (Meta does
 * not order its webhooks after its answer to the send), so nothing later
 * of that message proves the reference again, and an earlier attempt's
 * failure never touches a later attempt's proof. A failure without a
 * wamid (a send Meta never accepted) says nothing of any message at Meta
 * and is left out. The batch notes them before any is matched to a row
 * (the message may not be stored yet, as after a restore, when chat.sync
 * and crm.commands are replayed in no particular order between them) and
 * writes them with one statement, a failure winning over a proof of the
 * same message, in reference order (two instances lock rows in one
 * order). The outcome does not depend on the order the records came in,
 * so a replay leaves the table where it stood.
 */
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/uuid.h"
#include "pg/columns.h"

#define SQL_PROOFS                                                                                \
    "INSERT INTO meta_message_proofs (client_reference, wam_id, whatsapp_account_id, failed_at) " \
    "SELECT ref, wam, acct, CASE WHEN failed THEN now() END FROM ("                               \
    "  SELECT DISTINCT ON (ref, wam) ref, wam, acct, failed FROM unnest($1::uuid[], "           \
    "  $2::bigint[], $3::text[], $4::bool[]) AS t(ref, acct, wam, failed) "                       \
    "  ORDER BY ref, wam, failed DESC) u ORDER BY ref, wam "                                      \
    "ON CONFLICT (client_reference, wam_id) DO UPDATE SET failed_at = EXCLUDED.failed_at "        \
    "WHERE meta_message_proofs.failed_at IS NULL AND EXCLUDED.failed_at IS NOT NULL"

/* The client reference and wamid a record names as a Meta send's
 * outcome: 1 a proof (an echo, or a status that has the message at Meta),
 * -1 its undoing (a failed status of that wamid), 0 neither. */
static int proof_of(const Blazz__V1__SyncCommand *cmd, const char **ref, const char **wam)
{
    if (cmd->envelope->provider != BLAZZ__V1__PROVIDER__PROVIDER_META)
        return 0;
    if (cmd->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE) {
        const Blazz__V1__InboundMessage *m = cmd->message;
        *ref = m->client_reference;
        *wam = m->wam_id;
        return m->from_me && bz_uuid_is_valid(*ref) && *m->wam_id ? 1 : 0;
    }
    if (cmd->command_case != BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT)
        return 0;
    const Blazz__V1__MessageAck *ack = cmd->receipt;
    *ref = ack->client_reference;
    *wam = ack->wam_id;
    if (!bz_uuid_is_valid(*ref) || !*ack->wam_id)
        return 0;
    switch (ack->status) {
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT:
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED:
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ:
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_PLAYED: return 1;
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED: return -1;
    default: return 0;
    }
}

bz_status cs_note_send_proof(cs_batch *b, const cs_record *r, bz_error *err)
{
    const char *ref, *wam;
    if (proof_of(r->cmd, &ref, &wam) == 0 || cs_vec_push(&b->send_proofs, (void *)r) == 0)
        return BZ_OK;
    return bz_fail(err, BZ_ERR_TRANSIENT, "note send proof of %s: out of memory",
                   r->cmd->envelope->event_id);
}

bz_status cs_write_send_proofs(cs_batch *b, PGconn *conn, bz_error *err)
{
    if (b->send_proofs.n == 0)
        return BZ_OK;
    bz_pg_array a[4];
    bz_pg_array_init_all(a, 4);
    for (size_t i = 0; i < b->send_proofs.n; i++) {
        const cs_record *r = b->send_proofs.items[i];
        const char *ref = NULL, *wam = NULL;
        int kind = proof_of(r->cmd, &ref, &wam);
        if (kind == 0)
            continue; /* noted only when it is one (cs_note_send_proof) */
        bz_pg_array_text(&a[0], ref);
        bz_pg_array_int64(&a[1], r->cmd->envelope->whatsapp_account_id);
        bz_pg_array_text(&a[2], wam);
        bz_pg_array_bool(&a[3], kind < 0);
    }
    bz_status st = bz_pg_arrays_exec(conn, "write Meta send proofs", SQL_PROOFS, a, 4, NULL, err);
    bz_pg_array_free_all(a, 4);
    return st;
}
