/*
 * crm_rows.c - a row of the CRM's reads as JSON (see crm_rows.h).
 *
 * Time columns are selected as epoch milliseconds (ING_CRM_MS) and written
 * here as ISO 8601 UTC, so that every read formats its times one way. A
 * message's error is an object only when the provider or the backbone
 * named a code or a message, null else.
 */
#include "crm/crm_rows.h"

#include <inttypes.h>
#include <stdio.h>

#include "core/timespec.h"
#include "pg/pg.h"

enum {
    MSG_ID, MSG_STATUS, MSG_DIRECTION, MSG_CHAT_TYPE, MSG_PROVIDER, MSG_TYPE, MSG_WAM_ID,
    MSG_ACCOUNT, MSG_CONTACT, MSG_GROUP, MSG_USER, MSG_ERROR_CODE, MSG_ERROR_MESSAGE,
    MSG_CREATED, MSG_SENT, MSG_DELIVERED, MSG_READ, MSG_BODY, MSG_MEDIA, MSG_STORED_MEDIA,
    MSG_SENDER_PHONE, MSG_SENDER_NAME, MSG_SENDER_BSUID, MSG_REFERRAL, MSG_INTERACTIVE_REPLY,
    MSG_COLUMNS
};
_Static_assert(MSG_COLUMNS == ING_CRM_MESSAGE_COLUMN_COUNT, "ING_CRM_MESSAGE_COLUMNS' count");

json_t *ing_crm_text_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

json_t *ing_crm_id_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null()
                                      : json_integer(bz_pg_get_int64(res, row, col));
}

json_t *ing_crm_time_or_null(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    char text[32];
    bz_time_format(bz_pg_get_int64(res, row, col), text, sizeof text);
    return json_string(text);
}

json_t *ing_crm_flag(const PGresult *res, int row, int col)
{
    return json_boolean(PQgetvalue(res, row, col)[0] == 't');
}

static json_t *message_error(const PGresult *res, int row)
{
    if (PQgetisnull(res, row, MSG_ERROR_CODE) && PQgetisnull(res, row, MSG_ERROR_MESSAGE))
        return json_null();
    return json_pack("{s:o,s:o}", "code", ing_crm_text_or_null(res, row, MSG_ERROR_CODE),
                     "message", ing_crm_text_or_null(res, row, MSG_ERROR_MESSAGE));
}

/* A member of media as text, null when absent or empty. */
static json_t *media_text(const json_t *media, const char *name)
{
    const char *text = json_string_value(json_object_get(media, name));
    return text && *text ? json_string(text) : json_null();
}

/* A jsonb object column as JSON, null when NULL or no object. */
static json_t *object_or_null(const PGresult *res, int row, int col)
{
    json_t *doc = PQgetisnull(res, row, col) ? NULL
                                             : json_loads(PQgetvalue(res, row, col), 0, NULL);
    if (json_is_object(doc))
        return doc;
    json_decref(doc);
    return json_null();
}

/* The message's media as the webhooks show it (EVENTS.md, chat.media):
 * null without media; stored_media_uuid the bytes the row links, for
 * GET /v1/media/{uuid}, null while the backbone holds none. */
static json_t *message_media(const PGresult *res, int row)
{
    json_t *media = object_or_null(res, row, MSG_MEDIA);
    if (json_is_null(media))
        return media;
    json_t *doc = json_pack(
        "{s:o,s:o,s:o,s:o,s:o,s:I,s:o,s:I,s:o}", "mime_type", media_text(media, "mime_type"), "url",
        media_text(media, "url"), "sha256", media_text(media, "sha256"), "caption",
        media_text(media, "caption"), "filename", media_text(media, "filename"), "size_bytes",
        json_integer_value(json_object_get(media, "size_bytes")), "media_id",
        media_text(media, "media_id"), "duration_seconds",
        json_integer_value(json_object_get(media, "duration_seconds")), "stored_media_uuid",
        ing_crm_text_or_null(res, row, MSG_STORED_MEDIA));
    json_decref(media);
    return doc;
}

