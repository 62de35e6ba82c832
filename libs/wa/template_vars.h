/*
 * template_vars.h - the variables a WhatsApp message template's text
 * declares, read as Meta's template documentation defines them:
 *   positional {{1}}, {{2}}, ...  numbered from 1 without a gap, filled by
 *                                 the request's parameters in number order;
 *   named {{first_name}}          lowercase letters, digits and underscores
 *                                 (not digits only), filled by the request's
 *                                 parameters with that parameter_name.
 * Spaces inside the braces are allowed ({{ 1 }}), as the CRM writes them.
 * Anything else between double braces is not a variable. A text uses one
 * format; a name used twice is one variable.
 *
 * Shared by everything that fills a template: the agents' template check
 * (libs/wa/crm_template.c, ingest and chat-sync) and campaign-sender's
 * template campaigns, so both count a template's variables as Meta does
 * (Meta answers 132000 to a request whose parameters do not match them).
 */
#ifndef BZ_WA_TEMPLATE_VARS_H
#define BZ_WA_TEMPLATE_VARS_H

#include <stddef.h>

#include "core/status.h"

#define BZ_WA_TEMPLATE_VARS_MAX 32     /* the CRM API's most parameters (crm_command.h) */
#define BZ_WA_TEMPLATE_VAR_NAME_MAX 64 /* bytes of a name, NUL included */

typedef enum bz_wa_var_format {
    BZ_WA_VARS_NONE = 0,
    BZ_WA_VARS_POSITIONAL,
    BZ_WA_VARS_NAMED
} bz_wa_var_format;

typedef struct bz_wa_template_vars {
    bz_wa_var_format format;
    size_t n;
    /* positional: "1" .. "n"; named: in the order of first use */
    char names[BZ_WA_TEMPLATE_VARS_MAX][BZ_WA_TEMPLATE_VAR_NAME_MAX];
} bz_wa_template_vars;

/* If s starts a variable, its length in bytes (braces included) and its
 * name's span in *name / *name_len; 0 when s does not start one. */
size_t bz_wa_template_var_at(const char *s, const char **name, size_t *name_len);

/* The variables of text (NULL reads as ""). BZ_ERR_INVALID (reason
 * bad_template) for a text mixing both formats, positional numbers with a
 * gap, or more than BZ_WA_TEMPLATE_VARS_MAX variables. */
bz_status bz_wa_template_vars_read(const char *text, bz_wa_template_vars *out, bz_error *err);

/* The index of the variable called name (len bytes) in vars; -1 when none. */
int bz_wa_template_var_index(const bz_wa_template_vars *vars, const char *name, size_t len);

/* text with each of vars' variables replaced by its value (values[i] for
 * vars->names[i]); anything else stays as it is. Heap text the caller
 * frees; NULL when out of memory. */
char *bz_wa_template_fill(const char *text, const bz_wa_template_vars *vars,
                          const char *const *values);

#endif
