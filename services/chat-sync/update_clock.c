/*
 * update_clock.c - "apply once" for updates that carry a time but no
 * business key of their own: group changes (apply_group.c) and contact
 * profile changes (apply_contact.c).
 *
 * The row keeps a clock {at, ids} in its metadata: the time of the newest
 * update applied and the event ids applied at that time. An update older
 * than at, or at that time with an id already there, was seen: a replay
 * (same event id) or an older fact (the row already shows a newer one)
 * changes nothing and emits nothing, while several updates within one
 * timestamp unit all apply.
 */
#include <string.h>

#include "chat_sync.h"

int cs_clock_has_seen(json_t *holder, const char *key, int64_t ts, const char *event_id)
{
    json_t *clock = json_object_get(holder, key);
    json_int_t at = json_integer_value(json_object_get(clock, "at"));
    if (!clock || ts > at)
        return 0;
    if (ts < at)
        return 1;
    size_t i;
    json_t *id;
    json_array_foreach(json_object_get(clock, "ids"), i, id)
    if (strcmp(json_string_value(id) ? json_string_value(id) : "", event_id) == 0)
        return 1;
    return 0;
}

int cs_clock_record(json_t *holder, const char *key, int64_t ts, const char *event_id)
{
    json_t *clock = json_object_get(holder, key);
    if (!clock || json_integer_value(json_object_get(clock, "at")) < ts) {
        clock = json_pack("{s:I, s:[]}", "at", (json_int_t)ts, "ids");
        if (!clock || json_object_set_new(holder, key, clock) != 0)
            return -1;
    }
    return json_array_append_new(json_object_get(clock, "ids"), json_string(event_id));
}
