/*
 * sender.c - the send loop: paces running campaigns through their rate
 * limits and hands each message to the gateways exactly once.
 *
 * One thread with its own PostgreSQL connection. Every instance runs the
 * scheduler scan (scheduler.c decides "once" in PostgreSQL); only the
 * instance holding the session advisory lock sender.lock_name runs the send
 * loop, so per-account and per-workspace token buckets live in one process
 * and limits hold however many instances run. The lock dies with the
 * connection, so a standby takes over within a second of a crash.
 *
 * Each refresh (sender.refresh_ms) re-reads the running campaigns, picks
 * every campaign's sending account (libs/pg/account_select.c; failover or pause per
 * failover.mode or the campaign's metadata.failover), reconfigures the
 * buckets from the accounts' and workspaces' metadata, samples the
 * auto-pause window, completes campaigns with no pending or queued log and
 * emits throttled progress events. Between refreshes the loop takes as many
 * tokens as both buckets hold (at most sender.batch_max) and sends that many
 * pending logs in ONE transaction: lock them (FOR UPDATE SKIP LOCKED, in id
 * order), render the personalized SendMessage for each, insert the outbox
 * rows for wa.outbound (key = session id, idempotency key = the log's uuid)
 * and flip the logs pending -> queued. Either all of that commits or none
 * of it does, and a queued log is never picked again, so a crash at any
 * instant can repeat a publish (same event id and key) but never create a
 * second send of one log. A failed attempt that receipts.c put back to
 * pending is sent again under "<uuid>/retry-<n>", since gateways treat a
 * repeated key as a replay.
 */
#include "sender.h"

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_sends.h"
#include "autopause.h"
#include "extras.h"
#include "budget.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/uuid.h"
#include "kafka/outbox.h"
#include "pg/pg.h"
#include "ratelimit.h"
#include "pg/account_select.h"
#include "template.h"

#define LOCK_RETRY_MS 1000
#define ERROR_BACKOFF_MS 500
#define STATE_METRICS_MS 5000

#define SQL_RUNNING                                                                              \
    "SELECT c.id, c.uuid::text, c.workspace_id, coalesce(c.whatsapp_account_id, 0), "            \
    "coalesce((c.metadata->>'sending_account_id')::bigint, 0), c.campaign_type, "                \
    "coalesce(t.name, ''), coalesce(t.language, ''), "                                          \
    "coalesce(CASE WHEN c.campaign_type = 'template' THEN t.body_text END, c.body_text, "        \
    "c.message_content, ''), "                                                                   \
    "coalesce(CASE WHEN c.campaign_type = 'template' THEN t.header_text END, c.header_text, ''), " \
    "coalesce(CASE WHEN c.campaign_type = 'template' THEN t.footer_text END, c.footer_text, ''), " \
    "coalesce(c.metadata->>'failover', ''), c.messages_sent, c.messages_delivered, "             \
    "c.messages_read, c.messages_failed, coalesce((c.metadata->>'failed_attempts')::bigint, 0), " \
    "w.metadata::text, c.preferred_provider, coalesce(c.header_type, ''), "                      \
    "coalesce(c.header_media, ''), coalesce(c.buttons_data::text, '') "                           \
    "FROM campaigns c JOIN workspaces w ON w.id = c.workspace_id "                                \
    "LEFT JOIN templates t ON t.id = c.template_id AND t.deleted_at IS NULL "                    \
    "WHERE c.status = 'running' AND c.deleted_at IS NULL ORDER BY c.id"
#define SQL_PICK                                                                                 \
    "SELECT l.id, l.uuid::text, l.contact_id, l.retry_count, c.phone, "                          \
    "coalesce(c.first_name, ''), coalesce(c.full_name, '') "                                     \
    "FROM campaign_logs l JOIN contacts c ON c.id = l.contact_id "                               \
    "WHERE l.campaign_id = $1 AND l.status = 'pending' "                                         \
    "AND EXISTS (SELECT 1 FROM campaigns k WHERE k.id = $1 AND k.status = 'running') "           \
    "ORDER BY l.id LIMIT $2 FOR UPDATE OF l SKIP LOCKED"
#define SQL_MARK_QUEUED                                                                          \
    "UPDATE campaign_logs SET status = 'queued', queued_at = now(), whatsapp_account_id = $2 "   \
    "WHERE id = ANY($1::bigint[]) AND status = 'pending'"
#define SQL_STICKY                                                                               \
    "UPDATE campaigns SET metadata = jsonb_set(metadata, '{sending_account_id}', to_jsonb($2::bigint)) " \
    "WHERE id = $1"
#define SQL_TOKEN_REFUSED                                                                        \
    "SELECT count(*) FROM meta_credentials WHERE whatsapp_account_id = $1::bigint "              \
    "AND status = 'invalid'"
/* Campaigns paused because Meta refused their account's token, whose token
 * has been replaced since (ARCHITECTURE.md §12). */
#define SQL_TOKEN_REPLACED                                                                       \
    "SELECT c.id FROM campaigns c JOIN meta_credentials mc ON mc.whatsapp_account_id = "        \
    "coalesce((c.metadata->>'sending_account_id')::bigint, c.whatsapp_account_id) "              \
    "WHERE c.status = 'paused' AND c.pause_reason LIKE 'token_invalid%' AND mc.status = 'valid' " \
    "AND c.deleted_at IS NULL"
#define SQL_LOCK "SELECT pg_try_advisory_lock(hashtext($1)::bigint)"
#define SQL_STATES "SELECT status, count(*) FROM campaigns WHERE deleted_at IS NULL GROUP BY status"

