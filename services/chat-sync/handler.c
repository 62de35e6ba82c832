/*
 * handler.c - chat-sync's exactly-once consumer handler: decode one record
 * of chat.sync (a SyncCommand) or crm.commands (a CrmCommand, told apart by
 * the record's topic), apply a batch of them in the consumer's transaction,
 * release. The chat.sync records of a batch go through plan, load, insert,
 * simulate, write (see chat_sync.h), in runs cut at each identity change
 * (apply_identity.c: a customer's new phone or BSUID), which is applied
 * alone between the run before it and the run after it, so the messages
 * after it find the contact it moved; then its gateway instances' heartbeats
 * (apply_heartbeat.c); then Meta's notices about business accounts
 * (apply_business.c); then its crm.commands records, one after the other
 * (crm.c). The two topics have no order between them, and
 * each part finishes its writes before the next part reads, so both see
 * the rows as the other left them.
 *
 * apply works for any subset of a batch, as the consumer requires when it
 * isolates a bad record: every phase derives its work from the records it
 * is given. A command the rules refuse (unknown account, another
 * workspace's account, a row the database refuses) makes the whole batch
 * INVALID; the consumer then re-applies it one record at a time and
 * dead-letters the culprit.
 */
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/log.h"

bz_status cs_ctx_init(cs_ctx *ctx, bz_metrics *reg, bz_error *err)
{
    memset(ctx, 0, sizeof *ctx);
    if (!reg)
        return BZ_OK;
    cs_metrics *m = &ctx->m;
    const bz_metric_decl decls[] = {
        {.def = {.name = "blazz_chat_sync_messages_stored_total",
                 .help = "Messages stored (new chats rows)"},
         .counter = &m->messages_stored},
        {.def = {.name = "blazz_chat_sync_messages_duplicate_total",
                 .help = "Messages already stored (replays, re-syncs)"},
         .counter = &m->messages_duplicate},
        {.def = {.name = "blazz_chat_sync_receipts_matched_total",
                 .help = "Receipts whose message is stored"},
         .counter = &m->receipts_applied},
        {.def = {.name = "blazz_chat_sync_receipts_unmatched_total",
                 .help = "Receipts for messages not stored"},
         .counter = &m->receipts_unmatched},
        {.def = {.name = "blazz_chat_sync_campaign_receipts_total",
                 .help = "Receipts routed to campaign.receipts"},
         .counter = &m->campaign_receipts},
        {.def = {.name = "blazz_chat_sync_session_changes_total",
                 .help = "Account status changes applied"},
         .counter = &m->session_changes},
        {.def = {.name = "blazz_chat_sync_history_batches_total",
                 .help = "History sync batches counted"},
         .counter = &m->sync_batches},
        {.def = {.name = "blazz_chat_sync_group_updates_total", .help = "Group updates applied"},
         .counter = &m->group_updates},
        {.def = {.name = "blazz_chat_sync_events_total", .help = "Events written to the outbox"},
         .counter = &m->events},
        {.def = {.name = "blazz_chat_sync_fenced_reports_total",
                 .help = "Session reports refused: their instance no longer holds the session"},
         .counter = &m->fenced_reports},
        {.def = {.name = "blazz_chat_sync_instance_heartbeats_total",
                 .help = "Gateway instance heartbeats applied"},
         .counter = &m->heartbeats},
        {.def = {.name = "blazz_chat_sync_sessions_assigned_total",
                 .help = "New sessions given their first gateway instance"},
         .counter = &m->sessions_assigned},
        {.def = {.name = "blazz_chat_sync_sessions_moved_total",
                 .help = "Sessions moved off a gateway instance declared dead"},
         .counter = &m->sessions_moved},
        {.def = {.name = "blazz_chat_sync_instances_declared_dead_total",
                 .help = "Gateway instances declared dead (heartbeats stopped)"},
         .counter = &m->instances_dead},
        {.def = {.name = "blazz_chat_sync_sends_lost_total",
                 .help = "Sends released to a gateway instance that died before answering "
                         "them, failed (gateway_instance_lost)"},
         .counter = &m->sends_lost},
        {.def = {.name = "blazz_chat_sync_template_reports_total",
                 .help = "Meta's template reports applied"},
         .counter = &m->template_reports},
        {.def = {.name = "blazz_chat_sync_account_reports_total",
                 .help = "Meta's reports of an account's quality, limits or standing applied"},
         .counter = &m->account_reports},
        {.def = {.name = "blazz_chat_sync_messages_delivered_total",
                 .help = "Outbound messages delivered, by Meta's pricing category (unpriced: "
                         "none reported)",
                 .label_names = (const char *const[]){"category", NULL}},
         .counters = &m->delivered_by_category},
    };
    bz_status st = BZ_METRICS_DECLARE(reg, decls, err);
    if (st != BZ_OK)
        return st;
    ctx->have_metrics = 1;
    return BZ_OK;
}

