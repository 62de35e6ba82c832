/*
 * crm_json_members.h - the members of a CRM request's JSON object, checked
 * by name and type against tables of rules, and read into protobuf
 * strings and integers: the one mechanism every body parser of the CRM API
 * uses (crm_json.c, crm_interactive_json.c).
 */
#ifndef ING_CRM_JSON_MEMBERS_H
#define ING_CRM_JSON_MEMBERS_H

#include <jansson.h>
#include <stdint.h>

#include "core/status.h"

typedef struct field_rule {
    const char *name;
    json_type type;
} field_rule;

/* Every member of obj is known to one of sets (NULL-ended) and of its
 * type (null allowed); prefix names nested fields ("media."). */
bz_status ing_crm_check_members(json_t *obj, const char *prefix, const field_rule *const *sets,
                                bz_error *err);

/* A heap copy of a string member into *dst (left as is when absent). */
bz_status ing_crm_take_string(json_t *obj, const char *name, char **dst, bz_error *err);

/* An integer member checked by ing_crm_check_members; 0 when absent or null. */
int64_t ing_crm_int_of(json_t *obj, const char *name);

#endif
