/*
 * crm_template.h - an agent's template message checked against the
 * workspace's templates table: the template must exist (name, and language
 * when given) and get exactly as many body and header parameters as its
 * texts have numbered placeholders ({{1}}, {{2}}, ... as WhatsApp writes
 * them). Shared by ingest (answers 404 / 400 before accepting) and chat-sync
 * (dead-letters commands that reached Kafka another way, e.g. blazzctl), so
 * both refuse the same commands for the same reasons.
 */
#ifndef BZ_PG_CRM_TEMPLATE_H
#define BZ_PG_CRM_TEMPLATE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "blazz/v1/campaign.pb-c.h"
#include "core/status.h"

/* Check t for workspace_id. BZ_OK fills *rendered (heap text the caller
 * frees: the body with its parameters substituted, what the CRM shows);
 * BZ_ERR_NOT_FOUND "field template.name: ..." for an unknown template;
 * BZ_ERR_INVALID (reason missing_field / invalid_field) "field
 * template.body_params: ..." for a parameter count that does not match,
 * and (reason too_large) for a text that renders longer than
 * BZ_WA_TEXT_MAX_BYTES (wa/text_limits.h); BZ_ERR_TRANSIENT when
 * PostgreSQL cannot answer. */
bz_status bz_crm_template_render(PGconn *conn, int64_t workspace_id,
                                 const Blazz__V1__TemplateMessage *t, char **rendered,
                                 bz_error *err);

/* The highest {{N}} placeholder number in text (0 when none). */
int bz_crm_template_placeholders(const char *text);

#endif
