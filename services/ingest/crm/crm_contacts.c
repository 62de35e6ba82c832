/*
 * crm_contacts.c - the CRM's reads of contacts over HTTP, on a worker
 * (crm_contacts.h).
 *
 * A contact is a person known by a phone, a BSUID and/or a LID (decision
 * 0010): each identifier is a unique key of the workspace's live contacts
 * (contacts_workspace_phone_key, _bsuid_key, _lid_key), so a lookup is
 * one indexed statement on the worker's pooled connection.
 * In a path a contact is its uuid, or its id as messages and sends name it
 * (contact_id): the primary key or contacts' unique uuid.
 *
 * A conversation is read as read_contract.sql's contact_messages reads it:
 * newest first along chats_contact_created_idx (contact_id, created_at
 * DESC, id DESC), a keyset page at a time (crm_page.h). One statement
 * finds the contact in the key's workspace and its page beside it, so an
 * unknown contact (or another workspace's) is no row, and a contact with
 * nothing (left) to read is one row of NULLs. One row more than the page
 * is read to know whether another follows. Each message has the shape
 * GET /v1/messages/{message_id} answers (crm_rows.h). A contact's calls
 * (crm_calls.c) and a group's conversation (crm_groups.c) are other such
 * lists of an owner, read by the same code.
 */
#include "crm/crm_contacts.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/uuid.h"
#include "crm/crm_page.h"
#include "crm/crm_rows.h"
#include "pg/pg.h"
#include "wa/bsuid.h"
#include "wa/jid.h"
#include "wa/phone.h"

#define CONTACTS_PATH "/v1/contacts/"

/* phone is the E.164 only when it is one: else it holds the BSUID or LID
 * (decision 0010), which their own members carry. */
#define CONTACT_COLUMNS                                                                          \
    "id, uuid::text, " ING_CRM_E164_OR_NULL("phone") ", bsuid, parent_bsuid, "                \
    "username, metadata->>'jid', first_name, last_name, full_name, email, provider_type, "       \
    "whatsapp_account_id, unread_messages, " ING_CRM_MS("last_message_at") ", "                  \
    ING_CRM_MS("created_at") ", " ING_CRM_MS("updated_at") ", lid, metadata->>'saved_name'"
enum {
    CON_ID, CON_UUID, CON_PHONE, CON_BSUID, CON_PARENT_BSUID, CON_USERNAME, CON_JID, CON_FIRST,
    CON_LAST, CON_FULL, CON_EMAIL, CON_PROVIDER, CON_ACCOUNT, CON_UNREAD, CON_LAST_MESSAGE,
    CON_CREATED, CON_UPDATED, CON_LID, CON_SAVED_NAME
};

/* The workspace's ($1) live contact whose key is $2. */
#define SQL_CONTACT(key)                                                                         \
    "SELECT " CONTACT_COLUMNS " FROM contacts WHERE workspace_id = $1 AND " key                  \
    " AND deleted_at IS NULL"

/* A message's columns, then its cursor's (crm_contacts.h's page). */
#define SQL_CONVERSATION(key)                                                                    \
    ING_CRM_CONTACT_PAGE_SQL(ING_CRM_MESSAGE_PAGE_COLUMNS,                                       \
                             "chats WHERE contact_id = c.id AND workspace_id = $1 "              \
                             "AND deleted_at IS NULL", key)

/* The identifiers a contact is found by, as the query names them. */
typedef enum { BY_PHONE, BY_BSUID, BY_LID, IDENTIFIERS } identifier;
static const char *const identifier_names[IDENTIFIERS] = {"phone", "bsuid", "lid"};

int ing_crm_is_contact_path(const char *url)
{
    size_t len;
    return ing_crm_path_segment(url, CONTACTS_PATH, "", &len) != NULL;
}

int ing_crm_is_contact_messages_path(const char *url)
{
    return ing_crm_is_contact_list_path(url, ING_CRM_MESSAGES_SUFFIX);
}

