/*
 * crm.c - the CRM's commands (crm.commands, proto/blazz/v1/crm.proto):
 * decoding, and applying the crm.commands records of a batch.
 *
 * chat-sync owns the chats rows, so the CRM's sends and reads are applied
 * here, in the consumer's transaction, exactly once like everything else
 * (ARCHITECTURE.md §11): crm_send.c stores an agent's message as a pending
 * row and queues it for campaign-sender, crm_read.c marks a conversation
 * read, crm_session.c commands a session (§15), crm_contact.c creates or
 * changes a contact, crm_merge.c merges two. The commands of a batch are
 * applied in order on one working set (a cs_batch without sync records:
 * its arena, the rows it locked, its events), consecutive sends together
 * with one statement per step, then the contacts they changed and their
 * events are written with one statement each, as for chat.sync. A merge
 * is applied alone, between the run of commands before it and the run
 * after it (as handler.c cuts chat.sync at an identity change), so it
 * locks the two contacts as the commands before it left them, and the
 * commands after it find them merged.
 *
 * A command the rules refuse (an unknown contact, group, template or
 * message, a template's parameters that do not fit) fails the batch
 * INVALID with a reason; the consumer isolates it and dead-letters it to
 * chat.sync.dlq, the service's dead-letter topic, with the original topic
 * recorded so `blazzctl dlq replay` sends it back to crm.commands.
 */
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/log.h"
#include "wa/crm_command.h"

bz_status cs_crm_decode(const void *data, size_t len, Blazz__V1__CrmCommand **out, bz_error *err)
{
    Blazz__V1__CrmCommand *cmd = blazz__v1__crm_command__unpack(NULL, len, data);
    if (!cmd)
        return bz_reject(err, "decode_error", "not a blazz.v1.CrmCommand (%zu bytes)", len);
    bz_status st = bz_crm_command_check(cmd, err);
    if (st != BZ_OK) {
        blazz__v1__crm_command__free_unpacked(cmd, NULL);
        return st;
    }
    *out = cmd;
    return BZ_OK;
}

void cs_crm_free(Blazz__V1__CrmCommand *cmd)
{
    if (cmd)
        blazz__v1__crm_command__free_unpacked(cmd, NULL);
}

/* The record's Kafka key (events use it too), in the batch's arena. */
static char *record_key(cs_batch *b, const rd_kafka_message_t *msg,
                        const Blazz__V1__CrmCommand *cmd)
{
    return msg->key_len ? cs_arena_strndup(&b->arena, msg->key, msg->key_len)
                        : cs_arena_printf(&b->arena, "%lld:%s",
                                          (long long)cmd->envelope->workspace_id,
                                          cmd->conversation);
}

void cs_crm_record_init(cs_crm_record *cr, const rd_kafka_message_t *msg,
                        const Blazz__V1__CrmCommand *cmd)
{
    blazz__v1__sync_command__init(&cr->as_sync);
    cr->as_sync.envelope = cmd->envelope;
    cr->r = (cs_record){.msg = msg, .cmd = &cr->as_sync};
}

static int is_send(const Blazz__V1__CrmCommand *cmd)
{
    return cmd->command_case == BLAZZ__V1__CRM_COMMAND__COMMAND_SEND;
}

/* Apply cmds[0..n) in order: each run of consecutive sends together
 * (crm_send.c), each mark-read on its own. */
static bz_status apply_in_order(cs_batch *b, PGconn *conn, const rd_kafka_message_t *const *msgs,
                                const Blazz__V1__CrmCommand *const *cmds, size_t n, bz_error *err)
{
    char **keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys)
        return bz_fail(err, BZ_ERR_TRANSIENT, "apply crm commands: out of memory");
    bz_status st = BZ_OK;
    for (size_t i = 0; st == BZ_OK && i < n; i++)
        if (!(keys[i] = record_key(b, msgs[i], cmds[i])))
            st = bz_fail(err, BZ_ERR_TRANSIENT, "apply crm commands: out of memory");
    for (size_t i = 0; st == BZ_OK && i < n;) {
        size_t end = i + 1;
        if (is_send(cmds[i])) {
            while (end < n && is_send(cmds[end]))
                end++;
            st = cs_crm_send_run(b, conn, cmds + i, keys + i, end - i, err);
        } else if (cmds[i]->command_case == BLAZZ__V1__CRM_COMMAND__COMMAND_CONTACT) {
            st = cs_crm_contact(b, conn, msgs[i], cmds[i], err);
            if (st != BZ_OK)
                bz_wrap(err, "contact command %s", cmds[i]->envelope->event_id);
        } else if (cmds[i]->command_case == BLAZZ__V1__CRM_COMMAND__COMMAND_SESSION) {
            st = cs_crm_session(b, conn, cmds[i], err);
            if (st != BZ_OK)
                bz_wrap(err, "session command %s", cmds[i]->envelope->event_id);
        } else {
            st = cs_crm_mark_read(b, conn, cmds[i], keys[i], err);
            if (st != BZ_OK)
                bz_wrap(err, "crm command %s", cmds[i]->envelope->event_id);
        }
        i = end;
    }
    free(keys);
    return st;
}

/* Apply cmds[0..n), none a merge, on one working set. */
static bz_status apply_run(cs_ctx *ctx, PGconn *conn, const rd_kafka_message_t *const *msgs,
                           const Blazz__V1__CrmCommand *const *cmds, size_t n, bz_error *err)
{
    if (n == 0)
        return BZ_OK;
    cs_batch b;
    bz_status st = cs_batch_init(&b, ctx, NULL, NULL, 0, err);
    if (st == BZ_OK)
        st = apply_in_order(&b, conn, msgs, cmds, n, err);
    if (st == BZ_OK)
        st = cs_write_changes(&b, conn, err);
    if (st == BZ_OK)
        st = cs_write_outbox(&b, conn, err);
    cs_batch_free(&b);
    return st;
}

bz_status cs_crm_apply(cs_ctx *ctx, PGconn *conn, const rd_kafka_message_t *const *msgs,
                       const Blazz__V1__CrmCommand *const *cmds, size_t n, bz_error *err)
{
    bz_status st = BZ_OK;
    size_t run = 0;
    /* runs cut at each merge; i == n ends the last run */
    for (size_t i = 0; st == BZ_OK && i <= n; i++) {
        if (i < n && !cs_is_crm_merge(cmds[i]))
            continue;
        st = apply_run(ctx, conn, msgs + run, cmds + run, i - run, err);
        if (st == BZ_OK && i < n)
            st = cs_crm_merge(ctx, conn, msgs[i], cmds[i], err);
        run = i + 1;
    }
    if (st != BZ_OK && n == 1)
        bz_log_event(BZ_LOG_DEBUG, cmds[0]->envelope->event_id, cmds[0]->envelope->trace_id,
                     "apply failed: %s", err->msg);
    return st;
}
