/*
 * refresh.c - the send loop's view of the running campaigns, re-read every
 * sender.refresh_ms (and on taking the sender lock).
 *
 * A refresh first reads the restore fence (libs/pg/restore_fence.h): while
 * a restore's replay is under way no campaign sends, since the receipts of
 * what was sent before may still be on their way back and a log released
 * again would reach its contact twice (ARCHITECTURE.md §6.5); the fence
 * is lifted here too once every consumer has read back to it. Then it
 * resumes the campaigns it paused whose cause is gone (a
 * refused Meta token replaced since, a template Meta approved again, an
 * account Meta cleared), then
 * reads every running campaign with its message, its template's status,
 * counters, failover rule and workspace limits in one query. New
 * campaigns get a slot (sender_slots.c) with their message compiled once
 * (message.c); a message that does not compile pauses its campaign. Each
 * campaign then gets its sending account (libs/wa/account_select.c: the
 * sticky one while connected, else failover or a pause per failover.mode or
 * the campaign's metadata.failover; none is needed once every log is
 * released: such a campaign waits for its receipts, unpaused), stored back in
 * metadata.sending_account_id (with a PROGRESS event on a failover), a
 * Meta account only if the message keeps to Meta's limits and, for a
 * template campaign, while Meta sends the template (APPROVED, FLAGGED;
 * else a pause with the reason), and the account's and workspace's limits
 * are read again from their metadata; last, a Meta account must stand
 * well enough at Meta for the campaign (standing.h: not flagged for a
 * marketing campaign, not restricted or disabled; else a pause, the
 * account stored first so that the resume finds it).
 * Last comes the review: auto-pause on a failure storm (autopause.c),
 * completion once no log is pending or queued, and a throttled progress
 * event. Every change is its own short transaction, so one campaign's
 * failure does not undo another's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/grow.h"
#include "core/log.h"
#include "pg/restore_fence.h"
#include "send_loop.h"
#include "standing.h"

#define SQL_RUNNING                                                                              \
    "SELECT c.id, c.uuid::text, c.workspace_id, coalesce(c.whatsapp_account_id, 0), "            \
    "coalesce((c.metadata->>'sending_account_id')::bigint, 0), "                                 \
    "coalesce(c.metadata->>'failover', ''), c.messages_sent, c.messages_delivered, "             \
    "c.messages_read, c.messages_failed, coalesce((c.metadata->>'failed_attempts')::bigint, 0), " \
    "w.metadata::text, " CMP_MESSAGE_COLUMNS ", " CMP_TEMPLATE_COLUMNS ", " CMP_MARKETING " "    \
    "FROM campaigns c JOIN workspaces w ON w.id = c.workspace_id " CMP_MESSAGE_JOIN " "           \
    "WHERE c.status = 'running' AND c.deleted_at IS NULL ORDER BY c.id"
/* SQL_RUNNING's first column of the message and of its template (message.h),
 * and whether the campaign is marketing (standing.h). */
#define COL_MESSAGE 12
#define COL_TEMPLATE (COL_MESSAGE + CMP_MESSAGE_COLUMN_COUNT)
#define COL_MARKETING (COL_TEMPLATE + 5)
#define SQL_STICKY                                                                               \
    "UPDATE campaigns SET metadata = jsonb_set(metadata, '{sending_account_id}', to_jsonb($2::bigint)) " \
    "WHERE id = $1"
#define SQL_PENDING                                                                              \
    "SELECT count(*) FROM (SELECT 1 FROM campaign_logs WHERE campaign_id = $1::bigint AND "      \
    "status = 'pending' LIMIT 1) p"
#define SQL_TOKEN_REFUSED                                                                        \
    "SELECT count(*) FROM meta_credentials WHERE whatsapp_account_id = $1::bigint "              \
    "AND status = 'invalid'"
/* Campaigns paused because Meta refused their account's token, whose token
 * has been replaced since (ARCHITECTURE.md §12). */
