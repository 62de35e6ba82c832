/*
 * store.h - where the bytes of media live: a local directory (the default)
 * or a bucket of any S3-compatible server.
 *
 * Objects are content-addressed per workspace: the key of an object is
 * "ws/<workspace_id>/<sha256 hex>", so the same bytes stored twice for one
 * workspace are one object, and a key says nothing another workspace could
 * guess into. Bytes arrive through a spool: the caller writes them as they
 * come (an HTTP body, a download), the spool counts them against the
 * kind's limit, hashes them and writes them to a temporary file under
 * media.spool_dir, never holding the whole object in memory; finish sniffs
 * the first bytes and checks them against the declared type; commit then
 * moves the file into place (local: rename into media.local_dir; S3: one
 * PUT of the file, signed by libcurl's CURLOPT_AWS_SIGV4, with the known
 * SHA-256 as x-amz-content-sha256). A commit of bytes already stored
 * writes nothing.
 *
 * Reading hands the CRM a link, never a path: a presigned GET for S3
 * (sigv4.h), an HMAC-signed ingest link for the local store (link.h).
 * The store is safe to use from one thread at a time; services that store
 * from several threads open one per thread.
 */
#ifndef BZ_MEDIA_STORE_H
#define BZ_MEDIA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/status.h"
#include "media/kind.h"

/* The media.* keys, as every service that opens the store offers them, for
 * its key table (like BZ_OUTBOX_RELAY_CONFIG_KEYS). */
#define BZ_MEDIA_STORE_CONFIG_KEYS                                                                \
    {.name = "media.location", .type = BZ_CFG_STRING, .def = "local",                             \
     .help = "where media bytes live: local (media.local_dir) or s3 (media.s3_*)"},               \
    {.name = "media.local_dir", .type = BZ_CFG_STRING, .def = "/var/lib/blazz/media",             \
     .help = "the local store's directory"},                                                      \
    {.name = "media.spool_dir", .type = BZ_CFG_STRING,                                            \
     .help = "where arriving bytes wait for their commit (default <media.local_dir>/.spool)"},    \
    {.name = "media.s3_endpoint", .type = BZ_CFG_STRING,                                          \
     .help = "http(s)://host:port of the S3-compatible server (path-style requests)"},            \
    {.name = "media.s3_region", .type = BZ_CFG_STRING, .def = "us-east-1",                        \
     .help = "the S3 region requests are signed for"},                                            \
    {.name = "media.s3_bucket", .type = BZ_CFG_STRING, .help = "the S3 bucket"},                  \
    {.name = "media.s3_access_key", .type = BZ_CFG_STRING, .secret = 1,                           \
     .help = "S3 access key id"},                                                                 \
    {.name = "media.s3_secret_key", .type = BZ_CFG_STRING, .secret = 1,                           \
     .help = "S3 secret access key"},                                                             \
    {.name = "media.link_secret", .type = BZ_CFG_STRING, .secret = 1,                             \
     .help = "HMAC key of the local store's media links (ingest checks them)"},                   \
    {.name = "media.link_base_url", .type = BZ_CFG_STRING,                                        \
     .help = "ingest's address as the CRM reaches it, for the local store's links"},              \
    {.name = "media.link_ttl_s", .type = BZ_CFG_INT, .def = "900", .min = 60, .max = 604800,      \
     .help = "seconds a media link handed to the CRM stays valid"}

typedef struct bz_media_store bz_media_store;
typedef struct bz_media_spool bz_media_spool;

/* What a commit stored (or found already stored). */
typedef struct bz_media_object {
    char sha256[65];     /* hex */
    char key[96];        /* ws/<workspace_id>/<sha256> */
    char mime_type[128]; /* the declared type, checked against the bytes */
    bz_media_kind kind;
    uint64_t size;
    int existed;         /* 1 when the store held these bytes already */
} bz_media_object;

/* Open the store cfg describes (its schema includes BZ_MEDIA_STORE_CONFIG_KEYS):
 * creates the local and spool directories, checks the S3 settings are
 * complete. BZ_ERR_CONFIG naming the key when not. *out: bz_media_store_close. */
bz_status bz_media_store_open(const bz_config *cfg, bz_media_store **out, bz_error *err);

void bz_media_store_close(bz_media_store *store);