typedef struct account_slot {
    int64_t id;
    bz_account acc;
    cmp_limiter lim;
    bz_counter *sends;
    int seen;
} account_slot;

typedef struct workspace_slot {
    int64_t id;
    cmp_limiter lim;
} workspace_slot;

typedef struct campaign_slot {
    int64_t id, workspace_id, preferred_account, sticky_account, account_id;
    char uuid[BZ_UUID_STR_SIZE];
    int is_template, failover_pause, seen, drained;
    char template_name[128], template_language[32];
    cmp_template body, header, footer;
    cmp_extras extras; /* provider preference, media header, buttons */
    int64_t sent, delivered, read, failed, failed_attempts;
    int64_t last_progress_ms, progress_signature, waiting_since_ms;
    cmp_window window;
} campaign_slot;

struct cmp_sender {
    const cmp_ctx *ctx;
    bz_pg *pg;
    pthread_t thread;
    atomic_int stop;
    atomic_int leader;
    int leader_pid;
    campaign_slot **campaigns;
    size_t ncampaigns, capcampaigns;
    account_slot **accounts;
    size_t naccounts, capaccounts;
    workspace_slot **workspaces;
    size_t nworkspaces, capworkspaces;
    size_t round_robin;
    int64_t next_refresh_ms, next_schedule_ms, next_lock_ms, next_states_ms;
    cmp_budget *budget;     /* the shared send budget (budget.h) */
    int budget_loaded;      /* 0: reload it from send_ledger before releasing anything */
    int64_t clock_offset_ms; /* PostgreSQL's clock minus ours: the budget's clock */
    int listen_pid;         /* backend that runs LISTEN blazz_send; 0: none yet */
    int agents_due;         /* look at outbound_queue in the next round */
    int64_t agents_next_ms; /* budget clock: when a waiting agent message may get room */
    cmp_agent_round agents_last; /* the last agent round: where agents hold campaigns back */
};

/* ---- small helpers ---------------------------------------------------------- */

static int grow(void **array, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 1;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*array, ncap * sizeof(void *));
    if (!p)
        return 0;
    *array = p;
    *cap = ncap;
    return 1;
}

/* Now on the budget's clock (PostgreSQL's; see budget.h). */
static int64_t budget_now(const cmp_sender *s)
{
    return bz_wall_ms() + s->clock_offset_ms;
}

/* Align the budget's clock with PostgreSQL's (measured at the middle of
 * the round trip). */
static bz_status align_clock(cmp_sender *s, bz_error *err)
{
    int64_t before = bz_wall_ms(), pg_now;
    bz_status st = cmp_pg_now_ms(bz_pg_conn(s->pg), &pg_now, err);
    if (st == BZ_OK)
        s->clock_offset_ms = pg_now - (before + bz_wall_ms()) / 2;
    return st;
}

static bz_status run_in_tx(cmp_sender *s, bz_status (*fn)(cmp_sender *, PGconn *, void *),
                           void *arg, bz_error *err)
{
    PGconn *conn = bz_pg_conn(s->pg);
    bz_status st = bz_pg_begin(conn, err);
    if (st == BZ_OK)
        st = fn(s, conn, arg);
    if (st == BZ_OK)
        st = bz_pg_commit(conn, err);
    else
        bz_pg_rollback(conn);
    return st;
}

static void free_campaign(campaign_slot *c)
{
    cmp_template_free(&c->body);
    cmp_template_free(&c->header);
    cmp_template_free(&c->footer);
    cmp_extras_free(&c->extras);
    free(c);
}

static account_slot *account_slot_for(cmp_sender *s, const bz_account *acc)
{
    for (size_t i = 0; i < s->naccounts; i++)
        if (s->accounts[i]->id == acc->id)
            return s->accounts[i];
    if (!grow((void **)&s->accounts, &s->capaccounts, s->naccounts + 1))
        return NULL;
    account_slot *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->id = acc->id;
    char label[24];
    snprintf(label, sizeof label, "%" PRId64, acc->id);
    a->sends = bz_counter_family_with(s->ctx->m.sends, label);
    s->accounts[s->naccounts++] = a;
    return a;
}

static account_slot *find_account(cmp_sender *s, int64_t id)
{
    for (size_t i = 0; i < s->naccounts; i++)
        if (s->accounts[i]->id == id)
            return s->accounts[i];
    return NULL;
}

static workspace_slot *workspace_slot_for(cmp_sender *s, int64_t id)
{
    for (size_t i = 0; i < s->nworkspaces; i++)
        if (s->workspaces[i]->id == id)
            return s->workspaces[i];
    if (!grow((void **)&s->workspaces, &s->capworkspaces, s->nworkspaces + 1))
        return NULL;
    workspace_slot *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->id = id;
    s->workspaces[s->nworkspaces++] = w;
    return w;
}

/* ---- refresh: the running campaigns and their accounts ---------------------- */

static campaign_slot *find_campaign(cmp_sender *s, int64_t id)
{
    for (size_t i = 0; i < s->ncampaigns; i++)
        if (s->campaigns[i]->id == id)
            return s->campaigns[i];
    return NULL;
}

static bz_status compile_message(campaign_slot *c, const PGresult *res, int row, bz_error *err)
{
    bz_status st = cmp_template_compile(PQgetvalue(res, row, 8), &c->body, err);
    if (st == BZ_OK)
        st = cmp_template_compile(PQgetvalue(res, row, 9), &c->header, err);
    if (st == BZ_OK)
        st = cmp_template_compile(PQgetvalue(res, row, 10), &c->footer, err);
    return st;
}

