/*
 * meta_history.c - Meta's history field mapped onto the history-sync path
 * (see meta_history.h), with the helpers of meta_mapping.h and the
 * messages field's own message mapping.
 *
 * Meta's history reference: once a business shares its chat history, the
 * messages of the 180 days before onboarding come in three phases (0: day
 * 0 to 1, 1: days 1 to 90, 2: days 90 to 180), each in chunks. A chunk,
 * an item of history[], has metadata.phase, chunk_order (chunks may come
 * in any order) and progress (the whole sync's percent, 100 once it is
 * complete), and threads[]: one per customer (id, the customer's phone)
 * with its messages, each as the messages webhook has it plus
 * history_context.status. The owner's messages (history_context.from_me,
 * `to` or `to_user_id` set, or a `from` that is the business's number and
 * no from_user_id: a business has no BSUID) are stored as outbound
 * messages, as an echo is. Group chats are not in it.
 * A username customer has no phone to show: Meta's business-scoped user
 * id page says the BSUID fields appear wherever a user is named, so a
 * thread whose id has a BSUID's shape is that customer's BSUID, and a
 * phone's thread takes the BSUID its newest message naming one gives
 * (from_user_id on the customer's, to_user_id on the owner's). The chat
 * and each message carry both, so that chat-sync finds the one contact
 * the live messages made.
 *
 * One run per number: sync_id "meta-history:<phone_number_id>", Meta naming
 * no run. A chunk becomes batches of at most ING_HISTORY_CHATS_MAX synced
 * chats, a thread of more than ING_HISTORY_MESSAGES_MAX messages several
 * synced chats of its customer. Batch b of chunk (phase, chunk_order) is
 * batch_index (phase * 10,000 + chunk_order) * 100 + b, so a chunk Meta
 * delivers again is the same batches (the same event ids), counted once.
 * batch_total is 0, Meta telling no total, and every batch carries the
 * progress. The chunk with progress 100 ends the run with a batch of its
 * own, b = 99 (LAST_BATCH) and no chats, marked last: a data batch of that
 * chunk refused for one bad message would otherwise take the end of the
 * run with it, and a Meta number, which reports no session status, would
 * stay "syncing" for good. A chunk without threads and short of 100 is
 * one empty batch, counted for its progress.
 * An item with errors[] (the business declined to share, Meta's code
 * 2593109) ends the run as failed: one batch (index DECLINED_INDEX, past
 * any chunk's) carrying Meta's first error.
 * A chunk of another shape (a phase past 2, a chunk_order past 9,999, more
 * threads than 99 batches hold, a thread or message naming no id) is not
 * understood (meta_history.h).
 */
#include "meta/meta_history.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/json_number.h"
#include "events/normalize.h"
#include "events/vocabulary.h"
#include "wa/bsuid.h"

#define PHASE_MAX 2
#define CHUNK_ORDER_MAX 9999
#define BATCHES_PER_CHUNK 100
#define LAST_BATCH (BATCHES_PER_CHUNK - 1) /* a chunk's data batches come before it */
#define DECLINED_INDEX ((PHASE_MAX + 1) * (CHUNK_ORDER_MAX + 1) * BATCHES_PER_CHUNK)

/* What every batch of one notification's history shares. */
typedef struct history_run {
    const char *phone_number_id;
    int64_t occurred_ms;
    char sync_id[64];
} history_run;

/* The synced chats a thread makes: one per ING_HISTORY_MESSAGES_MAX
 * messages, and one for a thread without messages. */
static size_t pieces_of(json_t *thread)
{
    size_t n = json_array_size(json_object_get(thread, "messages"));
    return n == 0 ? 1 : (n + ING_HISTORY_MESSAGES_MAX - 1) / ING_HISTORY_MESSAGES_MAX;
}

static size_t chats_of(json_t *threads)
{
    size_t n = 0, i;
    json_t *thread;
    json_array_foreach(threads, i, thread)
        n += pieces_of(thread);
    return n;
}

/* A thread the backbone maps: its customer, and messages naming their id
 * (one without a type is stored as of an unknown type). */