/* "local" or "s3" (chat_media.location). */
const char *bz_media_store_location(const bz_media_store *store);

/* Start receiving one object of kind: at most bz_media_kind_max_bytes(kind)
 * bytes. *out: bz_media_spool_free it, whatever happens. */
bz_status bz_media_spool_begin(bz_media_store *store, bz_media_kind kind, bz_media_spool **out,
                               bz_error *err);

/* As bz_media_spool_begin for an object whose kind its bytes decide at
 * finish (declared BZ_MEDIA_TYPE_FROM_BYTES, no kind given): at most
 * bz_media_any_kind_max_bytes() bytes until then. */
bz_status bz_media_spool_begin_untyped(bz_media_store *store, bz_media_spool **out,
                                       bz_error *err);

/* Append len bytes. BZ_ERR_INVALID, reason "media_too_large", once the
 * object passes its kind's limit (the spool is then only good to free). */
bz_status bz_media_spool_write(bz_media_spool *spool, const void *data, size_t len,
                               bz_error *err);

/* No more bytes: the digest, size and key of what was written, for
 * workspace_id, declared as declared_mime, into *out. BZ_ERR_INVALID with
 * "unsupported_media_type" or "media_type_mismatch" when the bytes are
 * not that, "media_empty" for none. Declared as BZ_MEDIA_TYPE_FROM_BYTES,
 * the object is the type its bytes are sniffed as ("unsupported_media_type"
 * when they say none WhatsApp takes), and an untyped spool's kind that
 * type's ("media_too_large" past its limit). */
bz_status bz_media_spool_finish(bz_media_spool *spool, int64_t workspace_id,
                                const char *declared_mime, bz_media_object *out, bz_error *err);

/* Put the finished object in the store, unless it is there already
 * (out->existed of finish is then updated). Call it inside the
 * transaction that holds the object's row lock (bz_media_row_upsert),
 * before COMMIT: see media_row.h for why. BZ_ERR_TRANSIENT when the store
 * cannot be reached. */
bz_status bz_media_spool_commit(bz_media_spool *spool, bz_media_object *obj, bz_error *err);

/* The most objects one bz_media_spools_commit takes. */
#define BZ_MEDIA_COMMIT_MAX 64

/* The same for n finished spools of one store (objs[i] is spools[i]'s),
 * at once: the local store syncs all their files before it renames any,
 * paying about one flush of the disk for the lot, and flushes each
 * directory once. On failure some may be in place already: objects
 * without rows, which the caller's rollback leaves for the next store of
 * the same bytes to reuse. */
bz_status bz_media_spools_commit(bz_media_spool *const *spools, bz_media_object *objs, int n,
                                 bz_error *err);

/* Drop the spool and its temporary file (after a commit, only the memory).
 * NULL is fine. */
void bz_media_spool_free(bz_media_spool *spool);

/* Stream the object at key to sink, chunk by chunk; a sink that returns
 * non-zero stops the read (BZ_ERR_IO). BZ_ERR_NOT_FOUND when absent. */
typedef int (*bz_media_sink)(void *ctx, const void *data, size_t len);
bz_status bz_media_store_read(bz_media_store *store, const char *key, bz_media_sink sink,
                              void *ctx, bz_error *err);

/* The local store's object at key opened for reading (store_local.c), its
 * size into *size, for a caller that sends it itself; close(*fd).
 * BZ_ERR_NOT_FOUND when absent, BZ_ERR_INVALID for an S3 store (its
 * objects are read through presigned links). */
bz_status bz_media_store_open_local(const bz_media_store *store, const char *key, int *fd,
                                    uint64_t *size, bz_error *err);

/* Remove the object at key; absent is fine. */
bz_status bz_media_store_remove(bz_media_store *store, const char *key, bz_error *err);

/* A link through which the CRM reads the object of chat_media row
 * media_uuid at key, valid media.link_ttl_s from now_s: S3 presigned, or
 * the local store's signed ingest link. *out is heap memory: free() it. */
bz_status bz_media_store_link(const bz_media_store *store, int64_t workspace_id,
                              const char *media_uuid, const char *key, int64_t now_s, char **out,
                              bz_error *err);

/* The local store's link secret (for ingest's check of a link); NULL for S3. */
const char *bz_media_store_link_secret(const bz_media_store *store);

#endif