static campaign_slot *new_campaign(cmp_sender *s, const PGresult *res, int row, bz_error *err)
{
    campaign_slot *c = calloc(1, sizeof *c);
    if (!c || !grow((void **)&s->campaigns, &s->capcampaigns, s->ncampaigns + 1)) {
        free(c);
        bz_fail(err, BZ_ERR_NOMEM, "track campaign: out of memory");
        return NULL;
    }
    c->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    snprintf(c->uuid, sizeof c->uuid, "%s", PQgetvalue(res, row, 1));
    c->workspace_id = strtoll(PQgetvalue(res, row, 2), NULL, 10);
    c->is_template = strcmp(PQgetvalue(res, row, 5), "template") == 0 && *PQgetvalue(res, row, 6);
    snprintf(c->template_name, sizeof c->template_name, "%s", PQgetvalue(res, row, 6));
    snprintf(c->template_language, sizeof c->template_language, "%s", PQgetvalue(res, row, 7));
    c->last_progress_ms = bz_monotonic_ms();
    if (compile_message(c, res, row, err) != BZ_OK ||
        cmp_extras_read(PQgetvalue(res, row, 18), PQgetvalue(res, row, 19),
                        PQgetvalue(res, row, 20), PQgetvalue(res, row, 21), &c->extras,
                        err) != BZ_OK) {
        free_campaign(c);
        return NULL;
    }
    s->campaigns[s->ncampaigns++] = c;
    return c;
}

static void read_campaign_row(cmp_sender *s, campaign_slot *c, const PGresult *res, int row)
{
    const char *failover = PQgetvalue(res, row, 11);
    c->preferred_account = strtoll(PQgetvalue(res, row, 3), NULL, 10);
    c->sticky_account = strtoll(PQgetvalue(res, row, 4), NULL, 10);
    c->failover_pause = strcmp(failover, "pause") == 0     ? 1
                        : strcmp(failover, "failover") == 0 ? 0
                                                            : s->ctx->set.failover_pause;
    c->sent = strtoll(PQgetvalue(res, row, 12), NULL, 10);
    c->delivered = strtoll(PQgetvalue(res, row, 13), NULL, 10);
    c->read = strtoll(PQgetvalue(res, row, 14), NULL, 10);
    c->failed = strtoll(PQgetvalue(res, row, 15), NULL, 10);
    c->failed_attempts = strtoll(PQgetvalue(res, row, 16), NULL, 10);
    c->seen = 1;
    workspace_slot *w = workspace_slot_for(s, c->workspace_id);
    if (w) {
        const cmp_settings *set = &s->ctx->set;
        cmp_limits defaults = {set->workspace_per_second, set->workspace_per_minute,
                               set->workspace_per_hour};
        cmp_limits lim = cmp_limits_from_metadata(PQgetvalue(res, row, 17), &defaults, 0);
        cmp_limiter_configure(&w->lim, &lim, set->smoothing_s, bz_monotonic_ms());
    }
}

typedef struct pause_request {
    int64_t campaign_id;
    const char *reason;
    int autopause;
} pause_request;

static bz_status pause_in_tx(cmp_sender *s, PGconn *conn, void *arg)
{
    (void)s;
    const pause_request *p = arg;
    const cmp_actor who = {.actor = "system", .reason = p->autopause ? "auto_pause" : p->reason};
    int paused;
    bz_error err;
    bz_status st = cmp_campaign_pause(conn, p->campaign_id, &who, p->reason, &paused, &err);
    if (st != BZ_OK)
        bz_error_log("pause campaign %" PRId64 ": %s", p->campaign_id, err.msg);
    return st;
}

static void pause_campaign(cmp_sender *s, campaign_slot *c, const char *reason, int autopause)
{
    pause_request p = {c->id, reason, autopause};
    bz_error err;
    if (run_in_tx(s, pause_in_tx, &p, &err) == BZ_OK)
        c->account_id = 0;
    c->seen = 0; /* dropped from the running set; a resume brings it back */
}

typedef struct sticky_update {
    campaign_slot *c;
    int64_t previous;
    const char *why;
} sticky_update;

static bz_status store_sticky_in_tx(cmp_sender *s, PGconn *conn, void *arg)
{
    (void)s;
    sticky_update *u = arg;
    char id[24], acc[24];
    snprintf(id, sizeof id, "%" PRId64, u->c->id);
    snprintf(acc, sizeof acc, "%" PRId64, u->c->account_id);
    const char *params[] = {id, acc};
    bz_error err;
    bz_status st = bz_pg_exec_params(conn, "store sending account", SQL_STICKY, 2, params, NULL,
                                     &err);
    if (st == BZ_OK && u->previous)
        st = cmp_event_emit(conn, u->c->id,
                            BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_PROGRESS, "system",
                            u->why, u->c->account_id, &err);
    if (st != BZ_OK)
        bz_error_log("campaign %" PRId64 ": %s", u->c->id, err.msg);
    return st;
}

/* 1 when account is a Meta account whose token Meta refused (code 190). */
static int token_refused(PGconn *conn, int64_t account)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, account);
    const char *params[] = {id};
    PGresult *res = NULL;
    bz_error err;
    int refused = bz_pg_exec_params(conn, "check the account's Meta token", SQL_TOKEN_REFUSED, 1,
                                    params, &res, &err) == BZ_OK &&
                  bz_pg_get_int64(res, 0, 0) > 0;
    PQclear(res);
    return refused;
}