/* What decode produced: exactly one of the two is set. */
typedef struct cs_input {
    Blazz__V1__SyncCommand *sync;
    Blazz__V1__CrmCommand *crm;
} cs_input;

static int from_crm_topic(const cs_ctx *ctx, const rd_kafka_message_t *msg)
{
    return *ctx->crm_topic && msg->rkt && strcmp(rd_kafka_topic_name(msg->rkt), ctx->crm_topic) == 0;
}

static bz_status cs_decode(void *ctx, const rd_kafka_message_t *msg, void **decoded, bz_error *err)
{
    cs_input *in = calloc(1, sizeof *in);
    if (!in)
        return bz_fail(err, BZ_ERR_TRANSIENT, "decode: out of memory");
    bz_status st = from_crm_topic(ctx, msg) ? cs_crm_decode(msg->payload, msg->len, &in->crm, err)
                                            : cs_command_decode(msg->payload, msg->len, &in->sync,
                                                                err);
    if (st != BZ_OK) {
        free(in);
        return st;
    }
    *decoded = in;
    return BZ_OK;
}

static void cs_release(void *ctx, void *decoded)
{
    (void)ctx;
    cs_input *in = decoded;
    if (!in)
        return;
    cs_command_free(in->sync);
    cs_crm_free(in->crm);
    free(in);
}

static bz_status simulate(cs_batch *b, bz_error *err)
{
    bz_status st = BZ_OK;
    for (size_t i = 0; i < b->nrecs && st == BZ_OK; i++) {
        const cs_record *r = &b->recs[i];
        st = cs_note_send_proof(b, r, err);
        if (st != BZ_OK)
            break;
        switch (r->cmd->command_case) {
        case BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE:
            st = r->nocc ? cs_simulate_message(b, &b->occ[r->first_occ], 1, err)
                         : cs_simulate_action(b, r, err);
            break;
        case BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT:
            st = cs_simulate_receipt(b, r, err);
            break;
        case BLAZZ__V1__SYNC_COMMAND__COMMAND_SESSION_STATUS:
            st = cs_simulate_session(b, r, err);
            break;
        case BLAZZ__V1__SYNC_COMMAND__COMMAND_HISTORY_SYNC:
            st = cs_simulate_history(b, r, err);
            break;
        case BLAZZ__V1__SYNC_COMMAND__COMMAND_GROUP_UPDATE:
            st = cs_simulate_group_update(b, r, err);
            break;
        case BLAZZ__V1__SYNC_COMMAND__COMMAND_CONTACT_UPDATE:
            st = cs_simulate_contact_update(b, r, err);
            break;
        default:
            break;
        }
    }
    return st;
}

static bz_status apply_batch(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_status st = cs_plan(b, err);
    if (st == BZ_OK)
        st = cs_load_accounts(b, conn, err);
    if (st == BZ_OK)
        st = cs_ensure_contacts(b, conn, err);
    if (st == BZ_OK)
        st = cs_ensure_groups(b, conn, err);
    if (st == BZ_OK)
        st = cs_load_campaign_logs(b, conn, 0, err);
    if (st == BZ_OK)
        st = cs_load_agent_rows(b, conn, err);
    if (st == BZ_OK)
        st = cs_insert_messages(b, conn, err);
    if (st == BZ_OK)
        st = cs_insert_media_fetch_jobs(b, conn, err);
    if (st == BZ_OK)
        st = cs_load_opt_out_keywords(b, conn, err);
    if (st == BZ_OK)
        st = cs_load_parked_receipts(b, conn, err);
    if (st == BZ_OK)
        st = cs_load_receipt_targets(b, conn, err);
    if (st == BZ_OK)
        st = cs_load_campaign_logs(b, conn, 1, err);
    if (st == BZ_OK)
        st = simulate(b, err);
    if (st == BZ_OK)
        st = cs_write_changes(b, conn, err);
    if (st == BZ_OK)
        st = cs_write_parked_receipts(b, conn, err);
    if (st == BZ_OK)
        st = cs_write_send_proofs(b, conn, err);
    if (st == BZ_OK)
        st = cs_write_outbox(b, conn, err);
    if (st == BZ_OK && b->meta_pairs.n > 0)
        st = cs_merge_meta_pairs(b, conn, err);
    return st;
}

