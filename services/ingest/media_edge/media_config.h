/*
 * media_config.h - the settings of the media endpoints (media_api.h):
 * read by the event loop's side (media_api.c) and by the workers' tasks
 * (media_tasks.c, through media_request.h), so they stand apart from both.
 */
#ifndef ING_MEDIA_CONFIG_H
#define ING_MEDIA_CONFIG_H

#include <stdint.h>

#include "crm/crm_api.h"
#include "ingest_metrics.h"
#include "media/store.h"

typedef struct ing_media_api_config {
    bz_media_store *store; /* borrowed */
    ing_crm_api *crm;      /* borrowed: its workers check keys and run the SQL */
    struct ing_gateway_auth *gateways; /* borrowed: POST /v1/gateway/media's signers */
    struct ing_gateway_rate *gateway_rate; /* borrowed, may be NULL: their rate (gateway_rate.h) */
    int64_t link_ttl_s;    /* media.link_ttl_s: the links GET /v1/media/{uuid} gives */
    ing_metrics *metrics;  /* borrowed, may be NULL */
} ing_media_api_config;

#endif
