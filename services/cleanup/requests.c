/*
 * requests.c - the exactly-once consumer's handler for cleanup.requests.
 *
 * A CleanupRequest (from the CRM or `blazzctl cleanup run`) becomes a manual
 * sweep: its scope (workspace, account), rules, threshold overrides, actor
 * and dry-run flag are turned into a cl_sweep_spec and run inside the
 * consumer's transaction (sweep.c), so the request's offset in
 * kafka_offsets commits together with its removals, logs and outbox rows:
 * a redelivered request finds its work done and its offset moved on.
 *
 * The transaction first takes the sweep lock as a transaction-level
 * advisory lock; while a timer sweep holds it the request answers
 * TRANSIENT and the consumer retries it with backoff. A dry run only logs
 * what it would remove (sweep.c) and counts it; nothing else changes.
 * Requests that make no sense (unknown rule, SESSION without an account,
 * negative ids) are rejected to the dead-letter topic.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/cleanup.pb-c.h"
#include "cleanup.h"
#include "core/log.h"

static bz_status decode(void *ctx, const rd_kafka_message_t *msg, void **decoded, bz_error *err)
{
    (void)ctx;
    Blazz__V1__CleanupRequest *req =
        blazz__v1__cleanup_request__unpack(NULL, msg->len, msg->payload);
    if (!req)
        return bz_reject(err, "decode_error", "cleanup request at offset %" PRId64
                         ": not a blazz.v1.CleanupRequest", (int64_t)msg->offset);
    bz_status st = BZ_OK;
    int wants_session = 0;
    for (size_t i = 0; st == BZ_OK && i < req->n_rules; i++) {
        int r = (int)req->rules[i];
        if (r < BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_STALE_QR ||
            r > BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_SESSION)
            st = bz_reject(err, "unknown_rule", "cleanup request: unknown rule %d", r);
        wants_session |= r == BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_SESSION;
    }
    if (st == BZ_OK && (req->workspace_id < 0 || req->whatsapp_account_id < 0 ||
                        req->requested_by_user_id < 0 || req->stale_qr_after_s < 0 ||
                        req->disconnected_after_s < 0))
        st = bz_reject(err, "invalid_request", "cleanup request: negative id or threshold");
    if (st == BZ_OK && wants_session && req->whatsapp_account_id == 0)
        st = bz_reject(err, "invalid_request",
                       "cleanup request: rule SESSION needs whatsapp_account_id");
    if (st != BZ_OK) {
        blazz__v1__cleanup_request__free_unpacked(req, NULL);
        return st;
    }
    *decoded = req;
    return BZ_OK;
}

static void release(void *ctx, void *decoded)
{
    (void)ctx;
    if (decoded)
        blazz__v1__cleanup_request__free_unpacked(decoded, NULL);
}

static void apply_rule_list(const Blazz__V1__CleanupRequest *req, cl_sweep_spec *spec)
{
    if (req->n_rules == 0)
        return;
    spec->rules = 0;
    spec->retention = 0;
    for (size_t i = 0; i < req->n_rules; i++) {
        switch (req->rules[i]) {
        case BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_STALE_QR:
            spec->rules |= 1u << BZ_CLEANUP_RULE_STALE_QR;
            break;
        case BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_DISCONNECTED:
            spec->rules |= 1u << BZ_CLEANUP_RULE_DISCONNECTED;
            break;
        case BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_DUPLICATES:
            spec->rules |= 1u << BZ_CLEANUP_RULE_DUPLICATE;
            break;
        case BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_SESSION:
            spec->rules |= 1u << BZ_CLEANUP_RULE_SESSION;
            break;
        case BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_RETENTION:
            spec->retention = 1;
            break;
        default:
            break;
        }
    }
}

/* The manual sweep the request asks for. Its strings point into req. */
static bz_status spec_of_request(cl_ctx *ctx, const Blazz__V1__CleanupRequest *req,
                                 cl_sweep_spec *spec, bz_error *err)
{
    bz_status st = cl_spec_init(ctx, spec, CL_TYPE_MANUAL, err);
    if (st != BZ_OK)
        return st;
    spec->retention = 0; /* only when asked for: RETENTION is not a session rule */
    apply_rule_list(req, spec);
    spec->dry_run = req->dry_run;
    spec->workspace_id = req->workspace_id;
    spec->account_id = req->whatsapp_account_id;
    spec->executed_by = req->requested_by_user_id;
    spec->requested_by = req->requested_by;
    spec->note = req->reason;
    if (req->stale_qr_after_s > 0)
        spec->thresholds_s[BZ_CLEANUP_RULE_STALE_QR] = req->stale_qr_after_s;
    if (req->disconnected_after_s > 0)
        spec->thresholds_s[BZ_CLEANUP_RULE_DISCONNECTED] = req->disconnected_after_s;
    const char *trace = req->envelope ? req->envelope->trace_id : NULL;
    if (trace && *trace && strlen(trace) < sizeof spec->trace_id)
        snprintf(spec->trace_id, sizeof spec->trace_id, "%s", trace);
    return BZ_OK;
}