int ing_crm_is_contact_list_path(const char *url, const char *suffix)
{
    size_t len;
    return ing_crm_path_segment(url, CONTACTS_PATH, suffix, &len) != NULL;
}

/* ---- the contact as JSON -------------------------------------------------------------- */

static json_t *contact_doc(const PGresult *res, int row)
{
    return json_pack("{s:I,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:o,s:o,s:o,"
                     "s:o}",
                     "contact_id", (json_int_t)bz_pg_get_int64(res, row, CON_ID),
                     "contact_uuid", PQgetvalue(res, row, CON_UUID),
                     "phone", ing_crm_text_or_null(res, row, CON_PHONE),
                     "bsuid", ing_crm_text_or_null(res, row, CON_BSUID),
                     "parent_bsuid", ing_crm_text_or_null(res, row, CON_PARENT_BSUID),
                     "lid", ing_crm_text_or_null(res, row, CON_LID),
                     "username", ing_crm_text_or_null(res, row, CON_USERNAME),
                     "jid", ing_crm_text_or_null(res, row, CON_JID),
                     "first_name", ing_crm_text_or_null(res, row, CON_FIRST),
                     "last_name", ing_crm_text_or_null(res, row, CON_LAST),
                     "full_name", ing_crm_text_or_null(res, row, CON_FULL),
                     "email", ing_crm_text_or_null(res, row, CON_EMAIL),
                     "provider", ing_crm_text_or_null(res, row, CON_PROVIDER),
                     "whatsapp_account_id", ing_crm_id_or_null(res, row, CON_ACCOUNT),
                     "unread_messages", (json_int_t)bz_pg_get_int64(res, row, CON_UNREAD),
                     "last_message_at", ing_crm_time_or_null(res, row, CON_LAST_MESSAGE),
                     "created_at", ing_crm_time_or_null(res, row, CON_CREATED),
                     "updated_at", ing_crm_time_or_null(res, row, CON_UPDATED),
                     "saved_name", ing_crm_text_or_null(res, row, CON_SAVED_NAME));
}

/* ---- a contact by an identifier -------------------------------------------------------- */

/* The one identifier the query names into *which; 400 naming the argument
 * when it names none, several, or one more than once. */
static bz_status one_identifier(const ing_crm_request *rq, identifier *which, bz_error *err)
{
    int given = 0;
    for (int i = 0; i < IDENTIFIERS; i++) {
        int times = 0;
        ing_crm_request_arg(rq, identifier_names[i], &times);
        if (times > 0 && given > 0)
            return bz_reject(err, "invalid_field",
                             "field %s: name the contact by one identifier only, not %s too",
                             identifier_names[i], identifier_names[*which]);
        if (times > 1)
            return bz_reject(err, "invalid_field", "field %s: given %d times, once is all",
                             identifier_names[i], times);
        if (times > 0)
            *which = (identifier)i;
        given += times;
    }
    if (!given)
        return bz_reject(err, "missing_field",
                         "field phone: name the contact by one of phone (E.164), bsuid or "
                         "lid");
    return BZ_OK;
}

/* The identifier's value as its key holds it (a phone in E.164) into out
 * (cap bytes); 400 naming it when it is malformed. */
static bz_status key_of(const ing_crm_request *rq, identifier which, char *out, size_t cap,
                        bz_error *err)
{
    const char *value = ing_crm_request_arg(rq, identifier_names[which], NULL);
    if (which == BY_LID) {
        bz_jid_kind kind;
        bz_error inner;
        if (bz_jid_canonicalize(value, out, cap, &kind, &inner) != BZ_OK || kind != BZ_JID_LID)
            return bz_reject(err, "invalid_field", "field lid: not a LID (<digits>@lid)");
        return BZ_OK;
    }
    if (which == BY_BSUID) {
        if (!bz_bsuid_valid(value))
            return bz_reject(err, "invalid_field",
                             "field bsuid: not a BSUID (CC.<1-128 letters and digits>)");
        snprintf(out, cap, "%s", value);
        return BZ_OK;
    }
    if (bz_phone_normalize(value, ing_crm_request_config(rq)->default_cc, out, cap, err) ==
        BZ_OK)
        return BZ_OK;
    bz_wrap(err, "field phone");
    return bz_reclass(err, BZ_ERR_INVALID, "invalid_field");
}

