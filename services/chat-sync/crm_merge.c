/*
 * crm_merge.c - the CRM merges two contacts it knows to be one person
 * (a ContactRequest naming merged_contact_id, from ingest's POST
 * /v1/contacts/{id}/merge; decision 0010, "The CRM's word"), alone, in the
 * consumer's transaction: crm.c applies the commands before it, then this
 * one in a batch of its own, then those after it.
 *
 * Both contacts are locked by id in one statement (cs_lock_live_contacts).
 * ingest found both live in the workspace; when either is no longer (merged
 * or deleted since, or the command is a replay of a merge already applied,
 * which finds the merged contact retired), nothing changes and it is
 * logged: the request was about rows that are gone, and a dead letter would
 * leave an operator nothing to replay. Else the merge core
 * (cs_merge_contacts, apply_merge.c) joins them as it joins a gateway's or
 * Meta's pair: the path's contact survives and keeps its identifiers,
 * taking the merged one's where it has none; the merged row's chats,
 * counters, opt-out, campaign rows and reach move to it; the merged row is
 * soft-deleted naming it; one contact.merged, merged_by "api", keyed by the
 * survivor's conversation (the command's own key, ingest's choice), with
 * no pair (phone, lid and bsuid empty: the CRM's word names contacts, not
 * identifiers).
 */
#include <inttypes.h>

#include "chat_sync.h"
#include "core/log.h"

int cs_is_crm_merge(const Blazz__V1__CrmCommand *cmd)
{
    return cmd->command_case == BLAZZ__V1__CRM_COMMAND__COMMAND_CONTACT &&
           cmd->contact->merged_contact_id != 0;
}

/* cs_apply_alone's work: q, the request; b's one record is its command. */
static bz_status merge_pair(cs_batch *b, PGconn *conn, const void *work, bz_error *err)
{
    const Blazz__V1__ContactRequest *q = work;
    const cs_record *r = &b->recs[0];
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    const int64_t ids[] = {q->contact_id, q->merged_contact_id};
    bz_status st = cs_lock_live_contacts(b, conn, env->workspace_id, ids, 2, err);
    if (st != BZ_OK)
        return st;
    cs_contact *survivor = cs_find_contact_id(b, q->contact_id);
    cs_contact *merged = cs_find_contact_id(b, q->merged_contact_id);
    if (!survivor || !merged) {
        bz_log_event(BZ_LOG_INFO, env->event_id, env->trace_id,
                     "merge of contact %" PRId64 " into %" PRId64 ": nothing to do, contact "
                     "%" PRId64 " is no longer live (merged or deleted since it was asked)",
                     q->merged_contact_id, q->contact_id,
                     survivor ? q->merged_contact_id : q->contact_id);
        return BZ_OK;
    }
    Blazz__V1__ContactMerge why = BLAZZ__V1__CONTACT_MERGE__INIT;
    why.merged_at_ms = env->occurred_at_ms;
    why.merged_by = (char *)"api";
    st = cs_merge_contacts(b, conn, survivor, merged, r, &why, err);
    if (st == BZ_OK)
        bz_log_event(BZ_LOG_INFO, env->event_id, env->trace_id,
                     "contact %s merged into %s: the CRM's request", merged->uuid, survivor->uuid);
    return st;
}

bz_status cs_crm_merge(cs_ctx *ctx, PGconn *conn, const rd_kafka_message_t *msg,
                       const Blazz__V1__CrmCommand *cmd, bz_error *err)
{
    cs_crm_record cr;
    cs_crm_record_init(&cr, msg, cmd);
    bz_status st = cs_apply_alone(ctx, conn, msg, &cr.as_sync, merge_pair, cmd->contact, err);
    if (st != BZ_OK)
        bz_wrap(err, "merge command %s", cmd->envelope->event_id);
    return st;
}
