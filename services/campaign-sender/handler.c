/*
 * handler.c - the exactly-once consumer handler of campaign-sender: one
 * consumer reads campaign.commands and campaign.receipts, and each record
 * is decoded according to the topic it came from.
 *
 * A batch may mix both topics. Commands are applied first, one by one in
 * offset order; then all receipts of the batch in bulk (receipts.c). The
 * order between a command and a receipt does not matter: receipts move
 * logs whatever the campaign's state, and commands never touch logs that
 * receipts move (start only inserts pending ones). In a restore's replay a
 * receipt may come before the start that makes its log: it waits
 * (receipts_waiting.h), and a batch with a command takes back, before its
 * own receipts, those whose logs exist by then.
 */
#include <stdlib.h>
#include <string.h>

#include "campaign_sender.h"
#include "receipts_waiting.h"

typedef enum record_kind { RECORD_COMMAND, RECORD_RECEIPT } record_kind;

typedef struct decoded_record {
    record_kind kind;
    void *msg; /* Blazz__V1__CampaignCommand or Blazz__V1__CampaignReceipt */
} decoded_record;

#define SQL_RECEIPT_LOOKUP                                                                       \
    "SELECT id, uuid::text, campaign_id, workspace_id, status, retry_count, "                    \
    "retry_at IS NOT NULL FROM campaign_logs "                                                   \
    "WHERE uuid = ANY($1::uuid[]) OR id = ANY($2::bigint[]) ORDER BY id FOR UPDATE"
#define SQL_RECEIPT_UPDATE                                                                       \
    "UPDATE campaign_logs l SET status = u.status, retry_count = u.retry_count, "                \
    "error_message = coalesce(nullif(u.err, ''), l.error_message), "                             \
    "sent_at = coalesce(l.sent_at, CASE WHEN u.s > 0 THEN to_timestamp(u.s / 1000.0) END), "     \
    "delivered_at = coalesce(l.delivered_at, CASE WHEN u.d > 0 THEN to_timestamp(u.d / 1000.0) END), " \
    "read_at = coalesce(l.read_at, CASE WHEN u.r > 0 THEN to_timestamp(u.r / 1000.0) END), "     \
    "failed_at = CASE WHEN u.f > 0 THEN to_timestamp(u.f / 1000.0) ELSE l.failed_at END, "       \
    "wam_id = coalesce(l.wam_id, nullif(u.wam, '')), "                                            \
    "queued_at = CASE WHEN u.status = 'pending' THEN NULL ELSE l.queued_at END, "                \
    "retry_at = CASE WHEN u.after > 0 THEN now() + make_interval(secs => u.after) "              \
    "ELSE l.retry_at END "                                                                       \
    "FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::bigint[], "  \
    "$7::bigint[], $8::bigint[], $9::text[], $10::int[]) "                                       \
    "AS u(id, status, retry_count, err, s, d, r, f, wam, after) "                                \
    "WHERE l.id = u.id"
#define SQL_RECEIPT_COUNTERS                                                                     \
    "UPDATE campaigns c SET messages_sent = c.messages_sent + d.sent, "                           \
    "messages_delivered = c.messages_delivered + d.delivered, "                                   \
    "messages_read = c.messages_read + d.rd, messages_failed = c.messages_failed + d.failed, "    \
    "metadata = CASE WHEN d.attempts = 0 THEN c.metadata ELSE jsonb_set(c.metadata, "             \
    "'{failed_attempts}', to_jsonb(coalesce((c.metadata->>'failed_attempts')::bigint, 0) + d.attempts)) END " \
    "FROM unnest($1::bigint[], $2::int[], $3::int[], $4::int[], $5::int[], $6::int[]) "           \
    "AS d(id, sent, delivered, rd, failed, attempts) WHERE c.id = d.id"