json_t *ing_crm_message_doc(const PGresult *res, int row)
{
    return json_pack("{s:s,s:o,s:o,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,"
                     "s:o,s:o,s:o,s:o,s:o}",
                     "message_id", PQgetvalue(res, row, MSG_ID),
                     "status", ing_crm_text_or_null(res, row, MSG_STATUS),
                     "direction", ing_crm_text_or_null(res, row, MSG_DIRECTION),
                     "chat_type", PQgetvalue(res, row, MSG_CHAT_TYPE),
                     "provider", PQgetvalue(res, row, MSG_PROVIDER),
                     "message_type", ing_crm_text_or_null(res, row, MSG_TYPE),
                     "wam_id", ing_crm_text_or_null(res, row, MSG_WAM_ID),
                     "whatsapp_account_id", ing_crm_id_or_null(res, row, MSG_ACCOUNT),
                     "contact_id", ing_crm_id_or_null(res, row, MSG_CONTACT),
                     "group_id", ing_crm_id_or_null(res, row, MSG_GROUP),
                     "user_id", ing_crm_id_or_null(res, row, MSG_USER),
                     "error", message_error(res, row),
                     "created_at", ing_crm_time_or_null(res, row, MSG_CREATED),
                     "sent_at", ing_crm_time_or_null(res, row, MSG_SENT),
                     "delivered_at", ing_crm_time_or_null(res, row, MSG_DELIVERED),
                     "read_at", ing_crm_time_or_null(res, row, MSG_READ),
                     "body", ing_crm_text_or_null(res, row, MSG_BODY),
                     "media", message_media(res, row),
                     "sender_phone", ing_crm_text_or_null(res, row, MSG_SENDER_PHONE),
                     "sender_name", ing_crm_text_or_null(res, row, MSG_SENDER_NAME),
                     "sender_bsuid", ing_crm_text_or_null(res, row, MSG_SENDER_BSUID),
                     "referral", object_or_null(res, row, MSG_REFERRAL),
                     "interactive_reply", object_or_null(res, row, MSG_INTERACTIVE_REPLY));
}

int ing_crm_page_rows(const PGresult *res)
{
    return PQntuples(res) == 1 && PQgetisnull(res, 0, 0) ? 0 : PQntuples(res);
}

json_t *ing_crm_page_doc(const PGresult *res, int rows, int limit, const char *name,
                         json_t *(*doc_of)(const PGresult *res, int row), int us_col,
                         int id_col)
{
    int shown = rows > limit ? limit : rows;
    json_t *list = json_array();
    for (int row = 0; list && row < shown; row++)
        if (json_array_append_new(list, doc_of(res, row)) != 0) {
            json_decref(list);
            list = NULL;
        }
    if (!list)
        return NULL;
    if (rows <= limit)
        return json_pack("{s:o,s:n}", name, list, "next_cursor");
    ing_crm_cursor last = {bz_pg_get_int64(res, shown - 1, us_col),
                           bz_pg_get_int64(res, shown - 1, id_col)};
    char cursor[ING_CRM_CURSOR_SIZE];
    ing_crm_cursor_format(last, cursor, sizeof cursor);
    return json_pack("{s:o,s:s}", name, list, "next_cursor", cursor);
}

void ing_crm_answer_first_row(ing_crm_request *rq, bz_status st, const PGresult *res,
                              json_t *(*doc_of)(const PGresult *res, int row),
                              const bz_error *err)
{
    if (st == BZ_OK)
        ing_crm_reply_doc(rq, 200, doc_of(res, 0));
    else
        ing_crm_refuse(rq, err);
}

bz_status ing_crm_page_args_read(const ing_crm_request *rq, ing_crm_page_args *p,
                                 bz_error *err)
{
    ing_crm_cursor cur = {0, 0};
    const char *asked = ing_crm_request_arg(rq, "limit", NULL);
    int preset = p->limit;
    bz_status st = ing_crm_page_limit(asked, "limit", &p->limit, err);
    if (st == BZ_OK && !asked && preset > 0)
        p->limit = preset;
    const char *cursor = ing_crm_request_arg(rq, "cursor", NULL);
    p->has_cursor = cursor != NULL;
    if (st == BZ_OK && cursor)
        st = ing_crm_cursor_parse(cursor, "cursor", &cur, err);
    snprintf(p->ws, sizeof p->ws, "%" PRId64, rq->workspace_id);
    snprintf(p->at, sizeof p->at, "%" PRId64, cur.created_us);
    snprintf(p->id, sizeof p->id, "%" PRId64, cur.id);
    snprintf(p->rows, sizeof p->rows, "%d", p->limit + 1);
    return st;
}

void ing_crm_answer_workspace_page(ing_crm_request *rq, const char *what,
                                   const char *statement, const char *sql, const char *name,
                                   json_t *(*doc_of)(const PGresult *res, int row), int us_col,
                                   int id_col, int default_limit)
{
    ing_crm_page_args p = {.limit = default_limit};
    bz_error err;
    PGresult *res = NULL;
    bz_status st = ing_crm_page_args_read(rq, &p, &err);
    if (st == BZ_OK) {
        const char *params[] = {p.ws, p.has_cursor ? p.at : NULL, p.id, p.rows};
        st = bz_pg_exec_named(rq->pg, what, statement, sql, 4, params, &res, &err);
    }
    if (st == BZ_OK)
        ing_crm_reply_doc(rq, 200, ing_crm_page_doc(res, PQntuples(res), p.limit, name, doc_of,
                                                    us_col, id_col));
    else
        ing_crm_refuse(rq, &err);
    PQclear(res);
}
