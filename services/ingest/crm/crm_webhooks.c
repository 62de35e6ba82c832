/*
 * crm_webhooks.c - the CRM's reads of its webhook endpoints and their
 * deliveries over HTTP, on a worker (crm_webhooks.h).
 *
 * Both are keyset pages (crm_page.h) of one statement each on the
 * worker's pooled connection, scoped to the key's workspace; ingest's role
 * may read every column but an endpoint's secret and a delivery's payload
 * (migration 0061). The endpoints are read oldest first along
 * webhook_endpoints_workspace_created_idx (workspace_id, created_at, id);
 * an endpoint's deliveries newest first as read_contract.sql's
 * webhook_deliveries reads them, along
 * webhook_retry_queue_endpoint_created_idx (endpoint_id, created_at DESC,
 * id DESC); of one status, failed along webhook_retry_queue_endpoint_
 * failed_idx (few among many), pending and retrying along the due index
 * (only open rows), success as a filter on the first walk (most rows).
 * One statement finds the endpoint in the key's workspace and its page
 * beside it, so an unknown endpoint (or another workspace's, or a deleted
 * one) is no row, and one with nothing (left) to read is one row of
 * NULLs. The deliveries are named by the endpoint alone: their foreign
 * key (workspace_id, endpoint_id) makes them the endpoint's workspace's,
 * and a workspace_id beside it tempted the planner to combine indexes and
 * sort the endpoint's rows. The endpoint id is a parameter, not the
 * joined row's, so that a plan made for one status sees that endpoint's
 * share of the table (all of its deliveries are one prepared plan, walking
 * the endpoint's index whatever its size). One row more than the page is
 * read to know whether another follows.
 */
#include "crm/crm_webhooks.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "crm/crm_page.h"
#include "crm/crm_rows.h"
#include "pg/pg.h"

#define ENDPOINTS_PATH "/v1/webhook-endpoints"
#define DELIVERIES_SUFFIX "/deliveries"

/* The columns of ING_CRM_ENDPOINT_COLUMNS (crm_webhooks.h), in order. */
enum {
    EP_ID, EP_UUID, EP_NAME, EP_URL, EP_EVENT_TYPES, EP_ENABLED, EP_DISABLED_REASON,
    EP_DISABLED_AT, EP_FAILURES, EP_FAILING_SINCE, EP_LAST_FAILURE, EP_LAST_SUCCESS,
    EP_LAST_CODE, EP_LAST_ERROR, EP_CREATED, EP_CURSOR_US, EP_CURSOR_ID
};

/* The workspace's ($1) live endpoints after the cursor ($2 created_at in
 * microseconds, NULL for the first page; $3 id), oldest first, $4 of them. */
#define SQL_ENDPOINTS                                                                            \
    "SELECT " ING_CRM_ENDPOINT_COLUMNS " FROM webhook_endpoints "                                \
    "WHERE workspace_id = $1 AND deleted_at IS NULL "                                            \
    "AND (created_at, id) > (" ING_CRM_CURSOR_TIME("2", "-infinity") ", $3::bigint) "            \
    "ORDER BY created_at, id LIMIT $4"

/* next_retry_at is when an open delivery is due; a final one has none. */
#define DELIVERY_COLUMNS                                                                         \
    "uuid::text, event_id::text, event_type, status, retry_count, max_retries, "                 \
    "CASE WHEN status IN ('pending', 'retrying') THEN " ING_CRM_MS("next_retry_at") " END, "     \
    "last_status_code, last_error, " ING_CRM_MS("created_at") ", " ING_CRM_MS("updated_at")      \
    ", " ING_CRM_MS("delivered_at") ", " ING_CRM_US("created_at") ", id"
enum {
    DL_UUID, DL_EVENT, DL_TYPE, DL_STATUS, DL_FAILED, DL_MAX_RETRIES, DL_NEXT_RETRY,
    DL_LAST_CODE, DL_LAST_ERROR, DL_CREATED, DL_UPDATED, DL_DELIVERED, DL_CURSOR_US,
    DL_CURSOR_ID
};

