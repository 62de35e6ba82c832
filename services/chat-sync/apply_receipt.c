/*
 * apply_receipt.c - delivery receipts: message status, read marks, and the
 * routing of campaign receipts to campaign-sender.
 *
 * Status only moves forward: pending < sent < delivered < read < played.
 * Each status level's timestamp is set once, by the first receipt that
 * reaches it or passes it (a "read" that arrives before "delivered" also
 * sets delivered_at). The receipt that sets delivered_at counts the
 * message in message_usage under the pricing category it reports (Meta's;
 * "unpriced" when none) and its pricing type and model (paid or free),
 * once (write.c). "failed" is terminal and applies only to a message
 * not yet delivered; a failed message never moves again.
 *
 * A receipt for a message not stored yet is parked (see parked.c) and
 * applied when the message is stored, right after it: the parked receipts
 * of one message in forward order (pending, sent, failed, delivered, read,
 * played; then by time, then arrival), each under the same rules and with
 * the events it would have emitted on time (a status change's id follows
 * from the row and the status, events.c). A replay of such a receipt then
 * finds the status already there and emits nothing new.
 *
 * A "read" (or "played") receipt for an inbound message means the account
 * read it: is_read becomes true, read_at is set and the contact's
 * unread_messages goes down by one (never below zero).
 *
 * A CRM send (an agent's message, crm_send.c) is found by (account,
 * wam_id) once its echo arrived, and before that by the receipt's client
 * reference, which is the row's uuid; it then moves pending -> sent ->
 * delivered -> read, or -> failed, like any outbound message. A failure
 * reported without a message id (campaign-sender could not release the
 * send, or the gateway could not send it) matches by reference only.
 *
 * Campaign messages are recognised by their campaign log: the receipt's
 * client reference (campaign_logs.uuid), else the stored message's client
 * reference, else the message id campaign-sender recorded. Their receipts go
 * to campaign.receipts when they changed the message's status, or when
 * chat-sync has no row for the message (campaign-sender then decides; its
 * log moves are idempotent too).
 */
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"

static int rank(int status)
{
    switch (status) {
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_PENDING: return 1;
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT: return 2;
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED: return 3;
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ: return 4;
    case BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_PLAYED: return 5;
    default: return 0;
    }
}

static void set_once(int64_t *field, int64_t ts)
{
    if (*field == 0)
        *field = ts;
}

/* Apply status to an outbound message; 1 if it changed. */
static int advance_outbound(cs_batch *b, cs_chat *c, const Blazz__V1__MessageAck *ack, int64_t ts)
{
    if (c->status == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED)
        return 0;
    if (ack->status == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED) {
        if (rank(c->status) > rank(BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT))
            return 0;
        c->status = ack->status;
        c->error_code = cs_arena_strdup(&b->arena, ack->error_code);
        c->error_message = cs_arena_strdup(&b->arena, ack->error_message);
        return 1;
    }
    int level = rank(ack->status);
    if (level <= rank(c->status))
        return 0;
    c->status = ack->status;
    if (level >= 2)
        set_once(&c->sent_ms, ts);
    if (level >= 3 && c->delivered_ms == 0) {
        c->delivered_ms = ts;
        c->priced_as = *ack->pricing_category
                           ? cs_arena_strdup(&b->arena, ack->pricing_category)
                           : CS_UNPRICED;
        c->pricing_type = cs_arena_strdup(&b->arena, ack->pricing_type);
        c->pricing_model = cs_arena_strdup(&b->arena, ack->pricing_model);
    }
    if (level >= 4)
        set_once(&c->read_ms, ts);
    return 1;
}

/* Mark an inbound message read; 1 if it changed. */
static int mark_inbound_read(cs_batch *b, cs_chat *c, const Blazz__V1__MessageAck *ack, int64_t ts)
{
    if (rank(ack->status) < 4 || c->is_read)
        return 0;
    c->is_read = 1;
    set_once(&c->read_ms, ts);
    cs_contact *contact = c->contact_id ? cs_find_contact_id(b, c->contact_id) : NULL;
    if (contact && contact->unread > 0) {
        contact->unread--;
        contact->dirty = 1;
    }
    return 1;
}

static int64_t receipt_time(const cs_record *r)
{
    const Blazz__V1__MessageAck *ack = r->cmd->receipt;
    return ack->timestamp_ms > 0 ? ack->timestamp_ms : r->cmd->envelope->occurred_at_ms;
}

/* The receipt's effects on c (NULL: no stored message), its events and its
 * campaign routing. */
static bz_status apply_receipt(cs_batch *b, const cs_record *r, cs_chat *c, bz_error *err)
{
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    const Blazz__V1__MessageAck *ack = r->cmd->receipt;
    int64_t ts = receipt_time(r);
    int changed = 0, previous = c ? c->status : 0;
    if (c) {
        changed = c->outbound ? advance_outbound(b, c, ack, ts) : mark_inbound_read(b, c, ack, ts);
        c->dirty |= changed;
    }
    if (b->ctx->have_metrics)
        bz_counter_inc(c ? b->ctx->m.receipts_applied : b->ctx->m.receipts_unmatched);
    bz_status st = BZ_OK;
    if (changed)
        st = cs_emit_status_changed(b, r, c, previous, err);
    const cs_campaign_log *log =
        cs_find_campaign_log(b, env->workspace_id, ack->client_reference, NULL);
    if (!log && c)
        log = cs_find_campaign_log(b, env->workspace_id, c->client_reference, NULL);
    if (!log)
        log = cs_find_campaign_log(b, env->workspace_id, NULL, ack->wam_id);
    if (st == BZ_OK && log && (changed || !c)) {
        st = cs_emit_campaign_receipt(b, r, log, c, ack, err);
        if (st == BZ_OK && b->ctx->have_metrics)
            bz_counter_inc(b->ctx->m.campaign_receipts);
    }
    return st;
}

