/*
 * crm_contacts.h - the CRM's reads of contacts over HTTP, on a worker
 * (crm_request.h; crm_routes.c names the handlers by path; writes are
 * crm_contact_writes.h's):
 *
 *   GET /v1/contacts?phone=|bsuid=              a contact by an identifier
 *   GET /v1/contacts/{contact_id}               a contact by its uuid or id
 *   GET /v1/contacts/{contact_id}/messages      its conversation, newest first,
 *       ?limit=&cursor=                         a keyset page at a time
 *
 * and the lists of an owner read the same way (a contact's calls,
 * crm_calls.c; a group's messages, crm_groups.c).
 */
#ifndef ING_CRM_CONTACTS_H
#define ING_CRM_CONTACTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "crm/crm_page.h"
#include "crm/crm_request.h"

/* 1 when url is /v1/contacts/{contact_id} (one segment after it). */
int ing_crm_is_contact_path(const char *url);

/* 1 when url is /v1/contacts/{contact_id}/messages. */
int ing_crm_is_contact_messages_path(const char *url);

/* 1 when url is /v1/contacts/{contact_id}<suffix> (suffix "/messages"...). */
int ing_crm_is_contact_list_path(const char *url, const char *suffix);

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
 * 404 unknown_contact, 400 naming contact_id, limit, cursor or before. */
void ing_crm_read_contact_messages(ing_crm_request *rq, const char *body, size_t len);

/* A list of an owner's rows ($1 the workspace, $2 the owner's key) as one
 * statement, so that an owner the workspace has none of (live) is no row
 * and one with nothing to list is one row of NULLs: `columns` (the first
 * never NULL in a listed row) from `from_where` (a table and the rows of
 * owner c.id in workspace $1) before the cursor ($3 created_at in
 * microseconds, NULL for the first page; $4 id), newest first, $5 of
 * them; the owner c is a row of `owner_table` where `key` holds. The
 * rows' keyset is (created_at, id), their index ends so. */
#define ING_CRM_OWNED_PAGE_SQL(owner_table, columns, from_where, key)                            \
    "SELECT p.* FROM " owner_table " c LEFT JOIN LATERAL (SELECT " columns " FROM " from_where \
    " AND (created_at, id) < (" ING_CRM_CURSOR_TIME("3", "infinity") ", $4::bigint) "            \
    "ORDER BY created_at DESC, id DESC LIMIT $5) p ON true "                                     \
    "WHERE c.workspace_id = $1 AND c." key

/* A contact's list: of its live row. */
#define ING_CRM_CONTACT_PAGE_SQL(columns, from_where, key)                                       \
    ING_CRM_OWNED_PAGE_SQL("contacts", columns, from_where, key " AND c.deleted_at IS NULL")

/* Whose rows a list is, as its path and its refusals name it. */
typedef struct ing_crm_list_owner {
    const char *path;    /* before the owner's id: "/v1/contacts/" */
    const char *field;   /* the id, as a refusal names it: "contact_id" */
    const char *noun;    /* what it is, in a 400's sentence: "contact" */
    const char *unknown; /* the 404's reason: "unknown_contact" */
} ing_crm_list_owner;

/* A contact, owner of its conversation and its calls. */
extern const ing_crm_list_owner ing_crm_contact_owner;

/* A list of an owner, GET <owner path>{id}<suffix>?limit=&cursor=
 * answering {"<name>": [doc_of each row], "next_cursor"}. */
typedef struct ing_crm_owned_list {
    const ing_crm_list_owner *owner;
    const char *suffix;      /* after the owner's id: "/messages" */
    const char *name;        /* the list's member in the answer */
    const char *what;        /* the read, as an error names it */
    const char *sql_by_uuid; /* ING_CRM_OWNED_PAGE_SQL, c.uuid = $2::uuid */
    const char *sql_by_id;   /* the same, c.id = $2::bigint */
    const char *statement;   /* the two's prepared names, + "_by_uuid" / "_by_id" */
    json_t *(*doc_of)(const PGresult *res, int row);
    int us_col, id_col;      /* the cursor's columns: ING_CRM_US(created_at), id */
    int takes_before;        /* ?before= is ?cursor= too (a conversation's, v0.46.0) */
} ing_crm_owned_list;

/* Answer rq with the page of list it asks for: 200 {"<name>","next_cursor"},
 * 404 the owner's unknown, 400 invalid_field naming the owner's field,
 * limit, cursor (or before). */
void ing_crm_read_owned_list(ing_crm_request *rq, const ing_crm_owned_list *list);

#endif
