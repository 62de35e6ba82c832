/*
 * event_tree.h - building and editing InboundEvent trees in place.
 *
 * ingest works on protobuf-c message trees whose every string, sub-message
 * and repeated array is a separate heap block, exactly as
 * blazz__v1__inbound_event__unpack(NULL, ...) produces them. That single
 * ownership rule lets the parsers build trees by hand, the normalizer
 * replace strings in place, and everyone release a tree the same way:
 * blazz__v1__inbound_event__free_unpacked(ev, NULL). Unset strings point at
 * protobuf_c_empty_string, which is never freed.
 */
#ifndef ING_EVENT_TREE_H
#define ING_EVENT_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"

/* A growable list of owned events (the Meta parser yields several). */
typedef struct ing_events {
    Blazz__V1__InboundEvent **items;
    size_t count;
    size_t cap;
} ing_events;

/* Append ev; on success the list owns it. On failure the caller still does. */
bz_status ing_events_push(ing_events *list, Blazz__V1__InboundEvent *ev,
                                bz_error *err);

/* Free every event and the array; the list is left empty. */
void ing_events_free(ing_events *list);

/* A new event with an (empty) envelope; NULL when out of memory. Free with
 * blazz__v1__inbound_event__free_unpacked(ev, NULL). */
Blazz__V1__InboundEvent *ing_event_new(void);

/* Allocate and initialise one sub-message; NULL when out of memory. */
Blazz__V1__InboundMessage *ing_message_new(void);
Blazz__V1__MessageAck *ing_ack_new(void);
Blazz__V1__SessionStatus *ing_session_status_new(void);
Blazz__V1__HistorySyncBatch *ing_history_new(void);
Blazz__V1__SyncedChat *ing_synced_chat_new(void);
Blazz__V1__GroupParticipant *ing_participant_new(void);
Blazz__V1__MediaInfo *ing_media_new(void);
Blazz__V1__Location *ing_location_new(void);
Blazz__V1__InstanceRef *ing_instance_new(void);
Blazz__V1__InstanceHeartbeat *ing_heartbeat_new(void);
Blazz__V1__SessionLease *ing_lease_new(void);
Blazz__V1__InteractiveReply *ing_interactive_reply_new(void);
Blazz__V1__ProviderError *ing_provider_error_new(void);
Blazz__V1__BusinessNotice *ing_business_notice_new(void);
Blazz__V1__TemplateNotice *ing_template_notice_new(void);
Blazz__V1__AccountNotice *ing_account_notice_new(void);
Blazz__V1__VolumeTier *ing_volume_tier_new(void);
Blazz__V1__ContactUpdate *ing_contact_update_new(void);
Blazz__V1__CallEvent *ing_call_new(void);
Blazz__V1__GroupUpdate *ing_group_update_new(void);
Blazz__V1__IdentityChange *ing_identity_change_new(void);

/* Replace the string in *field by a copy of len bytes of value (value may
 * be NULL or len 0: the field becomes unset). Returns false when out of
 * memory, leaving the field unchanged. */
bool ing_str_setn(char **field, const char *value, size_t len);
bool ing_str_set(char **field, const char *value);

/* A heap copy of len bytes of value, NUL-terminated, never the shared
 * empty string: elements of repeated string fields are freed one by one,
 * even when empty. NULL when out of memory. */
char *ing_str_dup(const char *value, size_t len);

/* True when s is NULL or "". */
bool ing_str_empty(const char *s);

#endif
