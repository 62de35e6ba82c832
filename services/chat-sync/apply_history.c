/*
 * apply_history.c - history-sync batches: the contacts, groups and last
 * messages of the chats the gateway found after a connect, and the
 * account's sync progress in whatsapp_accounts.metadata.
 *
 * Progress is exact under replays: metadata keeps the run's sync_id and the
 * indexes of the batches already counted (sync_batches), so a replayed batch
 * stores nothing new and counts nothing twice. A batch of another sync_id
 * starts a new run (synced_count from 0). sync_status is "syncing" until
 * every batch of the run is counted, then "completed" with last_sync_at and
 * sync_duration_ms (since sync_started_at, its first batch counted). The
 * gateway chose the chats by the limits its CREATE or RESTART carried
 * (SessionCommand.history_sync): chat-sync counts what it is sent.
 * A run of unknown size (Meta's history: batch_total 0) is completed once
 * its last batch is counted (sync_last_batch), even when batches of it come
 * later, as Meta's chunks may; sync_progress keeps the highest percent the
 * provider gave. A batch carrying the provider's error (the business
 * declined to share its history) makes the run "failed" with sync_error
 * saying so, as a session lost mid-sync does (apply_session.c); the
 * latest batch counted decides, so a batch of history after it (the
 * business shared after all) moves the run on and clears the error. A new
 * run starts with neither an error nor a total of the one before.
 *
 * Events: one SYNC_PROGRESS per batch counted, and one MESSAGE_CREATED per
 * synced chat with new messages, carrying its newest message - the seeds
 * broadcast one NewChatEvent per synced chat, and a history import should
 * not flood webhooks with one notification per old message.
 */
#include <stdio.h>
#include <string.h>

#include "chat_sync.h"
#include "core/timespec.h"

static int batch_counted(json_t *batches, int index)
{
    size_t i;
    json_t *v;
    json_array_foreach(batches, i, v)
    if (json_integer_value(v) == index)
        return 1;
    return 0;
}

static void start_run(json_t *meta, const Blazz__V1__HistorySyncBatch *h, int64_t ts)
{
    char iso[32];
    bz_time_format(ts, iso, sizeof iso);
    json_object_set_new(meta, "sync_id", json_string(h->sync_id));
    json_object_set_new(meta, "sync_batches", json_array());
    json_object_set_new(meta, "synced_count", json_integer(0));
    json_object_set_new(meta, "sync_started_at", json_string(iso));
    json_object_del(meta, "sync_last_batch");
    json_object_del(meta, "sync_progress");
    json_object_del(meta, "sync_error");
    json_object_del(meta, "total_count");
    json_object_del(meta, "sync_duration_ms");
}

/* A run of unknown size keeps where it ends and the provider's percent. */
static void remember_run_end(json_t *meta, const Blazz__V1__HistorySyncBatch *h)
{
    if (h->batch_total > 0)
        return;
    if (h->last)
        json_object_set_new(meta, "sync_last_batch", json_integer(h->batch_index));
    if (h->progress > json_integer_value(json_object_get(meta, "sync_progress")))
        json_object_set_new(meta, "sync_progress", json_integer(h->progress));
}

/* Whether every batch of the run is counted, h the one just counted. */
static int run_done(json_t *meta, json_t *batches, const Blazz__V1__HistorySyncBatch *h)
{
    if (h->batch_total > 0)
        return json_array_size(batches) >= (size_t)h->batch_total;
    return json_object_get(meta, "sync_last_batch") != NULL;
}

/* The run's status after h was counted: failed with the provider's error,
 * completed when every batch is counted, else syncing. */
static const char *run_status(json_t *meta, json_t *batches,
                              const Blazz__V1__HistorySyncBatch *h)
{
    if (h->error) {
        char why[400]; /* a title of 256 bytes and a code of 64 fit (normalize.c) */
        snprintf(why, sizeof why, "%s (%s)", h->error->title ? h->error->title : "",
                 h->error->code ? h->error->code : "");
        json_object_set_new(meta, "sync_error", json_string(why));
        return "failed";
    }
    json_object_del(meta, "sync_error");
    return run_done(meta, batches, h) ? "completed" : "syncing";
}

