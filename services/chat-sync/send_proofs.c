/*
 * send_proofs.c - what proves a Meta send reached Meta, kept by client
 * reference in meta_send_proofs (db/migrations/0045) for meta-sender to
 * look up before any request leaves (ARCHITECTURE.md §6.5, §12.2).
 *
 * Every record of a Meta account on chat.sync that names a client
 * reference is such a proof or its undoing: meta-sender's echo of a send
 * Meta accepted (from_me, with the wamid Meta answered), and Meta's status
 * webhooks (sent, delivered, read carry the wamid; failed means the
 * message is not there, and a campaign may retry it under the same client
 * reference). The batch notes them in arrival order (before any is matched
 * to a row: the message may not be stored yet, as after a restore, when
 * chat.sync and crm.commands are replayed in no particular order between
 * them) and writes them with one statement, the last word per reference
 * winning, in reference order (two instances lock rows in one order). A
 * replay writes the same rows again, so the table ends where it stood.
 */
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/uuid.h"
#include "pg/columns.h"

#define SQL_PROOFS                                                                                \
    "WITH u AS (SELECT DISTINCT ON (ref) ref, acct, wam FROM unnest($1::uuid[], $2::bigint[], " \
    "  $3::text[]) WITH ORDINALITY AS t(ref, acct, wam, ord) ORDER BY ref, ord DESC), "          \
    "gone AS (DELETE FROM meta_send_proofs p USING u WHERE u.wam IS NULL "                       \
    "  AND p.client_reference = u.ref) "                                                          \
    "INSERT INTO meta_send_proofs (client_reference, whatsapp_account_id, wam_id) "               \
    "SELECT ref, acct, wam FROM u WHERE wam IS NOT NULL "                                         \
    "ON CONFLICT (client_reference) DO UPDATE SET wam_id = EXCLUDED.wam_id, "                     \
    "whatsapp_account_id = EXCLUDED.whatsapp_account_id, proven_at = now() "                      \
    "WHERE meta_send_proofs.wam_id <> EXCLUDED.wam_id"

/* The client reference and wamid a record names as a Meta send's
 * outcome: 1 a proof (an echo, or a status that has the message at Meta),
 * -1 its undoing (a failure), 0 neither. */
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
    if (!bz_uuid_is_valid(*ref))
        return 0;
    switch (ack->status) {
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT:
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED:
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ:
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_PLAYED: return *ack->wam_id ? 1 : 0;
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
    bz_pg_array a[3];
    bz_pg_array_init_all(a, 3);
    for (size_t i = 0; i < b->send_proofs.n; i++) {
        const cs_record *r = b->send_proofs.items[i];
        const char *ref = NULL, *wam = NULL;
        int kind = proof_of(r->cmd, &ref, &wam);
        if (kind == 0)
            continue; /* noted only when it is one (cs_note_send_proof) */
        bz_pg_array_text(&a[0], ref);
        bz_pg_array_int64(&a[1], r->cmd->envelope->whatsapp_account_id);
        if (kind > 0)
            bz_pg_array_text(&a[2], wam);
        else
            bz_pg_array_null(&a[2]);
    }
    bz_status st = bz_pg_arrays_exec(conn, "write Meta send proofs", SQL_PROOFS, a, 3, NULL, err);
    bz_pg_array_free_all(a, 3);
    return st;
}
