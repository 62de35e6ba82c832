/*
 * apply_session.c - session status: whatsapp_accounts.status with its
 * activity, connection and disconnect tracking, and instance migration.
 *
 * Rules (seed 003):
 *  - every status report refreshes last_activity_at;
 *  - connected sets last_connected_at; disconnected / failed set
 *    disconnected_at, disconnect_reason (unspecified -> "unknown") and
 *    disconnect_details, which stay as history after a reconnect;
 *  - qr_scanning keeps the latest QR payload; the account's own number and
 *    push name are kept when reported;
 *  - a report from another gateway instance than assigned_instance_index
 *    records the move: previous_instance_index, instance_migration_count + 1,
 *    last_instance_migration_at, the new index and URL (a first report only
 *    assigns, it is not a migration);
 *  - connecting (from any other state) marks the account's history sync
 *    "pending" until the gateway's sync batches arrive, unless one is running;
 *    going down while a sync is pending or running marks it "failed", with
 *    metadata.sync_error saying why;
 *  - health (the ProviderSelector orders connected accounts by it, seed
 *    002): health_score starts at 100 and moves with each state change:
 *    a disconnect costs its reason's penalty (user_initiated 0,
 *    instance_restart 5, timeout 10, unknown 10, qr_expired 15,
 *    credentials_missing 15 (both need a new scan), error 20),
 *    entering failed costs 30, and a restore, i.e. connecting again after
 *    having been connected before (last_connected_at set), gives back 10
 *    and counts in session_restore_count; the score stays within 0..100.
 *    Only state changes move it, so a repeated or stale report changes
 *    nothing and replays stay exact.
 * A report older than the last one applied (occurred_at before
 * last_activity_at) is stale - a replay or a late delivery - and ignored,
 * so replaying a session's history cannot flap its state or count
 * migrations twice.
 * Fencing (ARCHITECTURE.md §15): a report from an instance under the
 * backbone's command (an epoch in envelope.instance) counts only while that
 * instance holds the session's current assignment (same index, same
 * epoch). Anything else is an instance that lost the session (frozen past
 * its timeout, then moved): its report is refused, counted, and answered
 * with a STOP command to that instance; it never moves the state. Reports
 * without an epoch come from gateways that assign themselves and are
 * followed as before.
 * A status change emits SessionEvent STATUS_CHANGED, a move
 * INSTANCE_MIGRATED, a new QR code QR (webhook session.qr); a report that
 * repeats the current state emits nothing.
 */
#include <string.h>

#include "chat_sync.h"
#include "core/log.h"

static char *copy(cs_batch *b, const char *s)
{
    return s && *s ? cs_arena_strdup(&b->arena, s) : NULL;
}