/* The workspace's ($1) live endpoint $2 and its deliveries (of status $5,
 * NULL for any) before the cursor ($3 created_at in microseconds, NULL for
 * the first page; $4 id), newest first, $6 of them. */
#define SQL_DELIVERIES                                                                           \
    "SELECT d.* FROM webhook_endpoints e LEFT JOIN LATERAL (SELECT " DELIVERY_COLUMNS " "        \
    "FROM webhook_retry_queue WHERE endpoint_id = $2::bigint "                                   \
    "AND ($5::text IS NULL OR status = $5::text) "                                               \
    "AND (created_at, id) < (" ING_CRM_CURSOR_TIME("3", "infinity") ", $4::bigint) "             \
    "ORDER BY created_at DESC, id DESC LIMIT $6) d ON true "                                     \
    "WHERE e.workspace_id = $1 AND e.id = $2::bigint AND e.deleted_at IS NULL"

/* The statuses a delivery has (0008_webhooks.sql). */
static const char *const statuses[] = {"pending", "retrying", "success", "failed"};

int ing_crm_is_endpoints_path(const char *url)
{
    return strcmp(url, ENDPOINTS_PATH) == 0;
}

int ing_crm_is_deliveries_path(const char *url)
{
    size_t len;
    return ing_crm_path_segment(url, ENDPOINTS_PATH "/", DELIVERIES_SUFFIX, &len) != NULL;
}

int ing_crm_is_endpoint_path(const char *url)
{
    size_t len;
    return ing_crm_path_segment(url, ENDPOINTS_PATH "/", "", &len) != NULL;
}

int ing_crm_is_replay_path(const char *url)
{
    size_t len;
    return ing_crm_path_segment(url, ENDPOINTS_PATH "/", ING_CRM_REPLAY_SUFFIX, &len) != NULL;
}

int ing_crm_is_rotate_secret_path(const char *url)
{
    size_t len;
    return ing_crm_path_segment(url, ENDPOINTS_PATH "/", ING_CRM_ROTATE_SECRET_SUFFIX, &len) !=
           NULL;
}

/* ---- rows as JSON --------------------------------------------------------------------- */

static json_t *event_types_of(const PGresult *res, int row)
{
    return json_loads(PQgetvalue(res, row, EP_EVENT_TYPES), 0, NULL);
}

json_t *ing_crm_endpoint_doc(const PGresult *res, int row)
{
    return json_pack("{s:I,s:s,s:o,s:s,s:o,s:o,s:o,s:o,s:I,s:o,s:o,s:o,s:o,s:o,s:o}",
                     "endpoint_id", (json_int_t)bz_pg_get_int64(res, row, EP_ID),
                     "endpoint_uuid", PQgetvalue(res, row, EP_UUID),
                     "name", ing_crm_text_or_null(res, row, EP_NAME),
                     "url", PQgetvalue(res, row, EP_URL),
                     "event_types", event_types_of(res, row),
                     "enabled", ing_crm_flag(res, row, EP_ENABLED),
                     "disabled_reason", ing_crm_text_or_null(res, row, EP_DISABLED_REASON),
                     "disabled_at", ing_crm_time_or_null(res, row, EP_DISABLED_AT),
                     "consecutive_failures",
                     (json_int_t)bz_pg_get_int64(res, row, EP_FAILURES),
                     "failing_since", ing_crm_time_or_null(res, row, EP_FAILING_SINCE),
                     "last_failure_at", ing_crm_time_or_null(res, row, EP_LAST_FAILURE),
                     "last_success_at", ing_crm_time_or_null(res, row, EP_LAST_SUCCESS),
                     "last_status_code", ing_crm_id_or_null(res, row, EP_LAST_CODE),
                     "last_error", ing_crm_text_or_null(res, row, EP_LAST_ERROR),
                     "created_at", ing_crm_time_or_null(res, row, EP_CREATED));
}

