/*
 * send_round.c - one round of the send loop: the agents' messages first,
 * then as many campaign sends as the send budget allows.
 *
 * Agents' messages come first (agent_sends.c) so a campaign never takes
 * the room a person waits for; while agents' messages wait on an account
 * or workspace, campaigns there hold back until the next agent round.
 * Then the running campaigns take turns (round robin across rounds): each
 * may release what its account's and workspace's shared send budget
 * leaves at the campaigns' pace (budget.c), at most sender.batch_max,
 * and releases that many pending logs in ONE transaction: lock them (FOR
 * UPDATE SKIP LOCKED, in id order), render the personalized SendMessage for
 * each, insert the outbox rows for wa.outbound (key = session id,
 * idempotency key = the log's uuid), record them in send_ledger and flip
 * the logs pending -> queued. Either all of that commits or none of it
 * does, and a queued log is never picked again, so a crash at any instant
 * can repeat a publish (same event id and key) but never create a second
 * send of one log. A failed attempt that receipts.c put back to pending is
 * sent again under "<uuid>/retry-<n>", since gateways treat a repeated key
 * as a replay; one Meta failed for the recipient's per-user marketing limit
 * is not picked before its retry_at (receipts.c, ARCHITECTURE.md §12.11),
 * and until then the campaign neither completes nor sends it. The round
 * returns how long the loop may sleep: until the budget has room again, or
 * 0 when a campaign filled its whole batch.
 *
 * Before anything is released, every rule of the release gives its
 * verdict on the picked logs (release_plan.h), in this order (plan_release):
 *  1. a contact who opted out (contacts.opted_out_at, ARCHITECTURE.md
 *     §12.6) is skipped for good (`skipped`, its reason in skip_reason,
 *     counted in campaigns.messages_skipped in the same transaction);
 *  2. a free-form campaign through a Meta account skips the contacts
 *     outside Meta's 24-hour window (outside_window.h, §12.7);
 *  3. a message to a recipient whose pair-rate bucket is not full again
 *     waits (Meta's pair rate, pair.h: at least budget.pair_interval_s
 *     after the account's last message to them, longer after an agent's
 *     burst);
 *  4. past the round's room, the rest wait for a later round;
 *  5. through a Meta account, a template campaign's business-initiated
 *     message beyond the portfolio's tier is held (reach.h, §12.10), and
 *     through a webjs number in warm-up, a message to a new recipient
 *     beyond the number's cap (warmup.h, §11.3); these two record whom
 *     they let go, so they come last.
 * A warming-up number's campaign sends also leave one at a time, a random
 * gap apart (campaign_room). Deciding at release, not at expansion, means
 * a contact who opts out while the campaign runs is skipped from then on
 * and one who opted back in is sent to. After a round that held logs, the
 * next looks past them (up to sender.batch_max), so known contacts behind
 * a held one still go; when every log it can look at is held, the campaign
 * waits until the first may go (at most a minute, then its rules are
 * asked again), and metadata.held says why.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "kafka/outbox.h"
#include "outside_window.h"
#include "pair.h"
#include "pg/columns.h"
#include "reach.h"
#include "release_plan.h"
#include "send_loop.h"
#include "warmup.h"

#define SQL_PICK                                                                                 \
    "SELECT l.id, l.uuid::text, l.contact_id, l.retry_count, c.phone, "                          \
    "coalesce(c.first_name, ''), coalesce(c.full_name, ''), c.opted_out_at IS NOT NULL, "        \
    "coalesce(c.bsuid, ''), " CMP_PAIR_RECIPIENT("l.contact_id") " "                             \
    "FROM campaign_logs l JOIN contacts c ON c.id = l.contact_id "                               \
    "WHERE l.campaign_id = $1 AND l.status = 'pending' "                                         \
    "AND (l.retry_at IS NULL OR l.retry_at <= now()) "                                           \
    "AND EXISTS (SELECT 1 FROM campaigns k WHERE k.id = $1 AND k.status = 'running') "           \
    "ORDER BY l.id LIMIT $2 FOR UPDATE OF l SKIP LOCKED"
#define SQL_MARK_QUEUED                                                                          \
    "UPDATE campaign_logs SET status = 'queued', queued_at = now(), whatsapp_account_id = $2 "   \
    "WHERE id = ANY($1::bigint[]) AND status = 'pending'"
/* Logs a rule skips for good (release_plan.h): final, each with its
 * reason, counted on the campaign in the same statement. */
