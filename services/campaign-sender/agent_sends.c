/*
 * agent_sends.c - agents' messages leave for the providers here, under the
 * same send budget as campaigns, and before them (ARCHITECTURE.md §11).
 *
 * chat-sync queues each accepted agent message in outbound_queue, in the
 * transaction that stores its pending chats row, with the account it chose
 * (the seeds' ProviderSelector). One round, in one transaction on the
 * sender's connection (only the instance holding the sender lock runs it):
 *  1. lock up to `batch` queued messages in queue order (FOR UPDATE SKIP
 *     LOCKED) with their account's state and limits;
 *  2. for each: if its account is no longer connected, fail over (the same
 *     selection again: the conversation's last account, the primary, the
 *     best health_score); if the account and its workspace have room in the
 *     budget, and its recipient has not had more than Meta's burst from
 *     the account lately (the pair rate, pair.h: a conversation's replies
 *     are not spaced, only a burst beyond budget.pair_burst is), release
 *     it: the wa.outbound outbox row (key = session id,
 *     event id = idempotency key = client reference = the message id), a
 *     send_ledger row, and the queue row deleted, all in this transaction,
 *     so a message is released once and counted once whatever crashes
 *     (and, through a Meta account to a user outside their service
 *     window, counted as the portfolio's reach: reach.h);
 *  3. a message with no connected account or no room waits (counted in
 *     blazz_campaign_sender_agent_waiting, and per round and reason in
 *     ..._agent_held_total), in queue order per account, and
 *     holds its account (and its workspace, when that is the limit that
 *     binds) against campaigns until the next round, so room that frees in
 *     between cannot go to a campaign first (cmp_agent_round_holds); one
 *     that has waited longer than agent.max_wait_s fails instead: a FAILED
 *     receipt (no_connected_account or rate_limited) goes back to chat-sync
 *     on chat.sync (key = the conversation's), which moves the row to failed
 *     and tells the CRM. A message the failover's account cannot send at
 *     all (an interactive message, Meta's only, on a whatsapp-web.js
 *     account: wa/meta_limits.h) fails at once the same way
 *     (provider_limit).
 * A wait is never longer than needed: the round reports when the first
 * waiting message can get room, and the sender sleeps until then, or until
 * chat-sync queues more (NOTIFY blazz_send).
 */
#include "agent_sends.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/sync.pb-c.h"
#include "core/uuid.h"
#include "kafka/outbox.h"
#include "pg/columns.h"
#include "pg/pg.h"
#include "reach.h"
#include "wa/account_select.h"
#include "wa/meta_limits.h"

#define SQL_READ_QUEUE                                                                           \
    "SELECT q.id, q.workspace_id, q.message_id::text, q.whatsapp_account_id, q.msg_key, "        \
    "q.payload, (extract(epoch FROM q.enqueued_at) * 1000)::bigint, "                           \
    "coalesce(a.session_id, ''), coalesce(a.provider_type, 'webjs'), "                           \
    "coalesce(a.assigned_instance_index, -1), coalesce(a.assigned_instance_url, ''), "           \
    "coalesce(a.metadata::text, '{}'), "                                                         \
    "coalesce(a.status = 'connected' AND a.is_active AND a.deleted_at IS NULL, false), "          \
    "w.metadata::text, coalesce(c.contact_id, 0), coalesce(c.group_id, 0), "                     \
    "CASE WHEN c.contact_id IS NULL THEN '' ELSE " CMP_PAIR_RECIPIENT("c.contact_id") " END, "  \
    "coalesce(c.wam_id, '') <> '', "                                                             \
    "EXISTS (SELECT 1 FROM restore_fences WHERE lifted_at IS NULL) "                             \
    "FROM outbound_queue q LEFT JOIN whatsapp_accounts a ON a.id = q.whatsapp_account_id "       \
    "JOIN workspaces w ON w.id = q.workspace_id LEFT JOIN chats c ON c.id = q.chat_id "          \
    "ORDER BY q.id LIMIT $1 FOR UPDATE OF q SKIP LOCKED"