static int thread_understood(json_t *thread)
{
    json_t *messages = json_object_get(thread, "messages");
    if (!json_is_object(thread) || !ing_meta_str_of(thread, "id") ||
        (messages && !json_is_array(messages)))
        return 0;
    size_t i;
    json_t *msg;
    json_array_foreach(messages, i, msg) {
        if (!json_is_object(msg) || !ing_meta_str_of(msg, "id"))
            return 0;
    }
    return 1;
}

static int in_range(json_t *v, int64_t max, int64_t *out)
{
    return ing_meta_whole_number_of(v, out) && *out >= 0 && *out <= max;
}

/* Meta's errors[] of a history item that ends the run, or NULL. */
static json_t *declined(json_t *chunk)
{
    json_t *errors = json_object_get(chunk, "errors");
    return json_is_object(json_array_get(errors, 0)) ? errors : NULL;
}

/* A chunk the backbone maps: its place in the run, and threads its data
 * batches can carry before LAST_BATCH; or a decline. */
static int chunk_understood(json_t *chunk)
{
    json_t *meta = json_object_get(chunk, "metadata");
    json_t *threads = json_object_get(chunk, "threads");
    json_t *errors = json_object_get(chunk, "errors");
    int64_t n;
    if (json_is_object(chunk) && declined(chunk))
        return 1;
    if (!json_is_object(chunk) || (errors && !json_is_array(errors)) ||
        json_array_size(errors) > 0 ||
        !in_range(json_object_get(meta, "phase"), PHASE_MAX, &n) ||
        !in_range(json_object_get(meta, "chunk_order"), CHUNK_ORDER_MAX, &n) ||
        !in_range(json_object_get(meta, "progress"), 100, &n) ||
        (threads && !json_is_array(threads)))
        return 0;
    size_t i;
    json_t *thread;
    json_array_foreach(threads, i, thread) {
        if (!thread_understood(thread))
            return 0;
    }
    return chats_of(threads) <= (size_t)ING_HISTORY_CHATS_MAX * LAST_BATCH;
}

static int same_phone(const char *a, const char *b)
{
    return strcmp(ing_meta_digits_of(a), ing_meta_digits_of(b)) == 0;
}

/* The customer of one thread: a phone, a BSUID or both. */
typedef struct history_customer {
    const char *phone, *bsuid;
} history_customer;

/* The valid BSUID msg names its user by (to_user_id, else from_user_id),
 * or NULL. */
static const char *bsuid_of_message(json_t *msg)
{
    const char *to = ing_meta_str_of(msg, "to_user_id");
    if (bz_bsuid_valid(to))
        return to;
    const char *from = ing_meta_str_of(msg, "from_user_id");
    return bz_bsuid_valid(from) ? from : NULL;
}

/* The BSUID the newest of the thread's messages naming one gives its
 * customer (a BSUID can change: Meta's user_changed_user_id), or NULL. */
static const char *bsuid_named_in(json_t *thread)
{
    const char *bsuid = NULL;
    int64_t newest = INT64_MIN;
    size_t i;
    json_t *msg;
    json_array_foreach(json_object_get(thread, "messages"), i, msg) {
        const char *id = bsuid_of_message(msg);
        int64_t at = ing_meta_unix_ms_of(msg, "timestamp");
        if (id && at >= newest) {
            bsuid = id;
            newest = at;
        }
    }
    return bsuid;
}

static history_customer customer_of(json_t *thread)
{
    const char *id = ing_meta_str_of(thread, "id");
    if (bz_bsuid_valid(id))
        return (history_customer){.phone = NULL, .bsuid = id};
    return (history_customer){.phone = id, .bsuid = bsuid_named_in(thread)};
}

/* 1 when msg is the owner's: a business has no BSUID, so a from_user_id
 * is always a user's, whichever BSUID it is. */
static int written_by_owner(json_t *msg, const history_customer *customer)
{
    json_t *context = json_object_get(msg, "history_context");
    if (json_is_true(json_object_get(context, "from_me")) || ing_meta_str_of(msg, "to") ||
        ing_meta_str_of(msg, "to_user_id"))
        return 1;
    const char *from = ing_meta_str_of(msg, "from");
    return from && !ing_meta_str_of(msg, "from_user_id") &&
           !(customer->phone && same_phone(from, customer->phone));
}