#define SQL_MARK_SKIPPED                                                                         \
    "WITH s AS (UPDATE campaign_logs l SET status = 'skipped', skip_reason = v.reason, "         \
    "skipped_at = now() FROM unnest($1::bigint[], $3::text[]) AS v(id, reason) "                 \
    "WHERE l.id = v.id AND l.status = 'pending' RETURNING l.id) "                                \
    "UPDATE campaigns SET messages_skipped = messages_skipped + (SELECT count(*) FROM s) "       \
    "WHERE id = $2 RETURNING (SELECT count(*) FROM s)"
/* SQL_PICK's columns: the contact's phone (the address: the BSUID of a
 * contact known only by it, decision 0010), whether they opted out, its
 * BSUID ("" when unknown), the pair rate's recipient (pair.h). */
#define COL_PHONE 4
#define COL_OPTED_OUT 7
#define COL_BSUID 8
#define COL_PAIR_RECIPIENT 9
/* Why a warming-up number's campaign waits between two sends. */
#define WARMUP_JITTER "warmup_jitter"
/* The reason of an opted-out contact's skip (ARCHITECTURE.md §12.6). */
#define SKIP_OPTED_OUT "opted_out"

typedef struct send_batch {
    cmp_campaign_slot *c;
    cmp_account_slot *a;
    int64_t want, pick; /* how many may be released; how many pending logs to look at */
    int64_t picked, sent, skipped;
    int64_t now_ms;        /* budget clock: the release time in send_ledger */
    cmp_release_plan plan; /* the rules' verdicts on the picked logs (freed by the round) */
    cmp_ledger ledger;     /* what was released, counted once committed (freed by the round) */
} send_batch;

/* Build one log's SendMessage and queue it on outbox for wa.outbound
 * (key = session id, trace id = the campaign's uuid). */
static bz_status queue_send(cmp_sender *s, const send_batch *b, const PGresult *res, int row,
                            const char *event_id, bz_outbox_batch *outbox, bz_error *err)
{
    const cmp_campaign_slot *c = b->c;
    const bz_account *acc = &b->a->acc;
    const char *uuid = PQgetvalue(res, row, 1);
    int retry = (int)bz_pg_get_int64(res, row, 3);
    /* a contact known only by its BSUID has no phone to send to or to show
     * ({{phone}}): the gateway addresses it by the BSUID */
    const char *bsuid = PQgetvalue(res, row, COL_BSUID);
    const char *phone = PQgetvalue(res, row, COL_PHONE);
    if (*bsuid && strcmp(phone, bsuid) == 0)
        phone = "";
    cmp_contact_fields fields = {PQgetvalue(res, row, 5), PQgetvalue(res, row, 6), phone};
    char key[BZ_UUID_STR_SIZE + 24];
    if (retry)
        snprintf(key, sizeof key, "%s/retry-%d", uuid, retry);
    else
        snprintf(key, sizeof key, "%s", uuid);

    int64_t now = bz_wall_ms();
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = (char *)event_id;
    env.occurred_at_ms = env.produced_at_ms = now;
    env.source = "campaign-sender";
    env.workspace_id = c->workspace_id;
    env.session_id = (char *)acc->session_id;
    env.whatsapp_account_id = acc->id;
    env.provider = acc->provider;
    env.trace_id = (char *)c->uuid;
    Blazz__V1__InstanceRef inst = BLAZZ__V1__INSTANCE_REF__INIT;
    inst.index = acc->instance_index;
    inst.url = (char *)acc->instance_url;

    Blazz__V1__SendMessage m = BLAZZ__V1__SEND_MESSAGE__INIT;
    m.envelope = &env;
    m.idempotency_key = key;
    m.client_reference = (char *)uuid;
    m.session_id = (char *)acc->session_id;
    m.to_phone = (char *)phone;
    m.to_bsuid = (char *)bsuid;
    m.campaign_id = c->id;
    m.campaign_log_id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    m.contact_id = strtoll(PQgetvalue(res, row, 2), NULL, 10);
    m.assigned_instance = acc->instance_index >= 0 ? &inst : NULL;
    m.expires_at_ms = s->ctx->set.expire_after_ms ? now + s->ctx->set.expire_after_ms : 0;
    cmp_rendered content;
    bz_status st = cmp_message_render(&c->msg, &fields, &m, &content, err);
    uint8_t *buf = NULL;
    size_t len = st == BZ_OK ? blazz__v1__send_message__get_packed_size(&m) : 0;
    if (st == BZ_OK && !(buf = malloc(len ? len : 1)))
        st = bz_fail(err, BZ_ERR_NOMEM, "build SendMessage for log %s: out of memory", uuid);
    if (st == BZ_OK) {
        blazz__v1__send_message__pack(&m, buf);
        st = bz_outbox_batch_add(outbox, bz_topic_base(BZ_TOPIC_WA_OUTBOUND), event_id,
                                 acc->session_id, strlen(acc->session_id), buf, len, c->uuid,
                                 err);
    }
    free(buf);
    cmp_rendered_free(&content);
    return st;
}

