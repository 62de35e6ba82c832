/*
 * crm_groups.c - a group's conversation over the CRM's HTTP API (issue 54;
 * crm_groups.h).
 *
 * Read as read_contract.sql's group_messages reads it, newest first along
 * chats_group_created_idx (group_id, created_at DESC, id DESC), a keyset
 * page at a time, by the code that pages a contact's conversation
 * (crm_contacts.h's owned list): the group and its page in one statement,
 * the same limit, cursor and refusals. A group is its uuid or its id
 * (whatsapp_groups), as the inbox (GET /v1/conversations) and a message's
 * group_id name it; each message has the shape GET /v1/messages/{id}
 * answers, its author in sender_phone, sender_name and sender_bsuid.
 * Groups are never deleted, only left: a group the workspace has is read.
 */
#include "crm/crm_groups.h"

#include "crm/crm_contacts.h"
#include "crm/crm_rows.h"

#define GROUPS_PATH "/v1/groups/"

#define SQL_GROUP_MESSAGES(key)                                                                  \
    ING_CRM_OWNED_PAGE_SQL("whatsapp_groups",                                                    \
                           ING_CRM_MESSAGE_PAGE_COLUMNS,                                         \
                           "chats WHERE group_id = c.id AND workspace_id = $1 "                  \
                           "AND deleted_at IS NULL", key)

static const ing_crm_list_owner group_owner = {
    .path = GROUPS_PATH, .field = "group_id", .noun = "group", .unknown = "unknown_group"};

int ing_crm_is_group_messages_path(const char *url)
{
    size_t len;
    return ing_crm_path_segment(url, GROUPS_PATH, ING_CRM_MESSAGES_SUFFIX, &len) != NULL;
}

void ing_crm_read_group_messages(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    static const ing_crm_owned_list conversation = {
        .owner = &group_owner,
        .suffix = ING_CRM_MESSAGES_SUFFIX,
        .name = "messages",
        .what = "read the group's messages",
        .sql_by_uuid = SQL_GROUP_MESSAGES("uuid = $2::uuid"),
        .sql_by_id = SQL_GROUP_MESSAGES("id = $2::bigint"),
        .statement = "group_messages",
        .doc_of = ing_crm_message_doc,
        .us_col = ING_CRM_MESSAGE_COLUMN_COUNT,
        .id_col = ING_CRM_MESSAGE_COLUMN_COUNT + 1,
    };
    ing_crm_read_owned_list(rq, &conversation);
}