static bz_status resume_in_tx(cmp_sender *s, PGconn *conn, void *arg)
{
    (void)s;
    const int64_t *id = arg;
    const cmp_actor who = {.actor = "system", .reason = "token_replaced"};
    int resumed;
    bz_error err;
    bz_status st = cmp_campaign_resume(conn, *id, &who, &resumed, &err);
    if (st != BZ_OK)
        bz_error_log("resume campaign %" PRId64 ": %s", *id, err.msg);
    return st;
}

/* Resume the campaigns a refused Meta token paused once the token is
 * replaced: the pause was the sender's decision, so is the resume. */
static bz_status resume_replaced_tokens(cmp_sender *s, PGconn *conn, bz_error *err)
{
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "find campaigns whose Meta token was replaced",
                                     SQL_TOKEN_REPLACED, 0, NULL, &res, err);
    for (int row = 0; st == BZ_OK && row < PQntuples(res); row++) {
        int64_t id = bz_pg_get_int64(res, row, 0);
        bz_info("campaign %" PRId64 ": its Meta access token was replaced: resuming", id);
        run_in_tx(s, resume_in_tx, &id, err);
    }
    PQclear(res);
    return st;
}

/* Pick (or keep) the campaign's sending account; pauses it when the rules
 * say so. Returns 0 when the campaign cannot send now. */
static int choose_account(cmp_sender *s, PGconn *conn, campaign_slot *c, bz_error *err)
{
    int64_t current = c->account_id ? c->account_id
                      : c->sticky_account ? c->sticky_account
                                          : (c->failover_pause ? c->preferred_account : 0);
    bz_account acc;
    int found;
    int64_t only = c->failover_pause && current ? current : 0;
    bz_account_query q = {.workspace_id = c->workspace_id, .preferred_id = c->preferred_account,
                          .provider = c->extras.provider,
                          .sticky_id = current, .only_id = only};
    if (bz_account_select(conn, &q, &acc, &found, err) != BZ_OK)
        return -1;
    char reason[256];
    if (!found) {
        int64_t refused = current ? current : c->preferred_account;
        if (refused && token_refused(conn, refused))
            snprintf(reason, sizeof reason,
                     "token_invalid: Meta refused the access token of account %" PRId64
                     " (blazzctl meta token sets a new one; the campaign resumes then)",
                     refused);
        else if (only)
            snprintf(reason, sizeof reason,
                     "sending account %" PRId64 " is not connected (failover.mode=pause)", only);
        else
            snprintf(reason, sizeof reason,
                     "no connected WhatsApp account in workspace %" PRId64, c->workspace_id);
        bz_warn("campaign %" PRId64 ": pausing: %s", c->id, reason);
        pause_campaign(s, c, reason, 0);
        return 0;
    }
    account_slot *a = account_slot_for(s, &acc);
    if (!a) {
        bz_account_clear(&acc);
        bz_fail(err, BZ_ERR_NOMEM, "track account %" PRId64 ": out of memory", acc.id);
        return -1;
    }
    bz_account_clear(&a->acc);
    a->acc = acc;
    a->seen = 1;
    const cmp_settings *set = &s->ctx->set;
    cmp_limits defaults = {set->account_per_second, set->account_per_minute,
                           set->account_per_hour};
    cmp_limits lim =
        cmp_limits_from_metadata(acc.metadata_json, &defaults, set->account_max_per_second);
    cmp_limiter_configure(&a->lim, &lim, set->smoothing_s, bz_monotonic_ms());
    int64_t previous = current;
    c->account_id = acc.id;
    if (acc.id != c->sticky_account) {
        snprintf(reason, sizeof reason, "failover: account %" PRId64 " -> %" PRId64, previous,
                 acc.id);
        if (previous && previous != acc.id) {
            bz_warn("campaign %" PRId64 ": %s (session %s)", c->id, reason, acc.session_id);
            bz_counter_inc(s->ctx->m.failovers);
        }
        sticky_update u = {c, previous != acc.id ? previous : 0, reason};
        if (run_in_tx(s, store_sticky_in_tx, &u, err) != BZ_OK)
            return -1;
        c->sticky_account = acc.id;
    }
    return 1;
}

typedef struct campaign_step {
    campaign_slot *c;
    int done;
} campaign_step;

static bz_status complete_in_tx(cmp_sender *s, PGconn *conn, void *arg)
{
    (void)s;
    campaign_step *step = arg;
    bz_error err;
    bz_status st = cmp_campaign_complete_if_done(conn, step->c->id, &step->done, &err);
    if (st != BZ_OK)
        bz_error_log("%s", err.msg);
    return st;
}

static bz_status progress_in_tx(cmp_sender *s, PGconn *conn, void *arg)
{
    (void)s;
    campaign_step *step = arg;
    bz_error err;
    bz_status st = cmp_event_emit(conn, step->c->id,
                                  BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_PROGRESS,
                                  NULL, NULL, step->c->account_id, &err);
    if (st != BZ_OK)
        bz_error_log("progress event: %s", err.msg);
    return st;
}