/* msg of customer's thread as a message of the chat; NULL on failure
 * (mp->st says why). */
static Blazz__V1__InboundMessage *history_message(ing_meta_mapping *mp, json_t *msg,
                                                  const history_customer *customer,
                                                  const char *phone_number_id)
{
    Blazz__V1__InboundEvent *ev = ing_meta_map_message_of_number(mp, msg, phone_number_id);
    if (!ev)
        return NULL;
    Blazz__V1__InboundMessage *m = NULL;
    if (ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE) {
        m = ev->message;
        ev->message = NULL;
        ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD__NOT_SET;
    }
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
    if (!m)
        return NULL;
    const char *status = ing_meta_str_of(json_object_get(msg, "history_context"), "status");
    m->from_me = written_by_owner(msg, customer);
    /* a customer's message the owner read on the phone is no unread one */
    m->is_read = !m->from_me && status &&
                 (strcasecmp(status, "read") == 0 || strcasecmp(status, "played") == 0);
    /* the thread's customer, whoever wrote the message: the mapping named
     * its writer, the business's number for the owner's */
    ing_meta_copy(mp, &m->contact_phone, customer->phone ? customer->phone : "");
    ing_meta_copy(mp, &m->contact_bsuid, customer->bsuid ? customer->bsuid : "");
    return m;
}

/* Piece p of thread (its messages oldest first, whatever order Meta gave),
 * appended to chats at *n. */
static void add_piece(ing_meta_mapping *mp, json_t *thread, size_t p, const char *phone_number_id,
                      Blazz__V1__SyncedChat **chats, size_t *n)
{
    history_customer customer = customer_of(thread);
    json_t *messages = json_object_get(thread, "messages");
    size_t count = json_array_size(messages), first = p * ING_HISTORY_MESSAGES_MAX;
    size_t k = count - first < ING_HISTORY_MESSAGES_MAX ? count - first : ING_HISTORY_MESSAGES_MAX;
    int newest_first = count > 1 && ing_meta_unix_ms_of(json_array_get(messages, 0), "timestamp") >
                                        ing_meta_unix_ms_of(json_array_get(messages, count - 1),
                                                            "timestamp");
    Blazz__V1__SyncedChat *c = ing_meta_alloc_or_fail(mp, ing_synced_chat_new());
    if (!c)
        return;
    chats[(*n)++] = c;
    c->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    ing_meta_copy(mp, &c->contact_phone, customer.phone);
    ing_meta_copy(mp, &c->contact_bsuid, customer.bsuid);
    if (k == 0)
        return;
    c->messages = ing_meta_alloc_or_fail(mp, calloc(k, sizeof(Blazz__V1__InboundMessage *)));
    if (!c->messages)
        return;
    for (size_t i = 0; i < k && mp->st == BZ_OK; i++) {
        size_t at = first + i;
        json_t *msg = json_array_get(messages, newest_first ? count - 1 - at : at);
        Blazz__V1__InboundMessage *m = history_message(mp, msg, &customer, phone_number_id);
        if (!m)
            return;
        c->messages[c->n_messages++] = m;
        if (m->timestamp_ms > c->last_activity_ms)
            c->last_activity_ms = m->timestamp_ms;
    }
}

/* Batch index of chunk: a new event whose chats the caller fills. */
static Blazz__V1__InboundEvent *new_batch(ing_meta_mapping *mp, const history_run *run,
                                          int32_t index, int32_t progress, int last)
{
    Blazz__V1__InboundEvent *ev = ing_meta_new_event(
        mp, NULL, run->phone_number_id, BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC)
        return ev;
    ev->envelope->occurred_at_ms = run->occurred_ms;
    Blazz__V1__HistorySyncBatch *h = ev->history_sync;
    ing_meta_copy(mp, &h->sync_id, run->sync_id);
    h->batch_index = index;
    h->progress = progress;
    h->last = last;
    return ev;
}

