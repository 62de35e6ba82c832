/*
 * store_backend.h - what store.c (configuration, spools) asks of the two
 * places bytes can live: the local directory (store_local.c) and an S3
 * bucket (store_s3.c). Private to libs/media; callers use store.h.
 * Dispatch goes one way: store.c calls the backends, which call nothing
 * of it (the local one is handed only media.local_dir).
 *
 * A backend is handed finished spools (a temporary file whose SHA-256,
 * size and key are known) and keys already checked to have the shape
 * "ws/<digits>/<64 hex>" (store.c checks each), so no key names a path
 * outside the store.
 */
#ifndef BZ_MEDIA_STORE_BACKEND_H
#define BZ_MEDIA_STORE_BACKEND_H

#include <stdint.h>

#include "core/config.h"
#include "core/status.h"
#include "media/store.h"

typedef struct bz_media_s3 bz_media_s3;

struct bz_media_store {
    int is_s3;
    char *local_dir;     /* local only */
    char *spool_dir;
    char *link_secret;   /* local links; may be NULL */
    char *link_base_url; /* may be NULL */
    int64_t link_ttl_s;
    bz_media_s3 *s3;     /* s3 only */
};

/* One finished spool file to move into the local store. */
typedef struct bz_media_put {
    const char *key;
    int fd;               /* the spool file, open; flushed here */
    const char *tmp_path; /* its name */
} bz_media_put;

/* local, the store's files under local_dir (media.local_dir). mkdir -p of
 * path, mode 0700 (the objects are the workspaces' own): the local and the
 * spool directories. */
bz_status bz_media_make_dirs(const char *path, bz_error *err);
/* Move each of n spool files to its key, unless the key exists (then
 * existed[i] = 1 and its file is left to the caller); all synced before
 * any is renamed, each directory flushed once after. */
bz_status bz_media_local_put(const char *local_dir, const bz_media_put *puts, int n,
                             int *existed, bz_error *err);
/* The object at key opened for reading, its size into *size; close(*fd).
 * BZ_ERR_NOT_FOUND when absent. */
bz_status bz_media_local_open(const char *local_dir, const char *key, int *fd, uint64_t *size,
                              bz_error *err);
bz_status bz_media_local_remove(const char *local_dir, const char *key, bz_error *err);

/* s3: the settings of cfg (media.s3_*), complete or BZ_ERR_CONFIG naming
 * the key missing. *out: bz_media_s3_close. */
bz_status bz_media_s3_open(const bz_config *cfg, bz_media_s3 **out, bz_error *err);
void bz_media_s3_close(bz_media_s3 *s3);
/* PUT the file at tmp_path (size bytes, SHA-256 sha256_hex) to key unless
 * a HEAD finds it there already (*existed = 1). */
bz_status bz_media_s3_put(bz_media_s3 *s3, const char *key, const char *tmp_path, uint64_t size,
                          const char *sha256_hex, int *existed, bz_error *err);
bz_status bz_media_s3_read(bz_media_s3 *s3, const char *key, bz_media_sink sink, void *ctx,
                           bz_error *err);
bz_status bz_media_s3_remove(bz_media_s3 *s3, const char *key, bz_error *err);
/* A presigned GET of key, valid ttl_s from now_s. *out: heap, free() it. */
bz_status bz_media_s3_link(const bz_media_s3 *s3, const char *key, int64_t now_s, int64_t ttl_s,
                           char **out, bz_error *err);

#endif
