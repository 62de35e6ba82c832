/*
 * crm_contact_writes.h - the CRM creates and changes contacts over HTTP,
 * on a worker (crm_request.h; crm_routes.c names the handlers by path):
 *
 *   POST /v1/contacts                    create one by phone and/or bsuid
 *   PATCH /v1/contacts/{contact_id}      its name, its opt-out of campaigns
 *   POST /v1/contacts/{contact_id}/merge another contact joined into it
 *
 * Each becomes one ContactRequest on crm.commands, which chat-sync (the
 * owner of contacts) applies; see crm_contact_writes.c.
 */
#ifndef ING_CRM_CONTACT_WRITES_H
#define ING_CRM_CONTACT_WRITES_H

#include <stddef.h>

#include "crm/crm_request.h"

/* POST /v1/contacts {"phone"?, "bsuid"?, "name"?}: 200 with the live
 * contact that has the phone or else the bsuid (unchanged); else 202
 * {"status":"accepted","event_id","phone","bsuid"} once the broker has the
 * create; 400 naming the field. */
void ing_crm_create_contact(ing_crm_request *rq, const char *body, size_t len);

/* PATCH /v1/contacts/{contact_id} {"name"?, "opted_out"?}: 202
 * {"status":"accepted","event_id","contact_id"}; 404 unknown_contact, 400
 * naming the field. */
void ing_crm_change_contact(ing_crm_request *rq, const char *body, size_t len);

/* POST /v1/contacts/{contact_id}/merge {"merged_contact_id": id | uuid}:
 * 202 {"status":"accepted","event_id","contact_id","merged_contact_id"};
 * 404 unknown_contact, 409 contact_merged, 400 naming the field. */
void ing_crm_merge_contacts(ing_crm_request *rq, const char *body, size_t len);

#endif
