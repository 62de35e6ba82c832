/*
 * sync_route.c - an inbound event to its chat.sync record (see
 * sync_route.h).
 *
 * The owner comes from the session cache (sessions.h), which asks
 * PostgreSQL on a miss: an event is refused only on the database's
 * answer, never on a guess. A SyncCommand over the record limit is
 * refused too_large here, before any producer sees it, so that the dead
 * letter, which always fits, is what gets written.
 */
#include "events/sync_route.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/sync.pb-c.h"
#include "core/clock.h"
#include "events/event_tree.h"
#include "kafka/limits.h"

static int set_command(Blazz__V1__SyncCommand *cmd, Blazz__V1__InboundEvent *ev)
{
    switch (ev->payload_case) {
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE:
        cmd->command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE;
        cmd->message = ev->message;
        return 1;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK:
        cmd->command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT;
        cmd->receipt = ev->ack;
        return 1;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS:
        cmd->command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_SESSION_STATUS;
        cmd->session_status = ev->session_status;
        return 1;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC:
        cmd->command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_HISTORY_SYNC;
        cmd->history_sync = ev->history_sync;
        return 1;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE:
        cmd->command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_GROUP_UPDATE;
        cmd->group_update = ev->group_update;
        return 1;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE:
        cmd->command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_CONTACT_UPDATE;
        cmd->contact_update = ev->contact_update;
        return 1;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_INSTANCE_HEARTBEAT:
        cmd->command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_INSTANCE_HEARTBEAT;
        cmd->instance_heartbeat = ev->instance_heartbeat;
        return 1;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_BUSINESS_NOTICE:
        cmd->command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_BUSINESS_NOTICE;
        cmd->business_notice = ev->business_notice;
        return 1;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL:
        cmd->command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_CALL;
        cmd->call = ev->call;
        return 1;
    default:
        return 0;
    }
}

/* Pack ev as the SyncCommand of conversation under its workspace's key. */
static bz_status pack_command(Blazz__V1__InboundEvent *ev, const char *conversation,
                              ing_sync_record *out, bz_error *err)
{
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.envelope = ev->envelope;
    cmd.conversation = (char *)conversation;
    if (!set_command(&cmd, ev))
        return bz_fail(err, BZ_ERR_INTERNAL, "event %s: no command for payload %d",
                       ev->envelope->event_id, (int)ev->payload_case);
    size_t len = blazz__v1__sync_command__get_packed_size(&cmd);
    int key_len = snprintf(out->key, sizeof out->key, "%" PRId64 ":%s",
                           ev->envelope->workspace_id, conversation);
    bz_kafka_header headers[2];
    ing_sync_headers(ev, headers);
    if (!bz_kafka_record_fits((size_t)key_len, len, headers, 2))
        return bz_reject(err, "too_large",
                         "field value: as a SyncCommand the event is %zu bytes, over the %d-byte "
                         "record limit", len, BZ_KAFKA_RECORD_MAX_BYTES);
    uint8_t *value = malloc(len ? len : 1);
    if (!value)
        return bz_fail(err, BZ_ERR_NOMEM, "event %s: out of memory", ev->envelope->event_id);
    blazz__v1__sync_command__pack(&cmd, value);
    free(out->value);
    out->value = value;
    out->len = len;
    out->key_len = (size_t)key_len;
    return BZ_OK;
}

/* A lookup that found nothing says so; any other failure is the
 * database's, never the event's (a refused statement, a grant missing):
 * retried, not dead-lettered. */
static bz_status lookup_outcome(bz_status st, bz_error *err)
{
    if (st == BZ_OK || st == BZ_ERR_NOT_FOUND || st == BZ_ERR_TRANSIENT)
        return st;
    err->code = BZ_ERR_TRANSIENT;
    err->reason = NULL;
    return BZ_ERR_TRANSIENT;
}

/* The session of env: its own, else, for a decimal session_id that names
 * no session of gateway (the seeds' notifier names the account by its id),
 * the session of that account when gateway serves it; env->session_id is
 * then rewritten. */
static bz_status resolve_session(ing_sessions *sessions, Blazz__V1__Envelope *env,
                                 const char *gateway, ing_session_info *info, bz_error *err)
{
    int64_t now = bz_monotonic_ms();
    bz_status st = lookup_outcome(ing_sessions_resolve(sessions, env->session_id, now, info, err),
                                  err);
    if ((st != BZ_OK && st != BZ_ERR_NOT_FOUND) ||
        (st == BZ_OK && strcmp(gateway, info->gateway_id) == 0))
        return st;
    ing_session_info account;
    bz_error account_err;
    bz_status found = lookup_outcome(
        ing_sessions_resolve_account(sessions, env->session_id, now, &account, &account_err),
        &account_err);
    if (found == BZ_ERR_TRANSIENT) {
        *err = account_err;
        return found;
    }
    if (found != BZ_OK || strcmp(gateway, account.gateway_id) != 0)
        return st;
    if (!ing_str_set(&env->session_id, account.session_id))
        return bz_fail(err, BZ_ERR_NOMEM, "name the session of account %s: out of memory",
                       env->session_id);
    *info = account;
    return BZ_OK;
}

