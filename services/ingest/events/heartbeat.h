/*
 * heartbeat.h - a gateway instance's heartbeat (InstanceHeartbeat,
 * ARCHITECTURE.md §15), checked like every other event before it goes on:
 * the instance index, a boot id, a capacity, and the sessions it says it
 * serves with the epoch of each (at most ING_LEASES_MAX), the shared
 * session stores it reaches (at most ING_STORAGES_MAX; names as
 * field_checks.h's ing_check_storage_name says). The gateway it
 * belongs to is not the producer's to say: ingest sets it on the Kafka
 * path from the signing gateway or the producing topic (record_route.c),
 * and the conversation part of its chat.sync key becomes
 * "instance:<gateway>:<index>" there.
 */
#ifndef ING_HEARTBEAT_H
#define ING_HEARTBEAT_H

#include <stddef.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "events/field_checks.h"

/* sessions one heartbeat may list */
#define ING_LEASES_MAX 2000
/* shared session stores one heartbeat may list */
#define ING_STORAGES_MAX 16

/* Check h and clear what ingest sets itself; conversation (cap bytes)
 * becomes "instance:<index>". */
bz_status ing_normalize_heartbeat(Blazz__V1__InstanceHeartbeat *h, char *conversation,
                                  size_t cap, bz_error *err);

#endif
