/*
 * crm_page.h - a page of a keyset read over the CRM's HTTP API (a
 * conversation's messages, crm_contacts.c; a contact's calls, crm_calls.c;
 * webhook endpoints and their deliveries, crm_webhooks.c): how many rows
 * it holds (?limit=) and where it starts (?cursor=, the cursor the
 * previous page answered as next_cursor; a conversation also takes it as
 * ?before=, its name in v0.46.0).
 *
 * A cursor names the last row of a page by its keyset columns, created_at
 * (microseconds since the epoch, exact as PostgreSQL stores it) and id,
 * written "c1_<created_us>_<id>": opaque to the CRM, which passes back
 * what it was given; the "c1" names the form, so that another may follow.
 */
#ifndef ING_CRM_PAGE_H
#define ING_CRM_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define ING_CRM_PAGE_DEFAULT 50
#define ING_CRM_PAGE_MAX 200
/* Bytes a cursor's text needs, its NUL counted. */
#define ING_CRM_CURSOR_SIZE 48

typedef struct ing_crm_cursor {
    int64_t created_us; /* the row's created_at, microseconds since the epoch */
    /* the row's id, > 0 (the inbox folds a row's kind into it:
     * crm_conversations.c) */
    int64_t id;
} ing_crm_cursor;

/* A cursor's time in SQL: $n (microseconds since the epoch) as a
 * timestamptz, or edge ('infinity', '-infinity') when $n is NULL, so that
 * a first page compares with a time no row has. */
#define ING_CRM_CURSOR_TIME(n, edge)                                                             \
    "coalesce('epoch'::timestamptz + $" n "::bigint * interval '1 microsecond', '" edge "')"

/* The page size text asks for (NULL: ING_CRM_PAGE_DEFAULT) into *limit: a
 * decimal 1..ING_CRM_PAGE_MAX, else BZ_ERR_INVALID invalid_field naming
 * field. */
bz_status ing_crm_page_limit(const char *text, const char *field, int *limit, bz_error *err);

/* cur as text into out (cap bytes, ING_CRM_CURSOR_SIZE is enough). */
void ing_crm_cursor_format(ing_crm_cursor cur, char *out, size_t cap);

/* The cursor text names into *cur; BZ_ERR_INVALID invalid_field naming
 * field when it is not one ing_crm_cursor_format wrote. */
bz_status ing_crm_cursor_parse(const char *text, const char *field, ing_crm_cursor *cur,
                               bz_error *err);

#endif
