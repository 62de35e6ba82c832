/*
 * message.h - a campaign's message: compiled once, when the campaign starts
 * (lifecycle.c refuses a campaign whose message cannot be sent) and when
 * the send loop takes it up (refresh.c), then rendered per contact into
 * the SendMessage (send_round.c).
 *
 * What it holds: the texts the recipient reads (template.h: body, header,
 * footer with the campaign's placeholders), a Meta template's parameters
 * and what fills each, and the extras (extras.h: provider preference,
 * media header, buttons).
 *
 * A template campaign (campaign_type template, its template live) sends
 * the template by name. Its body and header texts, as the templates table
 * keeps them in sync with Meta, declare variables (wa/template_vars.h):
 * named {{first_name}} or positional {{1}}. Each variable is filled by a
 * campaign text (placeholders {{first_name}}, {{full_name}}, {{phone}}):
 * the one campaigns.metadata.template_params names for it
 * ({"1": "{{first_name}}", "order": "SALE-{{phone}}"}), else, for a named
 * variable called like a contact field, that field. A variable without a
 * value, a value for a variable neither text declares, or a
 * template_params that is not such an object refuses the campaign with the
 * reason: Meta would refuse every message (132000). Per contact the values
 * become the template's body and header parameters (named ones with their
 * parameter_name), and the template's texts with the values in place are
 * what the SendMessage carries as body and header_text: what chat-sync
 * stores as sent is what the contact reads. Meta sends a template only
 * while its status (as Meta reports it, kept in templates.status) is
 * APPROVED or FLAGGED: a template campaign that would go through a Meta
 * account fails at start on any other status, or none yet (lifecycle.c),
 * and a running one pauses until Meta approves it again (refresh.c).
 */
#ifndef CMP_MESSAGE_H
#define CMP_MESSAGE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "blazz/v1/campaign.pb-c.h"
#include "core/status.h"
#include "extras.h"
#include "template.h"
#include "wa/meta_limits.h"
#include "wa/template_vars.h"

/* The message's columns, in this order, for a query over campaigns c
 * LEFT JOIN templates t (CMP_MESSAGE_JOIN); cmp_message_columns_read reads
 * them back. */
#define CMP_MESSAGE_COLUMNS                                                                      \
    "c.campaign_type, coalesce(t.name, ''), coalesce(t.language, ''), "                         \
    "coalesce(CASE WHEN c.campaign_type = 'template' THEN t.body_text END, c.body_text, "        \
    "c.message_content, ''), "                                                                   \
    "coalesce(CASE WHEN c.campaign_type = 'template' THEN t.header_text END, c.header_text, ''), " \
    "coalesce(CASE WHEN c.campaign_type = 'template' THEN t.footer_text END, c.footer_text, ''), " \
    "coalesce((c.metadata->'template_params')::text, ''), c.preferred_provider, "                \
    "coalesce(c.header_type, ''), coalesce(c.header_media, ''), "                                \
    "coalesce(c.buttons_data::text, '')"
#define CMP_MESSAGE_COLUMN_COUNT 11
#define CMP_MESSAGE_JOIN "LEFT JOIN templates t ON t.id = c.template_id AND t.deleted_at IS NULL"

/* Whether Meta sends the template t (issue 35), as SQL. */
#define CMP_TEMPLATE_SENDABLE "coalesce(t.status IN ('APPROVED', 'FLAGGED'), false)"
/* The template as Meta reports it, for the same query: id, name, status,
 * rejection reason, CMP_TEMPLATE_SENDABLE; cmp_template_sendable reads them. */
#define CMP_TEMPLATE_COLUMNS                                                                     \
    "coalesce(t.id, 0), coalesce(t.name, ''), coalesce(t.status, ''), "                         \
    "coalesce(t.rejection_reason, ''), " CMP_TEMPLATE_SENDABLE

/* The columns as text (pointers into a PGresult). */
typedef struct cmp_message_columns {
    const char *campaign_type, *template_name, *template_language;
    const char *body, *header, *footer;
    const char *template_params; /* JSON text, "" when absent */
    const char *provider, *header_type, *header_media, *buttons;
} cmp_message_columns;

/* One variable of a template and the compiled campaign text that fills it. */
typedef struct cmp_param {
    char name[BZ_WA_TEMPLATE_VAR_NAME_MAX]; /* "1" or "first_name" */
    cmp_template value;
} cmp_param;

/* A template component's (body or header) parameters, in request order. */
typedef struct cmp_params {
    int named; /* send parameter_name */
    cmp_param *items;
    size_t n;
} cmp_params;

typedef struct cmp_message {
    int is_template;
    char template_name[128], template_language[32];
    cmp_template body, header, footer; /* what the contact reads */
    cmp_params body_params, header_params;
    cmp_extras extras;
} cmp_message;

/* The columns starting at column `first` of row. */
void cmp_message_columns_read(const PGresult *res, int row, int first, cmp_message_columns *out);

/* Whether Meta sends the template whose CMP_TEMPLATE_COLUMNS start at
 * column `first` of row: 1, or 0 with why ("template 'promo' (12) is
 * REJECTED at Meta: INVALID_FORMAT"). */
int cmp_template_sendable(const PGresult *res, int row, int first, char *why, size_t cap);

/* Compile. BZ_ERR_INVALID (reason bad_template or invalid_campaign) with
 * the reason a campaign fails or pauses with; BZ_ERR_NOMEM. Free with
 * cmp_message_free. */
bz_status cmp_message_compile(const cmp_message_columns *cols, cmp_message *out, bz_error *err);
void cmp_message_free(cmp_message *m);

/* Whether the message can go through a Meta account (wa/meta_limits.h):
 * checked on its rendering for a contact whose fields are one character,
 * so what fails is what every message would break (too many or too long
 * buttons, a footer on a text...). A contact's own long values can still
 * make one message too long; meta-sender then fails that one before its
 * request. BZ_ERR_INVALID (reason provider_limit) naming the field;
 * BZ_ERR_NOMEM. */
bz_status cmp_message_check_meta(const cmp_message *msg, bz_error *err);

/* One contact's rendering, owned here; m's content points into it. */
typedef struct cmp_rendered {
    char *body, *header, *footer;
    char **body_values, **header_values;
    char **body_names, **header_names; /* point into the message */
    size_t n_body, n_header;           /* values rendered */
    Blazz__V1__TemplateMessage tpl;
    Blazz__V1__MediaInfo header_media;
} cmp_rendered;

/* Set m's message_type, body, header_text, footer, template (with its
 * parameters) and extras for the contact. BZ_ERR_NOMEM. Free with
 * cmp_rendered_free (also after a failure). */
bz_status cmp_message_render(const cmp_message *msg, const cmp_contact_fields *c,
                             Blazz__V1__SendMessage *m, cmp_rendered *out, bz_error *err);
void cmp_rendered_free(cmp_rendered *r);

#endif
