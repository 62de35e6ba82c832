/*
 * crm_json_members.c - a CRM request's members checked against their
 * rules and read (see crm_json_members.h).
 */
#include "crm/crm_json_members.h"

#include <stdlib.h>
#include <string.h>

#include "core/json_number.h"
#include "crm/crm_json.h"

#define UNKNOWN_NAME_SHOWN 64

static const char *type_name(json_type t)
{
    switch (t) {
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_TRUE: return "true or false";
    default: return "a value";
    }
}

static const field_rule *rule_of(const field_rule *const *sets, const char *name)
{
    for (; *sets; sets++)
        for (const field_rule *r = *sets; r->name; r++)
            if (strcmp(r->name, name) == 0)
                return r;
    return NULL;
}

/* Every member of obj is known and of its type; prefix names nested fields. */
bz_status ing_crm_check_members(json_t *obj, const char *prefix, const field_rule *const *sets,
                               bz_error *err)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        const field_rule *r = rule_of(sets, name);
        /* the name is the client's: a long one is cut, so the message
         * keeps its "field <name>:" form within the error's size */
        if (!r && strlen(name) > UNKNOWN_NAME_SHOWN)
            return bz_reject(err, "invalid_field", "field %s%.*s...: unknown field", prefix,
                             UNKNOWN_NAME_SHOWN, name);
        if (!r)
            return bz_reject(err, "invalid_field", "field %s%s: unknown field", prefix, name);
        int64_t n = 0;
        int whole = r->type == JSON_INTEGER && bz_json_whole_number(v, &n);
        /* JSON_TRUE in a rule stands for either boolean */
        int boolean = r->type == JSON_TRUE && json_is_boolean(v);
        if (json_typeof(v) != r->type && !whole && !boolean && !json_is_null(v))
            return bz_reject(err, "invalid_field", "field %s%s: must be %s", prefix, name,
                             type_name(r->type));
        if (whole && n < 0)
            return bz_reject(err, "invalid_field", "field %s%s: must not be negative", prefix,
                             name);
    }
    return BZ_OK;
}

bz_status ing_crm_set_string(char **dst, const char *value, bz_error *err)
{
    char *copy = strdup(value);
    if (!copy)
        return bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
    if (*dst != (char *)protobuf_c_empty_string)
        free(*dst);
    *dst = copy;
    return BZ_OK;
}

/* A heap copy of a string member into *dst (left as is when absent). */
bz_status ing_crm_take_string(json_t *obj, const char *name, char **dst, bz_error *err)
{
    const char *v = json_string_value(json_object_get(obj, name));
    return v ? ing_crm_set_string(dst, v, err) : BZ_OK;
}

/* An integer member checked by check_members; 0 when absent or null. */
int64_t ing_crm_int_of(json_t *obj, const char *name)
{
    int64_t n = 0;
    bz_json_whole_number(json_object_get(obj, name), &n);
    return n;
}