#define SQL_DEQUEUE "DELETE FROM outbound_queue WHERE id = ANY($1::bigint[])"

enum {
    COL_ID, COL_WORKSPACE, COL_MESSAGE, COL_ACCOUNT, COL_KEY, COL_PAYLOAD, COL_ENQUEUED,
    COL_SESSION, COL_PROVIDER, COL_INSTANCE, COL_INSTANCE_URL, COL_ACCOUNT_META, COL_USABLE,
    COL_WORKSPACE_META, COL_CONTACT, COL_GROUP,
    COL_RECIPIENT, /* the contact, as the pair rate counts by it (pair.h); "" for a group */
    COL_ECHOED,    /* its row has the provider's message id: the gateway sent it already */
    COL_FENCED     /* a restore's replay is under way (restore_fences) */
};

/* The round's writes, done together at its end. */
typedef struct round_writes {
    bz_outbox_batch *outbox;
    cmp_ledger ledger;
    int64_t *dequeue;
    size_t ndequeue;
    /* releases to a contact through a Meta account: the portfolio's reach (reach.h) */
    int64_t *meta_accounts, *meta_workspaces, *meta_contacts;
    size_t nmeta;
} round_writes;

/* The account a queued message leaves through. */
typedef struct via {
    bz_account acc;
    cmp_limits limits;
} via;

static cmp_limits account_limits(const cmp_ctx *ctx, const char *metadata)
{
    const cmp_settings *s = &ctx->set;
    cmp_limits d = {s->account_per_second, s->account_per_minute, s->account_per_hour};
    return cmp_limits_from_metadata(metadata, &d, s->account_max_per_second);
}

static cmp_limits workspace_limits(const cmp_ctx *ctx, const char *metadata)
{
    const cmp_settings *s = &ctx->set;
    cmp_limits d = {s->workspace_per_second, s->workspace_per_minute, s->workspace_per_hour};
    return cmp_limits_from_metadata(metadata, &d, 0);
}

/* The queued account if connected, else a failover; *found 0 when none. */
static bz_status choose_account(const cmp_ctx *ctx, PGconn *conn, const PGresult *res, int row,
                                via *out, int *found, bz_error *err)
{
    memset(out, 0, sizeof *out);
    *found = PQgetvalue(res, row, COL_USABLE)[0] == 't';
    if (*found) {
        out->acc.id = bz_pg_get_int64(res, row, COL_ACCOUNT);
        snprintf(out->acc.session_id, sizeof out->acc.session_id, "%s",
                 PQgetvalue(res, row, COL_SESSION));
        out->acc.provider = strcmp(PQgetvalue(res, row, COL_PROVIDER), "meta") == 0
                                ? BLAZZ__V1__PROVIDER__PROVIDER_META
                                : BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
        out->acc.instance_index = (int)bz_pg_get_int64(res, row, COL_INSTANCE);
        snprintf(out->acc.instance_url, sizeof out->acc.instance_url, "%s",
                 PQgetvalue(res, row, COL_INSTANCE_URL));
        out->limits = account_limits(ctx, PQgetvalue(res, row, COL_ACCOUNT_META));
        return BZ_OK;
    }
    bz_account_query q = {.workspace_id = bz_pg_get_int64(res, row, COL_WORKSPACE),
                          .contact_id = bz_pg_get_int64(res, row, COL_CONTACT),
                          .group_id = bz_pg_get_int64(res, row, COL_GROUP)};
    bz_status st = bz_account_select(conn, &q, &out->acc, found, err);
    if (st == BZ_OK && *found) {
        out->limits = account_limits(ctx, out->acc.metadata_json);
        bz_counter_inc(ctx->m.failovers);
    }
    return st;
}