/* Skip, each with its reason, the picked logs a rule will never send. */
static bz_status skip_for_good(PGconn *conn, send_batch *b, const int64_t *ids,
                               const char *const *reasons, size_t n, bz_error *err)
{
    if (n == 0)
        return BZ_OK;
    char *log_array = bz_pg_int64_array(ids, n), *reason_array = bz_pg_text_array(reasons, n);
    char campaign[24];
    snprintf(campaign, sizeof campaign, "%" PRId64, b->c->id);
    const char *params[] = {log_array, campaign, reason_array};
    PGresult *res = NULL;
    bz_status st = log_array && reason_array
                       ? bz_pg_exec_prepared(conn, "cmp_mark_skipped", 3, params, NULL, NULL,
                                             &res, err)
                       : bz_fail(err, BZ_ERR_NOMEM, "skip logs: out of memory");
    free(log_array);
    free(reason_array);
    if (st != BZ_OK)
        return st;
    if (PQntuples(res) != 1 || (size_t)bz_pg_get_int64(res, 0, 0) != n)
        st = bz_fail(err, BZ_ERR_INTERNAL, "campaign %" PRId64 ": %zu locked logs, not all skipped",
                     b->c->id, n);
    PQclear(res);
    if (st == BZ_OK)
        b->skipped = (int64_t)n;
    return st;
}

static bz_status mark_queued(PGconn *conn, send_batch *b, const int64_t *ids, size_t n,
                             bz_error *err)
{
    char *log_array = bz_pg_int64_array(ids, n), account[24];
    if (!log_array)
        return bz_fail(err, BZ_ERR_NOMEM, "queue logs: out of memory");
    snprintf(account, sizeof account, "%" PRId64, b->a->id);
    const char *params[] = {log_array, account};
    PGresult *upd;
    bz_status st = bz_pg_exec_prepared(conn, "cmp_mark_queued", 2, params, NULL, NULL, &upd, err);
    free(log_array);
    if (st != BZ_OK)
        return st;
    if ((size_t)strtoull(PQcmdTuples(upd), NULL, 10) != n)
        st = bz_fail(err, BZ_ERR_INTERNAL, "campaign %" PRId64 ": %s of %zu locked logs moved to queued",
                     b->c->id, PQcmdTuples(upd), n);
    PQclear(upd);
    return st;
}

/* Ask every rule of the release about the picked logs (release_plan.h):
 * the opt-out, then, for a free-form campaign through a Meta account, the
 * 24-hour window (skips for good come before any hold), Meta's pair rate
 * (before the rules that record whom they let go), then, through a Meta
 * account, Meta's messaging limit for a template campaign, and through a
 * webjs number in warm-up, its cap of new recipients. */