/* Auto-pause, completion and progress for one campaign after a refresh. */
static void review_campaign(cmp_sender *s, campaign_slot *c, int64_t now)
{
    const cmp_settings *set = &s->ctx->set;
    char reason[256];
    bz_error err;
    if (set->autopause_enabled &&
        cmp_window_should_pause(&c->window, now, c->sent, c->failed_attempts,
                                set->autopause_window_s, set->autopause_min_samples,
                                set->autopause_threshold, reason, sizeof reason)) {
        bz_warn("campaign %" PRId64 ": %s", c->id, reason);
        bz_counter_inc(s->ctx->m.autopauses);
        pause_campaign(s, c, reason, 1);
        return;
    }
    campaign_step step = {c, 0};
    if (c->drained) {
        if (run_in_tx(s, complete_in_tx, &step, &err) == BZ_OK && step.done) {
            c->seen = 0;
            return;
        }
        c->drained = 0; /* retried logs may have come back to pending */
    }
    int64_t signature = c->sent + c->delivered + c->read + c->failed + c->failed_attempts;
    if (now - c->last_progress_ms >= set->progress_interval_ms &&
        signature != c->progress_signature) {
        if (run_in_tx(s, progress_in_tx, &step, &err) == BZ_OK) {
            c->last_progress_ms = now;
            c->progress_signature = signature;
        }
    }
}

static void forget_unseen_campaigns(cmp_sender *s)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->ncampaigns; i++) {
        if (s->campaigns[i]->seen)
            s->campaigns[kept++] = s->campaigns[i];
        else
            free_campaign(s->campaigns[i]);
    }
    s->ncampaigns = kept;
}

static bz_status refresh(cmp_sender *s, bz_error *err)
{
    PGconn *conn = bz_pg_conn(s->pg);
    PGresult *res;
    bz_status st = resume_replaced_tokens(s, conn, err);
    if (st == BZ_OK)
        st = bz_pg_exec_params(conn, "read running campaigns", SQL_RUNNING, 0, NULL, &res, err);
    if (st != BZ_OK)
        return st;
    for (size_t i = 0; i < s->ncampaigns; i++)
        s->campaigns[i]->seen = 0;
    for (int row = 0; row < PQntuples(res); row++) {
        int64_t id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
        campaign_slot *c = find_campaign(s, id);
        if (!c && !(c = new_campaign(s, res, row, err))) {
            if (err->code == BZ_ERR_INVALID) {
                campaign_slot tmp = {.id = id};
                pause_campaign(s, &tmp, err->msg, 0);
                continue;
            }
            PQclear(res);
            return err->code;
        }
        read_campaign_row(s, c, res, row);
    }
    PQclear(res);
    int64_t now = bz_monotonic_ms();
    for (size_t i = 0; i < s->ncampaigns && st == BZ_OK; i++) {
        campaign_slot *c = s->campaigns[i];
        if (!c->seen)
            continue;
        if (choose_account(s, conn, c, err) < 0)
            st = err->code;
        else if (c->seen)
            review_campaign(s, c, now);
    }
    forget_unseen_campaigns(s);
    return st;
}

/* ---- sending ------------------------------------------------------------------ */

typedef struct send_batch {
    campaign_slot *c;
    account_slot *a;
    int64_t want;
    int64_t sent;
    int64_t now_ms; /* budget clock: the release time in send_ledger */
} send_batch;

/* Build one log's SendMessage and queue it on outbox for wa.outbound
 * (key = session id, trace id = the campaign's uuid). */
static bz_status queue_send(cmp_sender *s, const send_batch *b, const PGresult *res, int row,
                            const char *event_id, bz_outbox_batch *outbox, bz_error *err)
{
    const campaign_slot *c = b->c;
    const bz_account *acc = &b->a->acc;
    const char *uuid = PQgetvalue(res, row, 1);
    int retry = (int)bz_pg_get_int64(res, row, 3);
    cmp_contact_fields fields = {PQgetvalue(res, row, 5), PQgetvalue(res, row, 6),
                                 PQgetvalue(res, row, 4)};
    char *body = cmp_template_render(&c->body, &fields);
    char *header = cmp_template_render(&c->header, &fields);
    char *footer = cmp_template_render(&c->footer, &fields);
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
    Blazz__V1__TemplateMessage tpl = BLAZZ__V1__TEMPLATE_MESSAGE__INIT;
    tpl.name = (char *)c->template_name;
    tpl.language = (char *)c->template_language;

    Blazz__V1__SendMessage m = BLAZZ__V1__SEND_MESSAGE__INIT;
    m.envelope = &env;
    m.idempotency_key = key;
    m.client_reference = (char *)uuid;
    m.session_id = (char *)acc->session_id;
    m.to_phone = PQgetvalue(res, row, 4);
    m.message_type = c->is_template ? BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE
                                    : BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    m.body = body ? body : "";
    m.template_ = c->is_template ? &tpl : NULL;
    Blazz__V1__MediaInfo header_media;
    cmp_extras_apply(&c->extras, &m, &tpl, &header_media);
    m.campaign_id = c->id;
    m.campaign_log_id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    m.contact_id = strtoll(PQgetvalue(res, row, 2), NULL, 10);
    m.assigned_instance = acc->instance_index >= 0 ? &inst : NULL;
    m.expires_at_ms = s->ctx->set.expire_after_ms ? now + s->ctx->set.expire_after_ms : 0;
    m.footer = footer ? footer : "";
    m.header_text = header ? header : "";

    size_t len = blazz__v1__send_message__get_packed_size(&m);
    uint8_t *buf = body && header && footer ? malloc(len ? len : 1) : NULL;
    bz_status st = buf ? BZ_OK
                       : bz_fail(err, BZ_ERR_NOMEM, "build SendMessage for log %s: out of memory",
                                 uuid);
    if (st == BZ_OK) {
        blazz__v1__send_message__pack(&m, buf);
        st = bz_outbox_batch_add(outbox, bz_topic_base(BZ_TOPIC_WA_OUTBOUND), event_id,
                                 acc->session_id, strlen(acc->session_id), buf, len, c->uuid,
                                 err);
    }
    free(buf);
    free(body);
    free(header);
    free(footer);
    return st;
}