/* The queued SendMessage, addressed to the account it leaves through;
 * BZ_ERR_INVALID (provider_limit) when that account cannot send it (an
 * interactive message failed over to a whatsapp-web.js account). */
static bz_status release(const PGresult *res, int row, const via *v, int64_t now_ms,
                         round_writes *w, bz_error *err)
{
    const char *message_id = PQgetvalue(res, row, COL_MESSAGE);
    size_t len = 0;
    unsigned char *bytes =
        PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, COL_PAYLOAD), &len);
    Blazz__V1__SendMessage *m = bytes ? blazz__v1__send_message__unpack(NULL, len, bytes) : NULL;
    PQfreemem(bytes);
    if (!m || !m->envelope) {
        blazz__v1__send_message__free_unpacked(m, NULL);
        return bz_fail(err, BZ_ERR_INTERNAL, "queued send %s: not a SendMessage", message_id);
    }
    if (bz_wa_provider_check(v->acc.provider, m, err) != BZ_OK) {
        blazz__v1__send_message__free_unpacked(m, NULL);
        return BZ_ERR_INVALID;
    }
    Blazz__V1__Envelope *env = m->envelope, queued_env = *env;
    char *queued_session = m->session_id;
    Blazz__V1__InstanceRef *queued_instance = m->assigned_instance;
    m->envelope->event_id = (char *)message_id;
    m->envelope->produced_at_ms = now_ms;
    m->envelope->source = "campaign-sender";
    m->envelope->session_id = (char *)v->acc.session_id;
    m->envelope->whatsapp_account_id = v->acc.id;
    m->envelope->provider = v->acc.provider;
    m->session_id = (char *)v->acc.session_id;
    Blazz__V1__InstanceRef inst = BLAZZ__V1__INSTANCE_REF__INIT;
    inst.index = v->acc.instance_index;
    inst.url = (char *)v->acc.instance_url;
    m->assigned_instance = v->acc.instance_index >= 0 ? &inst : NULL;
    size_t plen = blazz__v1__send_message__get_packed_size(m);
    uint8_t *packed = malloc(plen ? plen : 1);
    bz_status st = packed ? BZ_OK
                          : bz_fail(err, BZ_ERR_NOMEM, "release %s: out of memory", message_id);
    if (st == BZ_OK) {
        blazz__v1__send_message__pack(m, packed);
        st = bz_outbox_batch_add(w->outbox, bz_topic_base(BZ_TOPIC_WA_OUTBOUND), message_id,
                                 v->acc.session_id, strlen(v->acc.session_id), packed, plen,
                                 m->envelope->trace_id, err);
    }
    /* what unpack allocated goes back before free_unpacked sees our pointers */
    *env = queued_env;
    m->session_id = queued_session;
    m->assigned_instance = queued_instance;
    blazz__v1__send_message__free_unpacked(m, NULL);
    free(packed);
    if (st == BZ_OK)
        cmp_ledger_add(&w->ledger, v->acc.id, bz_pg_get_int64(res, row, COL_WORKSPACE),
                       message_id, PQgetvalue(res, row, COL_RECIPIENT));
    if (st == BZ_OK && v->acc.provider == BLAZZ__V1__PROVIDER__PROVIDER_META &&
        bz_pg_get_int64(res, row, COL_CONTACT) > 0) {
        w->meta_accounts[w->nmeta] = v->acc.id;
        w->meta_workspaces[w->nmeta] = bz_pg_get_int64(res, row, COL_WORKSPACE);
        w->meta_contacts[w->nmeta++] = bz_pg_get_int64(res, row, COL_CONTACT);
    }
    return st;
}

