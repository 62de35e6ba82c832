/*
 * message.c - compile and render a campaign's message (see message.h).
 *
 * A template campaign's texts are compiled in two steps: each variable's
 * value (a campaign text) is compiled on its own, for the parameters, and
 * the template's text with every variable replaced by its value's source
 * is compiled as the text the contact reads. Both render from the same
 * contact fields, so the stored text and the parameters Meta fills in
 * always agree.
 */
#include "message.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pg.h"

void cmp_message_columns_read(const PGresult *res, int row, int first, cmp_message_columns *out)
{
    const char **cols[] = {&out->campaign_type, &out->template_name, &out->template_language,
                           &out->body,          &out->header,        &out->footer,
                           &out->template_params, &out->provider,    &out->header_type,
                           &out->header_media,  &out->buttons};
    for (int i = 0; i < CMP_MESSAGE_COLUMN_COUNT; i++)
        *cols[i] = PQgetvalue(res, row, first + i);
}

int cmp_template_sendable(const PGresult *res, int row, int first, char *why, size_t cap)
{
    if (PQgetvalue(res, row, first + 4)[0] == 't')
        return 1;
    const char *id = PQgetvalue(res, row, first), *name = PQgetvalue(res, row, first + 1);
    const char *status = PQgetvalue(res, row, first + 2);
    const char *reason = PQgetvalue(res, row, first + 3);
    if (!*status)
        snprintf(why, cap,
                 "template '%.128s' (%s) has no status from Meta yet (blazzctl meta templates "
                 "sync)",
                 name, id);
    else
        snprintf(why, cap, "template '%.128s' (%s) is %.32s at Meta%s%.128s", name, id, status,
                 *reason ? ": " : "", reason);
    return 0;
}

static void params_free(cmp_params *p)
{
    for (size_t i = 0; i < p->n; i++)
        cmp_template_free(&p->items[i].value);
    free(p->items);
    memset(p, 0, sizeof *p);
}

void cmp_message_free(cmp_message *m)
{
    cmp_template_free(&m->body);
    cmp_template_free(&m->header);
    cmp_template_free(&m->footer);
    params_free(&m->body_params);
    params_free(&m->header_params);
    cmp_extras_free(&m->extras);
}

/* Compile text into t; a refusal starts with the part ("body is 70000
 * bytes...", "header template: unknown placeholder..."). */
static bz_status compile_part(const char *part, const char *text, cmp_template *t, bz_error *err)
{
    bz_status st = cmp_template_compile(text, t, err);
    if (st != BZ_OK) {
        char inner[BZ_ERROR_MSG_MAX];
        snprintf(inner, sizeof inner, "%s", err->msg);
        snprintf(err->msg, sizeof err->msg, "%s %.480s", part, inner);
    }
    return st;
}

static int is_contact_field(const char *name)
{
    return strcmp(name, "first_name") == 0 || strcmp(name, "full_name") == 0 ||
           strcmp(name, "phone") == 0;
}

/* The campaign text that fills variable `name`: template_params' entry,
 * else the field of that name; NULL when neither. */
static const char *value_source(json_t *values, const char *name, char *buf, size_t cap)
{
    const char *v = json_string_value(json_object_get(values, name));
    if (v)
        return v;
    if (!is_contact_field(name))
        return NULL;
    snprintf(buf, cap, "{{%s}}", name);
    return buf;
}

/* The parameters of one template text ("body" or "header"), each
 * variable's value compiled. */