static json_t *delivery_doc(const PGresult *res, int row)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o}",
                     "delivery_id", PQgetvalue(res, row, DL_UUID),
                     "event_id", PQgetvalue(res, row, DL_EVENT),
                     "event_type", PQgetvalue(res, row, DL_TYPE),
                     "status", PQgetvalue(res, row, DL_STATUS),
                     "failed_attempts", (json_int_t)bz_pg_get_int64(res, row, DL_FAILED),
                     "max_retries", (json_int_t)bz_pg_get_int64(res, row, DL_MAX_RETRIES),
                     "next_retry_at", ing_crm_time_or_null(res, row, DL_NEXT_RETRY),
                     "last_status_code", ing_crm_id_or_null(res, row, DL_LAST_CODE),
                     "last_error", ing_crm_text_or_null(res, row, DL_LAST_ERROR),
                     "created_at", ing_crm_time_or_null(res, row, DL_CREATED),
                     "updated_at", ing_crm_time_or_null(res, row, DL_UPDATED),
                     "delivered_at", ing_crm_time_or_null(res, row, DL_DELIVERED));
}

/* ?status= into *status (NULL: any); 400 naming status when it is none a
 * delivery has. */
static bz_status read_status(const ing_crm_request *rq, const char **status, bz_error *err)
{
    const char *asked = ing_crm_request_arg(rq, "status", NULL);
    *status = NULL;
    if (!asked)
        return BZ_OK;
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (strcmp(asked, statuses[i]) == 0) {
            *status = statuses[i];
            return BZ_OK;
        }
    return bz_reject(err, "invalid_field",
                     "field status: one of pending, retrying, success and failed");
}

bz_status ing_crm_endpoint_of_path(const ing_crm_request *rq, const char *suffix, char *out,
                                   size_t cap, bz_error *err)
{
    size_t len = 0;
    const char *segment = ing_crm_path_segment(ing_crm_request_path(rq), ENDPOINTS_PATH "/",
                                               suffix, &len);
    out[0] = '\0';
    if (segment && len < cap)
        snprintf(out, cap, "%.*s", (int)len, segment);
    if (ing_crm_is_positive_id(out))
        return BZ_OK;
    return bz_reject(err, "invalid_field",
                     "field endpoint_id: an endpoint is its id (a positive integer)");
}

/* ---- the reads --------------------------------------------------------------------------- */

void ing_crm_read_endpoints(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    ing_crm_answer_workspace_page(rq, "read the workspace's webhook endpoints", "endpoints",
                                  SQL_ENDPOINTS, "endpoints", ing_crm_endpoint_doc,
                                  EP_CURSOR_US, EP_CURSOR_ID, ING_CRM_PAGE_DEFAULT);
}

void ing_crm_read_deliveries(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    char endpoint[24];
    const char *status = NULL;
    ing_crm_page_args p = {0};
    bz_error err;
    PGresult *res = NULL;
    bz_status st =
        ing_crm_endpoint_of_path(rq, DELIVERIES_SUFFIX, endpoint, sizeof endpoint, &err);
    if (st == BZ_OK)
        st = read_status(rq, &status, &err);
    if (st == BZ_OK)
        st = ing_crm_page_args_read(rq, &p, &err);
    if (st == BZ_OK) {
        const char *params[] = {p.ws, endpoint, p.has_cursor ? p.at : NULL, p.id, status,
                                p.rows};
        /* of one status, the plan depends on which: the failed ones have an
         * index of their own (0061) that only a custom plan can choose */
        st = status ? bz_pg_exec_params(rq->pg, "read the endpoint's deliveries", SQL_DELIVERIES,
                                        6, params, &res, &err)
                    : bz_pg_exec_named(rq->pg, "read the endpoint's deliveries", "deliveries",
                                       SQL_DELIVERIES, 6, params, &res, &err);
    }
    if (st == BZ_OK && PQntuples(res) == 0)
        st = ing_crm_not_found(&err, "unknown_endpoint", "endpoint_id", rq->workspace_id);
    if (st == BZ_OK)
        ing_crm_reply_doc(rq, 200, ing_crm_page_doc(res, ing_crm_page_rows(res), p.limit,
                                                    "deliveries", delivery_doc, DL_CURSOR_US,
                                                    DL_CURSOR_ID));
    else
        ing_crm_refuse(rq, &err);
    PQclear(res);
}