/* A FAILED receipt for chat-sync: the send never reached a provider. */
static bz_status fail(const PGresult *res, int row, const char *code, const char *message,
                      int64_t now_ms, round_writes *w, bz_error *err)
{
    const char *message_id = PQgetvalue(res, row, COL_MESSAGE);
    const char *key = PQgetvalue(res, row, COL_KEY);
    const char *colon = strchr(key, ':');
    char name[128], event_id[BZ_UUID_STR_SIZE];
    int n = snprintf(name, sizeof name, "blazz.v1/campaign-sender/agent-failed/%s", message_id);
    bz_uuid_derive(name, (size_t)n, event_id);
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = env.produced_at_ms = now_ms;
    env.source = "campaign-sender";
    env.workspace_id = bz_pg_get_int64(res, row, COL_WORKSPACE);
    env.session_id = PQgetvalue(res, row, COL_SESSION);
    env.whatsapp_account_id = bz_pg_get_int64(res, row, COL_ACCOUNT);
    env.trace_id = event_id;
    Blazz__V1__MessageAck ack = BLAZZ__V1__MESSAGE_ACK__INIT;
    ack.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED;
    ack.error_code = (char *)code;
    ack.error_message = (char *)message;
    ack.timestamp_ms = now_ms;
    ack.client_reference = (char *)message_id;
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.envelope = &env;
    cmd.conversation = (char *)(colon ? colon + 1 : key);
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT;
    cmd.receipt = &ack;
    size_t len = blazz__v1__sync_command__get_packed_size(&cmd);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return bz_fail(err, BZ_ERR_NOMEM, "fail send %s: out of memory", message_id);
    blazz__v1__sync_command__pack(&cmd, buf);
    bz_status st = bz_outbox_batch_add(w->outbox, bz_topic_base(BZ_TOPIC_CHAT_SYNC), event_id, key,
                                       strlen(key), buf, len, event_id, err);
    free(buf);
    return st;
}

static void hold(int64_t *ids, size_t *n, int *all, int64_t id)
{
    for (size_t i = 0; i < *n; i++)
        if (ids[i] == id)
            return;
    if (*n < CMP_AGENT_HOLDS)
        ids[(*n)++] = id;
    else
        *all = 1;
}

int cmp_agent_round_holds(const cmp_agent_round *r, int64_t account, int64_t workspace)
{
    if (r->held_all)
        return 1;
    for (size_t i = 0; i < r->nheld_accounts; i++)
        if (r->held_accounts[i] == account)
            return 1;
    for (size_t i = 0; i < r->nheld_workspaces; i++)
        if (r->held_workspaces[i] == workspace)
            return 1;
    return 0;
}

/* A message waits on v's account for budget: campaigns yield there, and in
 * the whole workspace when the workspace's limit is the one that binds. */
static void hold_for_agents(cmp_budget *budget, const via *v, int64_t workspace, int64_t now_ms,
                            cmp_agent_round *out)
{
    static const cmp_limits unlimited = {0};
    hold(out->held_accounts, &out->nheld_accounts, &out->held_all, v->acc.id);
    if (cmp_budget_room(budget, CMP_RELEASE_AGENT, v->acc.id, &v->limits, workspace, &unlimited,
                        now_ms) > 0)
        hold(out->held_workspaces, &out->nheld_workspaces, &out->held_all, workspace);
}

/* After a restore the replay re-reads agents' commands and their echoes
 * in no order between them (ARCHITECTURE.md §6.5): a command read first
 * queues again a message the gateway sent before the restore. Nothing
 * leaves while the fence is up; once chat-sync has read chat.sync back to
 * the fence, each such message's echo has given its row the provider's id
 * and it leaves the queue unsent (COL_ECHOED). The wait does not count
 * towards agent.max_wait_s: the message is not late, the database is. */
static void hold_for_replay(const cmp_ctx *ctx, int64_t now_ms, cmp_agent_round *out)
{
    out->waiting++;
    bz_counter_inc(bz_counter_family_with(ctx->m.agent_held, "restore_fence"));
    int64_t next = now_ms + ctx->set.sender_refresh_ms;
    if (!out->next_ms || next < out->next_ms)
        out->next_ms = next;
}

