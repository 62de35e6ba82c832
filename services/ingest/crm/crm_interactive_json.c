/*
 * crm_interactive_json.c - the `interactive` object of POST /v1/messages:
 * Meta's interactive object as the API spells it (a list, a URL button, a
 * location request, a flow), read into InteractiveMessage; each nested
 * member named by its path when refused. The contract and Meta's limits
 * check it afterwards (libs/wa/crm_command.c, libs/wa/meta_limits.h).
 */
#include "crm/crm_interactive_json.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm/crm_json.h"
#include "crm/crm_json_members.h"

static const field_rule interactive_rules[] = {
    {"type", JSON_STRING},         {"header_text", JSON_STRING}, {"footer", JSON_STRING},
    {"button", JSON_STRING},       {"sections", JSON_ARRAY},     {"display_text", JSON_STRING},
    {"url", JSON_STRING},          {"flow_id", JSON_STRING},     {"flow_name", JSON_STRING},
    {"flow_cta", JSON_STRING},     {"flow_token", JSON_STRING},  {"flow_action", JSON_STRING},
    {"flow_screen", JSON_STRING},  {"flow_data", JSON_OBJECT},   {"flow_mode", JSON_STRING},
    {NULL, JSON_NULL}};

static const field_rule section_rules[] = {
    {"title", JSON_STRING}, {"rows", JSON_ARRAY}, {NULL, JSON_NULL}};

static const field_rule row_rules[] = {
    {"id", JSON_STRING}, {"title", JSON_STRING}, {"description", JSON_STRING}, {NULL, JSON_NULL}};

/* A string member and the field of the message it goes to. */
typedef struct string_member {
    const char *name;
    size_t offset; /* of a char * in the message */
} string_member;

/* _Generic has no other association: a field that is no char * does not
 * compile, so take_strings never writes through the wrong type. */
