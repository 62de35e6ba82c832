/*
 * record_route.c - one raw inbound record inside the pipeline's open
 * transaction (see record_route.h): decode, drop a duplicate, normalize,
 * find who owns the event (its session, its WABA, the producing gateway
 * for a heartbeat), check that the producer may speak for that owner,
 * stamp the owner's workspace and account, and produce the SyncCommand to
 * chat.sync; or dead-letter it with the reason.
 *
 * A dead letter's event_id is not remembered, so replaying it from the
 * dead-letter topic after a fix is not dropped; a SyncCommand over the
 * record limit is dead-lettered "too_large" before it is ever produced,
 * and the dead letter itself always fits.
 */
#include "record_route.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/sync.pb-c.h"
#include "core/clock.h"
#include "core/log.h"
#include "event_id.h"
#include "event_tree.h"
#include "gateway_auth.h"
#include "kafka/dlq.h"
#include "kafka/limits.h"
#include "normalize.h"

#define SERVICE_NAME "ingest"

static void count(bz_counter_family *fam, const char *a, const char *b)
{
    if (fam)
        bz_counter_inc(b ? bz_counter_family_with(fam, a, b) : bz_counter_family_with(fam, a));
}

static ing_record_outcome dead_letter(ing_record_router *p, const rd_kafka_message_t *m, const char *event_id,
                           const bz_error *why)
{
    const char *reason = why->reason ? why->reason : "invalid_field";
    int64_t now = bz_wall_ms();
    bz_dead_letter_info info = {.error_code = reason, .error_message = why->msg,
                                .service = SERVICE_NAME, .event_id = event_id, .attempts = 1,
                                .first_failed_at_ms = now, .last_failed_at_ms = now};
    bz_error err;
    if (bz_dlq_send(p->producer, p->cfg->dlq_topic, m, &info, NULL, &err) != BZ_OK) {
        bz_warn("%s", err.msg);
        return ING_RECORD_BROKEN;
    }
    bz_log_event(BZ_LOG_WARN, event_id, NULL, "dead-lettered %s[%" PRId32 "]@%" PRId64 ": %s: %s",
                 rd_kafka_topic_name(m->rkt), m->partition, m->offset, reason, why->msg);
    if (p->cfg->metrics) {
        count(p->cfg->metrics->dead_lettered, reason, NULL);
        count(p->cfg->metrics->rejected, "kafka", reason);
    }
    return ING_RECORD_DEAD_LETTERED;
}

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
    default:
        return 0;
    }
}

static ing_record_outcome produce_sync(ing_record_router *p, const rd_kafka_message_t *m,
                            Blazz__V1__InboundEvent *ev, const char *conversation)
{
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.envelope = ev->envelope;
    cmd.conversation = (char *)conversation;
    if (!set_command(&cmd, ev))
        return ING_RECORD_BROKEN;
    size_t len = blazz__v1__sync_command__get_packed_size(&cmd);
    if (len > p->buf_cap) {
        uint8_t *grown = realloc(p->buf, len);
        if (!grown)
            return ING_RECORD_BROKEN;
        p->buf = grown;
        p->buf_cap = len;
    }
    blazz__v1__sync_command__pack(&cmd, p->buf);
    char key[ING_CONVERSATION_MAX + 24];
    int key_len = snprintf(key, sizeof key, "%" PRId64 ":%s", ev->envelope->workspace_id,
                           conversation);
    const char *event_id = ev->envelope->event_id, *trace_id = ev->envelope->trace_id;
    bz_kafka_header headers[2] = {{"event_id", event_id, strlen(event_id)},
                                  {"trace_id", trace_id, strlen(trace_id)}};
    bz_error err;
    if (!bz_kafka_record_fits((size_t)key_len, len, headers, 2)) {
        bz_reject(&err, "too_large",
                  "field value: as a SyncCommand the event is %zu bytes, over the %d-byte "
                  "record limit",
                  len, BZ_KAFKA_RECORD_MAX_BYTES);
        return dead_letter(p, m, event_id, &err);
    }
    if (bz_producer_send(p->producer, p->cfg->sync_topic, RD_KAFKA_PARTITION_UA, key,
                         (size_t)key_len, p->buf, len, headers, 2, NULL, &err) != BZ_OK) {
        bz_warn("%s", err.msg);
        return ING_RECORD_BROKEN;
    }
    if (p->cfg->metrics)
        count(p->cfg->metrics->accepted, "kafka", NULL);
    return ING_RECORD_HANDLED;
}

/* The gateway that produced m into out ("" when the record does not say:
 * a raw record without the edge's header). */
