/*
 * graph_upload.h - the Graph test server's media uploads (graph_upload.c):
 * POST /{version}/{phone_number_id}/media, and the ids a message may name.
 */
#ifndef GRAPH_UPLOAD_H
#define GRAPH_UPLOAD_H

#include <jansson.h>
#include <stddef.h>

/* A Meta error answer: HTTP status, error code, message, error_data.details. */
typedef struct gts_refusal {
    unsigned status;
    long code;
    char message[128], details[160];
} gts_refusal;

/* Whether url is /{version}/{phone_number_id}/media; the number into pnid. */
int gts_upload_path(const char *url, char *pnid, size_t cap);

/* An upload of body (Content-Type content_type) to number pnid: 1 and the
 * new media id into id, or 0 and Meta's refusal into *r. Thread-safe. */
int gts_upload(const char *pnid, const char *content_type, const char *body, size_t len,
               char *id, size_t cap, gts_refusal *r);

/* A message doc of kind (image, audio...) whose media names an id pnid did
 * not upload: 1 and the refusal into *r. */
int gts_media_id_refused(const char *pnid, json_t *doc, const char *kind, gts_refusal *r);

/* The largest body an upload may have (the largest type's limit and the
 * form around it). */
#define GTS_UPLOAD_BODY_MAX ((size_t)(101u << 20))

#endif