static bz_status compile_params(const char *part, const char *name, const char *text,
                                json_t *values, bz_wa_template_vars *vars, cmp_params *out,
                                bz_error *err)
{
    if (bz_wa_template_vars_read(text, vars, err) != BZ_OK)
        return bz_wrap(err, "template '%s' %s", name, part);
    out->named = vars->format == BZ_WA_VARS_NAMED;
    out->items = calloc(vars->n ? vars->n : 1, sizeof *out->items);
    if (!out->items)
        return bz_fail(err, BZ_ERR_NOMEM, "compile template '%s': out of memory", name);
    for (size_t i = 0; i < vars->n; i++) {
        char field[BZ_WA_TEMPLATE_VAR_NAME_MAX + 4];
        const char *src = value_source(values, vars->names[i], field, sizeof field);
        if (!src)
            return bz_reject(err, "bad_template",
                             "template '%s' %s variable {{%s}} has no value: name it in "
                             "campaigns.metadata.template_params",
                             name, part, vars->names[i]);
        cmp_param *p = &out->items[out->n++];
        snprintf(p->name, sizeof p->name, "%s", vars->names[i]);
        if (cmp_template_compile(src, &p->value, err) != BZ_OK)
            return bz_wrap(err, "template_params {{%s}}", vars->names[i]);
    }
    return BZ_OK;
}

static const cmp_param *param_named(const cmp_params *p, const char *name, size_t len)
{
    for (size_t i = 0; i < p->n; i++)
        if (strlen(p->items[i].name) == len && memcmp(p->items[i].name, name, len) == 0)
            return &p->items[i];
    return NULL;
}

/* Every template_params entry must name a variable of the body or header. */
static bz_status check_values_used(const char *name, json_t *values, const cmp_message *m,
                                   bz_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(values, key, v) {
        if (!json_is_string(v))
            return bz_reject(err, "invalid_campaign",
                             "campaigns.metadata.template_params {{%s}}: a text is expected",
                             key);
        if (!param_named(&m->body_params, key, strlen(key)) &&
            !param_named(&m->header_params, key, strlen(key)))
            return bz_reject(err, "bad_template",
                             "campaigns.metadata.template_params names {{%s}}, which template "
                             "'%s' does not declare (Meta would refuse every message)",
                             key, name);
    }
    return BZ_OK;
}

/* The body or header of a template: its parameters, then the text with
 * their values. */
static bz_status compile_template_part(const char *part, const char *text, json_t *values,
                                       cmp_message *m, cmp_params *params, cmp_template *t,
                                       bz_error *err)
{
    bz_wa_template_vars vars;
    bz_status st = compile_params(part, m->template_name, text, values, &vars, params, err);
    if (st != BZ_OK)
        return st;
    /* the campaign text of what the contact reads: each variable replaced
     * by the source of its value */
    const char *sources[BZ_WA_TEMPLATE_VARS_MAX];
    for (size_t i = 0; i < params->n; i++)
        sources[i] = params->items[i].value.text;
    char *readable = bz_wa_template_fill(text, &vars, sources);
    if (!readable)
        return bz_fail(err, BZ_ERR_NOMEM, "compile template '%s': out of memory",
                       m->template_name);
    st = compile_part(part, readable, t, err);
    free(readable);
    return st;
}

static bz_status compile_template(const cmp_message_columns *cols, cmp_message *m, bz_error *err)
{
    json_t *values = *cols->template_params ? json_loads(cols->template_params, 0, NULL)
                                            : json_object();
    bz_status st = json_is_object(values)
                       ? BZ_OK
                       : bz_reject(err, "invalid_campaign",
                                   "campaigns.metadata.template_params: an object of texts by "
                                   "variable is expected");
    if (st == BZ_OK)
        st = compile_template_part("body", cols->body, values, m, &m->body_params, &m->body, err);
    if (st == BZ_OK)
        st = compile_template_part("header", cols->header, values, m, &m->header_params,
                                   &m->header, err);
    if (st == BZ_OK)
        st = check_values_used(m->template_name, values, m, err);
    json_decref(values);
    return st;
}

bz_status cmp_message_compile(const cmp_message_columns *cols, cmp_message *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    if (!*cols->body)
        return bz_reject(err, "invalid_campaign", "campaign has no message body");
    out->is_template = strcmp(cols->campaign_type, "template") == 0 && *cols->template_name;
    snprintf(out->template_name, sizeof out->template_name, "%s", cols->template_name);
    snprintf(out->template_language, sizeof out->template_language, "%s",
             cols->template_language);
    bz_status st = out->is_template ? compile_template(cols, out, err)
                                    : compile_part("body", cols->body, &out->body, err);
    if (st == BZ_OK && !out->is_template)
        st = compile_part("header", cols->header, &out->header, err);
    if (st == BZ_OK)
        st = compile_part("footer", cols->footer, &out->footer, err);
    if (st == BZ_OK)
        st = cmp_extras_read(cols->provider, cols->header_type, cols->header_media, cols->buttons,
                             &out->extras, err);
    if (st != BZ_OK)
        cmp_message_free(out);
    return st;
}

