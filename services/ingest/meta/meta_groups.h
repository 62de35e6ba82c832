/*
 * meta_groups.h - the group fields of a Meta notification (Meta's Groups
 * API webhooks) -> GroupUpdates of the group Meta names by its group_id:
 * members who joined (an invite link, or a join request approved) and
 * members removed by the business or who left
 * (group_participants_update); the group created or deleted
 * (group_lifecycle_update); its subject or description set
 * (group_settings_update). group_status_update (a suspension) is not
 * mapped.
 * meta_webhook.h says which changes of the field are mapped and what
 * becomes of the others; private to meta/.
 */
#ifndef ING_META_GROUPS_H
#define ING_META_GROUPS_H

#include <jansson.h>

#include "events/event_tree.h"
#include "meta/meta_mapping.h"

/* value (a group_participants_update change's) mapped to events appended
 * to out, one per item of its groups[] that changed the members; 0 when
 * it has none or an item is not understood (a join request, another
 * type), the change then kept whole for its dead letter (the items
 * understood still mapped). */
int ing_meta_map_group_participants_field(ing_meta_mapping *mp, json_t *value, ing_events *out);

/* value (a group_lifecycle_update or group_settings_update change's)
 * mapped to events appended to out, one per groups[] item that changed
 * the group: created (its subject, description, invite code), deleted
 * (the number left it), its subject or description set; 0 as above. */
int ing_meta_map_group_fields(ing_meta_mapping *mp, json_t *value, ing_events *out);

#endif
