/*
 * receipts.c - campaign.receipts: move campaign logs forward and keep the
 * campaign's counters exact.
 *
 * A batch is applied with three statements whatever its size: lock the
 * logs it names (SELECT ... FOR UPDATE), replay the receipts in order
 * against those rows in memory, then write the changed logs and the
 * per-campaign counter deltas with one unnest() UPDATE each. Statuses only
 * move forward, queued -> sent -> delivered -> read (a receipt may skip
 * steps: each step crossed counts once), and a counter changes only when a
 * log's status actually changes, so duplicates, replays and out-of-order
 * receipts leave the counters equal to the number of logs at or beyond
 * each step (messages_sent = sent + delivered + read, ...).
 *
 * FAILED applies to a message in flight (queued or sent). A transient error
 * (its code is listed in retry.transient_errors) with retries left puts the
 * log back to pending, retry_count + 1, and the sender sends it again under
 * a new idempotency key; otherwise the log is failed for good. Every failed
 * attempt is added to campaigns.metadata.failed_attempts, the monotonic
 * counter the auto-pause window is computed from, but Meta's per-user
 * marketing limit (131049): that one is the recipient's, says nothing of the
 * campaign or its account, and lifts with time (ARCHITECTURE.md §12.11). A
 * log it failed goes back to pending once, not to be sent before
 * retry.marketing_limit_after_s has passed (campaign_logs.retry_at, which
 * the send round reads); a log that already has a retry_at, or any when
 * that setting is 0, fails for good. Either way the log stays one contact's
 * one send: a retry that goes through is counted once, as sent.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "campaign_sender.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "pg/columns.h"
#include "pg/pg.h"
#include "receipts_waiting.h"

/* skipped (send_round.c) is last: never sent, so no receipt moves it. */
enum { ST_PENDING, ST_QUEUED, ST_SENT, ST_DELIVERED, ST_READ, ST_FAILED, ST_SKIPPED };
static const char *const status_names[] = {"pending", "queued", "sent", "delivered", "read",
                                           "failed", "skipped"};

typedef struct log_state {
    int64_t id, campaign_id, workspace_id;
    char uuid[BZ_UUID_STR_SIZE];
    int status, retry_count, changed;
    int limit_retried; /* it has a retry_at: Meta's marketing limit was waited out once */
    int retry_after_s; /* > 0: wait this long before it is sent again (retry_at) */
    int64_t sent_ms, delivered_ms, read_ms, failed_ms;
    char error[256];
    const char *wam_id; /* points into a receipt */
} log_state;

typedef struct campaign_delta {
    int64_t id;
    int64_t sent, delivered, read, failed, failed_attempts;
} campaign_delta;

typedef struct receipt_batch {
    log_state *logs;
    size_t nlogs;
    campaign_delta *deltas;
    size_t ndeltas;
} receipt_batch;

static int status_from_name(const char *s)
{
    for (int i = 0; i <= ST_SKIPPED; i++)
        if (strcmp(status_names[i], s) == 0)
            return i;
    return ST_PENDING;
}

const char *cmp_receipt_log_uuid(const Blazz__V1__CampaignReceipt *rc)
{
    if (rc->campaign_log_uuid && bz_uuid_is_valid(rc->campaign_log_uuid))
        return rc->campaign_log_uuid;
    if (rc->ack && rc->ack->client_reference && bz_uuid_is_valid(rc->ack->client_reference))
        return rc->ack->client_reference;
    return NULL;
}

bz_status cmp_receipt_check(const Blazz__V1__CampaignReceipt *rc, bz_error *err)
{
    const char *event_id = rc->envelope && rc->envelope->event_id ? rc->envelope->event_id : "";
    if (!rc->ack)
        return bz_reject(err, "missing_ack", "campaign receipt %s: no ack", event_id);
    if (!cmp_receipt_log_uuid(rc) && rc->campaign_log_id <= 0)
        return bz_reject(err, "missing_campaign_log",
                         "campaign receipt %s: neither a log uuid nor a log id", event_id);
    return BZ_OK;
}

static int compare_uuid(const void *a, const void *b)
{
    return strcasecmp(((const log_state *)a)->uuid, ((const log_state *)b)->uuid);
}

static log_state *find_log(receipt_batch *b, const Blazz__V1__CampaignReceipt *rc)
{
    const char *uuid = cmp_receipt_log_uuid(rc);
    if (uuid) {
        log_state key;
        snprintf(key.uuid, sizeof key.uuid, "%s", uuid);
        return bsearch(&key, b->logs, b->nlogs, sizeof *b->logs, compare_uuid);
    }
    for (size_t i = 0; i < b->nlogs; i++)
        if (b->logs[i].id == rc->campaign_log_id)
            return &b->logs[i];
    return NULL;
}