void ing_crm_find_contact(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    static const char *const sql[IDENTIFIERS] = {SQL_CONTACT("phone = $2"),
                                                 SQL_CONTACT("bsuid = $2"),
                                                 SQL_CONTACT("lid = $2")};
    identifier which = BY_PHONE;
    char key[BZ_BSUID_ID_MAX + 8];
    bz_error err;
    PGresult *res = NULL;
    bz_status st = one_identifier(rq, &which, &err);
    if (st == BZ_OK)
        st = key_of(rq, which, key, sizeof key, &err);
    if (st == BZ_OK)
        st = ing_crm_lookup(rq, "look up the contact", sql[which], key, &res, &err);
    if (st == BZ_OK && !res)
        st = ing_crm_not_found(&err, "unknown_contact", identifier_names[which],
                               rq->workspace_id);
    ing_crm_answer_first_row(rq, st, res, contact_doc, &err);
    PQclear(res);
}

/* ---- a contact by its path ------------------------------------------------------------- */

/* Which key a path's contact_id is: its uuid, or its id (1..INT64_MAX). */
typedef enum { KEY_UUID, KEY_ID } path_key;

const ing_crm_list_owner ing_crm_contact_owner = {
    .path = CONTACTS_PATH, .field = "contact_id", .noun = "contact",
    .unknown = "unknown_contact"};

/* Which key a reference to a noun (a contact, a group: a path's
 * contact_id, a body's member named field) is: its id (1..INT64_MAX) or
 * its uuid; 400 naming field when it is neither. */
static bz_status reference_key(const char *ref, const char *noun, const char *field,
                               path_key *key, bz_error *err)
{
    if (ing_crm_is_positive_id(ref)) {
        *key = KEY_ID;
        return BZ_OK;
    }
    if (bz_uuid_is_valid(ref)) {
        *key = KEY_UUID;
        return BZ_OK;
    }
    return bz_reject(err, "invalid_field",
                     "field %s: a %s is its uuid or its id (a positive integer)", field, noun);
}

/* The owner's id between its path and suffix into id (cap bytes) and
 * which key it is into *key; 400 naming the owner's field when it is
 * neither. */
static bz_status path_owner(const ing_crm_request *rq, const ing_crm_list_owner *owner,
                            const char *suffix, char *id, size_t cap, path_key *key,
                            bz_error *err)
{
    size_t len = 0;
    const char *segment = ing_crm_path_segment(ing_crm_request_path(rq), owner->path, suffix,
                                               &len);
    if (segment && len < cap)
        snprintf(id, cap, "%.*s", (int)len, segment);
    else
        id[0] = '\0';
    return reference_key(id, owner->noun, owner->field, key, err);
}

bz_status ing_crm_contact_by_identifiers(ing_crm_request *rq, const char *phone,
                                         const char *bsuid, json_t **doc, bz_error *err)
{
    static const char *const sql[] = {SQL_CONTACT("phone = $2"), SQL_CONTACT("bsuid = $2")};
    const char *const keys[] = {phone, bsuid};
    PGresult *res = NULL;
    bz_status st = BZ_OK;
    *doc = NULL;
    for (int i = 0; st == BZ_OK && !res && i < 2; i++)
        if (keys[i] && *keys[i])
            st = ing_crm_lookup(rq, "look up the contact", sql[i], keys[i], &res, err);
    if (st == BZ_OK && res && !(*doc = contact_doc(res, 0)))
        st = bz_fail(err, BZ_ERR_NOMEM, "look up the contact: out of memory");
    PQclear(res);
    return st;
}

