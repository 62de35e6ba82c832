/*
 * crm_interactive_json.h - the `interactive` object of an agent's message
 * (crm_interactive_json.c).
 */
#ifndef ING_CRM_INTERACTIVE_JSON_H
#define ING_CRM_INTERACTIVE_JSON_H

#include <jansson.h>

#include "blazz/v1/crm.pb-c.h"
#include "core/status.h"

/* root's `interactive` member, when it is an object, into s->interactive
 * (heap, freed with s); BZ_ERR_INVALID naming the member refused. */
bz_status ing_crm_json_interactive(json_t *root, Blazz__V1__SendChatMessage *s, bz_error *err);

#endif