static void producing_gateway(const ing_record_router *p, const rd_kafka_message_t *m,
                              char out[BZ_GATEWAY_ID_MAX + 1])
{
    out[0] = '\0';
    const char *from_topic = bz_topic_gateway_of(p->cfg->topic_prefix, rd_kafka_topic_name(m->rkt));
    if (from_topic) {
        snprintf(out, BZ_GATEWAY_ID_MAX + 1, "%s", from_topic);
        return;
    }
    rd_kafka_headers_t *hdrs = NULL;
    const void *value = NULL;
    size_t size = 0;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, ING_GATEWAY_HEADER, &value, &size) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        value && size <= BZ_GATEWAY_ID_MAX) {
        memcpy(out, value, size);
        out[size] = '\0';
    }
}

/* The session of env: its own, else, for a decimal session_id that names
 * no session of gateway (the seeds' notifier names the account by its id),
 * the session of that account when gateway serves it; env->session_id is
 * then rewritten. */
static bz_status resolve_session(ing_record_router *p, Blazz__V1__Envelope *env, const char *gateway,
                                 ing_session_info *info, bz_error *err)
{
    int64_t now = bz_monotonic_ms();
    bz_status st = ing_sessions_resolve(p->cfg->sessions, env->session_id, now, info, err);
    if ((st != BZ_OK && st != BZ_ERR_NOT_FOUND) ||
        (st == BZ_OK && strcmp(gateway, info->gateway_id) == 0))
        return st;
    ing_session_info account;
    bz_error account_err;
    bz_status found =
        ing_sessions_resolve_account(p->cfg->sessions, env->session_id, now, &account, &account_err);
    if (found == BZ_ERR_TRANSIENT) {
        *err = account_err;
        return found;
    }
    if (found != BZ_OK || strcmp(gateway, account.gateway_id) != 0)
        return st;
    if (!ing_str_set(&env->session_id, account.session_id))
        return bz_fail(err, BZ_ERR_TRANSIENT, "name the session of account %s: out of memory",
                       env->session_id);
    *info = account;
    return BZ_OK;
}

/* A heartbeat is its gateway's: the one that produced it (its topic, or the
 * HTTP edge's header), never a claim; keyed "0:instance:<gateway>:<index>",
 * so an instance's beats stay in order. */
static ing_record_outcome route_heartbeat(ing_record_router *p, const rd_kafka_message_t *m,
                               Blazz__V1__InboundEvent *ev, const char *gateway)
{
    bz_error err;
    if (!gateway[0]) {
        bz_reject(&err, "unknown_gateway",
                  "field instance_heartbeat: a heartbeat comes from a gateway's own topic or a "
                  "signed request");
        return dead_letter(p, m, ev->envelope->event_id, &err);
    }
    Blazz__V1__InstanceHeartbeat *h = ev->instance_heartbeat;
    if (!ing_str_set(&h->gateway_id, gateway))
        return ING_RECORD_BROKEN;
    char conversation[ING_CONVERSATION_MAX];
    snprintf(conversation, sizeof conversation, "instance:%s:%d", gateway, h->instance->index);
    ev->envelope->workspace_id = 0;
    ev->envelope->whatsapp_account_id = 0;
    ev->envelope->produced_at_ms = bz_wall_ms();
    return produce_sync(p, m, ev, conversation);
}

/* What every event owned by an account gets once the owner (info, named
 * by field as owner) is known: refused unless the owner's gateway produced
 * it and it claims no other workspace; stamped with the owner's workspace
 * and account; produced to chat.sync. */
static ing_record_outcome route_to_owner(ing_record_router *p, const rd_kafka_message_t *m,
                              Blazz__V1__InboundEvent *ev, const char *gateway,
                              const ing_session_info *info, const char *field, const char *owner,
                              const char *conversation)
{
    Blazz__V1__Envelope *env = ev->envelope;
    bz_error err;
    if (!gateway[0] || strcmp(gateway, info->gateway_id) != 0) {
        bz_reject(&err, "session_not_owned",
                  "field %s: %s is not served by gateway '%s', which produced the record", field,
                  owner, gateway);
        return dead_letter(p, m, env->event_id, &err);
    }
    if (env->workspace_id != 0 && env->workspace_id != info->workspace_id) {
        bz_reject(&err, "workspace_mismatch",
                  "field envelope.workspace_id: claims workspace %" PRId64 " but %s belongs to "
                  "another", env->workspace_id, owner);
        return dead_letter(p, m, env->event_id, &err);
    }
    env->workspace_id = info->workspace_id;
    env->whatsapp_account_id = info->account_id;
    env->produced_at_ms = bz_wall_ms();
    return produce_sync(p, m, ev, conversation);
}

/* A notice about a WhatsApp Business Account is accepted for the workspace
 * whose Meta accounts name the WABA, from the gateway that serves them:
 * a WABA no account names is dead-lettered, never guessed. */
