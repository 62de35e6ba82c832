/*
 * media_store_txn.c - the one transaction that makes a batch of fetched
 * media their messages' (see media_fetch.h, media/media_row.h).
 *
 * For each fetched job: the job is marked done if this claim still owns it
 * (which also locks the job row, so two fetchers of one job cannot both
 * get here) and the chat_media row is upserted (taking the object's
 * advisory lock, so cleanup's purge cannot remove the object meanwhile).
 * Then the spools of those jobs are committed into the store together
 * (nothing is written for bytes the workspace holds already; the local
 * store pays one flush of the disk for the batch), and for each,
 * chats.media_id points at the row and the MEDIA_READY event goes on
 * chat.events through the outbox, under the message's own key. One COMMIT
 * covers the batch, so the database's flush too is paid once for it. Jobs are taken in the order of
 * their objects' keys: two fetchers whose batches hold the same objects
 * take their locks in one order and never deadlock. A crash before COMMIT
 * leaves the jobs pending (fetched again after their leases) and at worst
 * objects without rows, which the next store of the same bytes reuses.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/chat_event.pb-c.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "kafka/outbox.h"
#include "kafka/topics.h"
#include "media/media_row.h"
#include "media_fetch.h"
#include "pg/pg.h"

#define SQL_LINK "UPDATE chats SET media_id = $2::bigint WHERE id = $1::bigint"

static bz_status link_chat(PGconn *conn, const ms_media_job *job, const bz_media_row *row,
                           bz_error *err)
{
    char chat[24], media[24];
    snprintf(chat, sizeof chat, "%" PRId64, job->chat_id);
    snprintf(media, sizeof media, "%" PRId64, row->id);
    const char *params[] = {chat, media};
    return bz_pg_exec_params(conn, "link the message to its media", SQL_LINK, 2, params, NULL,
                             err);
}

static bz_status announce(PGconn *conn, const ms_media_job *job, const bz_media_row *row,
                          const bz_media_object *obj, bz_error *err)
{
    char event_id[BZ_UUID_STR_SIZE];
    bz_status st = bz_uuid_v4(event_id, err);
    if (st != BZ_OK)
        return st;
    int64_t now = bz_wall_ms();
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = now;
    env.produced_at_ms = now;
    env.source = "meta-sender";
    env.workspace_id = job->workspace_id;
    env.whatsapp_account_id = job->account_id;
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_META;
    Blazz__V1__MediaReady ready = BLAZZ__V1__MEDIA_READY__INIT;
    ready.chat_id = job->chat_id;
    ready.chat_uuid = (char *)job->chat_uuid;
    ready.wam_id = (char *)job->wam_id;
    ready.media_uuid = (char *)row->uuid;
    ready.kind = (char *)bz_media_kind_name(obj->kind);
    ready.mime_type = (char *)obj->mime_type;
    ready.size_bytes = (int64_t)obj->size;
    ready.sha256 = (char *)obj->sha256;
    ready.filename = (char *)job->filename;
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MEDIA_READY;
    ev.media_ready = &ready;
    size_t len = blazz__v1__chat_event__get_packed_size(&ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return bz_fail(err, BZ_ERR_NOMEM, "announce media chat_id=%" PRId64 ": out of memory",
                       job->chat_id);
    blazz__v1__chat_event__pack(&ev, buf);
    st = bz_outbox_add(conn, bz_topic_base(BZ_TOPIC_CHAT_EVENTS), event_id, job->event_key,
                       strlen(job->event_key), buf, len, NULL, 0, err);
    free(buf);
    return st;
}

/* order[0..n) as the indexes of objs sorted by key. */
static void sort_by_key(const bz_media_object *objs, int n, int *order)
{
    for (int i = 0; i < n; i++) {
        int k = i;
        while (k > 0 && strcmp(objs[order[k - 1]].key, objs[i].key) > 0) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
}

static bz_status upsert_row(PGconn *conn, const ms_media_job *job, bz_media_store *store,
                            const bz_media_object *obj, bz_media_row *row, bz_error *err)
{
    return bz_media_row_upsert(conn, job->workspace_id, obj,
                               job->filename[0] ? job->filename : NULL,
                               bz_media_store_location(store), "meta", row, err);
}

bz_status ms_media_store_and_link(PGconn *conn, bz_media_store *store, const ms_media_job *jobs,
                                  bz_media_spool *const *spools, bz_media_object *objs, int n,
                                  int *owned, bz_error *err)
{
    int order[MS_MEDIA_BATCH_MAX], mine[MS_MEDIA_BATCH_MAX], nmine = 0;
    bz_media_row rows[MS_MEDIA_BATCH_MAX];
    bz_media_spool *to_commit[MS_MEDIA_BATCH_MAX];
    bz_media_object committed[MS_MEDIA_BATCH_MAX];
    if (n > MS_MEDIA_BATCH_MAX || n > BZ_MEDIA_COMMIT_MAX)
        return bz_fail(err, BZ_ERR_INTERNAL, "media batch of %d, over %d", n,
                       MS_MEDIA_BATCH_MAX);
    sort_by_key(objs, n, order);
    for (int i = 0; i < n; i++)
        owned[i] = 0;
    /* the jobs still ours, their rows (and the objects' locks) */
    bz_status st = bz_pg_begin(conn, err);
    for (int k = 0; k < n && st == BZ_OK; k++) {
        int i = order[k];
        st = ms_media_mark_done(conn, &jobs[i], &owned[i], err);
        if (st == BZ_OK && owned[i]) {
            st = upsert_row(conn, &jobs[i], store, &objs[i], &rows[i], err);
            to_commit[nmine] = spools[i];
            committed[nmine] = objs[i];
            mine[nmine++] = i;
        }
    }
    /* their objects, with one flush; then each message linked and told */
    if (st == BZ_OK && nmine > 0)
        st = bz_media_spools_commit(to_commit, committed, nmine, err);
    for (int m = 0; m < nmine && st == BZ_OK; m++) {
        int i = mine[m];
        objs[i] = committed[m];
        st = link_chat(conn, &jobs[i], &rows[i], err);
        if (st == BZ_OK)
            st = announce(conn, &jobs[i], &rows[i], &objs[i], err);
    }
    if (st == BZ_OK)
        st = bz_pg_commit(conn, err);
    if (st != BZ_OK) {
        bz_pg_rollback(conn);
        for (int i = 0; i < n; i++)
            owned[i] = 0;
    }
    return st;
}