/* ---- per contact -------------------------------------------------------------------- */

/* The values of p's parameters for the contact into *values and their
 * names (positional: "") into *names; 0 when out of memory (what was made
 * is freed by cmp_rendered_free through *count). */
static int render_values(const cmp_params *p, const cmp_contact_fields *c, char ***values,
                         char ***names, size_t *count)
{
    *values = calloc(p->n + 1, sizeof **values);
    *names = calloc(p->n + 1, sizeof **names);
    if (!*values || !*names)
        return 0;
    for (*count = 0; *count < p->n; (*count)++) {
        size_t i = *count;
        (*names)[i] = p->named ? (char *)p->items[i].name : (char *)"";
        if (!((*values)[i] = cmp_template_render(&p->items[i].value, c)))
            return 0;
    }
    return 1;
}

static void free_values(char **values, size_t n)
{
    for (size_t i = 0; values && i < n; i++)
        free(values[i]);
    free(values);
}

bz_status cmp_message_render(const cmp_message *msg, const cmp_contact_fields *c,
                             Blazz__V1__SendMessage *m, cmp_rendered *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    out->body = cmp_template_render(&msg->body, c);
    out->header = cmp_template_render(&msg->header, c);
    out->footer = cmp_template_render(&msg->footer, c);
    int ok = out->body && out->header && out->footer;
    if (ok && msg->is_template)
        ok = render_values(&msg->body_params, c, &out->body_values, &out->body_names,
                           &out->n_body) &&
             render_values(&msg->header_params, c, &out->header_values, &out->header_names,
                           &out->n_header);
    if (!ok)
        return bz_fail(err, BZ_ERR_NOMEM, "render message: out of memory");
    m->message_type = msg->is_template ? BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE
                                       : BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    m->body = out->body;
    m->header_text = out->header;
    m->footer = out->footer;
    blazz__v1__template_message__init(&out->tpl);
    if (msg->is_template) {
        Blazz__V1__TemplateMessage *t = &out->tpl;
        t->name = (char *)msg->template_name;
        t->language = (char *)msg->template_language;
        t->body_params = out->body_values;
        t->n_body_params = msg->body_params.n;
        t->body_param_names = msg->body_params.named ? out->body_names : NULL;
        t->n_body_param_names = msg->body_params.named ? msg->body_params.n : 0;
        t->header_params = out->header_values;
        t->n_header_params = msg->header_params.n;
        t->header_param_names = msg->header_params.named ? out->header_names : NULL;
        t->n_header_param_names = msg->header_params.named ? msg->header_params.n : 0;
        m->template_ = t;
    }
    cmp_extras_apply(&msg->extras, m, &out->tpl, &out->header_media);
    return BZ_OK;
}

void cmp_rendered_free(cmp_rendered *r)
{
    free(r->body);
    free(r->header);
    free(r->footer);
    free_values(r->body_values, r->n_body);
    free_values(r->header_values, r->n_header);
    free(r->body_names);
    free(r->header_names);
    memset(r, 0, sizeof *r);
}

bz_status cmp_message_check_meta(const cmp_message *msg, bz_error *err)
{
    static const cmp_contact_fields shortest = {"A", "A", "1"};
    Blazz__V1__SendMessage m = BLAZZ__V1__SEND_MESSAGE__INIT;
    cmp_rendered content;
    bz_status st = cmp_message_render(msg, &shortest, &m, &content, err);
    if (st == BZ_OK)
        st = bz_wa_meta_check(&m, err);
    cmp_rendered_free(&content);
    return st;
}