/* A heartbeat is its gateway's: the one that sent it (its topic, or the
 * HTTP edge's signer), never a claim; keyed "0:instance:<gateway>:<index>",
 * so an instance's beats stay in order. */
static bz_status route_heartbeat(Blazz__V1__InboundEvent *ev, const char *gateway,
                                 ing_sync_record *out, bz_error *err)
{
    if (!gateway[0])
        return bz_reject(err, "unknown_gateway",
                         "field instance_heartbeat: a heartbeat comes from a gateway's own topic "
                         "or a signed request");
    Blazz__V1__InstanceHeartbeat *h = ev->instance_heartbeat;
    if (!ing_str_set(&h->gateway_id, gateway))
        return bz_fail(err, BZ_ERR_NOMEM, "heartbeat of %s: out of memory", gateway);
    char conversation[ING_CONVERSATION_MAX];
    snprintf(conversation, sizeof conversation, "instance:%s:%d", gateway, h->instance->index);
    ev->envelope->workspace_id = 0;
    ev->envelope->whatsapp_account_id = 0;
    ev->envelope->produced_at_ms = bz_wall_ms();
    return pack_command(ev, conversation, out, err);
}

/* What every event owned by an account gets once the owner (info, named
 * by field as owner) is known: refused unless the owner's gateway sent it
 * and it claims no other workspace; stamped with the owner's workspace
 * and account; packed. */
static bz_status route_to_owner(Blazz__V1__InboundEvent *ev, const char *gateway,
                                const ing_session_info *info, const char *field,
                                const char *owner, const char *conversation,
                                ing_sync_record *out, bz_error *err)
{
    Blazz__V1__Envelope *env = ev->envelope;
    if (!gateway[0] || strcmp(gateway, info->gateway_id) != 0)
        return bz_reject(err, "session_not_owned",
                         "field %s: %s is not served by gateway '%s', which produced the record",
                         field, owner, gateway);
    if (env->workspace_id != 0 && env->workspace_id != info->workspace_id)
        return bz_reject(err, "workspace_mismatch",
                         "field envelope.workspace_id: claims workspace %" PRId64 " but %s "
                         "belongs to another", env->workspace_id, owner);
    env->workspace_id = info->workspace_id;
    env->whatsapp_account_id = info->account_id;
    env->produced_at_ms = bz_wall_ms();
    return pack_command(ev, conversation, out, err);
}

/* A notice about a WhatsApp Business Account is accepted for the workspace
 * whose Meta accounts name the WABA, from the gateway that serves them:
 * a WABA no account names is refused, never guessed. */
static bz_status route_business_notice(ing_sessions *sessions, Blazz__V1__InboundEvent *ev,
                                       const char *gateway, const char *conversation,
                                       ing_sync_record *out, bz_error *err)
{
    const char *waba = ev->business_notice->waba_id;
    ing_session_info info;
    bz_status st = lookup_outcome(
        ing_sessions_resolve_business(sessions, waba, bz_monotonic_ms(), &info, err), err);
    if (st == BZ_ERR_NOT_FOUND)
        return bz_reject(err, "unknown_business_account",
                         "field business_notice.waba_id: %s: no live Meta account names this "
                         "WhatsApp Business Account (blazzctl meta business)", waba);
    if (st != BZ_OK)
        return st;
    char owner[64 + ING_SESSION_ID_MAX];
    snprintf(owner, sizeof owner, "WhatsApp Business Account %s", waba);
    info.account_id = 0; /* the WABA's, not one number's */
    return route_to_owner(ev, gateway, &info, "business_notice.waba_id", owner, conversation,
                          out, err);
}

bz_status ing_sync_route(ing_sessions *sessions, Blazz__V1__InboundEvent *ev, const char *gateway,
                         const char *conversation, ing_sync_record *out, bz_error *err)
{
    if (ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_INSTANCE_HEARTBEAT)
        return route_heartbeat(ev, gateway, out, err);
    if (ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_BUSINESS_NOTICE)
        return route_business_notice(sessions, ev, gateway, conversation, out, err);
    Blazz__V1__Envelope *env = ev->envelope;
    ing_session_info info;
    bz_status st = resolve_session(sessions, env, gateway, &info, err);
    if (st == BZ_ERR_NOT_FOUND)
        return bz_reject(err, "unknown_session",
                         "field envelope.session_id: %s: no live whatsapp account",
                         env->session_id);
    if (st != BZ_OK)
        return st;
    char owner[16 + ING_SESSION_ID_MAX];
    snprintf(owner, sizeof owner, "session %s", env->session_id);
    return route_to_owner(ev, gateway, &info, "envelope.session_id", owner, conversation, out,
                          err);
}

void ing_sync_headers(const Blazz__V1__InboundEvent *ev, bz_kafka_header out[2])
{
    const char *event_id = ev->envelope->event_id, *trace_id = ev->envelope->trace_id;
    out[0] = (bz_kafka_header){"event_id", event_id, strlen(event_id)};
    out[1] = (bz_kafka_header){"trace_id", trace_id, strlen(trace_id)};
}

void ing_sync_record_clear(ing_sync_record *r)
{
    free(r->value);
    r->value = NULL;
    r->len = r->key_len = 0;
}