static int same_text(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* 1 if the report came from another instance than the assigned one. */
static int follow_instance(cs_batch *b, cs_account *a, const Blazz__V1__InstanceRef *inst,
                           int64_t ts)
{
    if (!inst)
        return 0;
    if (!a->has_instance) {
        a->has_instance = 1;
        a->instance_index = inst->index;
        a->instance_url = copy(b, inst->url);
        a->dirty = 1;
        return 0;
    }
    if (inst->index == a->instance_index) {
        if (*inst->url && !same_text(inst->url, a->instance_url)) {
            a->instance_url = copy(b, inst->url);
            a->dirty = 1;
        }
        return 0;
    }
    a->has_previous_instance = 1;
    a->previous_instance_index = a->instance_index;
    a->instance_index = inst->index;
    a->instance_url = copy(b, inst->url);
    a->migration_count++;
    a->last_migration_ms = ts;
    a->dirty = 1;
    return 1;
}

/* A connect starts a history sync unless the deployment or the account
 * switched it off: then the account shows none. */
static void mark_sync_pending(const cs_batch *b, cs_account *a)
{
    if (!b->ctx->history.enabled || !a->sync_enabled)
        return;
    const char *sync = json_string_value(json_object_get(a->metadata, "sync_status"));
    if (sync && strcmp(sync, "syncing") == 0)
        return;
    json_object_set_new(a->metadata, "sync_status", json_string("pending"));
}

/* A history sync still expected or running when the session goes down
 * will not finish: the run is "failed" (seed 002 DES-4, migration 0003)
 * until the next connect asks for a new one. */
static void fail_unfinished_sync(cs_account *a, const char *why)
{
    const char *sync = json_string_value(json_object_get(a->metadata, "sync_status"));
    if (!sync || (strcmp(sync, "pending") != 0 && strcmp(sync, "syncing") != 0))
        return;
    json_object_set_new(a->metadata, "sync_status", json_string("failed"));
    json_object_set_new(a->metadata, "sync_error", json_string(why));
}

static int disconnect_penalty(int reason)
{
    switch (reason) {
    case BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_USER_INITIATED: return 0;
    case BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_INSTANCE_RESTART: return 5;
    case BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_QR_EXPIRED:
    case BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_CREDENTIALS_MISSING: return 15;
    case BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_ERROR: return 20;
    default: return 10; /* timeout, unknown, unspecified */
    }
}

static void change_health(cs_account *a, int delta)
{
    int h = a->health_score + delta;
    a->health_score = h < 0 ? 0 : h > 100 ? 100 : h;
}

static void enter_state(cs_batch *b, cs_account *a, const Blazz__V1__SessionStatus *s, int64_t ts)
{
    a->status = s->status;
    switch (s->status) {
    case BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED:
        if (a->last_connected_ms > 0) {
            a->restore_count++;
            change_health(a, 10);
        }
        a->last_connected_ms = ts;
        a->qr_code = NULL;
        a->qr_expires_ms = 0;
        mark_sync_pending(b, a);
        break;
    case BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED:
    case BLAZZ__V1__SESSION_STATE__SESSION_STATE_FAILED:
        change_health(a, s->status == BLAZZ__V1__SESSION_STATE__SESSION_STATE_FAILED
                             ? -30
                             : -disconnect_penalty(s->reason));
        a->disconnected_ms = ts;
        a->disconnect_reason = (char *)cs_disconnect_text(s->reason);
        a->disconnect_details = copy(b, s->details);
        fail_unfinished_sync(a, s->status == BLAZZ__V1__SESSION_STATE__SESSION_STATE_FAILED
                                    ? "the session failed"
                                    : "the session disconnected");
        break;
    default:
        break;
    }
}

/* The facts a report carries besides the state; 1 when it brought a new QR
 * code. */
static int keep_reported_facts(cs_batch *b, cs_account *a, const Blazz__V1__SessionStatus *s)
{
    int new_qr = 0;
    if (*s->phone_number && !same_text(s->phone_number, a->phone_number)) {
        a->phone_number = copy(b, s->phone_number);
        a->dirty = 1;
    }
    if (s->status == BLAZZ__V1__SESSION_STATE__SESSION_STATE_QR_SCANNING && *s->qr_code &&
        !same_text(s->qr_code, a->qr_code)) {
        a->qr_code = copy(b, s->qr_code);
        a->qr_expires_ms = s->qr_expires_at_ms;
        a->dirty = 1;
        new_qr = 1;
    }
    if (*s->remote_session_path && !same_text(s->remote_session_path, a->remote_session_path)) {
        a->remote_session_path = copy(b, s->remote_session_path);
        a->dirty = 1;
    }
    if (s->session_file_size_bytes > 0 && s->session_file_size_bytes != a->session_file_size) {
        a->session_file_size = s->session_file_size_bytes;
        a->dirty = 1;
    }
    if (*s->session_storage && !same_text(s->session_storage, a->session_storage)) {
        a->session_storage = copy(b, s->session_storage);
        a->dirty = 1;
    }
    if (s->session_storage_verified_at_ms > a->storage_verified_ms) {
        a->storage_verified_ms = s->session_storage_verified_at_ms;
        a->dirty = 1;
    }
    const char *names[] = {"push_name", "platform"};
    const char *values[] = {s->push_name, s->platform};
    for (int i = 0; i < 2; i++) {
        if (!*values[i] || same_text(json_string_value(json_object_get(a->metadata, names[i])),
                                     values[i]))
            continue;
        json_object_set_new(a->metadata, names[i], json_string(values[i]));
        a->dirty = 1;
    }
    return new_qr;
}

/* Whether the instance that published a report holds the session now. */
static int holds_assignment(const cs_account *a, const Blazz__V1__InstanceRef *from)
{
    return a->epoch > 0 && a->has_instance && from->index == a->instance_index &&
           from->epoch == a->epoch;
}

/* A report from an instance that no longer holds the session: counted, and
 * the instance told to let go. */
static bz_status refuse_stale_report(cs_batch *b, const cs_record *r, const cs_account *a,
                                     const Blazz__V1__InstanceRef *from, bz_error *err)
{
    if (b->ctx->have_metrics)
        bz_counter_inc(b->ctx->m.fenced_reports);
    bz_log_event(BZ_LOG_INFO, r->cmd->envelope->event_id, r->cmd->envelope->trace_id,
                 "session %s: report of instance %d under epoch %lld refused (held by %d under "
                 "%lld); told to stop",
                 a->session_id, from->index, (long long)from->epoch,
                 a->has_instance ? a->instance_index : -1, (long long)a->epoch);
    cs_session_order order = {.action = BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_STOP,
                              .instance_index = from->index,
                              .epoch = from->epoch,
                              .reason = "another instance holds the session"};
    return cs_emit_session_command(b, r->cmd->envelope, "stop_stale", 0, a, &order, err);
}

cs_account *cs_command_account(cs_batch *b, const cs_record *r, bz_error *err)
{
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    cs_account *a = cs_find_account(b, env->whatsapp_account_id);
    if (!a) {
        bz_reject(err, "unknown_account", "event %s: whatsapp account %lld does not exist or was deleted",
                  env->event_id, (long long)env->whatsapp_account_id);
        return NULL;
    }
    if (a->workspace_id != env->workspace_id) {
        bz_reject(err, "workspace_mismatch", "event %s: account %lld belongs to workspace %lld, not %lld",
                  env->event_id, (long long)a->id, (long long)a->workspace_id,
                  (long long)env->workspace_id);
        return NULL;
    }
    return a;
}

bz_status cs_simulate_session(cs_batch *b, const cs_record *r, bz_error *err)
{
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    const Blazz__V1__SessionStatus *s = r->cmd->session_status;
    cs_account *a = cs_command_account(b, r, err);
    if (!a)
        return err->code;
    if (env->instance && env->instance->epoch > 0 && !holds_assignment(a, env->instance))
        return refuse_stale_report(b, r, a, env->instance, err);
    int64_t ts = env->occurred_at_ms > 0 ? env->occurred_at_ms : env->produced_at_ms;
    if (ts < a->last_activity_ms)
        return BZ_OK;
    if (ts > a->last_activity_ms) {
        a->last_activity_ms = ts;
        a->dirty = 1;
    }
    bz_status st = BZ_OK;
    if (follow_instance(b, a, s->instance ? s->instance : env->instance, ts))
        st = cs_emit_session_event(b, r, "instance_migrated",
                                   BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_INSTANCE_MIGRATED,
                                   a, a->status, err);
    int new_qr = keep_reported_facts(b, a, s);
    int previous = a->status;
    if (st == BZ_OK && (int)s->status != a->status) {
        enter_state(b, a, s, ts);
        a->dirty = 1;
        if (b->ctx->have_metrics)
            bz_counter_inc(b->ctx->m.session_changes);
        st = cs_emit_session_event(b, r, "session_status",
                                   BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_STATUS_CHANGED,
                                   a, previous, err);
    }
    if (st == BZ_OK && new_qr)
        st = cs_emit_session_event(b, r, "qr", BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_QR,
                                   a, previous, err);
    return st;
}