static bz_status take_sweep_lock(cl_ctx *ctx, PGconn *conn, bz_error *err)
{
    if (!ctx->s.advisory_lock)
        return BZ_OK;
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)CL_SWEEP_LOCK_KEY);
    const char *params[] = {key};
    PGresult *res = PQexecParams(conn, "SELECT pg_try_advisory_xact_lock($1::bigint)", 1, NULL,
                                 params, NULL, NULL, 0);
    bz_status st = bz_pg_check(conn, res, "take the sweep lock for a manual request", err);
    if (st == BZ_OK && strcmp(PQgetvalue(res, 0, 0), "t") != 0)
        st = bz_fail(err, BZ_ERR_TRANSIENT, "manual cleanup: a sweep is running; retrying later");
    PQclear(res);
    return st;
}

static bz_status apply_one(cl_ctx *ctx, PGconn *conn, const Blazz__V1__CleanupRequest *req,
                           bz_error *err)
{
    const char *event_id = req->envelope ? req->envelope->event_id : NULL;
    cl_sweep_spec spec;
    cl_sweep_result result = {0};
    bz_status st = spec_of_request(ctx, req, &spec, err);
    if (st == BZ_OK)
        st = spec.dry_run ? cl_sweep_preview(ctx, conn, &spec, &result, err)
                          : cl_sweep_in_txn(ctx, conn, &spec, &result, err);
    if (st != BZ_OK)
        return bz_wrap(err, "manual cleanup %s", event_id ? event_id : "-");
    uint64_t removed = 0;
    for (int r = 0; r < BZ_CLEANUP_RULE_COUNT; r++)
        removed += result.removed[r];
    bz_log_event(BZ_LOG_INFO, event_id, spec.trace_id,
                 "manual cleanup%s by %s, workspace %" PRId64 ": removed %" PRIu64
                 " sessions, purged %" PRIu64 " webhook rows",
                 spec.dry_run ? " (dry run)" : "",
                 req->requested_by && *req->requested_by ? req->requested_by : "-",
                 req->workspace_id, removed, result.purged_webhooks);
    if (ctx->have_metrics)
        bz_counter_inc(bz_counter_family_with(ctx->m.sweeps, "manual",
                                              spec.dry_run ? "dry_run" : "done"));
    return BZ_OK;
}

static bz_status apply(void *arg, PGconn *conn, bz_eo_record *records, size_t n, bz_error *err)
{
    cl_ctx *ctx = arg;
    bz_status st = n ? take_sweep_lock(ctx, conn, err) : BZ_OK;
    for (size_t i = 0; st == BZ_OK && i < n; i++)
        st = apply_one(ctx, conn, records[i].decoded, err);
    return st;
}

const bz_eo_handler cl_request_handler = {
    .decode = decode,
    .apply = apply,
    .release = release,
};
