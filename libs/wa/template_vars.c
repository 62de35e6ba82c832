/*
 * template_vars.c - a template text's variables (see template_vars.h).
 *
 * One pass: every "{{" that starts a variable adds its name once. Positional
 * numbers are collected as a set and must then be exactly 1..n; the names
 * list is rebuilt in number order, so names[i] fills parameter i.
 */
#include "wa/template_vars.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static int all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return len > 0;
}

size_t bz_wa_template_var_at(const char *s, const char **name, size_t *name_len)
{
    if (s[0] != '{' || s[1] != '{')
        return 0;
    const char *p = s + 2;
    while (*p == ' ')
        p++;
    const char *start = p;
    while (is_name_char(*p))
        p++;
    size_t len = (size_t)(p - start);
    while (*p == ' ')
        p++;
    if (len == 0 || len >= BZ_WA_TEMPLATE_VAR_NAME_MAX || p[0] != '}' || p[1] != '}')
        return 0;
    if (all_digits(start, len) && (len > 4 || strtol(start, NULL, 10) < 1))
        return 0;
    *name = start;
    *name_len = len;
    return (size_t)(p + 2 - s);
}

int bz_wa_template_var_index(const bz_wa_template_vars *vars, const char *name, size_t len)
{
    for (size_t i = 0; i < vars->n; i++)
        if (strlen(vars->names[i]) == len && memcmp(vars->names[i], name, len) == 0)
            return (int)i;
    return -1;
}

/* Positional names in number order; refuses a gap. */
static bz_status order_positions(bz_wa_template_vars *out, bz_error *err)
{
    int seen[BZ_WA_TEMPLATE_VARS_MAX + 1] = {0};
    for (size_t i = 0; i < out->n; i++) {
        long k = strtol(out->names[i], NULL, 10);
        if (k > BZ_WA_TEMPLATE_VARS_MAX)
            return bz_reject(err, "bad_template",
                             "variable {{%ld}}: at most %d positional variables", k,
                             BZ_WA_TEMPLATE_VARS_MAX);
        seen[k] = 1;
    }
    for (size_t k = 1; k <= out->n; k++) {
        if (!seen[k])
            return bz_reject(err, "bad_template",
                             "variables are numbered {{1}} to {{%zu}} without a gap; {{%zu}} is "
                             "missing",
                             out->n, k);
        snprintf(out->names[k - 1], sizeof out->names[k - 1], "%zu", k);
    }
    return BZ_OK;
}

bz_status bz_wa_template_vars_read(const char *text, bz_wa_template_vars *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    for (const char *s = text ? text : ""; *s;) {
        const char *name;
        size_t name_len, len = bz_wa_template_var_at(s, &name, &name_len);
        if (!len) {
            s++;
            continue;
        }
        s += len;
        bz_wa_var_format f = all_digits(name, name_len) ? BZ_WA_VARS_POSITIONAL : BZ_WA_VARS_NAMED;
        if (out->format && out->format != f)
            return bz_reject(err, "bad_template",
                             "mixes positional ({{1}}) and named ({{name}}) variables; a "
                             "template uses one kind");
        out->format = f;
        if (bz_wa_template_var_index(out, name, name_len) >= 0)
            continue;
        if (out->n == BZ_WA_TEMPLATE_VARS_MAX)
            return bz_reject(err, "bad_template", "more than %d variables",
                             BZ_WA_TEMPLATE_VARS_MAX);
        snprintf(out->names[out->n++], BZ_WA_TEMPLATE_VAR_NAME_MAX, "%.*s", (int)name_len, name);
    }
    return out->format == BZ_WA_VARS_POSITIONAL ? order_positions(out, err) : BZ_OK;
}

/* What bz_wa_template_fill writes, into out when not NULL; its length. */
static size_t fill(const char *text, const bz_wa_template_vars *vars, const char *const *values,
                   char *out)
{
    size_t n = 0;
    for (const char *s = text; *s;) {
        const char *name;
        size_t name_len, len = bz_wa_template_var_at(s, &name, &name_len);
        int k = len ? bz_wa_template_var_index(vars, name, name_len) : -1;
        const char *piece = k >= 0 ? values[k] : s;
        size_t piece_len = k >= 0 ? strlen(values[k]) : 1;
        if (out)
            memcpy(out + n, piece, piece_len);
        n += piece_len;
        s += k >= 0 ? len : 1;
    }
    if (out)
        out[n] = '\0';
    return n;
}

char *bz_wa_template_fill(const char *text, const bz_wa_template_vars *vars,
                          const char *const *values)
{
    char *out = malloc(fill(text, vars, values, NULL) + 1);
    if (out)
        fill(text, vars, values, out);
    return out;
}
