/*
 * crm_template.c - template lookup, parameter count check and rendering
 * (see crm_template.h). Placeholders are "{{N}}" with N a positive decimal,
 * optionally with spaces inside the braces; anything else between braces is
 * literal text.
 */
#include "pg/crm_template.h"

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

/* If s starts a placeholder, its number (>0) and *len its length; else 0. */
static int placeholder_at(const char *s, size_t *len)
{
    if (s[0] != '{' || s[1] != '{')
        return 0;
    const char *p = s + 2;
    while (*p == ' ')
        p++;
    int n = 0, digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 4; p++, digits++)
        n = n * 10 + (*p - '0');
    while (*p == ' ')
        p++;
    if (!digits || n <= 0 || p[0] != '}' || p[1] != '}')
        return 0;
    *len = (size_t)(p + 2 - s);
    return n;
}

int bz_crm_template_placeholders(const char *text)
{
    int max = 0;
    for (const char *s = text; s && *s; s++) {
        size_t len;
        int n = placeholder_at(s, &len);
        if (n > max)
            max = n;
    }
    return max;
}

/* text with {{N}} replaced by params[N-1]; heap, NULL when out of memory. */
static char *render(const char *text, char *const *params, size_t nparams)
{
    size_t cap = strlen(text) + 1;
    for (size_t i = 0; i < nparams; i++)
        cap += strlen(params[i]) * (size_t)bz_crm_template_placeholders(text);
    char *out = malloc(cap), *o = out;
    for (const char *s = text; out && *s;) {
        size_t len;
        int n = placeholder_at(s, &len);
        if (n > 0 && (size_t)n <= nparams) {
            size_t plen = strlen(params[n - 1]);
            memcpy(o, params[n - 1], plen);
            o += plen;
            s += len;
        } else {
            *o++ = *s++;
        }
    }
    if (out)
        *o = '\0';
    return out;
}

static bz_status check_count(const char *field, const Blazz__V1__TemplateMessage *t,
                             const char *text, size_t given, bz_error *err)
{
    int need = bz_crm_template_placeholders(text);
    if ((size_t)need == given)
        return BZ_OK;
    return bz_reject(err, (size_t)need > given ? "missing_field" : "invalid_field",
                     "field %s: template '%s' needs %d parameter%s, got %zu", field, t->name, need,
                     need == 1 ? "" : "s", given);
}

bz_status bz_crm_template_render(PGconn *conn, int64_t workspace_id,
                                 const Blazz__V1__TemplateMessage *t, char **rendered,
                                 bz_error *err)
{
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
    st = check_count("template.body_params", t, body, t->n_body_params, err);
    if (st == BZ_OK)
        st = check_count("template.header_params", t, header, t->n_header_params, err);
    if (st == BZ_OK && !(*rendered = render(body, t->body_params, t->n_body_params)))
        st = bz_fail(err, BZ_ERR_NOMEM, "render template '%s': out of memory", t->name);
    /* the text the gateway sends comes back as its echo through ingest,
     * which refuses a longer one */
    size_t len = st == BZ_OK ? strlen(*rendered) : 0;
    if (len > BZ_WA_TEXT_MAX_BYTES) {
        free(*rendered);
        *rendered = NULL;
        st = bz_reject(err, "too_large",
                       "field template.body_params: template '%s' renders to %zu bytes; at most "
                       "%d are sent",
                       t->name, len, BZ_WA_TEXT_MAX_BYTES);
    }
    PQclear(res);
    return st;
}
