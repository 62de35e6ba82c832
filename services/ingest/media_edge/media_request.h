/*
 * media_request.h - the state of one media request, shared by the event
 * loop's side (media_api.c: routes, admission, the body, the answer) and
 * the workers' (media_tasks.c: the database and the store). Private to
 * ingest's media endpoints; see media_api.h for what they do.
 */
#ifndef ING_MEDIA_REQUEST_H
#define ING_MEDIA_REQUEST_H

#include <pthread.h>
#include <stdint.h>

#include "crm/crm_request.h"
#include "gateway/gateway_media.h"
#include "media/name.h"
#include "media_edge/media_config.h"

/* The handles media_api.h names (C11 lets a typedef be repeated). */
typedef struct ing_media_api ing_media_api;
typedef struct ing_media_request ing_media_request;

#define ING_MEDIA_UUID_LEN 36

enum ing_media_route {
    ING_MEDIA_ROUTE_NONE,
    ING_MEDIA_ROUTE_UPLOAD,
    ING_MEDIA_ROUTE_INFO,
    ING_MEDIA_ROUTE_CONTENT,
    ING_MEDIA_ROUTE_GATEWAY_UPLOAD,
    ING_MEDIA_ROUTE_GATEWAY_CONTENT /* GET /v1/gateway/media/{uuid}: a gateway reads stored bytes */
};

enum ing_media_phase {
    ING_MEDIA_ADMITTING,  /* first call not seen yet */
    ING_MEDIA_AUTHING,    /* a worker checks the uploader's key */
    ING_MEDIA_RECEIVING,  /* body chunks into the spool */
    ING_MEDIA_DROPPING,   /* refused after the headers: the body is read and dropped */
    ING_MEDIA_READY,      /* waiting for the end of a body-less request */
    ING_MEDIA_WORKING     /* a worker has the request */
};

struct ing_media_api {
    ing_media_api_config cfg;
    pthread_mutex_t commit_mu; /* the store, one commit at a time */
};

struct ing_media_request {
    ing_media_api *api;
    enum ing_media_route route;
    enum ing_media_phase phase;
    char uuid[ING_MEDIA_UUID_LEN + 1];
    ing_crm_job *job;            /* while a worker has it, then its answer */
    int64_t workspace_id;
    bz_media_kind kind;
    int kind_from_bytes;         /* no kind yet: the bytes decide it (kind.h) */
    char mime[128];
    char name[BZ_MEDIA_NAME_MAX + 1];
    bz_media_spool *spool;
    bz_media_object obj;
    ing_gateway_media_claim claim; /* a gateway's upload: who, which session, which digest */
    uint64_t body_max;           /* its Content-Length, else the kind's limit */
    unsigned refusal;            /* ING_MEDIA_DROPPING without a job's answer: 413 */
    int fd;                      /* content: the object, once opened (a local store's) */
    uint64_t size;
    char *link;                  /* or a presigned GET of it (an S3 store's; heap) */
};

/* An upload's spool goes before its answer does: a refused one's so that
 * "nothing was stored" already holds when the client reads the answer, a
 * stored one's so that no spool file outlives the 201. */
void ing_media_drop_spool(ing_media_request *mr);

/* An error of the media layer as its answer: 413 too large, 415 a type
 * not taken or not the bytes', 400 otherwise invalid, 503 the rest. */
unsigned ing_media_status_of_error(const bz_error *err);

/* ---- media_tasks.c: the workers' tasks (ing_crm_task_fn, ctx the request) ---- */

/* The CRM's upload committed -> 201, or 503. */
void ing_media_commit_upload(ing_crm_request *rq, void *ctx);
/* A gateway's upload: its session's workspace, the digest it signed, then
 * committed as the CRM's -> 201, or 400/404/415/503. */
void ing_media_commit_gateway_upload(ing_crm_request *rq, void *ctx);
/* GET /v1/media/{uuid}: the row and a link -> 200, or 404. */
void ing_media_describe(ing_crm_request *rq, void *ctx);
/* A link's bytes: the object opened into the request (no answer: the
 * event loop sends it), or 403/503. */
void ing_media_open_content(ing_crm_request *rq, void *ctx);
/* A gateway's read: as above in its session's workspace, or 404; with an
 * S3 store a presigned link to the object instead (the event loop sends
 * the gateway there: 307). */
void ing_media_open_gateway_content(ing_crm_request *rq, void *ctx);

#endif