/* Park r on c, to be applied when the occurrence that stores c runs. */
static int park_in_memory(cs_batch *b, const cs_record *r, cs_chat *c)
{
    cs_parked *p = cs_arena_alloc(&b->arena, sizeof *p);
    if (!p)
        return -1;
    p->r = r;
    p->next = c->parked;
    c->parked = p;
    return 0;
}

/* The CRM send a receipt names by client reference when (account, wam_id)
 * found nothing: its row before its echo. A receipt with a message id
 * gives the row that id and account, like the echo would. NULL when the
 * reference names no send, or a send whose message id is another. */
static cs_chat *agent_row_of(cs_batch *b, const cs_record *r, int *oom)
{
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    const Blazz__V1__MessageAck *ack = r->cmd->receipt;
    cs_chat *c = cs_find_agent_row(b, env->workspace_id, ack->client_reference);
    if (!c || (*c->wam_id && *ack->wam_id && strcmp(c->wam_id, ack->wam_id) != 0))
        return NULL;
    if (!*c->wam_id && *ack->wam_id) {
        c->wam_id = ack->wam_id;
        c->account_id = env->whatsapp_account_id;
        c->dirty = 1;
        if (cs_index_agent_row(b, c) != 0)
            *oom = 1;
    }
    return c;
}

bz_status cs_simulate_receipt(cs_batch *b, const cs_record *r, bz_error *err)
{
    const Blazz__V1__Envelope *env = r->cmd->envelope;
    const Blazz__V1__MessageAck *ack = r->cmd->receipt;
    int oom = 0;
    cs_chat *c = *ack->wam_id ? cs_find_chat(b, env->whatsapp_account_id, ack->wam_id) : NULL;
    if (!c)
        c = agent_row_of(b, r, &oom);
    if (oom)
        return bz_fail(err, BZ_ERR_TRANSIENT, "match receipt %s: out of memory", env->event_id);
    /* One at a time, this receipt would not have seen a message stored after
     * it: it waits for that message. A receipt without a message id (a send
     * that never reached WhatsApp) has nothing to wait for. */
    if (c && c->inserted_ord >= 0 && c->inserted_ord > r->ord) {
        if (park_in_memory(b, r, c) != 0)
            return bz_fail(err, BZ_ERR_TRANSIENT, "park receipt %s: out of memory", env->event_id);
        c = NULL;
    } else if (!c && *ack->wam_id && cs_vec_push(&b->to_park, (void *)r) != 0) {
        return bz_fail(err, BZ_ERR_TRANSIENT, "park receipt %s: out of memory", env->event_id);
    }
    return apply_receipt(b, r, c, err);
}

/* Position of a status in the order parked receipts are applied: failed
 * after sent, so it still applies to a message not yet delivered. */
static int forward_rank(int status)
{
    if (status == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED)
        return 2;
    int r = rank(status);
    return r >= 2 ? r + 1 : r;
}

/* Parked from the table (earlier transactions) before parked in memory. */
static int64_t arrival(const cs_parked *p)
{
    return p->id > 0 ? p->id : INT64_MAX / 2 + p->r->ord;
}

static int forward_order(const void *x, const void *y)
{
    const cs_parked *a = *(const cs_parked *const *)x, *b = *(const cs_parked *const *)y;
    int ra = forward_rank(a->r->cmd->receipt->status), rb = forward_rank(b->r->cmd->receipt->status);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    int64_t ta = receipt_time(a->r), tb = receipt_time(b->r);
    if (ta != tb)
        return ta < tb ? -1 : 1;
    int64_t aa = arrival(a), ab = arrival(b);
    return aa < ab ? -1 : aa > ab;
}

/* Reactions, edits and deletes in the order they happened. */
static int time_order(const void *x, const void *y)
{
    const cs_parked *a = *(const cs_parked *const *)x, *b = *(const cs_parked *const *)y;
    int64_t ta = cs_action_time(a->r), tb = cs_action_time(b->r);
    if (ta != tb)
        return ta < tb ? -1 : 1;
    int64_t aa = arrival(a), ab = arrival(b);
    return aa < ab ? -1 : aa > ab;
}

static int is_receipt(const cs_parked *p)
{
    return p->r->cmd->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT;
}

/* The receipts first, in forward status order, then the actions in time
 * order: a message is delivered and read as it was sent, whatever was
 * done to it later. */
bz_status cs_apply_parked_receipts(cs_batch *b, cs_chat *c, bz_error *err)
{
    size_t n = 0, nreceipts = 0;
    for (const cs_parked *p = c->parked; p; p = p->next) {
        n++;
        nreceipts += is_receipt(p);
    }
    if (n == 0)
        return BZ_OK;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the elements are pointers */
    cs_parked **order = cs_arena_alloc(&b->arena, n * sizeof *order);
    if (!order)
        return bz_fail(err, BZ_ERR_TRANSIENT, "apply parked receipts of %s: out of memory",
                       c->wam_id);
    size_t ri = 0, ai = nreceipts;
    for (cs_parked *p = c->parked; p; p = p->next)
        order[is_receipt(p) ? ri++ : ai++] = p;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the elements are pointers */
    qsort(order, nreceipts, sizeof *order, forward_order);
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the elements are pointers */
    qsort(order + nreceipts, n - nreceipts, sizeof *order, time_order);
    c->parked = NULL;
    bz_status st = BZ_OK;
    for (size_t i = 0; i < n && st == BZ_OK; i++)
        st = i < nreceipts ? apply_receipt(b, order[i]->r, c, err)
                           : cs_apply_action(b, order[i]->r, c, err);
    return st;
}