/* sync_duration_ms: from the run's first batch to the one that completed
 * it (seed 002 logs a completed sync's duration); none when the start
 * cannot be read. */
static void record_duration(json_t *meta, int64_t completed_ms)
{
    int64_t started_ms;
    const char *started = json_string_value(json_object_get(meta, "sync_started_at"));
    if (started && bz_time_parse_rfc3339(started, &started_ms) && completed_ms >= started_ms)
        json_object_set_new(meta, "sync_duration_ms", json_integer(completed_ms - started_ms));
}

/* Count batch h into the account's progress; 1 if it was new. */
static int count_progress(cs_account *a, const Blazz__V1__HistorySyncBatch *h, int64_t ts)
{
    json_t *meta = a->metadata;
    const char *run = json_string_value(json_object_get(meta, "sync_id"));
    if (!run || strcmp(run, h->sync_id) != 0)
        start_run(meta, h, ts);
    json_t *batches = json_object_get(meta, "sync_batches");
    if (!json_is_array(batches)) {
        json_object_set_new(meta, "sync_batches", json_array());
        batches = json_object_get(meta, "sync_batches");
    }
    if (batch_counted(batches, h->batch_index))
        return 0;
    json_array_append_new(batches, json_integer(h->batch_index));
    json_int_t synced = json_integer_value(json_object_get(meta, "synced_count"));
    json_object_set_new(meta, "synced_count", json_integer(synced + (json_int_t)h->n_chats));
    if (h->total_chats > 0)
        json_object_set_new(meta, "total_count", json_integer(h->total_chats));
    remember_run_end(meta, h);
    const char *status = run_status(meta, batches, h);
    json_object_set_new(meta, "sync_status", json_string(status));
    if (strcmp(status, "completed") == 0) {
        char iso[32];
        bz_time_format(ts, iso, sizeof iso);
        json_object_set_new(meta, "last_sync_at", json_string(iso));
        record_duration(meta, ts);
    }
    a->dirty = 1;
    return 1;
}

/* The chat's contact or group facts, then its messages; emits the chat's event. */
static bz_status apply_synced_chat(cs_batch *b, const cs_record *r, int j, size_t *next_occ,
                                   bz_error *err)
{
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    const Blazz__V1__SyncedChat *c = r->cmd->history_sync->chats[j];
    if (c->chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP) {
        cs_group *g = cs_find_group(b, env->workspace_id, c->group_jid);
        cs_group_refresh(g, c->group_name, c->group_description, c->group_owner_phone,
                         c->participants, c->n_participants);
    } else {
        cs_contact_refresh_name(
            cs_find_contact(b, env->workspace_id,
                            cs_person_key(c->contact_phone, c->contact_bsuid, c->contact_jid)),
            b, c->contact_name);
    }
    const cs_chat *newest = NULL;
    for (size_t k = 0; k < c->n_messages; k++) {
        cs_occurrence *o = &b->occ[(*next_occ)++];
        bz_status st = cs_simulate_message(b, o, 0, err);
        if (st != BZ_OK)
            return st;
        if (o->chat && (!newest || o->chat->created_ms >= newest->created_ms))
            newest = o->chat;
    }
    if (!newest)
        return BZ_OK;
    return cs_emit_message_created(b, r, "chat_synced", j, newest, NULL, err);
}

bz_status cs_simulate_history(cs_batch *b, const cs_record *r, bz_error *err)
{
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    const Blazz__V1__HistorySyncBatch *h = r->cmd->history_sync;
    cs_account *a = cs_command_account(b, r, err);
    if (!a)
        return err->code;
    size_t next_occ = r->first_occ;
    for (size_t j = 0; j < h->n_chats; j++) {
        bz_status st = apply_synced_chat(b, r, (int)j, &next_occ, err);
        if (st != BZ_OK)
            return st;
    }
    int64_t ts = env->occurred_at_ms > 0 ? env->occurred_at_ms : env->produced_at_ms;
    if (!count_progress(a, h, ts))
        return BZ_OK;
    if (b->ctx->have_metrics)
        bz_counter_inc(b->ctx->m.sync_batches);
    return cs_emit_sync_progress(b, r, a, err);
}