/* The workspace's contact ref (which key) names, live or merged into
 * another: its id, its key and whether it is live. */
static bz_status contact_of_ref(ing_crm_request *rq, const char *ref, path_key which,
                                const char *field, ing_crm_contact_ref *out, bz_error *err)
{
    static const char *const sql[] = {
        [KEY_UUID] = "SELECT id, phone, deleted_at IS NULL, metadata->>'merged_into' FROM "
                     "contacts WHERE workspace_id = $1 AND uuid = $2::uuid AND "
                     "(deleted_at IS NULL OR metadata ? 'merged_into')",
        [KEY_ID] = "SELECT id, phone, deleted_at IS NULL, metadata->>'merged_into' FROM "
                   "contacts WHERE workspace_id = $1 AND id = $2::bigint AND "
                   "(deleted_at IS NULL OR metadata ? 'merged_into')"};
    PGresult *res = NULL;
    bz_status st = ing_crm_lookup(rq, "look up the contact", sql[which], ref, &res, err);
    if (st == BZ_OK && !res)
        st = ing_crm_not_found(err, "unknown_contact", field, rq->workspace_id);
    if (st == BZ_OK) {
        out->id = bz_pg_get_int64(res, 0, 0);
        snprintf(out->key, sizeof out->key, "%s", PQgetvalue(res, 0, 1));
        out->live = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
        snprintf(out->merged_into, sizeof out->merged_into, "%s", PQgetvalue(res, 0, 3));
    }
    PQclear(res);
    return st;
}

bz_status ing_crm_contact_of_path(ing_crm_request *rq, const char *suffix,
                                  ing_crm_contact_ref *out, bz_error *err)
{
    char path_id[BZ_UUID_STR_SIZE];
    path_key which = KEY_UUID;
    bz_status st = path_owner(rq, &ing_crm_contact_owner, suffix, path_id, sizeof path_id,
                                &which, err);
    return st == BZ_OK ? contact_of_ref(rq, path_id, which, "contact_id", out, err) : st;
}

bz_status ing_crm_contact_of_reference(ing_crm_request *rq, const char *ref, const char *field,
                                       ing_crm_contact_ref *out, bz_error *err)
{
    path_key which = KEY_UUID;
    bz_status st = reference_key(ref, "contact", field, &which, err);
    return st == BZ_OK ? contact_of_ref(rq, ref, which, field, out, err) : st;
}

int ing_crm_is_contact_merge_path(const char *url)
{
    size_t len;
    return ing_crm_path_segment(url, CONTACTS_PATH, ING_CRM_MERGE_SUFFIX, &len) != NULL;
}

void ing_crm_read_contact(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    static const char *const sql[] = {[KEY_UUID] = SQL_CONTACT("uuid = $2::uuid"),
                                      [KEY_ID] = SQL_CONTACT("id = $2::bigint")};
    char id[BZ_UUID_STR_SIZE];
    path_key key = KEY_UUID;
    bz_error err;
    PGresult *res = NULL;
    bz_status st = path_owner(rq, &ing_crm_contact_owner, "", id, sizeof id, &key, &err);
    if (st == BZ_OK)
        st = ing_crm_lookup(rq, "look up the contact", sql[key], id, &res, &err);
    if (st == BZ_OK && !res)
        st = ing_crm_not_found(&err, "unknown_contact", "contact_id", rq->workspace_id);
    ing_crm_answer_first_row(rq, st, res, contact_doc, &err);
    PQclear(res);
}

/* ---- an owner's list: a contact's conversation and calls, a group's --------------------- */

/* What an owner's page asks for: the owner, the page's size and where it
 * starts (has_cursor 0: at the newest row). */