/* A message the account it failed over to cannot send (refusal: why)
 * fails at once: waiting would not make that account able to. */
static bz_status fail_refused(const cmp_ctx *ctx, const PGresult *res, int row,
                             bz_error *refusal, int64_t now_ms, round_writes *w,
                             cmp_agent_round *out, int *dequeue)
{
    char why[BZ_ERROR_MSG_MAX];
    snprintf(why, sizeof why, "%s", refusal->msg);
    bz_status st = fail(res, row, BZ_WA_META_LIMIT_REASON, why, now_ms, w, refusal);
    if (st == BZ_OK) {
        out->failed++;
        bz_counter_inc(bz_counter_family_with(ctx->m.agent_failed, BZ_WA_META_LIMIT_REASON));
        *dequeue = 1;
    }
    return st;
}

/* Decide one queued message; *dequeue = 1 when it left the queue. */
static bz_status handle_row(const cmp_ctx *ctx, cmp_budget *budget, PGconn *conn,
                            const PGresult *res, int row, int64_t now_ms, round_writes *w,
                            cmp_agent_round *out, int *dequeue, bz_error *err)
{
    int64_t workspace = bz_pg_get_int64(res, row, COL_WORKSPACE);
    int64_t waited = now_ms - bz_pg_get_int64(res, row, COL_ENQUEUED);
    int overdue = waited > ctx->set.agent_max_wait_ms;
    cmp_limits wl = workspace_limits(ctx, PQgetvalue(res, row, COL_WORKSPACE_META));
    *dequeue = 0;
    if (PQgetvalue(res, row, COL_ECHOED)[0] == 't') {
        bz_counter_inc(ctx->m.agent_already_sent);
        *dequeue = 1;
        return BZ_OK;
    }
    if (PQgetvalue(res, row, COL_FENCED)[0] == 't') {
        hold_for_replay(ctx, now_ms, out);
        return BZ_OK;
    }
    via v;
    int found = 0;
    bz_status st = choose_account(ctx, conn, res, row, &v, &found, err);
    /* when the pair rate lets it go to its recipient: at once within the
     * burst (pair.h) */
    const char *recipient = PQgetvalue(res, row, COL_RECIPIENT);
    int64_t pair_at = found ? cmp_pairs_next(cmp_budget_pairs(budget), v.acc.id, recipient,
                                             CMP_PAIR_AGENT, now_ms)
                            : now_ms;
    int room = st == BZ_OK && found &&
               cmp_budget_room(budget, CMP_RELEASE_AGENT, v.acc.id, &v.limits, workspace, &wl,
                               now_ms) > 0;
    if (room && pair_at <= now_ms) {
        st = release(res, row, &v, now_ms, w, err);
        if (st == BZ_ERR_INVALID)
            st = fail_refused(ctx, res, row, err, now_ms, w, out, dequeue);
        else if (st == BZ_OK && cmp_budget_record_release(budget, CMP_RELEASE_AGENT, v.acc.id, workspace,
                                                     recipient, now_ms) != 0)
            st = bz_fail(err, BZ_ERR_NOMEM, "count a release: out of memory");
        if (st == BZ_OK) {
            out->released++;
            bz_histogram_observe(ctx->m.agent_wait, (double)(waited > 0 ? waited : 0) / 1000.0);
            *dequeue = 1;
        }
    } else if (st == BZ_OK && overdue) {
        const char *code = found ? "rate_limited" : "no_connected_account";
        st = fail(res, row, code,
                  found ? "the account's send budget or Meta's pair rate to the recipient stayed "
                          "spent longer than agent.max_wait_s"
                        : "no connected WhatsApp account for longer than agent.max_wait_s",
                  now_ms, w, err);
        if (st == BZ_OK) {
            out->failed++;
            bz_counter_inc(bz_counter_family_with(ctx->m.agent_failed, code));
            *dequeue = 1;
        }
    } else if (st == BZ_OK) {
        out->waiting++;
        const char *why = !found ? "no_connected_account" : !room ? "send_budget" : CMP_PAIR_REASON;
        bz_counter_inc(bz_counter_family_with(ctx->m.agent_held, why));
        /* only the budget's room is what campaigns could take from it; the
         * pair rate holds one recipient, whom campaigns wait longer for */
        if (found && !room)
            hold_for_agents(budget, &v, workspace, now_ms, out);
        int64_t next = found ? cmp_budget_next_room(budget, CMP_RELEASE_AGENT, v.acc.id, &v.limits,
                                                    workspace, &wl, now_ms, NULL)
                             : now_ms + ctx->set.sender_refresh_ms;
        if (pair_at > next)
            next = pair_at;
        int64_t deadline = now_ms + (ctx->set.agent_max_wait_ms - waited) + 1;
        if (deadline < next)
            next = deadline;
        if (!out->next_ms || next < out->next_ms)
            out->next_ms = next;
    }
    bz_account_clear(&v.acc);
    return st;
}