static ing_record_outcome route_business_notice(ing_record_router *p, const rd_kafka_message_t *m,
                                     Blazz__V1__InboundEvent *ev, const char *gateway,
                                     const char *conversation)
{
    Blazz__V1__Envelope *env = ev->envelope;
    const char *waba = ev->business_notice->waba_id;
    ing_session_info info;
    bz_error err;
    bz_status st = ing_sessions_resolve_business(p->cfg->sessions, waba, bz_monotonic_ms(), &info,
                                                 &err);
    if (st == BZ_ERR_NOT_FOUND) {
        bz_reject(&err, "unknown_business_account",
                  "field business_notice.waba_id: %s: no live Meta account names this WhatsApp "
                  "Business Account (blazzctl meta business)", waba);
        return dead_letter(p, m, env->event_id, &err);
    }
    if (st != BZ_OK) {
        bz_warn("%s; retrying", err.msg);
        return ING_RECORD_RETRY_LATER;
    }
    char owner[64 + ING_SESSION_ID_MAX];
    snprintf(owner, sizeof owner, "WhatsApp Business Account %s", waba);
    info.account_id = 0; /* the WABA's, not one number's */
    return route_to_owner(p, m, ev, gateway, &info, "business_notice.waba_id", owner,
                          conversation);
}

/* Everything that needs the session: resolve, check the producing gateway
 * serves it, check the claim, stamp. */
static ing_record_outcome route_event(ing_record_router *p, const rd_kafka_message_t *m,
                           Blazz__V1__InboundEvent *ev, const char *conversation)
{
    Blazz__V1__Envelope *env = ev->envelope;
    ing_session_info info;
    bz_error err;
    char gateway[BZ_GATEWAY_ID_MAX + 1];
    producing_gateway(p, m, gateway);
    if (ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_INSTANCE_HEARTBEAT)
        return route_heartbeat(p, m, ev, gateway);
    if (ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_BUSINESS_NOTICE)
        return route_business_notice(p, m, ev, gateway, conversation);
    bz_status st = resolve_session(p, env, gateway, &info, &err);
    if (st == BZ_ERR_NOT_FOUND) {
        bz_reject(&err, "unknown_session", "field envelope.session_id: %s: no live whatsapp account",
                  env->session_id);
        return dead_letter(p, m, env->event_id, &err);
    }
    if (st != BZ_OK) {
        bz_warn("%s; retrying", err.msg);
        return ING_RECORD_RETRY_LATER;
    }
    char owner[16 + ING_SESSION_ID_MAX];
    snprintf(owner, sizeof owner, "session %s", env->session_id);
    return route_to_owner(p, m, ev, gateway, &info, "envelope.session_id", owner, conversation);
}

ing_record_outcome ing_record_route(ing_record_router *p, const rd_kafka_message_t *m)
{
    bz_error err;
    if (p->cfg->metrics)
        count(p->cfg->metrics->received, "kafka", NULL);
    Blazz__V1__InboundEvent *ev = m->payload ? blazz__v1__inbound_event__unpack(NULL, m->len,
                                                                                m->payload)
                                             : NULL;
    if (!ev) {
        bz_reject(&err, "decode_error", "field value: not a blazz.v1.InboundEvent (%zu bytes)",
                  m->len);
        return dead_letter(p, m, NULL, &err);
    }
    ing_record_outcome result;
    if (ing_event_id_assign(ev, &err) != BZ_OK) {
        result = err.code == BZ_ERR_INVALID ? dead_letter(p, m, NULL, &err) : ING_RECORD_BROKEN;
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
        return result;
    }
    int64_t now = bz_monotonic_ms();
    const char *event_id = ev->envelope->event_id;
    if (ing_dedupe_seen(p->cfg->dedupe, event_id, now)) {
        if (p->cfg->metrics)
            bz_counter_inc(p->cfg->metrics->duplicates);
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
        return ING_RECORD_HANDLED;
    }
    char conversation[ING_CONVERSATION_MAX];
    ing_norm_opts opts = {.default_cc = p->cfg->default_cc, .now_ms = bz_wall_ms(),
                                .max_future_ms = p->cfg->max_future_ms};
    bz_status st = ing_normalize(ev, &opts, conversation, &err);
    if (st == BZ_ERR_INVALID)
        result = dead_letter(p, m, event_id, &err);
    else if (st != BZ_OK)
        result = ING_RECORD_BROKEN;
    else
        result = route_event(p, m, ev, conversation);
    if (result == ING_RECORD_HANDLED)
        ing_dedupe_add(p->cfg->dedupe, event_id, now);
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
    return result;
}

void ing_record_router_clear(ing_record_router *r)
{
    free(r->buf);
    r->buf = NULL;
    r->buf_cap = 0;
}
