/*
 * crm_contacts.h - the CRM's reads of contacts over HTTP, on a worker
 * (crm_request.h; crm_routes.c names the handlers by path; writes are
 * crm_contact_writes.h's):
 *
 *   GET /v1/contacts?phone=|bsuid=              a contact by an identifier
 *   GET /v1/contacts/{contact_id}               a contact by its uuid or id
 *   GET /v1/contacts/{contact_id}/messages      its conversation, newest first,
 *       ?limit=&before=                         a keyset page at a time
 */
#ifndef ING_CRM_CONTACTS_H
#define ING_CRM_CONTACTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "crm/crm_request.h"

/* 1 when url is /v1/contacts/{contact_id} (one segment after it). */
int ing_crm_is_contact_path(const char *url);

/* 1 when url is /v1/contacts/{contact_id}/messages. */
int ing_crm_is_contact_messages_path(const char *url);

/* GET /v1/contacts?phone=E164 | ?bsuid=CC.id: 200 with the contact, 404
 * unknown_contact, 400 naming the argument when none, several or a
 * malformed one is given (?lid= too: a LID is no key of a contact yet). */
void ing_crm_find_contact(ing_crm_request *rq, const char *body, size_t len);

/* The workspace's live contact with phone (E.164; NULL or "": none), else
 * with bsuid, as GET /v1/contacts answers it, into *doc (NULL when there is
 * none; the caller releases it). For a create (crm_contact_writes.c). */
bz_status ing_crm_contact_by_identifiers(ing_crm_request *rq, const char *phone,
                                         const char *bsuid, json_t **doc, bz_error *err);

/* A contact a command names, as PostgreSQL has it: its id, its key
 * (contacts.phone: E.164, else its BSUID or JID), whether it is live, and
 * else the uuid of the contact it was merged into. */
typedef struct ing_crm_contact_ref {
    int64_t id;
    char key[320];
    int live;
    char merged_into[40];
} ing_crm_contact_ref;

/* The workspace's contact that /v1/contacts/{contact_id}<suffix> names,
 * live or merged into another, into *out; 404 unknown_contact (none, or
 * deleted), 400 naming contact_id. */
bz_status ing_crm_contact_of_path(ing_crm_request *rq, const char *suffix,
                                  ing_crm_contact_ref *out, bz_error *err);

/* The same for a contact a body names by ref (its uuid or its id, as
 * text) in its member field: 404 unknown_contact and 400 name field. */
bz_status ing_crm_contact_of_reference(ing_crm_request *rq, const char *ref, const char *field,
                                       ing_crm_contact_ref *out, bz_error *err);

/* 1 when url is /v1/contacts/{contact_id}/merge (ING_CRM_MERGE_SUFFIX). */
#define ING_CRM_MERGE_SUFFIX "/merge"
int ing_crm_is_contact_merge_path(const char *url);

/* GET /v1/contacts/{contact_id}: 200 with it, 404 unknown_contact. */
void ing_crm_read_contact(ing_crm_request *rq, const char *body, size_t len);

/* GET /v1/contacts/{contact_id}/messages: 200 {"messages","next_cursor"},
 * 404 unknown_contact, 400 naming limit or before. */
void ing_crm_read_contact_messages(ing_crm_request *rq, const char *body, size_t len);

#endif