static bz_status write_round(PGconn *conn, round_writes *w, int64_t now_ms, bz_error *err)
{
    bz_status st = bz_outbox_batch_write(conn, w->outbox, err);
    if (st == BZ_OK)
        st = cmp_ledger_write(&w->ledger, conn, "agent", now_ms, err);
    if (st == BZ_OK)
        st = cmp_reach_record_agents(conn, w->meta_accounts, w->meta_workspaces, w->meta_contacts,
                                     w->nmeta, err);
    if (st == BZ_OK && w->ndequeue > 0) {
        char *ids = bz_pg_int64_array(w->dequeue, w->ndequeue);
        const char *params[] = {ids};
        st = ids ? bz_pg_exec_params(conn, "dequeue released agent messages", SQL_DEQUEUE, 1,
                                     params, NULL, err)
                 : bz_fail(err, BZ_ERR_NOMEM, "dequeue: out of memory");
        free(ids);
    }
    return st;
}

bz_status cmp_agents_release(const cmp_ctx *ctx, cmp_budget *budget, PGconn *conn,
                             int64_t now_ms, int batch, cmp_agent_round *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    char limit[24];
    snprintf(limit, sizeof limit, "%d", batch);
    const char *params[] = {limit};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "read queued agent messages", SQL_READ_QUEUE, 1, params,
                                     &res, err);
    if (st != BZ_OK)
        return st;
    int n = PQntuples(res);
    out->seen = n;
    round_writes w = {0};
    cmp_ledger_init(&w.ledger);
    if (n > 0) {
        st = bz_outbox_batch_new(&w.outbox, err);
        w.dequeue = calloc((size_t)n, sizeof *w.dequeue);
        w.meta_accounts = calloc((size_t)n, sizeof *w.meta_accounts);
        w.meta_workspaces = calloc((size_t)n, sizeof *w.meta_workspaces);
        w.meta_contacts = calloc((size_t)n, sizeof *w.meta_contacts);
        if (st == BZ_OK &&
            (!w.dequeue || !w.meta_accounts || !w.meta_workspaces || !w.meta_contacts))
            st = bz_fail(err, BZ_ERR_NOMEM, "release agent messages: out of memory");
    }
    for (int i = 0; st == BZ_OK && i < n; i++) {
        int dequeue = 0;
        st = handle_row(ctx, budget, conn, res, i, now_ms, &w, out, &dequeue, err);
        if (st == BZ_OK && dequeue)
            w.dequeue[w.ndequeue++] = bz_pg_get_int64(res, i, COL_ID);
    }
    if (st == BZ_OK && n > 0)
        st = write_round(conn, &w, now_ms, err);
    PQclear(res);
    bz_outbox_batch_free(w.outbox);
    cmp_ledger_free(&w.ledger);
    free(w.dequeue);
    free(w.meta_accounts);
    free(w.meta_workspaces);
    free(w.meta_contacts);
    return st;
}