#define SQL_TOKEN_REPLACED                                                                       \
    "SELECT c.id FROM campaigns c JOIN meta_credentials mc ON mc.whatsapp_account_id = "        \
    "coalesce((c.metadata->>'sending_account_id')::bigint, c.whatsapp_account_id) "              \
    "WHERE c.status = 'paused' AND c.pause_reason LIKE '" CMP_TOKEN_PAUSE "%' AND mc.status = 'valid' " \
    "AND c.deleted_at IS NULL"
/* The pause_reason of a campaign paused because Meta stopped sending its
 * template (its status no longer APPROVED or FLAGGED). */
/* Campaigns the sender paused for their template, which Meta sends again.
 * Only the sender's own pauses (actor system): an operator's stays theirs,
 * whatever reason it gives. */
#define SQL_TEMPLATE_APPROVED                                                                    \
    "SELECT c.id FROM campaigns c JOIN templates t ON t.id = c.template_id "                      \
    "AND t.deleted_at IS NULL WHERE c.status = 'paused' AND c.pause_reason LIKE '"                \
    CMP_TEMPLATE_PAUSE "%' AND c.metadata->'last_command'->>'actor' = 'system' AND "                 \
    "c.deleted_at IS NULL AND " CMP_TEMPLATE_SENDABLE
/* Campaigns the sender paused for their sending account's standing at
 * Meta, which no longer stops them (standing.h; the account is stored
 * before such a pause). */
#define SQL_STANDING_CLEARED                                                                     \
    "SELECT c.id FROM campaigns c JOIN whatsapp_accounts a ON a.id = "                           \
    "(c.metadata->>'sending_account_id')::bigint " CMP_MESSAGE_JOIN " WHERE c.status = 'paused' " \
    "AND c.pause_reason LIKE '" CMP_STANDING_PAUSE "%' AND "                                       \
    "c.metadata->'last_command'->>'actor' = 'system' AND c.deleted_at IS NULL AND NOT "          \
    CMP_STANDING_STOPS

static cmp_campaign_slot *find_campaign(cmp_sender *s, int64_t id)
{
    for (size_t i = 0; i < s->ncampaigns; i++)
        if (s->campaigns[i]->id == id)
            return s->campaigns[i];
    return NULL;
}

static cmp_campaign_slot *new_campaign(cmp_sender *s, const PGresult *res, int row, bz_error *err)
{
    cmp_campaign_slot *c = calloc(1, sizeof *c);
    if (!c || !bz_grow((void **)&s->campaigns, &s->capcampaigns, s->ncampaigns + 1,
                          sizeof(cmp_campaign_slot *), 16)) {
        free(c);
        bz_fail(err, BZ_ERR_NOMEM, "track campaign: out of memory");
        return NULL;
    }
    c->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    snprintf(c->uuid, sizeof c->uuid, "%s", PQgetvalue(res, row, 1));
    c->workspace_id = strtoll(PQgetvalue(res, row, 2), NULL, 10);
    c->last_progress_ms = bz_monotonic_ms();
    c->held_shown = 1;
    cmp_message_columns cols;
    cmp_message_columns_read(res, row, COL_MESSAGE, &cols);
    if (cmp_message_compile(&cols, &c->msg, err) != BZ_OK) {
        cmp_campaign_slot_free(c);
        return NULL;
    }
    s->campaigns[s->ncampaigns++] = c;
    return c;
}

