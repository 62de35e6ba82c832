/*
 * crm_template.h - an agent's template message checked against the
 * workspace's templates table: the template must exist (name, and language
 * when given) and get exactly as many body and header parameters as its
 * texts declare variables (wa/template_vars.h: positional {{1}}, {{2}}...
 * filled in number order, or named {{first_name}}... filled in the order
 * the text first uses them), as Meta counts them. Shared by ingest
 * (answers 404 / 400 before accepting) and chat-sync (dead-letters commands
 * that reached Kafka another way, e.g. blazzctl), so both refuse the same
 * commands for the same reasons.
 */
#ifndef BZ_WA_CRM_TEMPLATE_H
#define BZ_WA_CRM_TEMPLATE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "blazz/v1/campaign.pb-c.h"
#include "core/status.h"
#include "wa/template_vars.h"

/* What a checked template message becomes. */
typedef struct bz_crm_template_fill {
    char *rendered;             /* heap: the body with its parameters in place */
    bz_wa_template_vars body;   /* the variables the parameters fill: their */
    bz_wa_template_vars header; /* names go to Meta for a named template */
} bz_crm_template_fill;

/* Check t for workspace_id. BZ_OK fills *fill (free fill->rendered);
 * BZ_ERR_NOT_FOUND "field template.name: ..." for an unknown template;
 * BZ_ERR_INVALID (reason missing_field / invalid_field) "field
 * template.body_params: ..." for a parameter count that does not match or a
 * template text Meta would not accept, and (reason too_large) for a text
 * that renders longer than BZ_WA_TEXT_MAX_BYTES (wa/text_limits.h);
 * BZ_ERR_TRANSIENT when PostgreSQL cannot answer. */
bz_status bz_crm_template_render(PGconn *conn, int64_t workspace_id,
                                 const Blazz__V1__TemplateMessage *t, bz_crm_template_fill *fill,
                                 bz_error *err);

/* The names of a named template's variables as the SendMessage carries
 * them (body_param_names / header_param_names): points out->... into fill
 * and names (storage of BZ_WA_TEMPLATE_VARS_MAX pointers each), nothing for
 * positional ones. */
void bz_crm_template_names(const bz_crm_template_fill *fill, Blazz__V1__TemplateMessage *out,
                           char **body_names, char **header_names);

#endif