/* The run ends failed with Meta's first error. */
static void map_decline(ing_meta_mapping *mp, json_t *errors, const history_run *run,
                        ing_events *out)
{
    Blazz__V1__InboundEvent *ev = new_batch(mp, run, DECLINED_INDEX, 0, 0);
    if (ev && ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC)
        ev->history_sync->error = ing_meta_first_error(mp, errors);
    ing_meta_collect(mp, out, ev);
}

static void map_chunk(ing_meta_mapping *mp, json_t *chunk, const history_run *run,
                      ing_events *out)
{
    json_t *meta = json_object_get(chunk, "metadata");
    json_t *threads = json_object_get(chunk, "threads");
    int64_t phase, order, progress;
    ing_meta_whole_number_of(json_object_get(meta, "phase"), &phase);
    ing_meta_whole_number_of(json_object_get(meta, "chunk_order"), &order);
    ing_meta_whole_number_of(json_object_get(meta, "progress"), &progress);
    size_t total = chats_of(threads), n = 0, taken = 0, i;
    Blazz__V1__SyncedChat **chats =
        total ? ing_meta_alloc_or_fail(mp, calloc(total, sizeof(Blazz__V1__SyncedChat *))) : NULL;
    if (total && !chats)
        return;
    json_t *thread;
    json_array_foreach(threads, i, thread) {
        for (size_t p = 0; chats && p < pieces_of(thread) && mp->st == BZ_OK; p++)
            add_piece(mp, thread, p, run->phone_number_id, chats, &n);
    }
    size_t batches = (total + ING_HISTORY_CHATS_MAX - 1) / ING_HISTORY_CHATS_MAX;
    if (batches == 0 && progress < 100)
        batches = 1;
    int32_t first = (int32_t)((phase * (CHUNK_ORDER_MAX + 1) + order) * BATCHES_PER_CHUNK);
    for (size_t b = 0; b < batches && mp->st == BZ_OK; b++) {
        Blazz__V1__InboundEvent *ev = new_batch(mp, run, first + (int32_t)b, (int32_t)progress, 0);
        size_t k = n - taken < ING_HISTORY_CHATS_MAX ? n - taken : ING_HISTORY_CHATS_MAX;
        if (ev && ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC && k > 0 &&
            (ev->history_sync->chats =
                 ing_meta_alloc_or_fail(mp, malloc(k * sizeof(Blazz__V1__SyncedChat *))))) {
            memcpy(ev->history_sync->chats, chats + taken, k * sizeof(Blazz__V1__SyncedChat *));
            ev->history_sync->n_chats = k;
            taken += k;
        }
        ing_meta_collect(mp, out, ev);
    }
    if (progress == 100 && mp->st == BZ_OK)
        ing_meta_collect(mp, out, new_batch(mp, run, first + LAST_BATCH, 100, 1));
    for (; taken < n; taken++)
        blazz__v1__synced_chat__free_unpacked(chats[taken], NULL);
    free(chats);
}

int ing_meta_map_history_field(ing_meta_mapping *mp, json_t *entry, json_t *value,
                               ing_events *out)
{
    json_t *chunks = json_object_get(value, "history");
    history_run run = {
        .phone_number_id = ing_meta_str_of(json_object_get(value, "metadata"), "phone_number_id")};
    int64_t seconds;
    /* the entry's time when Meta gives one; a chunk has none of its own */
    run.occurred_ms = bz_json_whole_number(json_object_get(entry, "time"), &seconds)
                          ? ing_timestamp_ms(seconds)
                          : bz_wall_ms();
    snprintf(run.sync_id, sizeof run.sync_id, "meta-history:%.40s",
             run.phone_number_id ? run.phone_number_id : "");
    int all = json_is_array(chunks) && json_array_size(chunks) > 0;
    size_t i;
    json_t *chunk;
    json_array_foreach(chunks, i, chunk) {
        if (!chunk_understood(chunk))
            all = 0;
        else if (mp->st == BZ_OK && declined(chunk))
            map_decline(mp, declined(chunk), &run, out);
        else if (mp->st == BZ_OK)
            map_chunk(mp, chunk, &run, out);
    }
    return all;
}