static bz_status handler_init(void *ctx, bz_pg *pg, bz_error *err)
{
    (void)ctx;
    bz_status st = bz_pg_prepare(pg, "cmp_receipt_lookup", SQL_RECEIPT_LOOKUP, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(pg, "cmp_receipt_update", SQL_RECEIPT_UPDATE, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(pg, "cmp_receipt_counters", SQL_RECEIPT_COUNTERS, err);
    return st;
}

static bz_status decode_command(const rd_kafka_message_t *msg, decoded_record *out, bz_error *err)
{
    Blazz__V1__CampaignCommand *cmd =
        blazz__v1__campaign_command__unpack(NULL, msg->len, msg->payload);
    if (!cmd)
        return bz_reject(err, "decode_error", "not a blazz.v1.CampaignCommand (%zu bytes)",
                         msg->len);
    bz_status st = cmp_command_check(cmd, err);
    if (st != BZ_OK) {
        blazz__v1__campaign_command__free_unpacked(cmd, NULL);
        return st;
    }
    out->kind = RECORD_COMMAND;
    out->msg = cmd;
    return BZ_OK;
}

static bz_status decode_receipt(const rd_kafka_message_t *msg, decoded_record *out, bz_error *err)
{
    Blazz__V1__CampaignReceipt *rc =
        blazz__v1__campaign_receipt__unpack(NULL, msg->len, msg->payload);
    if (!rc)
        return bz_reject(err, "decode_error", "not a blazz.v1.CampaignReceipt (%zu bytes)",
                         msg->len);
    bz_status st = cmp_receipt_check(rc, err);
    if (st != BZ_OK) {
        blazz__v1__campaign_receipt__free_unpacked(rc, NULL);
        return st;
    }
    out->kind = RECORD_RECEIPT;
    out->msg = rc;
    return BZ_OK;
}

static bz_status handler_decode(void *arg, const rd_kafka_message_t *msg, void **decoded,
                                bz_error *err)
{
    const cmp_ctx *ctx = arg;
    const char *topic = rd_kafka_topic_name(msg->rkt);
    decoded_record *rec = calloc(1, sizeof *rec);
    if (!rec)
        return bz_fail(err, BZ_ERR_TRANSIENT, "decode: out of memory");
    bz_status st;
    if (strcmp(topic, ctx->commands_topic) == 0)
        st = decode_command(msg, rec, err);
    else if (strcmp(topic, ctx->receipts_topic) == 0)
        st = decode_receipt(msg, rec, err);
    else
        st = bz_reject(err, "unexpected_topic", "record from unexpected topic %s", topic);
    if (st != BZ_OK) {
        free(rec);
        return st;
    }
    *decoded = rec;
    return BZ_OK;
}

static void handler_release(void *ctx, void *decoded)
{
    (void)ctx;
    decoded_record *rec = decoded;
    if (!rec)
        return;
    if (rec->kind == RECORD_COMMAND)
        blazz__v1__campaign_command__free_unpacked(rec->msg, NULL);
    else
        blazz__v1__campaign_receipt__free_unpacked(rec->msg, NULL);
    free(rec);
}

static bz_status handler_apply(void *arg, PGconn *conn, bz_eo_record *records, size_t n,
                               bz_error *err)
{
    const cmp_ctx *ctx = arg;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, sized as such */
    const Blazz__V1__CampaignReceipt **receipts = calloc(n ? n : 1, sizeof *receipts);
    if (!receipts)
        return bz_fail(err, BZ_ERR_TRANSIENT, "apply: out of memory");
    size_t nreceipts = 0, ncommands = 0;
    bz_status st = BZ_OK;
    for (size_t i = 0; i < n && st == BZ_OK; i++) {
        const decoded_record *rec = records[i].decoded;
        if (rec->kind == RECORD_COMMAND) {
            st = cmp_command_apply(ctx, conn, rec->msg, err);
            ncommands++;
        } else {
            receipts[nreceipts++] = rec->msg;
        }
    }
    /* a command may have made the logs receipts of a replay wait for */
    Blazz__V1__CampaignReceipt **ready = NULL;
    size_t nready = 0;
    if (st == BZ_OK && ncommands > 0)
        st = cmp_receipts_take_ready(conn, &ready, &nready, err);
    if (st == BZ_OK && nready > 0)
        st = cmp_receipts_apply(ctx, conn, (const Blazz__V1__CampaignReceipt *const *)ready,
                                nready, err);
    if (st == BZ_OK)
        st = cmp_receipts_apply(ctx, conn, receipts, nreceipts, err);
    cmp_receipts_free(ready, nready);
    free(receipts);
    return st;
}

const bz_eo_handler cmp_handler = {
    .init = handler_init,
    .decode = handler_decode,
    .apply = handler_apply,
    .release = handler_release,
};
