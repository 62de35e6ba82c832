/*
 * leased_row.h - a webhook_retry_queue row leased to a worker, as the
 * worker takes it into a job (claim.c): the row's columns (alias c) and
 * its endpoint's (alias e), in the order job_from_row and
 * wh_endpoint_from_row read them. A claim returns rows so, and so does the
 * fan-out's insert of rows leased to its own worker from the start
 * (fanout.c), so both are taken by the same code.
 */
#ifndef WH_LEASED_ROW_H
#define WH_LEASED_ROW_H

/* Columns 0..WH_LEASED_ROW_NCOLUMNS - 1; a statement may add one more, the
 * candidates it saw. The last two are the secret a rotation replaced while
 * it still signs (0071), '' once its overlap is over. */
#define WH_LEASED_ROW_COLUMNS                                                                    \
    "c.id, c.event_id, c.endpoint_id, c.workspace_id, c.event_type, c.payload, "                 \
    "c.retry_count, c.max_retries, (extract(epoch FROM c.created_at) * 1000)::bigint, e.url, "   \
    "encode(e.secret_ciphertext, 'hex'), coalesce(encode(e.secret_nonce, 'hex'), ''), "          \
    "e.signature_scheme, e.rate_limit_per_sec, e.max_concurrency, e.timeout_ms, "                \
    "e.enabled AND e.deleted_at IS NULL, coalesce(e.disabled_reason, ''), c.claims, "            \
    "coalesce(c.last_error, ''), coalesce(c.last_status_code, 0), "                              \
    "CASE WHEN e.previous_secret_until > now() "                                                 \
    "THEN encode(e.previous_secret_ciphertext, 'hex') ELSE '' END, "                             \
    "CASE WHEN e.previous_secret_until > now() "                                                 \
    "THEN coalesce(encode(e.previous_secret_nonce, 'hex'), '') ELSE '' END"
#define WH_LEASED_ROW_NCOLUMNS 23

/* What RETURNING gives a statement that selects WH_LEASED_ROW_COLUMNS
 * from it (alias c). */
#define WH_LEASED_ROW_RETURNING                                                                  \
    "RETURNING id, event_id, endpoint_id, workspace_id, event_type, payload, retry_count, "      \
    "max_retries, created_at, claims, last_error, last_status_code"

#endif