static campaign_delta *delta_for(receipt_batch *b, int64_t campaign_id)
{
    for (size_t i = 0; i < b->ndeltas; i++)
        if (b->deltas[i].id == campaign_id)
            return &b->deltas[i];
    b->deltas[b->ndeltas] = (campaign_delta){.id = campaign_id};
    return &b->deltas[b->ndeltas++];
}

static int error_is_transient(const cmp_ctx *ctx, const char *code)
{
    if (!code || !*code)
        return 0;
    size_t len = strlen(code);
    for (const char *p = ctx->set.transient_errors; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && *p == ' ')
            p++, n--;
        while (n && p[n - 1] == ' ')
            n--;
        if (n == len && strncasecmp(p, code, n) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* Meta's error for a marketing message the recipient's per-user limit kept
 * from them. */
#define META_MARKETING_LIMIT "131049"

/* Seconds log l, failed with code, waits before it is sent again for
 * Meta's per-user marketing limit; 0 when it is not sent again for it. */
static int marketing_limit_wait_s(const cmp_ctx *ctx, const log_state *l, const char *code)
{
    if (strcmp(code, META_MARKETING_LIMIT) != 0 || l->limit_retried)
        return 0;
    return ctx->set.marketing_limit_after_s;
}

static int target_of(Blazz__V1__DeliveryStatus s)
{
    switch (s) {
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT:
        return ST_SENT;
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED:
        return ST_DELIVERED;
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ:
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_PLAYED:
        return ST_READ;
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED:
        return ST_FAILED;
    default:
        return -1; /* PENDING (accepted by the gateway) and unknown: no step */
    }
}

static void move_forward(log_state *l, int target, int64_t ts, campaign_delta *d)
{
    if (l->status == ST_FAILED || target <= l->status)
        return;
    /* a log put back to pending has nothing in flight: a receipt for it is
     * of the attempt that failed (Meta's answer to a send may come after
     * the status webhook that failed it), and must not count it as sent */
    if (l->status == ST_PENDING && l->retry_count > 0)
        return;
    for (int step = l->status + 1; step <= target; step++) {
        if (step == ST_SENT) {
            d->sent++;
            if (!l->sent_ms)
                l->sent_ms = ts;
        } else if (step == ST_DELIVERED) {
            d->delivered++;
            if (!l->delivered_ms)
                l->delivered_ms = ts;
        } else if (step == ST_READ) {
            d->read++;
            if (!l->read_ms)
                l->read_ms = ts;
        }
    }
    l->status = target;
    l->changed = 1;
}

static void record_failure(const cmp_ctx *ctx, log_state *l, const Blazz__V1__MessageAck *ack,
                           int64_t ts, campaign_delta *d)
{
    if (l->status != ST_QUEUED && l->status != ST_SENT)
        return; /* nothing in flight: a duplicate, or it already got further */
    const char *code = ack->error_code && *ack->error_code ? ack->error_code : "unknown";
    if (strcmp(code, META_MARKETING_LIMIT) != 0)
        d->failed_attempts++;
    bz_counter_inc(bz_counter_family_with(ctx->m.failures, code));
    if (l->status == ST_SENT)
        d->sent--;
    int later_s = marketing_limit_wait_s(ctx, l, code);
    int retry = later_s > 0 ||
                (error_is_transient(ctx, ack->error_code) && l->retry_count < ctx->set.retry_max);
    snprintf(l->error, sizeof l->error, "%s%s: %s",
             later_s > 0 ? "retrying later after " : retry ? "retrying after " : "", code,
             ack->error_message && *ack->error_message ? ack->error_message : "send failed");
    if (retry) {
        l->retry_count++;
        l->status = ST_PENDING;
        l->retry_after_s = later_s;
        l->limit_retried |= later_s > 0;
    } else {
        l->status = ST_FAILED;
        l->failed_ms = ts;
        d->failed++;
    }
    l->changed = 1;
}

static void replay_receipt(const cmp_ctx *ctx, receipt_batch *b, log_state *l,
                           const Blazz__V1__CampaignReceipt *rc)
{
    const Blazz__V1__MessageAck *ack = rc->ack;
    int target = target_of(ack->status);
    if (target < 0)
        return;
    int64_t ts = ack->timestamp_ms > 0 ? ack->timestamp_ms : bz_wall_ms();
    campaign_delta *d = delta_for(b, l->campaign_id);
    if (ack->wam_id && *ack->wam_id && !l->wam_id)
        l->wam_id = ack->wam_id;
    if (target == ST_FAILED)
        record_failure(ctx, l, ack, ts, d);
    else
        move_forward(l, target, ts, d);
}

/* Lock and load the logs the receipts name, sorted by uuid for lookup. */
static bz_status load_logs(PGconn *conn, receipt_batch *b,
                           const Blazz__V1__CampaignReceipt *const *receipts, size_t n,
                           bz_error *err)
{
    const char **uuids = calloc(n, sizeof *uuids);
    int64_t *ids = calloc(n, sizeof *ids);
    size_t nu = 0, ni = 0;
    if (!uuids || !ids) {
        free(uuids);
        free(ids);
        return bz_fail(err, BZ_ERR_NOMEM, "load campaign logs: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const char *u = cmp_receipt_log_uuid(receipts[i]);
        if (u)
            uuids[nu++] = u;
        else
            ids[ni++] = receipts[i]->campaign_log_id;
    }
    char *ua = bz_pg_text_array(uuids, nu), *ia = bz_pg_int64_array(ids, ni);
    free(uuids);
    free(ids);
    if (!ua || !ia) {
        free(ua);
        free(ia);
        return bz_fail(err, BZ_ERR_NOMEM, "load campaign logs: out of memory");
    }
    const char *params[] = {ua, ia};
    PGresult *res;
    bz_status st = bz_pg_exec_prepared(conn, "cmp_receipt_lookup", 2, params, NULL, NULL, &res, err);
    free(ua);
    free(ia);
    if (st != BZ_OK)
        return st;
    b->nlogs = (size_t)PQntuples(res);
    b->logs = calloc(b->nlogs ? b->nlogs : 1, sizeof *b->logs);
    if (!b->logs) {
        PQclear(res);
        return bz_fail(err, BZ_ERR_NOMEM, "load campaign logs: out of memory");
    }
    for (size_t i = 0; i < b->nlogs; i++) {
        log_state *l = &b->logs[i];
        l->id = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        snprintf(l->uuid, sizeof l->uuid, "%s", PQgetvalue(res, (int)i, 1));
        l->campaign_id = strtoll(PQgetvalue(res, (int)i, 2), NULL, 10);
        l->workspace_id = strtoll(PQgetvalue(res, (int)i, 3), NULL, 10);
        l->status = status_from_name(PQgetvalue(res, (int)i, 4));
        l->retry_count = (int)bz_pg_get_int64(res, (int)i, 5);
        l->limit_retried = strcmp(PQgetvalue(res, (int)i, 6), "t") == 0;
    }
    PQclear(res);
    qsort(b->logs, b->nlogs, sizeof *b->logs, compare_uuid);
    return BZ_OK;
}

static bz_status check_receipt_matches(const log_state *l, const Blazz__V1__CampaignReceipt *rc,
                                       bz_error *err)
{
    const char *event_id = rc->envelope && rc->envelope->event_id ? rc->envelope->event_id : "";
    if (!l)
        return bz_reject(err, "unknown_campaign_log",
                         "campaign receipt %s: no campaign log %s (id %" PRId64 ")", event_id,
                         cmp_receipt_log_uuid(rc) ? cmp_receipt_log_uuid(rc) : "-", rc->campaign_log_id);
    if (rc->campaign_id && rc->campaign_id != l->campaign_id)
        return bz_reject(err, "campaign_mismatch",
                         "campaign receipt %s: log %" PRId64 " belongs to campaign %" PRId64
                         ", not %" PRId64,
                         event_id, l->id, l->campaign_id, rc->campaign_id);
    if (rc->envelope && rc->envelope->workspace_id &&
        rc->envelope->workspace_id != l->workspace_id)
        return bz_reject(err, "workspace_mismatch",
                         "campaign receipt %s: log %" PRId64 " is not in workspace %" PRId64,
                         event_id, l->id, rc->envelope->workspace_id);
    return BZ_OK;
}

static bz_status write_logs(PGconn *conn, receipt_batch *b, bz_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nlogs; i++)
        n += b->logs[i].changed;
    if (n == 0)
        return BZ_OK;
    int64_t *num = calloc(7 * n, sizeof *num);
    const char **txt = calloc(3 * n, sizeof *txt);
    if (!num || !txt) {
        free(num);
        free(txt);
        return bz_fail(err, BZ_ERR_NOMEM, "write campaign logs: out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < b->nlogs; i++) {
        const log_state *l = &b->logs[i];
        if (!l->changed)
            continue;
        num[k] = l->id;
        num[n + k] = l->retry_count;
        num[2 * n + k] = l->sent_ms;
        num[3 * n + k] = l->delivered_ms;
        num[4 * n + k] = l->read_ms;
        num[5 * n + k] = l->failed_ms;
        num[6 * n + k] = l->retry_after_s;
        txt[k] = status_names[l->status];
        txt[n + k] = l->error;
        txt[2 * n + k] = l->wam_id ? l->wam_id : "";
        k++;
    }
    char *arrays[10] = {0};
    for (int c = 0; c < 7; c++)
        arrays[c] = bz_pg_int64_array(num + (size_t)c * n, n);
    for (int c = 0; c < 3; c++)
        arrays[7 + c] = bz_pg_text_array(txt + (size_t)c * n, n);
    free(num);
    free(txt);
    bz_status st = BZ_OK;
    for (int c = 0; c < 10; c++)
        if (!arrays[c])
            st = bz_fail(err, BZ_ERR_NOMEM, "write campaign logs: out of memory");
    if (st == BZ_OK) {
        const char *params[] = {arrays[0], arrays[7], arrays[1], arrays[8], arrays[2],
                                arrays[3], arrays[4], arrays[5], arrays[9], arrays[6]};
        st = bz_pg_exec_prepared(conn, "cmp_receipt_update", 10, params, NULL, NULL, NULL, err);
    }
    for (int c = 0; c < 10; c++)
        free(arrays[c]);
    return st;
}

static int compare_delta(const void *a, const void *b)
{
    int64_t x = ((const campaign_delta *)a)->id, y = ((const campaign_delta *)b)->id;
    return x < y ? -1 : x > y;
}

static bz_status write_counters(PGconn *conn, receipt_batch *b, bz_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < b->ndeltas; i++) {
        const campaign_delta *d = &b->deltas[i];
        if (d->sent || d->delivered || d->read || d->failed || d->failed_attempts)
            b->deltas[n++] = *d;
    }
    if (n == 0)
        return BZ_OK;
    /* Campaign rows are locked in id order, so two consumers never deadlock. */
    qsort(b->deltas, n, sizeof *b->deltas, compare_delta);
    int64_t *cols = calloc(6 * n, sizeof *cols);
    if (!cols)
        return bz_fail(err, BZ_ERR_NOMEM, "write campaign counters: out of memory");
    for (size_t i = 0; i < n; i++) {
        const campaign_delta *d = &b->deltas[i];
        int64_t v[6] = {d->id, d->sent, d->delivered, d->read, d->failed, d->failed_attempts};
        for (int c = 0; c < 6; c++)
            cols[(size_t)c * n + i] = v[c];
    }
    char *arrays[6];
    bz_status st = BZ_OK;
    for (int c = 0; c < 6; c++)
        if (!(arrays[c] = bz_pg_int64_array(cols + (size_t)c * n, n)))
            st = bz_fail(err, BZ_ERR_NOMEM, "write campaign counters: out of memory");
    free(cols);
    if (st == BZ_OK)
        st = bz_pg_exec_prepared(conn, "cmp_receipt_counters", 6, (const char *const *)arrays,
                                 NULL, NULL, NULL, err);
    for (int c = 0; c < 6; c++)
        free(arrays[c]);
    return st;
}

bz_status cmp_receipts_apply(const cmp_ctx *ctx, PGconn *conn,
                             const Blazz__V1__CampaignReceipt *const *receipts, size_t n,
                             bz_error *err)
{
    if (n == 0)
        return BZ_OK;
    receipt_batch b = {0};
    b.deltas = calloc(n, sizeof *b.deltas);
    if (!b.deltas)
        return bz_fail(err, BZ_ERR_NOMEM, "apply receipts: out of memory");
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, sized as such */
    const Blazz__V1__CampaignReceipt **early = calloc(n, sizeof *early);
    size_t nearly = 0;
    int replaying = -1; /* asked once, and only when a log is missing */
    bz_status st = early ? load_logs(conn, &b, receipts, n, err)
                         : bz_fail(err, BZ_ERR_NOMEM, "apply receipts: out of memory");
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        log_state *l = find_log(&b, receipts[i]);
        if (!l && replaying < 0)
            st = cmp_replay_under_way(conn, &replaying, err);
        if (st == BZ_OK && !l && replaying) {
            early[nearly++] = receipts[i];
            continue;
        }
        if (st == BZ_OK)
            st = check_receipt_matches(l, receipts[i], err);
        if (st == BZ_OK)
            replay_receipt(ctx, &b, l, receipts[i]);
    }
    if (st == BZ_OK && nearly > 0) {
        st = cmp_receipts_wait(conn, early, nearly, err);
        bz_counter_add(ctx->m.receipts_waiting, nearly);
    }
    free(early);
    if (st == BZ_OK)
        st = write_logs(conn, &b, err);
    if (st == BZ_OK)
        st = write_counters(conn, &b, err);
    if (st == BZ_OK)
        bz_counter_add(ctx->m.receipts, n - nearly);
    free(b.logs);
    free(b.deltas);
    return st;
}