static bz_status plan_release(cmp_sender *s, PGconn *conn, send_batch *b, const PGresult *res,
                              bz_error *err)
{
    size_t n = (size_t)PQntuples(res);
    bz_status st = cmp_release_plan_init(&b->plan, n, err);
    b->plan.quota = b->want;
    int64_t *contacts = calloc(n ? n : 1, sizeof *contacts);
    const char **recipients = calloc(n ? n : 1, sizeof *recipients);
    if (st == BZ_OK && (!contacts || !recipients))
        st = bz_fail(err, BZ_ERR_NOMEM, "plan the release: out of memory");
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        contacts[i] = strtoll(PQgetvalue(res, (int)i, 2), NULL, 10);
        recipients[i] = PQgetvalue(res, (int)i, COL_PAIR_RECIPIENT);
        if (strcmp(PQgetvalue(res, (int)i, COL_OPTED_OUT), "t") == 0)
            cmp_release_plan_skip(&b->plan, i, SKIP_OPTED_OUT);
    }
    int window = cmp_service_window_applies(&b->a->acc, &b->c->msg);
    if (st == BZ_OK && window)
        st = cmp_service_window_apply(conn, b->a->id, contacts, &b->plan, err);
    if (st == BZ_OK)
        st = cmp_pairs_apply(cmp_budget_pairs(s->budget), b->a->id, recipients, b->now_ms, &b->plan,
                             err);
    /* what a free-form campaign still sends is inside its window: not
     * business-initiated, so the messaging limit has nothing to count */
    if (st == BZ_OK && !window && b->a->acc.provider == BLAZZ__V1__PROVIDER__PROVIDER_META)
        st = cmp_reach_apply(conn, b->a->id, b->c->workspace_id, contacts,
                             s->ctx->set.reach_window_s, &b->plan, err);
    if (st == BZ_OK && b->a->warmup.cap)
        st = cmp_warmup_apply(conn, b->a->id, b->c->workspace_id, &b->a->warmup, contacts,
                              s->ctx->set.warmup_window_s, &b->plan, err);
    /* picked past held logs: release no more than the round has room for */
    cmp_release_plan_admit_rest(&b->plan);
    free(contacts);
    free(recipients);
    return st;
}

/* The picked logs as the plan decides: skipped for good, held pending, or
 * released (outbox, ledger, queued). */
static bz_status queue_picked(cmp_sender *s, PGconn *conn, send_batch *b, const PGresult *res,
                              bz_error *err)
{
    size_t n = (size_t)PQntuples(res), nsend = 0, nskip = 0;
    int64_t *send_ids = calloc(n, sizeof *send_ids), *skip_ids = calloc(n, sizeof *skip_ids);
    const char **skip_reasons = calloc(n, sizeof *skip_reasons);
    bz_outbox_batch *outbox = NULL;
    bz_status st = send_ids && skip_ids && skip_reasons
                       ? bz_outbox_batch_new(&outbox, err)
                       : bz_fail(err, BZ_ERR_NOMEM, "queue logs: out of memory");
    if (st == BZ_OK)
        st = plan_release(s, conn, b, res, err);
    for (size_t i = 0; i < n && st == BZ_OK; i++) {
        int64_t id = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        if (b->plan.skip[i]) {
            skip_reasons[nskip] = b->plan.skip[i];
            skip_ids[nskip++] = id;
            continue;
        }
        if (b->plan.hold[i])
            continue;
        cmp_ledger_add(&b->ledger, b->a->id, b->c->workspace_id, PQgetvalue(res, (int)i, 1),
                       PQgetvalue(res, (int)i, COL_PAIR_RECIPIENT));
        /* The first attempt's event id is the log's uuid, a retry's follows
         * from it and the attempt: a repeated publish (a replay after a
         * restore too) is recognisably the same record. */
        char event_id[BZ_UUID_STR_SIZE];
        int64_t retry = bz_pg_get_int64(res, (int)i, 3);
        if (retry == 0) {
            snprintf(event_id, sizeof event_id, "%s", PQgetvalue(res, (int)i, 1));
        } else {
            char name[96];
            int len = snprintf(name, sizeof name, "blazz.v1/campaign-sender/%s/attempt/%" PRId64,
                               PQgetvalue(res, (int)i, 1), retry);
            bz_uuid_derive(name, len > 0 && (size_t)len < sizeof name ? (size_t)len
                                                                      : sizeof name - 1,
                           event_id);
        }
        send_ids[nsend++] = id;
        if (st == BZ_OK)
            st = queue_send(s, b, res, (int)i, event_id, outbox, err);
    }
    if (st == BZ_OK)
        st = skip_for_good(conn, b, skip_ids, skip_reasons, nskip, err);
    if (st == BZ_OK && nsend > 0)
        st = bz_outbox_batch_write(conn, outbox, err);
    if (st == BZ_OK && nsend > 0)
        st = cmp_ledger_write(&b->ledger, conn, "campaign", b->now_ms, err);
    if (st == BZ_OK && nsend > 0)
        st = mark_queued(conn, b, send_ids, nsend, err);
    bz_outbox_batch_free(outbox);
    free(send_ids);
    free(skip_ids);
    free(skip_reasons);
    if (st == BZ_OK) {
        b->picked = (int64_t)n;
        b->sent = (int64_t)nsend;
    }
    return st;
}