static bz_status apply_sync_records(cs_ctx *ctx, PGconn *conn,
                                    const rd_kafka_message_t *const *msgs,
                                    const Blazz__V1__SyncCommand *const *cmds, size_t n,
                                    bz_error *err)
{
    if (n == 0)
        return BZ_OK;
    cs_batch b;
    bz_status st = cs_batch_init(&b, ctx, msgs, cmds, n, err);
    if (st == BZ_OK)
        st = apply_batch(&b, conn, err);
    if (st != BZ_OK && n == 1)
        bz_log_event(BZ_LOG_DEBUG, cmds[0]->envelope->event_id, cmds[0]->envelope->trace_id,
                     "apply failed: %s", err->msg);
    cs_batch_free(&b);
    return st;
}

static int is_identity_change(const Blazz__V1__SyncCommand *cmd)
{
    return cmd->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_CONTACT_UPDATE &&
           cmd->contact_update->identity_change;
}

static bz_status cs_apply(void *ctx, PGconn *conn, bz_eo_record *recs, size_t n, bz_error *err)
{
    /* NOLINTBEGIN(bugprone-sizeof-expression): the elements are pointers */
    const rd_kafka_message_t **msgs = calloc(n ? n : 1, sizeof *msgs);
    const rd_kafka_message_t **crm_msgs = calloc(n ? n : 1, sizeof *crm_msgs);
    const Blazz__V1__SyncCommand **cmds = calloc(n ? n : 1, sizeof *cmds);
    const Blazz__V1__CrmCommand **crm_cmds = calloc(n ? n : 1, sizeof *crm_cmds);
    const Blazz__V1__SyncCommand **beats = calloc(n ? n : 1, sizeof *beats);
    const Blazz__V1__SyncCommand **notices = calloc(n ? n : 1, sizeof *notices);
    const Blazz__V1__SyncCommand **calls = calloc(n ? n : 1, sizeof *calls);
    /* NOLINTEND(bugprone-sizeof-expression) */
    bz_status st = msgs && crm_msgs && cmds && crm_cmds && beats && notices && calls
                       ? BZ_OK
                       : bz_fail(err, BZ_ERR_TRANSIENT, "apply batch of %zu: out of memory", n);
    size_t nsync = 0, ncrm = 0, nbeats = 0, nnotices = 0, ncalls = 0;
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        const cs_input *in = recs[i].decoded;
        if (in->crm) {
            crm_msgs[ncrm] = recs[i].msg;
            crm_cmds[ncrm++] = in->crm;
        } else if (in->sync->command_case ==
                   BLAZZ__V1__SYNC_COMMAND__COMMAND_INSTANCE_HEARTBEAT) {
            beats[nbeats++] = in->sync;
        } else if (in->sync->command_case ==
                   BLAZZ__V1__SYNC_COMMAND__COMMAND_BUSINESS_NOTICE) {
            notices[nnotices++] = in->sync;
        } else if (in->sync->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_CALL) {
            calls[ncalls++] = in->sync;
        } else if (is_identity_change(in->sync)) {
            st = apply_sync_records(ctx, conn, msgs, cmds, nsync, err);
            nsync = 0;
            if (st == BZ_OK)
                st = cs_apply_identity_change(ctx, conn, recs[i].msg, in->sync, err);
        } else if (cs_is_lid_mapping(in->sync)) {
            /* the merge alone, then the update with the records after it */
            st = apply_sync_records(ctx, conn, msgs, cmds, nsync, err);
            nsync = 0;
            if (st == BZ_OK)
                st = cs_apply_lid_mapping(ctx, conn, recs[i].msg, in->sync, err);
            msgs[nsync] = recs[i].msg;
            cmds[nsync++] = in->sync;
        } else {
            msgs[nsync] = recs[i].msg;
            cmds[nsync++] = in->sync;
        }
    }
    if (st == BZ_OK)
        st = apply_sync_records(ctx, conn, msgs, cmds, nsync, err);
    if (st == BZ_OK)
        st = cs_apply_heartbeats(ctx, conn, beats, nbeats, err);
    if (st == BZ_OK)
        st = cs_apply_business_notices(ctx, conn, notices, nnotices, err);
    if (st == BZ_OK)
        st = cs_apply_calls(ctx, conn, calls, ncalls, err);
    if (st == BZ_OK && ncrm > 0)
        st = cs_crm_apply(ctx, conn, crm_msgs, crm_cmds, ncrm, err);
    free(msgs);
    free(crm_msgs);
    free(cmds);
    free(crm_cmds);
    free(beats);
    free(notices);
    free(calls);
    return st;
}

const bz_eo_handler cs_handler = {
    .init = NULL,
    .decode = cs_decode,
    .apply = cs_apply,
    .release = cs_release,
};
