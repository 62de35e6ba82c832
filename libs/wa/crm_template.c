/*
 * crm_template.c - template lookup, parameter count check and rendering
 * (see crm_template.h). The variables are read by wa/template_vars.h, the
 * one reading of a template text the campaigns use too.
 */
#include "wa/crm_template.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pg.h"
#include "wa/text_limits.h"

#define SQL_TEMPLATE                                                                             \
    "SELECT coalesce(body_text, ''), coalesce(header_text, '') FROM templates "                  \
    "WHERE workspace_id = $1 AND name = $2 AND ($3 = '' OR language = $3) "                     \
    "AND deleted_at IS NULL ORDER BY id LIMIT 1"

/* The variables of one text, and as many parameters as they are. */
static bz_status check_count(const char *field, const Blazz__V1__TemplateMessage *t,
                             const char *text, size_t given, bz_wa_template_vars *vars,
                             bz_error *err)
{
    bz_error why;
    if (bz_wa_template_vars_read(text, vars, &why) != BZ_OK)
        return bz_reject(err, "invalid_field", "field %s: template '%s' cannot be sent: %s",
                         field, t->name, why.msg);
    if (vars->n == given)
        return BZ_OK;
    return bz_reject(err, vars->n > given ? "missing_field" : "invalid_field",
                     "field %s: template '%s' needs %zu parameter%s, got %zu", field, t->name,
                     vars->n, vars->n == 1 ? "" : "s", given);
}

bz_status bz_crm_template_render(PGconn *conn, int64_t workspace_id,
                                 const Blazz__V1__TemplateMessage *t, bz_crm_template_fill *fill,
                                 bz_error *err)
{
    memset(fill, 0, sizeof *fill);
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, workspace_id);
    const char *params[] = {ws, t->name, t->language ? t->language : ""};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "look up template", SQL_TEMPLATE, 3, params, &res, err);
    if (st != BZ_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return bz_fail(err, BZ_ERR_NOT_FOUND,
                       "field template.name: no template '%s'%s%s%s in workspace %" PRId64,
                       t->name, *params[2] ? " (" : "", params[2], *params[2] ? ")" : "",
                       workspace_id);
    }
    const char *body = PQgetvalue(res, 0, 0), *header = PQgetvalue(res, 0, 1);
    st = check_count("template.body_params", t, body, t->n_body_params, &fill->body, err);
    if (st == BZ_OK)
        st = check_count("template.header_params", t, header, t->n_header_params, &fill->header,
                         err);
    if (st == BZ_OK && !(fill->rendered = bz_wa_template_fill(body, &fill->body,
                                                               (const char *const *)
                                                                   t->body_params)))
        st = bz_fail(err, BZ_ERR_NOMEM, "render template '%s': out of memory", t->name);
    /* the text the gateway sends comes back as its echo through ingest,
     * which refuses a longer one */
    size_t len = st == BZ_OK ? strlen(fill->rendered) : 0;
    if (len > BZ_WA_TEXT_MAX_BYTES) {
        free(fill->rendered);
        fill->rendered = NULL;
        st = bz_reject(err, "too_large",
                       "field template.body_params: template '%s' renders to %zu bytes; at most "
                       "%d are sent",
                       t->name, len, BZ_WA_TEXT_MAX_BYTES);
    }
    PQclear(res);
    return st;
}

static void point_names(const bz_wa_template_vars *vars, char **names, char ***out, size_t *n)
{
    if (vars->format != BZ_WA_VARS_NAMED)
        return;
    for (size_t i = 0; i < vars->n; i++)
        names[i] = (char *)vars->names[i];
    *out = names;
    *n = vars->n;
}

void bz_crm_template_names(const bz_crm_template_fill *fill, Blazz__V1__TemplateMessage *out,
                           char **body_names, char **header_names)
{
    point_names(&fill->body, body_names, &out->body_param_names, &out->n_body_param_names);
    point_names(&fill->header, header_names, &out->header_param_names,
                &out->n_header_param_names);
}