static bz_status send_in_tx(cmp_sender *s, PGconn *conn, void *arg)
{
    send_batch *b = arg;
    char id[24], limit[24];
    snprintf(id, sizeof id, "%" PRId64, b->c->id);
    snprintf(limit, sizeof limit, "%" PRId64, b->pick);
    const char *params[] = {id, limit};
    PGresult *res;
    bz_error err;
    bz_status st = bz_pg_exec_prepared(conn, "cmp_pick", 2, params, NULL, NULL, &res, &err);
    if (st == BZ_OK) {
        if (PQntuples(res) > 0)
            st = queue_picked(s, conn, b, res, &err);
        PQclear(res);
    }
    if (st != BZ_OK)
        bz_error_log("send campaign %" PRId64 ": %s", b->c->id, err.msg);
    return st;
}

/* campaigns.metadata.held: why the campaign's next messages wait
 * (`blazzctl campaign status`): the reason that held the most, its
 * detail, when one may go, how many wait; removed once they go again. */
#define SQL_SHOW_HELD                                                                            \
    "UPDATE campaigns SET metadata = jsonb_set(metadata, '{held}', jsonb_strip_nulls("          \
    "jsonb_build_object('reason', $2::text, 'until', to_timestamp($3::bigint / 1000.0), "        \
    "'held', nullif($4::bigint, -1))) || CASE WHEN $5::text = '' THEN '{}'::jsonb ELSE "          \
    "jsonb_build_object($5::text, $6::text) END) WHERE id = $1::bigint"
#define SQL_CLEAR_HELD                                                                           \
    "UPDATE campaigns SET metadata = metadata - 'held' WHERE id = $1::bigint AND metadata ? 'held'"

typedef struct held_note {
    const cmp_plan_hold *top; /* the reason shown; NULL: clear */
    int64_t campaign, until_ms, held; /* held -1: the whole campaign waits, not counted */
} held_note;

static bz_status note_held_in_tx(cmp_sender *s, PGconn *conn, void *arg)
{
    (void)s;
    const held_note *h = arg;
    char id[24], until[24], held[24];
    snprintf(id, sizeof id, "%" PRId64, h->campaign);
    bz_error err;
    bz_status st;
    if (h->top) {
        snprintf(until, sizeof until, "%" PRId64, h->until_ms);
        snprintf(held, sizeof held, "%" PRId64, h->held);
        const char *params[] = {id,
                                h->top->reason,
                                until,
                                held,
                                h->top->detail_name ? h->top->detail_name : "",
                                h->top->detail};
        st = bz_pg_exec_params(conn, "show why the campaign waits", SQL_SHOW_HELD, 6, params,
                               NULL, &err);
    } else {
        const char *params[] = {id};
        st = bz_pg_exec_params(conn, "clear why the campaign waited", SQL_CLEAR_HELD, 1, params,
                               NULL, &err);
    }
    if (st != BZ_OK)
        bz_error_log("campaign %" PRId64 ": %s", h->campaign, err.msg);
    return st;
}

/* After a round of c: count what each rule skipped and held, show why the campaign
 * waits, or clear the note shown once messages go again. A failure only
 * leaves the note stale; the release stands. */
static void note_held(cmp_sender *s, cmp_campaign_slot *c, const send_batch *b)
{
    bz_error err;
    int64_t until_ms;
    size_t held = cmp_release_plan_held(&b->plan, &until_ms);
    for (size_t i = 0; i < b->plan.n; i++)
        if (b->plan.skip[i])
            bz_counter_inc(bz_counter_family_with(s->ctx->m.skipped, b->plan.skip[i]));
    for (size_t k = 0; k < b->plan.nholds; k++)
        if (b->plan.holds[k].held)
            bz_counter_add(bz_counter_family_with(s->ctx->m.held, b->plan.holds[k].reason),
                           (uint64_t)b->plan.holds[k].held);
    if (held > 0 && b->sent == 0) {
        const cmp_plan_hold *top = cmp_release_plan_main_hold(&b->plan);
        held_note h = {top, c->id, top->until_ms ? top->until_ms : until_ms, (int64_t)held};
        if (cmp_sender_run_in_tx(s, note_held_in_tx, &h, &err) == BZ_OK) {
            c->held_shown = 1;
            c->wait_noted = NULL;
        }
    } else if (c->held_shown && b->sent > 0) {
        held_note h = {NULL, c->id, 0, 0};
        if (cmp_sender_run_in_tx(s, note_held_in_tx, &h, &err) == BZ_OK) {
            c->held_shown = 0;
            c->wait_noted = NULL;
        }
    }
}