typedef struct page_request {
    char id[BZ_UUID_STR_SIZE];
    path_key key;
    int limit;
    int has_cursor;
    ing_crm_cursor before;
} page_request;

static bz_status read_page_request(const ing_crm_request *rq, const ing_crm_owned_list *list,
                                   page_request *p, bz_error *err)
{
    bz_status st = path_owner(rq, list->owner, list->suffix, p->id, sizeof p->id, &p->key, err);
    if (st == BZ_OK)
        st = ing_crm_page_limit(ing_crm_request_arg(rq, "limit", NULL), "limit", &p->limit, err);
    /* before is v0.46.0's name for a conversation's cursor, kept for its
     * clients; the other list routes never had it */
    const char *cursor = ing_crm_request_arg(rq, "cursor", NULL);
    const char *before = list->takes_before ? ing_crm_request_arg(rq, "before", NULL) : NULL;
    p->has_cursor = cursor || before;
    if (st == BZ_OK && cursor && before)
        st = bz_reject(err, "invalid_field",
                       "field before: the former name of cursor; give one of them, not both");
    else if (st == BZ_OK && p->has_cursor)
        st = ing_crm_cursor_parse(cursor ? cursor : before, cursor ? "cursor" : "before",
                                  &p->before, err);
    return st;
}

/* The owner's page into *res: no row when the workspace has no such
 * owner; limit + 1 rows at most, the last only to tell there is more. */
static bz_status read_page(ing_crm_request *rq, const ing_crm_owned_list *list,
                           const page_request *p, PGresult **res, bz_error *err)
{
    char ws[24], at[24], id[24], limit[16];
    snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
    snprintf(at, sizeof at, "%" PRId64, p->before.created_us);
    snprintf(id, sizeof id, "%" PRId64, p->has_cursor ? p->before.id : 0);
    snprintf(limit, sizeof limit, "%d", p->limit + 1);
    const char *params[] = {ws, p->id, p->has_cursor ? at : NULL, id, limit};
    char statement[48];
    snprintf(statement, sizeof statement, "%s_by_%s", list->statement,
             p->key == KEY_UUID ? "uuid" : "id");
    return bz_pg_exec_named(rq->pg, list->what, statement,
                            p->key == KEY_UUID ? list->sql_by_uuid : list->sql_by_id, 5, params,
                            res, err);
}

void ing_crm_read_owned_list(ing_crm_request *rq, const ing_crm_owned_list *list)
{
    page_request p = {0};
    bz_error err;
    PGresult *res = NULL;
    bz_status st = read_page_request(rq, list, &p, &err);
    if (st == BZ_OK)
        st = read_page(rq, list, &p, &res, &err);
    if (st == BZ_OK && PQntuples(res) == 0)
        st = ing_crm_not_found(&err, list->owner->unknown, list->owner->field,
                               rq->workspace_id);
    if (st == BZ_OK)
        ing_crm_reply_doc(rq, 200,
                          ing_crm_page_doc(res, ing_crm_page_rows(res), p.limit, list->name,
                                           list->doc_of, list->us_col, list->id_col));
    else
        ing_crm_refuse(rq, &err);
    PQclear(res);
}

void ing_crm_read_contact_messages(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    static const ing_crm_owned_list conversation = {
        .owner = &ing_crm_contact_owner,
        .suffix = ING_CRM_MESSAGES_SUFFIX,
        .name = "messages",
        .what = "read the contact's messages",
        .sql_by_uuid = SQL_CONVERSATION("uuid = $2::uuid"),
        .sql_by_id = SQL_CONVERSATION("id = $2::bigint"),
        .statement = "contact_messages",
        .doc_of = ing_crm_message_doc,
        .us_col = ING_CRM_MESSAGE_COLUMN_COUNT,
        .id_col = ING_CRM_MESSAGE_COLUMN_COUNT + 1,
        .takes_before = 1,
    };
    ing_crm_read_owned_list(rq, &conversation);
}
