/*
 * media_jobs.c - the fetch job of every Meta message with media Meta
 * holds: a customer's, and the owner's own from the phone (coexistence's
 * echoes) (ARCHITECTURE.md §16.2, db/migrations/0042_media_fetch_jobs.sql).
 *
 * A Meta webhook names media by an id only; the bytes are fetched later by
 * meta-sender, which holds the account's token. So that the fetch can
 * neither be forgotten nor hold the message up, the job row is inserted
 * here, in the batch's transaction, for the chats rows this batch stored:
 * the message row and its message.created commit with it, the bytes come
 * when they come, and the fetchers are woken by a NOTIFY at commit. A
 * replayed record stores no chats row and so no job, and ON CONFLICT DO
 * NOTHING covers any other repeat.
 */
#include "chat_sync.h"
#include "pg/columns.h"

/* The fetchers are woken (NOTIFY, delivered at commit) when a job was
 * queued; a data-modifying WITH runs to its end whatever the outer query
 * reads. */
#define SQL_JOBS_INSERT                                                                           \
    "WITH queued AS (INSERT INTO media_fetch_jobs (chat_id, workspace_id, whatsapp_account_id, "  \
    "meta_media_id, declared_sha256, declared_mime, kind, filename, event_key) "                  \
    "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], "     \
    "$6::text[], $7::text[], $8::text[], $9::text[]) ON CONFLICT (chat_id) DO NOTHING "           \
    "RETURNING 1) "                                                                               \
    "SELECT pg_notify('" BZ_PG_MEDIA_FETCH_CHANNEL "', '') FROM (SELECT 1 FROM queued LIMIT 1) q"

#define NCOLS 9

/* The family of a message type (chat_media.kind), NULL for one without
 * media. A voice note is audio. */
static const char *kind_of(int message_type)
{
    switch (message_type) {
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE:
        return "image";
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VIDEO:
        return "video";
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_AUDIO:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE:
        return "audio";
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_DOCUMENT:
        return "document";
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_STICKER:
        return "sticker";
    default:
        return NULL;
    }
}

/* A message whose bytes only Meta holds: a customer's, or one the owner
 * sent from the phone (an echo naming no client reference; meta-sender's
 * echoes of the backbone's own sends name theirs, and the backbone has
 * their bytes already). */
static int media_only_meta_holds(const Blazz__V1__InboundMessage *m)
{
    return !m->from_me || !m->client_reference || !*m->client_reference;
}

/* Whether o stored a row of a Meta message whose media Meta holds: its
 * kind then, else NULL. */
static const char *fetchable_kind(const cs_occurrence *o)
{
    const Blazz__V1__InboundMessage *m = o->m;
    if (!o->chat || o->chat->inserted_ord != o->ord || !media_only_meta_holds(m) ||
        o->provider != BLAZZ__V1__PROVIDER__PROVIDER_META || !m->media || !m->media->media_id ||
        !*m->media->media_id)
        return NULL;
    return kind_of(m->message_type);
}

static void add_job(cs_batch *b, bz_pg_array *a, const cs_occurrence *o, const char *kind)
{
    const rd_kafka_message_t *msg = b->recs[o->rec].msg;
    const Blazz__V1__MediaInfo *media = o->m->media;
    bz_pg_array_int64(&a[0], o->chat->id);
    bz_pg_array_int64(&a[1], o->workspace_id);
    bz_pg_array_int64(&a[2], o->account_id);
    bz_pg_array_text(&a[3], media->media_id);
    bz_pg_array_text(&a[4], media->sha256 ? media->sha256 : "");
    bz_pg_array_text(&a[5], media->mime_type ? media->mime_type : "");
    bz_pg_array_text(&a[6], kind);
    if (media->filename && *media->filename)
        bz_pg_array_text(&a[7], media->filename);
    else
        bz_pg_array_null(&a[7]);
    char *key = msg->key_len && msg->key_len <= 1024 ? cs_arena_strndup(&b->arena, msg->key, msg->key_len) : NULL;
    bz_pg_array_text(&a[8], key ? key : "");
}

bz_status cs_insert_media_fetch_jobs(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[NCOLS];
    bz_pg_array_init_all(a, NCOLS);
    for (size_t i = 0; i < b->nocc; i++) {
        const char *kind = fetchable_kind(&b->occ[i]);
        if (kind)
            add_job(b, a, &b->occ[i], kind);
    }
    bz_status st = BZ_OK;
    if (a[0].n > 0)
        st = bz_pg_arrays_exec(conn, "queue media fetches", SQL_JOBS_INSERT, a, NCOLS, NULL, err);
    bz_pg_array_free_all(a, NCOLS);
    return st;
}