/* A held campaign asks its rules again at least this often, so a change
 * they read (a tier raised, a number's warmup_since) is seen. */
#define HOLD_RECHECK_MS 60000

/* After a round of c whose picked logs were all held: the campaign waits
 * until the first may go (an idle loop's time when no rule knows, at most
 * HOLD_RECHECK_MS). */
static void wait_for_held(cmp_sender *s, cmp_campaign_slot *c, const send_batch *b)
{
    int64_t until_ms;
    size_t held = cmp_release_plan_held(&b->plan, &until_ms);
    int64_t now = cmp_sender_budget_now(s);
    c->held_until_ms = until_ms > now ? until_ms : now + s->ctx->set.sender_idle_ms;
    if (c->held_until_ms > now + HOLD_RECHECK_MS)
        c->held_until_ms = now + HOLD_RECHECK_MS;
    const cmp_plan_hold *top = cmp_release_plan_main_hold(&b->plan);
    bz_info("campaign %" PRId64 ": %zu of its next messages wait (%s%s%s) for %" PRId64 " ms",
            c->id, held, top->reason, top->detail_name ? " " : "", top->detail,
            c->held_until_ms - now);
}

typedef struct agent_step {
    int64_t now_ms;
    cmp_agent_round round;
} agent_step;

static bz_status agents_in_tx(cmp_sender *s, PGconn *conn, void *arg)
{
    agent_step *step = arg;
    bz_error err;
    bz_status st = cmp_agents_release(s->ctx, s->budget, conn, step->now_ms,
                                      s->ctx->set.agent_batch_max, &step->round, &err);
    if (st != BZ_OK)
        bz_error_log("release agent messages: %s", err.msg);
    return st;
}

/* Agents first: release what the queue holds before any campaign takes
 * room. Returns how long the loop may sleep for the agents' sake. */
static int64_t release_agents(cmp_sender *s, int *failed)
{
    int64_t now = cmp_sender_budget_now(s), idle = s->ctx->set.sender_idle_ms;
    if (!s->agents_due && (!s->agents_next_ms || now < s->agents_next_ms))
        return s->agents_next_ms ? s->agents_next_ms - now : idle;
    agent_step step = {.now_ms = now};
    bz_error err;
    if (cmp_sender_run_in_tx(s, agents_in_tx, &step, &err) != BZ_OK) {
        s->budget_loaded = 0; /* what the failed transaction counted never happened */
        *failed = 1;
        return CMP_SENDER_ERROR_BACKOFF_MS;
    }
    const cmp_agent_round *r = &step.round;
    s->agents_last = step.round;
    bz_counter_add(s->ctx->m.agent_released, (uint64_t)r->released);
    bz_gauge_set(s->ctx->m.agent_waiting, (double)r->waiting);
    s->agents_due = r->seen >= s->ctx->set.agent_batch_max; /* more behind the batch */
    s->agents_next_ms = r->next_ms;
    if (s->agents_due)
        return 0;
    return r->next_ms ? (r->next_ms > now ? r->next_ms - now : 0) : idle;
}

/* 1 when account a's campaign sends are spaced by the warm-up's random
 * gap: a webjs number in warm-up, with a gap configured. Only while it
 * warms up: an established number is paced by its rate limits, which its
 * operator chose. */
static int warmup_jitters(const cmp_sender *s, const cmp_account_slot *a)
{
    return a->warmup.cap && s->ctx->set.warmup_jitter_max_ms > 0;
}

/* Whole messages campaign c may release now: what the shared budget of
 * its account and workspace leaves (agents' messages first) at the
 * campaigns' pace, one at a time a random gap apart for a number in
 * warm-up. When that is 0, *wait_ms receives how long until more may go
 * and *why the reason (static). */
