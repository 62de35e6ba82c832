/*
 * meta_calls.h - the calls field of a Meta notification (Meta's calling
 * webhook) -> CallEvents: one per item of calls[] (a call's connect and
 * terminate) and of statuses[] (RINGING, ACCEPTED, REJECTED of a call the
 * business placed). meta_webhook.h says which changes of the field are
 * mapped and what becomes of the others; private to meta/.
 */
#ifndef ING_META_CALLS_H
#define ING_META_CALLS_H

#include <jansson.h>

#include "events/event_tree.h"
#include "meta/meta_mapping.h"

/* value (a calls change's) mapped to events appended to out: its calls[]
 * and statuses[], either or both; 0 when it has neither or an item of
 * either is not understood, the change then kept whole for its dead
 * letter (the items understood still mapped). */
int ing_meta_map_calls_field(ing_meta_mapping *mp, json_t *value, ing_events *out);

#endif