#define STRING_MEMBER(type, field)                                                                \
    {#field, offsetof(type, field) * _Generic(((type *)0)->field, char *: 1)}

static const string_member row_strings[] = {
    STRING_MEMBER(Blazz__V1__InteractiveRow, id),
    STRING_MEMBER(Blazz__V1__InteractiveRow, title),
    STRING_MEMBER(Blazz__V1__InteractiveRow, description), {NULL, 0}};

static const string_member interactive_strings[] = {
    STRING_MEMBER(Blazz__V1__InteractiveMessage, header_text),
    STRING_MEMBER(Blazz__V1__InteractiveMessage, footer),
    STRING_MEMBER(Blazz__V1__InteractiveMessage, button),
    STRING_MEMBER(Blazz__V1__InteractiveMessage, display_text),
    STRING_MEMBER(Blazz__V1__InteractiveMessage, url),
    STRING_MEMBER(Blazz__V1__InteractiveMessage, flow_id),
    STRING_MEMBER(Blazz__V1__InteractiveMessage, flow_name),
    STRING_MEMBER(Blazz__V1__InteractiveMessage, flow_cta),
    STRING_MEMBER(Blazz__V1__InteractiveMessage, flow_token),
    STRING_MEMBER(Blazz__V1__InteractiveMessage, flow_action),
    STRING_MEMBER(Blazz__V1__InteractiveMessage, flow_screen), {NULL, 0}};

/* Each string member of members present in o into its field of msg. */
static bz_status take_strings(json_t *o, void *msg, const string_member *members, bz_error *err)
{
    bz_status st = BZ_OK;
    for (const string_member *m = members; st == BZ_OK && m->name; m++)
        st = ing_crm_take_string(o, m->name, (char **)(void *)((char *)msg + m->offset), err);
    return st;
}

static int interactive_kind_of(const char *name)
{
    static const struct {
        const char *name;
        int kind;
    } kinds[] = {{"list", BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LIST},
                 {"cta_url", BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_CTA_URL},
                 {"location_request", BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LOCATION_REQUEST},
                 {"flow", BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_FLOW}};
    for (size_t i = 0; name && i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return kinds[i].kind;
    return -1;
}

/* The array member `name` of obj, each element an object; NULL when
 * absent or empty. */
static bz_status objects_of(json_t *obj, const char *name, const char *path, json_t **out,
                            bz_error *err)
{
    json_t *a = json_object_get(obj, name);
    *out = json_array_size(a) ? a : NULL;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_object(json_array_get(a, i)))
            return bz_reject(err, "invalid_field", "field %s[%zu]: must be an object", path, i);
    return BZ_OK;
}

static bz_status take_row(json_t *o, const char *path, Blazz__V1__InteractiveRow *row,
                          bz_error *err)
{
    blazz__v1__interactive_row__init(row);
    const field_rule *sets[] = {row_rules, NULL};
    bz_status st = ing_crm_check_members(o, path, sets, err);
    return st == BZ_OK ? take_strings(o, row, row_strings, err) : st;
}

static bz_status take_section(json_t *o, size_t i, Blazz__V1__InteractiveSection *sec,
                              bz_error *err)
{
    blazz__v1__interactive_section__init(sec);
    char path[96];
    snprintf(path, sizeof path, "interactive.sections[%zu].", i);
    const field_rule *sets[] = {section_rules, NULL};
    bz_status st = ing_crm_check_members(o, path, sets, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(o, "title", &sec->title, err);
    snprintf(path, sizeof path, "interactive.sections[%zu].rows", i);
    json_t *rows = NULL;
    if (st == BZ_OK)
        st = objects_of(o, "rows", path, &rows, err);
    size_t n = json_array_size(rows);
    if (st == BZ_OK && n && !(sec->rows = calloc(n, sizeof(Blazz__V1__InteractiveRow *))))
        st = bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
    for (size_t r = 0; st == BZ_OK && r < n; r++) {
        if (!(sec->rows[r] = malloc(sizeof *sec->rows[r])))
            return bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
        sec->n_rows++;
        snprintf(path, sizeof path, "interactive.sections[%zu].rows[%zu].", i, r);
        st = take_row(json_array_get(rows, r), path, sec->rows[r], err);
    }
    return st;
}

/* A flow's members beside its strings: its data a JSON object, kept as its
 * text; its mode "draft" or "published" (the default). */
static bz_status take_flow(json_t *o, Blazz__V1__InteractiveMessage *in, bz_error *err)
{
    bz_status st = BZ_OK;
    json_t *data = json_object_get(o, "flow_data");
    if (json_is_object(data)) {
        char *text = json_dumps(data, JSON_COMPACT);
        st = text ? ing_crm_set_string(&in->flow_data_json, text, err)
                  : bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
        free(text);
    }
    const char *mode = json_string_value(json_object_get(o, "flow_mode"));
    if (st == BZ_OK && mode && *mode && strcmp(mode, "draft") != 0 &&
        strcmp(mode, "published") != 0)
        st = bz_reject(err, "invalid_field", "field interactive.flow_mode: draft or published");
    in->flow_draft = mode && strcmp(mode, "draft") == 0;
    return st;
}

bz_status ing_crm_json_interactive(json_t *root, Blazz__V1__SendChatMessage *s, bz_error *err)
{
    json_t *o = json_object_get(root, "interactive");
    if (!json_is_object(o))
        return BZ_OK;
    const field_rule *sets[] = {interactive_rules, NULL};
    bz_status st = ing_crm_check_members(o, "interactive.", sets, err);
    if (st != BZ_OK)
        return st;
    if (!(s->interactive = malloc(sizeof *s->interactive)))
        return bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
    Blazz__V1__InteractiveMessage *in = s->interactive;
    blazz__v1__interactive_message__init(in);
    const char *type = json_string_value(json_object_get(o, "type"));
    int kind = type ? interactive_kind_of(type) : 0;
    if (kind < 0)
        return bz_reject(err, "invalid_field",
                         "field interactive.type: list, cta_url, location_request or flow");
    in->kind = kind;
    st = take_strings(o, in, interactive_strings, err);
    if (st == BZ_OK)
        st = take_flow(o, in, err);
    json_t *sections = NULL;
    if (st == BZ_OK)
        st = objects_of(o, "sections", "interactive.sections", &sections, err);
    size_t n = json_array_size(sections);
    if (st == BZ_OK && n && !(in->sections = calloc(n, sizeof(Blazz__V1__InteractiveSection *))))
        st = bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        if (!(in->sections[i] = malloc(sizeof *in->sections[i])))
            return bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
        in->n_sections++;
        st = take_section(json_array_get(sections, i), i, in->sections[i], err);
    }
    return st;
}