static int64_t campaign_room(cmp_sender *s, cmp_account_slot *a, cmp_workspace_slot *w,
                             int64_t *wait_ms, const char **why)
{
    int64_t bnow = cmp_sender_budget_now(s);
    if (cmp_agent_round_holds(&s->agents_last, a->id, w->id)) {
        /* agents' messages wait here: what frees is theirs (next agent round) */
        int64_t next = s->agents_next_ms - bnow;
        *wait_ms = next < 1 ? 1 : next;
        *why = "agents_first";
        return 0;
    }
    int64_t room = cmp_budget_room(s->budget, CMP_RELEASE_CAMPAIGN, a->id, &a->limits, w->id,
                                   &w->limits, bnow);
    if (room > 0 && warmup_jitters(s, a)) {
        /* a warming-up number's sends leave one by one, a random gap apart */
        if (bnow >= a->jitter_next_ms)
            return 1;
        *wait_ms = a->jitter_next_ms - bnow;
        *why = WARMUP_JITTER;
        return 0;
    }
    if (room > 0)
        return room < s->ctx->set.sender_batch_max ? room : s->ctx->set.sender_batch_max;
    int64_t next = cmp_budget_next_room(s->budget, CMP_RELEASE_CAMPAIGN, a->id, &a->limits,
                                        w->id, &w->limits, bnow, why);
    if (!*why)
        *why = "account_rate";
    *wait_ms = next - bnow < 1 ? 1 : next - bnow;
    return 0;
}

/* A campaign that will wait at least this long for a limit says why in
 * metadata.held; shorter waits, and waits for its pace (however slow the
 * limits make it), are the ordinary spacing of its sends (the gauge still
 * counts them). */
#define WAIT_NOTE_MS 5000

/* 1 when why is the ordinary spacing of a campaign's sends, not a limit
 * reached: its pace, a warming-up number's random gap. */
static int is_pace(const char *why)
{
    return strcmp(why, "account_pace") == 0 || strcmp(why, "workspace_pace") == 0 ||
           strcmp(why, WARMUP_JITTER) == 0;
}

/* After c found no room for reason why for wait_ms: say so once (cleared
 * when its messages go again, note_held). */
static void note_rate_wait(cmp_sender *s, cmp_campaign_slot *c, const char *why,
                           int64_t wait_ms)
{
    if (wait_ms < WAIT_NOTE_MS || is_pace(why) ||
        (c->wait_noted && strcmp(c->wait_noted, why) == 0))
        return;
    cmp_plan_hold h = {.reason = why};
    held_note note = {&h, c->id, cmp_sender_budget_now(s) + wait_ms, -1};
    bz_error err;
    if (cmp_sender_run_in_tx(s, note_held_in_tx, &note, &err) == BZ_OK) {
        c->held_shown = 1;
        c->wait_noted = why;
    }
}

/* blazz_campaign_sender_campaigns_waiting{reason}: how many running
 * campaigns wait now, by why; a reason met before and not now reads 0. */
static void count_waiting(cmp_sender *s)
{
    size_t counts[CMP_WAIT_REASONS] = {0};
    for (size_t k = 0; k < s->ncampaigns; k++) {
        const char *why = s->campaigns[k]->wait_reason;
        if (!why)
            continue;
        size_t r = 0;
        while (r < s->nwait_reasons && strcmp(s->wait_reasons[r], why) != 0)
            r++;
        if (r == s->nwait_reasons && r < CMP_WAIT_REASONS)
            s->wait_reasons[s->nwait_reasons++] = why;
        if (r < s->nwait_reasons)
            counts[r]++;
    }
    for (size_t r = 0; r < s->nwait_reasons; r++)
        bz_gauge_set(bz_gauge_family_with(s->ctx->m.waiting, s->wait_reasons[r]),
                     (double)counts[r]);
}

/* While a restore's replay is under way every campaign waits (refresh.c
 * reads the fence); returns the sleep until the next refresh looks again. */
static int64_t hold_campaigns_for_replay(cmp_sender *s, int64_t sleep_ms)
{
    for (size_t k = 0; k < s->ncampaigns; k++)
        s->campaigns[k]->wait_reason = "restore_fence";
    count_waiting(s);
    return sleep_ms < s->ctx->set.sender_refresh_ms ? sleep_ms : s->ctx->set.sender_refresh_ms;
}

