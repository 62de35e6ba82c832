/*
 * crm_config.h - the settings of the CRM's endpoints (crm_api.h): read by
 * the workers that run the requests and by the handlers that answer them
 * (crm_request.h), so they stand apart from both.
 */
#ifndef ING_CRM_CONFIG_H
#define ING_CRM_CONFIG_H

#include <stdint.h>

#include "core/keyring.h"
#include "ingest_metrics.h"

typedef struct ing_crm_api_config {
    const char *pg_dsn;
    const char *read_dsn;        /* crm.read_dsn: a replica for the reads (GET); "": pg_dsn */
    const char *brokers;
    const char *crm_topic;       /* full name of crm.commands */
    const char *default_cc;      /* for national phone numbers */
    int64_t key_cache_ms;        /* crm.api_key_cache_s */
    double rate_per_second;      /* per workspace; 0: no limit */
    double rate_burst;
    int workers;                 /* crm.workers */
    uint32_t sessions_per_workspace; /* live sessions a workspace may hold; 0: no limit */
    uint32_t endpoints_per_workspace; /* live webhook endpoints; 0: no limit */
    uint64_t unsent_media_bytes_per_workspace; /* of POST /v1/media; 0: no limit */
    int produce_timeout_ms;
    const bz_keyring *keyring; /* borrowed: seals rotated endpoint secrets; may be empty */
    ing_metrics *metrics;  /* borrowed, may be NULL */
} ing_crm_api_config;

/* The path label of the CRM's requests in blazz_ingest_*_total. */
#define ING_CRM_METRICS_PATH "crm"

#endif