static bz_status queue_picked(cmp_sender *s, PGconn *conn, send_batch *b, const PGresult *res,
                              bz_error *err)
{
    size_t n = (size_t)PQntuples(res);
    int64_t *log_ids = calloc(n, sizeof *log_ids);
    bz_outbox_batch *outbox = NULL;
    cmp_ledger ledger;
    cmp_ledger_init(&ledger);
    bz_status st = log_ids ? bz_outbox_batch_new(&outbox, err)
                           : bz_fail(err, BZ_ERR_NOMEM, "queue logs: out of memory");
    for (size_t i = 0; i < n && st == BZ_OK; i++) {
        cmp_ledger_add(&ledger, b->a->id, b->c->workspace_id, PQgetvalue(res, (int)i, 1));
        /* The first attempt's event id is the log's uuid: a repeated publish
         * is recognisably the same record. */
        char event_id[BZ_UUID_STR_SIZE];
        if (bz_pg_get_int64(res, (int)i, 3) == 0)
            snprintf(event_id, sizeof event_id, "%s", PQgetvalue(res, (int)i, 1));
        else
            st = bz_uuid_v4(event_id, err);
        log_ids[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        if (st == BZ_OK)
            st = queue_send(s, b, res, (int)i, event_id, outbox, err);
    }
    if (st == BZ_OK)
        st = bz_outbox_batch_write(conn, outbox, err);
    if (st == BZ_OK)
        st = cmp_ledger_write(&ledger, conn, "campaign", b->now_ms, err);
    char *log_array = NULL, account[24];
    if (st == BZ_OK && !(log_array = bz_pg_int64_array(log_ids, n)))
        st = bz_fail(err, BZ_ERR_NOMEM, "queue logs: out of memory");
    if (st == BZ_OK) {
        snprintf(account, sizeof account, "%" PRId64, b->a->id);
        const char *params[] = {log_array, account};
        PGresult *upd;
        st = bz_pg_exec_prepared(conn, "cmp_mark_queued", 2, params, NULL, NULL, &upd, err);
        if (st == BZ_OK) {
            if ((size_t)strtoull(PQcmdTuples(upd), NULL, 10) != n)
                st = bz_fail(err, BZ_ERR_INTERNAL,
                             "campaign %" PRId64 ": %s of %zu locked logs moved to queued",
                             b->c->id, PQcmdTuples(upd), n);
            PQclear(upd);
        }
    }
    bz_outbox_batch_free(outbox);
    cmp_ledger_free(&ledger);
    free(log_ids);
    free(log_array);
    if (st == BZ_OK)
        b->sent = (int64_t)n;
    return st;
}

static bz_status send_in_tx(cmp_sender *s, PGconn *conn, void *arg)
{
    send_batch *b = arg;
    char id[24], limit[24];
    snprintf(id, sizeof id, "%" PRId64, b->c->id);
    snprintf(limit, sizeof limit, "%" PRId64, b->want);
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
    int64_t now = budget_now(s), idle = s->ctx->set.sender_idle_ms;
    if (!s->agents_due && (!s->agents_next_ms || now < s->agents_next_ms))
        return s->agents_next_ms ? s->agents_next_ms - now : idle;
    agent_step step = {.now_ms = now};
    bz_error err;
    if (run_in_tx(s, agents_in_tx, &step, &err) != BZ_OK) {
        s->budget_loaded = 0; /* what the failed transaction counted never happened */
        *failed = 1;
        return ERROR_BACKOFF_MS;
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

/* Whole messages campaign c may release now: its pacing buckets, then the
 * shared budget of its account and workspace (what agents left). *wait_ms
 * receives how long until more may go when that is 0. */
static int64_t campaign_room(cmp_sender *s, account_slot *a, workspace_slot *w, int64_t *wait_ms)
{
    int64_t now = bz_monotonic_ms(), bnow = budget_now(s);
    if (cmp_agent_round_holds(&s->agents_last, a->id, w->id)) {
        /* agents' messages wait here: what frees is theirs (next agent round) */
        int64_t next = s->agents_next_ms - bnow;
        *wait_ms = next < 1 ? 1 : next;
        return 0;
    }
    int64_t avail = cmp_limiter_available(&a->lim, now);
    int64_t wavail = cmp_limiter_available(&w->lim, now);
    int64_t room = cmp_budget_room(s->budget, a->id, &a->lim.limits, w->id, &w->lim.limits, bnow);
    avail = wavail < avail ? wavail : avail;
    avail = room < avail ? room : avail;
    if (avail > s->ctx->set.sender_batch_max)
        avail = s->ctx->set.sender_batch_max;
    if (avail > 0)
        return avail;
    int64_t wait = cmp_limiter_wait_ms(&a->lim, now);
    int64_t wwait = cmp_limiter_wait_ms(&w->lim, now);
    int64_t bwait = room > 0 ? 0
                             : cmp_budget_next_room(s->budget, a->id, &a->lim.limits, w->id,
                                                    &w->lim.limits, bnow) - bnow;
    wait = wwait > wait ? wwait : wait;
    wait = bwait > wait ? bwait : wait;
    *wait_ms = wait < 1 ? 1 : wait;
    return 0;
}

/* One pass: agents' messages, then the running campaigns in turn; returns
 * the milliseconds the loop may sleep before tokens or work can be there
 * again. */
static int64_t send_round(cmp_sender *s, int *failed)
{
    int64_t sleep_ms = release_agents(s, failed);
    if (*failed)
        return sleep_ms;
    size_t n = s->ncampaigns;
    for (size_t k = 0; k < n; k++) {
        campaign_slot *c = s->campaigns[(s->round_robin + k) % n];
        account_slot *a = c->account_id ? find_account(s, c->account_id) : NULL;
        workspace_slot *w = workspace_slot_for(s, c->workspace_id);
        if (!a || !w || c->drained)
            continue;
        int64_t now = bz_monotonic_ms(), wait = 0;
        int64_t avail = campaign_room(s, a, w, &wait);
        if (avail <= 0) {
            if (wait < sleep_ms)
                sleep_ms = wait;
            if (!c->waiting_since_ms)
                c->waiting_since_ms = now;
            continue;
        }
        if (c->waiting_since_ms) {
            bz_histogram_observe(s->ctx->m.bucket_wait,
                                 (double)(now - c->waiting_since_ms) / 1000.0);
            c->waiting_since_ms = 0;
        }
        send_batch b = {c, a, avail, 0, budget_now(s)};
        bz_error err;
        if (run_in_tx(s, send_in_tx, &b, &err) != BZ_OK) {
            *failed = 1;
            return ERROR_BACKOFF_MS;
        }
        if (b.sent > 0) {
            now = bz_monotonic_ms();
            cmp_limiter_take(&a->lim, b.sent, now);
            cmp_limiter_take(&w->lim, b.sent, now);
            bz_counter_add(a->sends, (uint64_t)b.sent);
            if (cmp_budget_record(s->budget, a->id, w->id, b.now_ms, b.sent) != 0)
                s->budget_loaded = 0;
        }
        if (b.sent < avail)
            c->drained = 1; /* nothing more pending now; the next refresh looks again */
        else
            sleep_ms = 0;
    }
    s->round_robin++;
    return sleep_ms;
}

/* ---- the thread --------------------------------------------------------------- */

static void update_state_metrics(cmp_sender *s)
{
    static const char *const states[] = {"draft", "scheduled", "running", "paused",
                                         "completed", "failed", "cancelled"};
    PGresult *res;
    bz_error err;
    if (bz_pg_exec_params(bz_pg_conn(s->pg), "count campaigns by state", SQL_STATES, 0, NULL, &res,
                 &err) != BZ_OK)
        return;
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        double v = 0;
        for (int r = 0; r < PQntuples(res); r++)
            if (strcmp(PQgetvalue(res, r, 0), states[i]) == 0)
                v = strtod(PQgetvalue(res, r, 1), NULL);
        bz_gauge_set(bz_gauge_family_with(s->ctx->m.campaigns, states[i]), v);
    }
    PQclear(res);
}

static void lose_leadership(cmp_sender *s)
{
    if (atomic_load(&s->leader))
        bz_warn("campaign sender: lost the sender lock (connection reset)");
    atomic_store(&s->leader, 0);
    bz_gauge_set(s->ctx->m.leader, 0);
}

static void try_become_leader(cmp_sender *s, int64_t now)
{
    PGconn *conn = bz_pg_conn(s->pg);
    if (atomic_load(&s->leader) && PQbackendPID(conn) != s->leader_pid)
        lose_leadership(s);
    if (atomic_load(&s->leader) || now < s->next_lock_ms)
        return;
    s->next_lock_ms = now + LOCK_RETRY_MS;
    const char *params[] = {s->ctx->set.lock_name};
    PGresult *res;
    bz_error err;
    if (bz_pg_exec_params(conn, "take the sender lock", SQL_LOCK, 1, params, &res, &err) != BZ_OK) {
        bz_warn("campaign sender: %s", err.msg);
        return;
    }
    if (PQgetvalue(res, 0, 0)[0] == 't') {
        s->leader_pid = PQbackendPID(conn);
        atomic_store(&s->leader, 1);
        bz_gauge_set(s->ctx->m.leader, 1);
        s->next_refresh_ms = now;
        s->budget_loaded = 0; /* what the previous holder released counts */
        s->agents_due = 1;
        bz_info("campaign sender: holding the sender lock '%s', sending", s->ctx->set.lock_name);
    }
    PQclear(res);
}

static bz_status schedule_in_tx(cmp_sender *s, PGconn *conn, void *arg)
{
    (void)s;
    (void)arg;
    int started = 0;
    bz_error err;
    bz_status st = cmp_scheduler_run(conn, &started, &err);
    if (st != BZ_OK)
        bz_error_log("scheduler: %s", err.msg);
    return st;
}

static int stopping(const cmp_sender *s)
{
    return atomic_load(&s->stop) || bz_shutdown_requested();
}

/* 1 when a NOTIFY blazz_send (chat-sync queued an agent message) was read. */
static int drain_notifications(PGconn *conn)
{
    int any = 0;
    PGnotify *n;
    while ((n = PQnotifies(conn)) != NULL) {
        any = 1;
        PQfreemem(n);
    }
    return any;
}

/* LISTEN on the current backend (again after a reconnect). */
static void ensure_listening(cmp_sender *s)
{
    PGconn *conn = bz_pg_conn(s->pg);
    if (PQbackendPID(conn) == s->listen_pid)
        return;
    bz_error err;
    if (bz_pg_exec(conn, "LISTEN blazz_send", &err) != BZ_OK) {
        bz_warn("campaign sender: %s", err.msg);
        return;
    }
    s->listen_pid = PQbackendPID(conn);
    s->agents_due = 1; /* notifications sent before this LISTEN were missed */
}

/* Sleep up to ms, waking early when chat-sync queues an agent message or a
 * stop is asked (checked every 50 ms). */
static void wait_for_work(cmp_sender *s, int64_t ms)
{
    PGconn *conn = bz_pg_conn(s->pg);
    int64_t until = bz_monotonic_ms() + ms;
    for (int64_t left = ms; left > 0 && !stopping(s); left = until - bz_monotonic_ms()) {
        if (conn && PQstatus(conn) == CONNECTION_OK && s->listen_pid) {
            if (drain_notifications(conn)) {
                s->agents_due = 1;
                return;
            }
            struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
            if (poll(&pfd, 1, (int)(left < 50 ? left : 50)) > 0)
                PQconsumeInput(conn);
        } else {
            bz_sleep_ms((int)(left < 50 ? left : 50));
        }
    }
}

/* Before the first release as holder of the lock (and after a failed
 * release): align the clock and count what send_ledger says was released
 * in the last hour, whoever released it. */
static bz_status load_budget(cmp_sender *s, bz_error *err)
{
    bz_status st = align_clock(s, err);
    if (st == BZ_OK)
        st = cmp_budget_load(s->budget, bz_pg_conn(s->pg), budget_now(s), err);
    s->budget_loaded = st == BZ_OK;
    return st;
}

/* One iteration; returns how long to sleep. */
static int64_t loop_once(cmp_sender *s)
{
    const cmp_settings *set = &s->ctx->set;
    bz_error err;
    if (bz_pg_ensure(s->pg, &err) != BZ_OK) {
        lose_leadership(s);
        return ERROR_BACKOFF_MS;
    }
    ensure_listening(s);
    int64_t now = bz_monotonic_ms();
    int failed = 0;
    if (set->scheduler_enabled && now >= s->next_schedule_ms) {
        s->next_schedule_ms = now + set->scheduler_interval_ms;
        failed |= run_in_tx(s, schedule_in_tx, NULL, &err) != BZ_OK;
    }
    if (set->sender_enabled)
        try_become_leader(s, now);
    int64_t sleep_ms = set->sender_idle_ms;
    if (atomic_load(&s->leader)) {
        if (now >= s->next_states_ms) {
            s->next_states_ms = now + STATE_METRICS_MS;
            update_state_metrics(s);
        }
        if (now >= s->next_refresh_ms) {
            s->next_refresh_ms = now + set->sender_refresh_ms;
            s->agents_due = 1; /* a lost notification costs one refresh at most */
            if (refresh(s, &err) != BZ_OK || align_clock(s, &err) != BZ_OK) {
                bz_error_log("campaign sender refresh: %s", err.msg);
                failed = 1;
            }
        }
        if (!failed && !s->budget_loaded && load_budget(s, &err) != BZ_OK) {
            bz_error_log("campaign sender: %s", err.msg);
            failed = 1;
        }
        if (!failed)
            sleep_ms = send_round(s, &failed);
        int64_t to_refresh = s->next_refresh_ms - bz_monotonic_ms();
        if (to_refresh < sleep_ms)
            sleep_ms = to_refresh < 0 ? 0 : to_refresh;
    }
    if (failed) {
        if (PQstatus(bz_pg_conn(s->pg)) != CONNECTION_OK) {
            bz_pg_reset(s->pg);
            lose_leadership(s);
        }
        return ERROR_BACKOFF_MS;
    }
    return sleep_ms;
}

static void *sender_main(void *arg)
{
    cmp_sender *s = arg;
    while (!stopping(s)) {
        int64_t sleep_ms = loop_once(s);
        if (sleep_ms > 0)
            wait_for_work(s, sleep_ms);
    }
    return NULL;
}

static bz_status prepare_statements(bz_pg *pg, bz_error *err)
{
    bz_status st = bz_pg_prepare(pg, "cmp_pick", SQL_PICK, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(pg, "cmp_mark_queued", SQL_MARK_QUEUED, err);
    return st;
}

bz_status cmp_sender_start(const cmp_ctx *ctx, const char *dsn, cmp_sender **out, bz_error *err)
{
    cmp_sender *s = calloc(1, sizeof *s);
    if (!s)
        return bz_fail(err, BZ_ERR_NOMEM, "campaign sender: out of memory");
    s->ctx = ctx;
    s->budget = cmp_budget_new(ctx->set.window_guard_ms);
    bz_status st = s->budget ? bz_pg_open(dsn, &s->pg, err)
                             : bz_fail(err, BZ_ERR_NOMEM, "campaign sender: out of memory");
    if (st == BZ_OK)
        st = prepare_statements(s->pg, err);
    if (st == BZ_OK && pthread_create(&s->thread, NULL, sender_main, s) != 0)
        st = bz_fail(err, BZ_ERR_INTERNAL, "campaign sender: cannot start thread");
    if (st != BZ_OK) {
        bz_pg_close(s->pg);
        cmp_budget_free(s->budget);
        free(s);
        return st;
    }
    *out = s;
    return BZ_OK;
}

void cmp_sender_stop(cmp_sender *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < s->ncampaigns; i++)
        free_campaign(s->campaigns[i]);
    for (size_t i = 0; i < s->naccounts; i++) {
        bz_account_clear(&s->accounts[i]->acc);
        free(s->accounts[i]);
    }
    for (size_t i = 0; i < s->nworkspaces; i++)
        free(s->workspaces[i]);
    free(s->campaigns);
    free(s->accounts);
    free(s->workspaces);
    bz_pg_close(s->pg); /* releases the sender lock */
    cmp_budget_free(s->budget);
    free(s);
}

int cmp_sender_is_leader(const cmp_sender *s)
{
    return s && atomic_load(&s->leader);
}
