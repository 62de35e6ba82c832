/*
 * meta_mapping.c - the helpers the files mapping a Meta notification share
 * (see meta_mapping.h): reading Meta's loosely typed fields, copying them
 * into an event with the first failure kept in the mapping, the event of a
 * message, status, call or contact update, and the items of a change's
 * array, each mapped by the caller's mapper.
 */
#include "meta/meta_mapping.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_number.h"
#include "events/vocabulary.h"

const char *ing_meta_str_of(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

void ing_meta_copy(ing_meta_mapping *mp, char **dst, const char *value)
{
    if (mp->st == BZ_OK && value && !ing_str_set(dst, value))
        mp->st = bz_fail(mp->err, BZ_ERR_NOMEM, "map Meta notification: out of memory");
}

void ing_meta_copy_number_text(ing_meta_mapping *mp, char **dst, json_t *v)
{
    char text[24];
    int64_t number;
    if (bz_json_whole_number(v, &number)) {
        snprintf(text, sizeof text, "%" PRId64, number);
        ing_meta_copy(mp, dst, text);
    } else if (json_is_string(v)) {
        ing_meta_copy(mp, dst, json_string_value(v));
    }
}

int ing_meta_whole_number_of(json_t *v, int64_t *out)
{
    if (bz_json_whole_number(v, out))
        return 1;
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (!s || !*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
        return 0;
    *out = strtoll(s, NULL, 10);
    return 1;
}

int64_t ing_meta_unix_ms_of(json_t *obj, const char *key)
{
    int64_t seconds;
    return ing_meta_whole_number_of(json_object_get(obj, key), &seconds)
               ? ing_timestamp_ms(seconds)
               : 0;
}

void *ing_meta_alloc_or_fail(ing_meta_mapping *mp, void *p)
{
    if (!p && mp->st == BZ_OK)
        mp->st = bz_fail(mp->err, BZ_ERR_NOMEM, "map Meta notification: out of memory");
    return p;
}

int ing_meta_same_id(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

const char *ing_meta_digits_of(const char *phone)
{
    return phone && *phone == '+' ? phone + 1 : phone;
}

json_t *ing_meta_sender_contact(json_t *contacts, const char *wa_id, const char *user_id)
{
    size_t i;
    json_t *c;
    json_array_foreach(contacts, i, c) {
        const char *id = ing_meta_str_of(c, "wa_id"), *uid = ing_meta_str_of(c, "user_id");
        if (ing_meta_same_id(ing_meta_digits_of(id), ing_meta_digits_of(wa_id)) ||
            ing_meta_same_id(uid, user_id) ||
            (!wa_id && !user_id) ||
            (!id && !uid))
            return c;
    }
    return NULL;
}

Blazz__V1__InboundEvent *ing_meta_new_event(ing_meta_mapping *mp, json_t *obj,
                                            const char *phone_number_id,
                                            Blazz__V1__InboundEvent__PayloadCase payload)
{
    Blazz__V1__InboundEvent *ev = ing_meta_alloc_or_fail(mp, ing_event_new());
    if (!ev)
        return NULL;
    ev->envelope->provider = BLAZZ__V1__PROVIDER__PROVIDER_META;
    ev->envelope->occurred_at_ms = ing_meta_unix_ms_of(obj, "timestamp");
    ing_meta_copy(mp, &ev->envelope->session_id, phone_number_id);
    ing_meta_copy(mp, &ev->envelope->source, "meta");
    void *made;
    if (payload == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE)
        made = ev->message = ing_meta_alloc_or_fail(mp, ing_message_new());
    else if (payload == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK)
        made = ev->ack = ing_meta_alloc_or_fail(mp, ing_ack_new());
    else if (payload == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL)
        made = ev->call = ing_meta_alloc_or_fail(mp, ing_call_new());
    else if (payload == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC)
        made = ev->history_sync = ing_meta_alloc_or_fail(mp, ing_history_new());
    else if (payload == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE)
        made = ev->group_update = ing_meta_alloc_or_fail(mp, ing_group_update_new());
    else
        made = ev->contact_update = ing_meta_alloc_or_fail(mp, ing_contact_update_new());
    if (made)
        ev->payload_case = payload;
    return ev;
}

void ing_meta_copy_error_message(ing_meta_mapping *mp, char **dst, json_t *error)
{
    const char *title = ing_meta_str_of(error, "title");
    const char *details = ing_meta_str_of(json_object_get(error, "error_data"), "details");
    if (!title || !details) {
        ing_meta_copy(mp, dst,
                      title ? title : details ? details : ing_meta_str_of(error, "message"));
        return;
    }
    size_t n = strlen(title) + 2 + strlen(details) + 1;
    char *text = ing_meta_alloc_or_fail(mp, malloc(n));
    if (!text)
        return;
    snprintf(text, n, "%s: %s", title, details);
    ing_meta_copy(mp, dst, text);
    free(text);
}

Blazz__V1__ProviderError *ing_meta_first_error(ing_meta_mapping *mp, json_t *errors)
{
    json_t *e = json_array_get(errors, 0);
    Blazz__V1__ProviderError *pe =
        json_is_object(e) ? ing_meta_alloc_or_fail(mp, ing_provider_error_new()) : NULL;
    if (!pe)
        return NULL;
    ing_meta_copy_number_text(mp, &pe->code, json_object_get(e, "code"));
    const char *title = ing_meta_str_of(e, "title");
    ing_meta_copy(mp, &pe->title, title ? title : ing_meta_str_of(e, "message"));
    ing_meta_copy(mp, &pe->details, ing_meta_str_of(json_object_get(e, "error_data"), "details"));
    return pe;
}

void ing_meta_collect(ing_meta_mapping *mp, ing_events *out, Blazz__V1__InboundEvent *ev)
{
    if (!ev)
        return;
    if (mp->st != BZ_OK || (mp->st = ing_events_push(out, ev, mp->err)) != BZ_OK)
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

int ing_meta_map_items(ing_meta_mapping *mp, json_t *value, const char *key,
                       int (*understood)(json_t *), ing_meta_item_mapper map, ing_events *out)
{
    const char *phone_number_id =
        ing_meta_str_of(json_object_get(value, "metadata"), "phone_number_id");
    json_t *items = json_object_get(value, key);
    int all = json_is_array(items) && json_array_size(items) > 0;
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        if (!understood(item))
            all = 0;
        else if (mp->st == BZ_OK)
            ing_meta_collect(mp, out, map(mp, item, value, phone_number_id));
    }
    return all;
}
