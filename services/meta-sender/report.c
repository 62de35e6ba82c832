/*
 * report.c - a Meta send's outcome, told to chat-sync as a gateway would
 * (see meta_sender.h).
 *
 * The outcome goes straight onto chat.sync (outbox rows in the worker's
 * outcome transaction, keyed "<workspace_id>:<conversation>" like ingest's
 * commands for the same conversation, so chat-sync applies it in order with
 * them), not through ingest: meta-sender already knows the workspace and
 * the account it resolved at intake, and a failure has no wam_id, which
 * ingest requires of a receipt (campaign-sender reports its own release
 * failures the same way, §11).
 *   sent    an InboundMessage echo (from_me, wam_id, client reference, the
 *           content): chat-sync stores the wam_id on the agent's pending row
 *           (or creates the row of a campaign message) and moves it to sent;
 *           a reaction's echo names its target (target_wam_id), where
 *           chat-sync sets the account's reaction; its own row follows
 *           Meta's status webhooks by client reference;
 *   failed  a MessageAck FAILED with the client reference, Meta's code (or
 *           reengagement_required) and message: chat-sync fails the row,
 *           and a campaign log through campaign.receipts.
 * Event ids derive from the idempotency key, so a repeated report is the
 * same event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/sync.pb-c.h"
#include "core/uuid.h"
#include "kafka/topics.h"
#include "meta_sender.h"

static void envelope_of(Blazz__V1__Envelope *env, const ms_row *r, const char *what,
                        char event_id[BZ_UUID_STR_SIZE], int64_t now_ms)
{
    char name[300];
    int n = snprintf(name, sizeof name, "blazz.v1/meta-sender/%s/%s", what, r->key);
    bz_uuid_derive(name, n > 0 && (size_t)n < sizeof name ? (size_t)n : sizeof name - 1, event_id);
    env->event_id = event_id;
    env->occurred_at_ms = env->produced_at_ms = now_ms;
    env->source = (char *)MS_SOURCE;
    env->workspace_id = r->workspace_id;
    env->session_id = r->m->session_id && *r->m->session_id ? r->m->session_id
                      : r->m->envelope                      ? r->m->envelope->session_id
                                                            : (char *)"";
    env->whatsapp_account_id = r->account_id;
    env->provider = BLAZZ__V1__PROVIDER__PROVIDER_META;
    env->trace_id = r->m->envelope && r->m->envelope->trace_id && *r->m->envelope->trace_id
                        ? r->m->envelope->trace_id
                        : event_id;
}

/* Read marks have no outcome to tell chat-sync. */
static int reports_outcome(const ms_row *r)
{
    return r->m && r->m->kind != BLAZZ__V1__SEND_KIND__SEND_KIND_MARK_READ;
}

/* Queue cmd, under the envelope of the report `what` of r, on chat.sync. */
static bz_status queue(bz_outbox_batch *batch, const ms_row *r, const char *what, int64_t now_ms,
                       Blazz__V1__SyncCommand *cmd, bz_error *err)
{
    char event_id[BZ_UUID_STR_SIZE];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    envelope_of(&env, r, what, event_id, now_ms);
    cmd->envelope = &env;
    const char *colon = strchr(r->msg_key, ':');
    cmd->conversation = (char *)(colon ? colon + 1 : r->msg_key);
    size_t len = blazz__v1__sync_command__get_packed_size(cmd);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf)
        blazz__v1__sync_command__pack(cmd, buf);
    cmd->envelope = NULL; /* the caller's command must not keep this frame's envelope */
    if (!buf)
        return bz_fail(err, BZ_ERR_NOMEM, "report send %s: out of memory", r->key);
    bz_status st = bz_outbox_batch_add(batch, bz_topic_base(BZ_TOPIC_CHAT_SYNC), env.event_id,
                                       r->msg_key, strlen(r->msg_key), buf, len, env.trace_id,
                                       err);
    free(buf);
    return st;
}

bz_status ms_report_sent(bz_outbox_batch *batch, const ms_row *r, const char *wam_id,
                         int64_t now_ms, bz_error *err)
{
    if (!reports_outcome(r))
        return BZ_OK;
    const Blazz__V1__SendMessage *m = r->m;
    Blazz__V1__InboundMessage msg = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    msg.wam_id = (char *)wam_id;
    if (ms_sends_to_meta_group(m)) { /* the group's message: no contact of its own */
        msg.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
        msg.group_jid = m->to_jid;
    } else {
        msg.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
        msg.contact_phone = m->to_phone;
        msg.contact_jid = m->to_jid;
        msg.contact_bsuid = m->to_bsuid;
    }
    msg.message_type = m->message_type ? m->message_type : BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    int reaction = msg.message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION;
    msg.body = reaction ? (char *)"" : m->body;
    msg.reaction_emoji = reaction ? m->body : (char *)"";
    msg.timestamp_ms = now_ms;
    msg.from_me = true;
    /* a reaction acts on its target (chat-sync sets the account's entry
     * there), it is not a message of its own */
    msg.target_wam_id = reaction ? m->quoted_wam_id : (char *)"";
    msg.quoted_wam_id = reaction ? (char *)"" : m->quoted_wam_id;
    msg.client_reference = m->client_reference;
    msg.media = m->media;
    msg.has_media = m->media != NULL;
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE;
    cmd.message = &msg;
    return queue(batch, r, "echo", now_ms, &cmd, err);
}

bz_status ms_report_failed(bz_outbox_batch *batch, const ms_row *r, const char *code,
                           const char *message, int64_t now_ms, bz_error *err)
{
    if (!reports_outcome(r))
        return BZ_OK;
    const Blazz__V1__SendMessage *m = r->m;
    Blazz__V1__MessageAck ack = BLAZZ__V1__MESSAGE_ACK__INIT;
    ack.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED;
    ack.error_code = (char *)code;
    ack.error_message = (char *)message;
    ack.timestamp_ms = now_ms;
    ack.client_reference = m->client_reference;
    ack.recipient_phone = m->to_phone;
    ack.recipient_jid = m->to_jid;
    ack.recipient_bsuid = m->to_bsuid;
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT;
    cmd.receipt = &ack;
    return queue(batch, r, "failed", now_ms, &cmd, err);
}
