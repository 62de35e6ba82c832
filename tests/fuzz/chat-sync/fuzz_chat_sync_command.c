/*
 * fuzz_chat_sync_command.c - chat-sync's first steps on a chat.sync record,
 * the ones that need no database: decode and validate the SyncCommand
 * (command.c), then plan a batch holding it twice (plan.c).
 *
 * Properties: a refusal is BZ_ERR_INVALID with one of the documented reasons
 * (it becomes a dead letter); an accepted command has what the rules key on
 * (event id, its owner: the account, or for a heartbeat its instance and
 * gateway, for a business notice its workspace and WABA; a command kind) and
 * decodes the same way from its re-packed known fields; planning never
 * fails on it, gives one occurrence per message in command order, and the
 * copy adds no seed, account, receipt target or campaign reference and no
 * first sighting of a message, since the batch already saw every key once.
 */
#include <string.h>

#include "chat_sync.h"
#include "fuzz_target.h"
#include "proto/unknown_fields.h"

/* README.md's dead-letter table names each of them. */
static const char *const reasons[] = {
    "decode_error",         "missing_event_id",  "unresolved_account", "missing_wam_id",
    "invalid_group_jid",    "missing_contact",   "missing_chat_type",  "missing_status",
    "invalid_status",       "invalid_history_sync", "missing_instance", "missing_gateway",
    "invalid_heartbeat",    "invalid_notice",    "unknown_command",    NULL};

static int listed(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* A heartbeat is its instance's and names a gateway; a business notice is
 * its WABA's workspace's; every other command is one account's. */
static int names_its_owner(const Blazz__V1__SyncCommand *cmd)
{
    const Blazz__V1__Envelope *env = cmd->envelope;
    switch (cmd->command_case) {
    case BLAZZ__V1__SYNC_COMMAND__COMMAND_INSTANCE_HEARTBEAT:
        return cmd->instance_heartbeat->instance && cmd->instance_heartbeat->gateway_id[0];
    case BLAZZ__V1__SYNC_COMMAND__COMMAND_BUSINESS_NOTICE:
        return env->workspace_id > 0 && cmd->business_notice->waba_id[0];
    default:
        return env->workspace_id > 0 && env->whatsapp_account_id > 0;
    }
}

static size_t messages_in(const Blazz__V1__SyncCommand *cmd)
{
    if (cmd->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE)
        return 1;
    size_t n = 0;
    if (cmd->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_HISTORY_SYNC)
        for (size_t i = 0; i < cmd->history_sync->n_chats; i++)
            n += cmd->history_sync->chats[i]->n_messages;
    return n;
}

static void check_repacked(Blazz__V1__SyncCommand *cmd)
{
    bz_proto_drop_unknown_fields(&cmd->base);
    size_t len = blazz__v1__sync_command__get_packed_size(cmd);
    uint8_t *bytes = malloc(len ? len : 1);
    BZ_FUZZ_CHECK(bytes != NULL);
    blazz__v1__sync_command__pack(cmd, bytes);
    Blazz__V1__SyncCommand *again = NULL;
    BZ_FUZZ_CHECK(cs_command_decode(bytes, len, &again, NULL) == BZ_OK);
    BZ_FUZZ_CHECK(again->command_case == cmd->command_case);
    cs_command_free(again);
    free(bytes);
}

static void check_plan(const Blazz__V1__SyncCommand *cmd)
{
    rd_kafka_message_t msg = {0};
    const rd_kafka_message_t *msgs[] = {&msg, &msg};
    const Blazz__V1__SyncCommand *cmds[] = {cmd, cmd};
    cs_ctx ctx = {0};
    cs_batch b;
    BZ_FUZZ_CHECK(cs_batch_init(&b, &ctx, msgs, cmds, 1, NULL) == BZ_OK);
    BZ_FUZZ_CHECK(cs_plan(&b, NULL) == BZ_OK);
    size_t seeds = b.contact_seeds.n + b.group_seeds.n, accounts = b.account_ids.n,
           targets = b.targets.n, refs = b.campaign_refs.n;
    cs_batch_free(&b);

    BZ_FUZZ_CHECK(cs_batch_init(&b, &ctx, msgs, cmds, 2, NULL) == BZ_OK);
    BZ_FUZZ_CHECK(cs_plan(&b, NULL) == BZ_OK);
    size_t n = messages_in(cmd);
    BZ_FUZZ_CHECK(b.nocc == 2 * n);
    BZ_FUZZ_CHECK(b.recs[0].first_occ == 0 && b.recs[0].nocc == n);
    BZ_FUZZ_CHECK(b.recs[1].first_occ == n && b.recs[1].nocc == n);
    for (size_t i = 0; i < b.nocc; i++) {
        BZ_FUZZ_CHECK(b.occ[i].rec == (i < n ? 0 : 1));
        BZ_FUZZ_CHECK(i == 0 || b.occ[i].ord > b.occ[i - 1].ord);
        BZ_FUZZ_CHECK(i < n || !b.occ[i].first);
    }
    BZ_FUZZ_CHECK(b.recs[0].ord < b.recs[1].ord);
    BZ_FUZZ_CHECK(b.contact_seeds.n + b.group_seeds.n == seeds && b.account_ids.n == accounts &&
                  b.targets.n == targets && b.campaign_refs.n == refs);
    cs_batch_free(&b);
}

static int fuzz_chat_sync_command(const uint8_t *data, size_t size)
{
    Blazz__V1__SyncCommand *cmd = NULL;
    bz_error err;
    if (cs_command_decode(data, size, &cmd, &err) != BZ_OK) {
        BZ_FUZZ_CHECK(err.code == BZ_ERR_INVALID && err.reason && listed(reasons, err.reason));
        return BZ_FUZZ_REJECTED;
    }
    const Blazz__V1__Envelope *env = cmd->envelope;
    BZ_FUZZ_CHECK(env && env->event_id[0]);
    BZ_FUZZ_CHECK(names_its_owner(cmd));
    BZ_FUZZ_CHECK(cmd->command_case != BLAZZ__V1__SYNC_COMMAND__COMMAND__NOT_SET);
    check_plan(cmd);
    check_repacked(cmd);
    cs_command_free(cmd);
    return BZ_FUZZ_ACCEPTED;
}

static const bz_fuzz_expect expect[] = {
    {"message_private.pb", BZ_FUZZ_ACCEPTED},
    {"history_sync.pb", BZ_FUZZ_ACCEPTED},
    {"receipt.pb", BZ_FUZZ_ACCEPTED},
    {"unresolved_account.pb", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_chat_sync_command, expect)
