/*
 * heartbeat.c - a gateway instance's heartbeat, checked (see heartbeat.h).
 */
#include "events/heartbeat.h"

#include <stdint.h>
#include <stdio.h>

#include "events/event_tree.h"

/* what an instance may serve, at most: far above seed 001's 300 */
#define CAPACITY_MAX 100000
#define URL_MAX 4096

static bz_status check_leases(const Blazz__V1__InstanceHeartbeat *h, bz_error *err)
{
    if (h->n_sessions > ING_LEASES_MAX)
        return ing_reject(err, "invalid_field", "instance_heartbeat.sessions",
                          "%zu sessions, at most %d", h->n_sessions, ING_LEASES_MAX);
    for (size_t i = 0; i < h->n_sessions; i++) {
        char field[ING_FIELD_MAX];
        snprintf(field, sizeof field, "instance_heartbeat.sessions[%zu].session_id", i);
        bz_status st = ing_check_session_id(h->sessions[i]->session_id, 1, field, err);
        if (st != BZ_OK)
            return st;
        if (h->sessions[i]->epoch <= 0)
            return ing_reject(err, "invalid_field", "instance_heartbeat.sessions.epoch",
                              "an assignment's epoch is 1 or more");
    }
    return BZ_OK;
}

static bz_status check_storages(const Blazz__V1__InstanceHeartbeat *h, bz_error *err)
{
    if (h->n_storages > ING_STORAGES_MAX)
        return ing_reject(err, "invalid_field", "instance_heartbeat.storages",
                          "%zu stores, at most %d", h->n_storages, ING_STORAGES_MAX);
    for (size_t i = 0; i < h->n_storages; i++) {
        char field[ING_FIELD_MAX];
        snprintf(field, sizeof field, "instance_heartbeat.storages[%zu]", i);
        bz_status st = ing_check_storage_name(h->storages[i], field, err);
        if (st != BZ_OK)
            return st;
    }
    return BZ_OK;
}

bz_status ing_normalize_heartbeat(Blazz__V1__InstanceHeartbeat *h, char *conversation,
                                  size_t cap, bz_error *err)
{
    if (!h->instance || h->instance->index < 0 || h->instance->index > INT16_MAX)
        return ing_reject(err, "missing_field", "instance_heartbeat.instance_index",
                          "0 to %d", INT16_MAX);
    bz_status st = ing_check_id(h->boot_id, 1, "instance_heartbeat.boot_id", err);
    if (st == BZ_OK)
        st = ing_check_text(h->instance->url, URL_MAX, "instance_heartbeat.instance_url", err);
    if (st == BZ_OK && (h->capacity < 0 || h->capacity > CAPACITY_MAX))
        st = ing_reject(err, "invalid_field", "instance_heartbeat.capacity", "0 to %d",
                        CAPACITY_MAX);
    if (st == BZ_OK)
        st = check_leases(h, err);
    if (st == BZ_OK)
        st = check_storages(h, err);
    /* set by ingest from the signing or producing gateway, never trusted */
    if (st == BZ_OK && !ing_str_set(&h->gateway_id, NULL))
        st = ing_out_of_memory(err, "instance_heartbeat.gateway_id");
    h->instance->epoch = 0;
    if (st == BZ_OK)
        snprintf(conversation, cap, "instance:%d", h->instance->index);
    return st;
}