static void read_campaign_row(cmp_sender *s, cmp_campaign_slot *c, const PGresult *res, int row)
{
    const char *failover = PQgetvalue(res, row, 5);
    c->preferred_account = strtoll(PQgetvalue(res, row, 3), NULL, 10);
    c->sticky_account = strtoll(PQgetvalue(res, row, 4), NULL, 10);
    c->failover_pause = strcmp(failover, "pause") == 0     ? 1
                        : strcmp(failover, "failover") == 0 ? 0
                                                            : s->ctx->set.failover_pause;
    c->sent = strtoll(PQgetvalue(res, row, 6), NULL, 10);
    c->delivered = strtoll(PQgetvalue(res, row, 7), NULL, 10);
    c->read = strtoll(PQgetvalue(res, row, 8), NULL, 10);
    c->failed = strtoll(PQgetvalue(res, row, 9), NULL, 10);
    c->failed_attempts = strtoll(PQgetvalue(res, row, 10), NULL, 10);
    c->template_sent = cmp_template_sendable(res, row, COL_TEMPLATE, c->template_why,
                                             sizeof c->template_why);
    c->marketing = PQgetvalue(res, row, COL_MARKETING)[0] == 't';
    c->seen = 1;
    cmp_workspace_slot *w = cmp_workspace_slot_for(s, c->workspace_id);
    if (w) {
        const cmp_settings *set = &s->ctx->set;
        cmp_limits defaults = {set->workspace_per_second, set->workspace_per_minute,
                               set->workspace_per_hour};
        w->limits = cmp_limits_from_metadata(PQgetvalue(res, row, 11), &defaults, 0);
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

static void pause_campaign(cmp_sender *s, cmp_campaign_slot *c, const char *reason, int autopause)
{
    pause_request p = {c->id, reason, autopause};
    bz_error err;
    if (cmp_sender_run_in_tx(s, pause_in_tx, &p, &err) == BZ_OK)
        c->account_id = 0;
    c->seen = 0; /* dropped from the running set; a resume brings it back */
}

typedef struct sticky_update {
    cmp_campaign_slot *c;
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

/* Whether sql, counting rows for id, counts any; on_error when it fails. */
static int counts_any(PGconn *conn, const char *what, const char *sql, int64_t id, int on_error)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, id);
    const char *params[] = {text};
    PGresult *res = NULL;
    bz_error err;
    int any = bz_pg_exec_params(conn, what, sql, 1, params, &res, &err) == BZ_OK
                  ? bz_pg_get_int64(res, 0, 0) > 0
                  : on_error;
    PQclear(res);
    return any;
}

/* 1 when account is a Meta account whose token Meta refused (code 190). */
static int token_refused(PGconn *conn, int64_t account)
{
    return counts_any(conn, "check the account's Meta token", SQL_TOKEN_REFUSED, account, 0);
}

/* Whether the campaign still has logs to release; an error answers yes
 * (the caller then pauses, as it did before asking). */
static int has_pending(PGconn *conn, int64_t campaign)
{
    return counts_any(conn, "look for logs to release", SQL_PENDING, campaign, 1);
}

/* The campaigns the sender paused, found again once the cause is gone,
 * and the reason it resumes them with: the pause was its decision, so is
 * the resume. */
typedef struct resumable {
    const char *what, *sql, *reason;
} resumable;

static const resumable resumables[] = {
    {"its Meta access token was replaced", SQL_TOKEN_REPLACED, "token_replaced"},
    {"Meta sends its template again", SQL_TEMPLATE_APPROVED, "template_approved"},
    {"Meta lets its account send it again", SQL_STANDING_CLEARED, "account_cleared"},
};

typedef struct resume_request {
    int64_t id;
    const char *reason;
} resume_request;

static bz_status resume_in_tx(cmp_sender *s, PGconn *conn, void *arg)
{
    (void)s;
    const resume_request *r = arg;
    const cmp_actor who = {.actor = "system", .reason = r->reason};
    int resumed;
    bz_error err;
    bz_status st = cmp_campaign_resume(conn, r->id, &who, &resumed, &err);
    if (st != BZ_OK)
        bz_error_log("resume campaign %" PRId64 ": %s", r->id, err.msg);
    return st;
}

static bz_status resume_when_cause_gone(cmp_sender *s, PGconn *conn, bz_error *err)
{
    bz_status st = BZ_OK;
    for (size_t k = 0; st == BZ_OK && k < sizeof resumables / sizeof resumables[0]; k++) {
        const resumable *r = &resumables[k];
        PGresult *res = NULL;
        st = bz_pg_exec_params(conn, "find paused campaigns to resume", r->sql, 0, NULL, &res,
                               err);
        for (int row = 0; st == BZ_OK && row < PQntuples(res); row++) {
            resume_request q = {bz_pg_get_int64(res, row, 0), r->reason};
            bz_info("campaign %" PRId64 ": %s: resuming", q.id, r->what);
            cmp_sender_run_in_tx(s, resume_in_tx, &q, err);
        }
        PQclear(res);
    }
    return st;
}

/* A campaign that takes a Meta account (at start, or by failover since)
 * must keep to Meta's limits (message.h); one that does not is paused with
 * the reason. 1 when it may send through acc. */
static int meta_takes_it(cmp_sender *s, cmp_campaign_slot *c, const bz_account *acc)
{
    if (acc->provider != BLAZZ__V1__PROVIDER__PROVIDER_META || acc->id == c->meta_checked_account)
        return 1;
    bz_error e;
    if (cmp_message_check_meta(&c->msg, &e) == BZ_OK) {
        c->meta_checked_account = acc->id;
        return 1;
    }
    char reason[BZ_ERROR_MSG_MAX];
    snprintf(reason, sizeof reason,
             "its messages cannot go through Meta account %" PRId64 ": %.400s", acc->id, e.msg);
    bz_warn("campaign %" PRId64 ": pausing: %s", c->id, reason);
    pause_campaign(s, c, reason, 0);
    return 0;
}

/* A template campaign goes through a Meta account only while Meta sends
 * its template: Meta would refuse every message. Else it pauses, which
 * fails nothing: its pending logs wait until resume_when_cause_gone finds
 * the template approved again. 1 when it may send through acc. */
static int template_takes_it(cmp_sender *s, cmp_campaign_slot *c, const bz_account *acc)
{
    if (acc->provider != BLAZZ__V1__PROVIDER__PROVIDER_META || !c->msg.is_template ||
        c->template_sent)
        return 1;
    char reason[BZ_ERROR_MSG_MAX];
    snprintf(reason, sizeof reason,
             CMP_TEMPLATE_PAUSE ": %.400s (the campaign resumes when Meta approves it again)",
             c->template_why);
    bz_warn("campaign %" PRId64 ": pausing: %s", c->id, reason);
    pause_campaign(s, c, reason, 0);
    return 0;
}

/* A campaign goes through a Meta account only while Meta lets the account
 * send it (standing.h): else it pauses, failing nothing, until
 * resume_when_cause_gone finds the account cleared. 1 when it may send. */
static int standing_takes_it(cmp_sender *s, PGconn *conn, cmp_campaign_slot *c,
                             const bz_account *acc, bz_error *err)
{
    if (acc->provider != BLAZZ__V1__PROVIDER__PROVIDER_META)
        return 1;
    char reason[BZ_ERROR_MSG_MAX];
    int stopped;
    if (cmp_standing_check(conn, acc->id, c->marketing, &stopped, reason, sizeof reason, err) !=
        BZ_OK)
        return -1;
    if (!stopped)
        return 1;
    bz_warn("campaign %" PRId64 ": pausing: %s", c->id, reason);
    pause_campaign(s, c, reason, 0);
    return 0;
}

/* Pick (or keep) the campaign's sending account; pauses it when the rules
 * say so. Returns 0 when the campaign cannot send now. */
static int choose_account(cmp_sender *s, PGconn *conn, cmp_campaign_slot *c, bz_error *err)
{
    int64_t current = c->account_id ? c->account_id
                      : c->sticky_account ? c->sticky_account
                                          : (c->failover_pause ? c->preferred_account : 0);
    bz_account acc;
    int found;
    int64_t only = c->failover_pause && current ? current : 0;
    bz_account_query q = {.workspace_id = c->workspace_id, .preferred_id = c->preferred_account,
                          .provider = c->msg.extras.provider,
                          .sticky_id = current, .only_id = only};
    if (bz_account_select(conn, &q, &acc, &found, err) != BZ_OK)
        return -1;
    char reason[256];
    if (!found && !has_pending(conn, c->id)) {
        /* everything released: what is left are receipts, which need no
         * account (among them the failures of sends lost with their
         * gateway instance, §15.4); paused now, the campaign would stay
         * paused when its last logs turn final instead of completing */
        c->drained = 1;
        return 0;
    }
    if (!found) {
        int64_t refused = current ? current : c->preferred_account;
        if (refused && token_refused(conn, refused))
            snprintf(reason, sizeof reason,
                     CMP_TOKEN_PAUSE ": Meta refused the access token of account %" PRId64
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
    if (!meta_takes_it(s, c, &acc) || !template_takes_it(s, c, &acc)) {
        bz_account_clear(&acc);
        return 0;
    }
    cmp_account_slot *a = cmp_account_slot_for(s, &acc);
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
    a->limits =
        cmp_limits_from_metadata(acc.metadata_json, &defaults, set->account_max_per_second);
    if (acc.provider == BLAZZ__V1__PROVIDER__PROVIDER_WEBJS &&
        cmp_warmup_of(conn, acc.id, &set->warmup_schedule, &a->warmup, err) != BZ_OK)
        return -1;
    if (a->warmup.cap && !a->jitter_next_ms)
        /* first seen here: its last send may be just before this sender took over */
        a->jitter_next_ms = cmp_sender_budget_now(s) +
                            cmp_warmup_gap_ms(set->warmup_jitter_min_ms,
                                              set->warmup_jitter_max_ms, &s->jitter_seed);
    int64_t previous = current;
    if (previous != acc.id) {
        /* a hold was the old account's rules' verdict: ask the new one's */
        c->held_until_ms = 0;
        c->wait_noted = NULL;
    }
    c->account_id = acc.id;
    if (acc.id != c->sticky_account) {
        snprintf(reason, sizeof reason, "failover: account %" PRId64 " -> %" PRId64, previous,
                 acc.id);
        if (previous && previous != acc.id) {
            bz_warn("campaign %" PRId64 ": %s (session %s)", c->id, reason, acc.session_id);
            bz_counter_inc(s->ctx->m.failovers);
        }
        sticky_update u = {c, previous != acc.id ? previous : 0, reason};
        if (cmp_sender_run_in_tx(s, store_sticky_in_tx, &u, err) != BZ_OK)
            return -1;
        c->sticky_account = acc.id;
    }
    return standing_takes_it(s, conn, c, &a->acc, err);
}

typedef struct campaign_step {
    cmp_campaign_slot *c;
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
static void review_campaign(cmp_sender *s, cmp_campaign_slot *c, int64_t now)
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
        if (cmp_sender_run_in_tx(s, complete_in_tx, &step, &err) == BZ_OK && step.done) {
            c->seen = 0;
            return;
        }
        c->drained = 0; /* retried logs may have come back to pending */
    }
    int64_t signature = c->sent + c->delivered + c->read + c->failed + c->failed_attempts;
    if (now - c->last_progress_ms >= set->progress_interval_ms &&
        signature != c->progress_signature) {
        if (cmp_sender_run_in_tx(s, progress_in_tx, &step, &err) == BZ_OK) {
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
            cmp_campaign_slot_free(s->campaigns[i]);
    }
    s->ncampaigns = kept;
}

/* s->fenced while a restore's replay is under way; said once each way. */
static bz_status read_restore_fence(cmp_sender *s, PGconn *conn, bz_error *err)
{
    bz_restore_fence fence;
    bz_status st = bz_restore_fence_check(conn, "campaign sender", &fence, err);
    if (st != BZ_OK)
        return st;
    if (fence.held && !s->fenced)
        bz_warn("campaign sender: the database was restored (restore fence %s, to %s): no "
                "campaign sends until the replay has read back %" PRId64 " records",
                fence.fence_id, fence.restored_to, fence.records_to_go);
    s->fenced = fence.held;
    return BZ_OK;
}

bz_status cmp_sender_refresh(cmp_sender *s, bz_error *err)
{
    PGconn *conn = bz_pg_conn(s->pg);
    PGresult *res;
    bz_status st = read_restore_fence(s, conn, err);
    if (st == BZ_OK)
        st = resume_when_cause_gone(s, conn, err);
    if (st == BZ_OK)
        st = bz_pg_exec_params(conn, "read running campaigns", SQL_RUNNING, 0, NULL, &res, err);
    if (st != BZ_OK)
        return st;
    for (size_t i = 0; i < s->ncampaigns; i++)
        s->campaigns[i]->seen = 0;
    for (int row = 0; row < PQntuples(res); row++) {
        int64_t id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
        cmp_campaign_slot *c = find_campaign(s, id);
        if (!c && !(c = new_campaign(s, res, row, err))) {
            if (err->code == BZ_ERR_INVALID) {
                cmp_campaign_slot tmp = {.id = id};
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
        cmp_campaign_slot *c = s->campaigns[i];
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
