/*
 * event_tree.c - allocation helpers for InboundEvent trees (see
 * event_tree.h). Every block comes from malloc so that protobuf-c's
 * free_unpacked with the default allocator releases it.
 */
#include "events/event_tree.h"

#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

bz_status ing_events_push(ing_events *list, Blazz__V1__InboundEvent *ev, bz_error *err)
{
    if (!bz_grow((void **)&list->items, &list->cap, list->count + 1,
                 sizeof(Blazz__V1__InboundEvent *), 4))
        return bz_fail(err, BZ_ERR_NOMEM, "collect events: out of memory");
    list->items[list->count++] = ev;
    return BZ_OK;
}

void ing_events_free(ing_events *list)
{
    for (size_t i = 0; i < list->count; i++)
        blazz__v1__inbound_event__free_unpacked(list->items[i], NULL);
    free(list->items);
    memset(list, 0, sizeof *list);
}

/* `type` is a type name, which cannot take parentheses. */
/* NOLINTBEGIN(bugprone-macro-parentheses) */
#define DEFINE_NEW(fn, type, init)                                                                \
    type *fn(void)                                                                                \
    {                                                                                             \
        type *m = malloc(sizeof *m);                                                              \
        if (m)                                                                                    \
            init(m);                                                                              \
        return m;                                                                                 \
    }

DEFINE_NEW(ing_message_new, Blazz__V1__InboundMessage, blazz__v1__inbound_message__init)
DEFINE_NEW(ing_ack_new, Blazz__V1__MessageAck, blazz__v1__message_ack__init)
DEFINE_NEW(ing_session_status_new, Blazz__V1__SessionStatus,
           blazz__v1__session_status__init)
DEFINE_NEW(ing_history_new, Blazz__V1__HistorySyncBatch,
           blazz__v1__history_sync_batch__init)
DEFINE_NEW(ing_synced_chat_new, Blazz__V1__SyncedChat, blazz__v1__synced_chat__init)
DEFINE_NEW(ing_participant_new, Blazz__V1__GroupParticipant,
           blazz__v1__group_participant__init)
DEFINE_NEW(ing_media_new, Blazz__V1__MediaInfo, blazz__v1__media_info__init)
DEFINE_NEW(ing_location_new, Blazz__V1__Location, blazz__v1__location__init)
DEFINE_NEW(ing_instance_new, Blazz__V1__InstanceRef, blazz__v1__instance_ref__init)
DEFINE_NEW(ing_heartbeat_new, Blazz__V1__InstanceHeartbeat, blazz__v1__instance_heartbeat__init)
DEFINE_NEW(ing_lease_new, Blazz__V1__SessionLease, blazz__v1__session_lease__init)
DEFINE_NEW(ing_interactive_reply_new, Blazz__V1__InteractiveReply,
           blazz__v1__interactive_reply__init)
DEFINE_NEW(ing_provider_error_new, Blazz__V1__ProviderError, blazz__v1__provider_error__init)
DEFINE_NEW(ing_business_notice_new, Blazz__V1__BusinessNotice, blazz__v1__business_notice__init)
DEFINE_NEW(ing_template_notice_new, Blazz__V1__TemplateNotice, blazz__v1__template_notice__init)
DEFINE_NEW(ing_account_notice_new, Blazz__V1__AccountNotice, blazz__v1__account_notice__init)
DEFINE_NEW(ing_volume_tier_new, Blazz__V1__VolumeTier, blazz__v1__volume_tier__init)
DEFINE_NEW(ing_contact_update_new, Blazz__V1__ContactUpdate, blazz__v1__contact_update__init)
DEFINE_NEW(ing_call_new, Blazz__V1__CallEvent, blazz__v1__call_event__init)
DEFINE_NEW(ing_group_update_new, Blazz__V1__GroupUpdate, blazz__v1__group_update__init)
DEFINE_NEW(ing_identity_change_new, Blazz__V1__IdentityChange, blazz__v1__identity_change__init)
/* NOLINTEND(bugprone-macro-parentheses) */

Blazz__V1__InboundEvent *ing_event_new(void)
{
    Blazz__V1__InboundEvent *ev = malloc(sizeof *ev);
    if (!ev)
        return NULL;
    blazz__v1__inbound_event__init(ev);
    ev->envelope = malloc(sizeof *ev->envelope);
    if (!ev->envelope) {
        free(ev);
        return NULL;
    }
    blazz__v1__envelope__init(ev->envelope);
    return ev;
}

bool ing_str_setn(char **field, const char *value, size_t len)
{
    char *copy = (char *)protobuf_c_empty_string;
    if (value && len > 0) {
        copy = malloc(len + 1);
        if (!copy)
            return false;
        memcpy(copy, value, len);
        copy[len] = '\0';
    }
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = copy;
    return true;
}

char *ing_str_dup(const char *value, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy) {
        if (len)
            memcpy(copy, value, len);
        copy[len] = '\0';
    }
    return copy;
}

bool ing_str_set(char **field, const char *value)
{
    return ing_str_setn(field, value, value ? strlen(value) : 0);
}

bool ing_str_empty(const char *s)
{
    return !s || !*s;
}