/* One pass: agents' messages, then the running campaigns in turn; returns
 * the milliseconds the loop may sleep before room or work can be there
 * again. */
int64_t cmp_sender_send_round(cmp_sender *s, int *failed)
{
    int64_t sleep_ms = release_agents(s, failed);
    if (*failed)
        return sleep_ms;
    if (s->fenced)
        return hold_campaigns_for_replay(s, sleep_ms);
    size_t n = s->ncampaigns;
    for (size_t k = 0; k < n; k++) {
        cmp_campaign_slot *c = s->campaigns[(s->round_robin + k) % n];
        cmp_account_slot *a = c->account_id ? cmp_account_slot_find(s, c->account_id) : NULL;
        cmp_workspace_slot *w = cmp_workspace_slot_for(s, c->workspace_id);
        if (!a || !w || c->drained) {
            c->wait_reason = NULL;
            continue;
        }
        int64_t held_wait = c->held_until_ms - cmp_sender_budget_now(s);
        if (held_wait > 0) {
            /* a rule of the release holds what it would pick next */
            if (held_wait < sleep_ms)
                sleep_ms = held_wait;
            continue;
        }
        int64_t now = bz_monotonic_ms(), wait = 0;
        const char *why = NULL;
        int64_t avail = campaign_room(s, a, w, &wait, &why);
        if (avail <= 0) {
            if (wait < sleep_ms)
                sleep_ms = wait;
            if (!c->waiting_since_ms)
                c->waiting_since_ms = now;
            note_rate_wait(s, c, why, wait);
            c->wait_reason = why;
            continue;
        }
        c->wait_reason = NULL;
        if (c->waiting_since_ms) {
            bz_histogram_observe(s->ctx->m.bucket_wait,
                                 (double)(now - c->waiting_since_ms) / 1000.0);
            c->waiting_since_ms = 0;
        }
        /* after a round that held logs, look past them: logs behind may go */
        int64_t batch_max = s->ctx->set.sender_batch_max;
        send_batch b = {.c = c,
                        .a = a,
                        .want = avail,
                        .pick = c->held_ahead && batch_max > avail ? batch_max : avail,
                        .now_ms = cmp_sender_budget_now(s)};
        bz_error err;
        if (cmp_sender_run_in_tx(s, send_in_tx, &b, &err) != BZ_OK) {
            cmp_release_plan_free(&b.plan);
            cmp_ledger_free(&b.ledger);
            *failed = 1;
            return CMP_SENDER_ERROR_BACKOFF_MS;
        }
        if (b.sent > 0) {
            bz_counter_add(a->sends, (uint64_t)b.sent);
            if (cmp_budget_record_ledger(s->budget, CMP_RELEASE_CAMPAIGN, &b.ledger,
                                         b.now_ms) != 0)
                s->budget_loaded = 0;
            if (warmup_jitters(s, a))
                a->jitter_next_ms = b.now_ms + cmp_warmup_gap_ms(s->ctx->set.warmup_jitter_min_ms,
                                                                 s->ctx->set.warmup_jitter_max_ms,
                                                                 &s->jitter_seed);
        }
        note_held(s, c, &b);
        int64_t held_until;
        int held_some = cmp_release_plan_held(&b.plan, &held_until) > 0;
        int all_held = b.sent == 0 && b.skipped == 0 && b.picked > 0;
        int look_past = all_held && !c->held_ahead && b.picked == b.pick && b.pick < batch_max;
        if (all_held && !look_past) {
            wait_for_held(s, c, &b);
            c->wait_reason = cmp_release_plan_main_hold(&b.plan)->reason;
        } else if (!all_held && b.picked < b.pick) {
            c->drained = 1; /* nothing more pending now; the next refresh looks again */
        } else {
            sleep_ms = 0; /* more to send, or all held: the next round looks past them */
        }
        c->held_ahead = held_some;
        cmp_release_plan_free(&b.plan);
        cmp_ledger_free(&b.ledger);
    }
    s->round_robin++;
    count_waiting(s);
    return sleep_ms;
}

bz_status cmp_sender_prepare_sends(bz_pg *pg, bz_error *err)
{
    bz_status st = bz_pg_prepare(pg, "cmp_pick", SQL_PICK, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(pg, "cmp_mark_queued", SQL_MARK_QUEUED, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(pg, "cmp_mark_skipped", SQL_MARK_SKIPPED, err);
    return st;
}
