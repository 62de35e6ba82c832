/*
 * context.c - the settings and metrics every module of the service reads
 * (cmp_ctx), filled once at start-up from the validated configuration.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "campaign_sender.h"

static bz_status read_settings(cmp_settings *s, const bz_config *cfg, bz_error *err)
{
    const char *mode = bz_config_string(cfg, "failover.mode");
    if (strcasecmp(mode, "pause") != 0 && strcasecmp(mode, "failover") != 0)
        return bz_fail(err, BZ_ERR_CONFIG, "failover.mode '%s': expected failover or pause", mode);
    s->failover_pause = strcasecmp(mode, "pause") == 0;
    s->retry_max = (int)bz_config_int(cfg, "retry.max");
    snprintf(s->transient_errors, sizeof s->transient_errors, "%s",
             bz_config_string(cfg, "retry.transient_errors"));
    s->marketing_limit_after_s = (int)bz_config_int(cfg, "retry.marketing_limit_after_s");
    s->autopause_enabled = bz_config_bool(cfg, "autopause.enabled");
    s->autopause_threshold = bz_config_double(cfg, "autopause.threshold");
    s->autopause_window_s = (int)bz_config_int(cfg, "autopause.window_s");
    s->autopause_min_samples = (int)bz_config_int(cfg, "autopause.min_samples");
    s->progress_interval_ms = (int)bz_config_int(cfg, "events.progress_interval_ms");
    s->sender_enabled = bz_config_bool(cfg, "sender.enabled");
    s->sender_batch_max = (int)bz_config_int(cfg, "sender.batch_max");
    s->sender_idle_ms = (int)bz_config_int(cfg, "sender.idle_ms");
    s->sender_refresh_ms = (int)bz_config_int(cfg, "sender.refresh_ms");
    s->expire_after_ms = bz_config_int(cfg, "sender.expire_after_s") * 1000;
    snprintf(s->lock_name, sizeof s->lock_name, "%s", bz_config_string(cfg, "sender.lock_name"));
    s->scheduler_enabled = bz_config_bool(cfg, "scheduler.enabled");
    s->scheduler_interval_ms = (int)bz_config_int(cfg, "scheduler.interval_ms");
    s->smoothing_ms = bz_config_int(cfg, "rate.smoothing_ms");
    s->account_per_second = bz_config_double(cfg, "rate.account_per_second");
    s->account_per_minute = bz_config_double(cfg, "rate.account_per_minute");
    s->account_per_hour = bz_config_double(cfg, "rate.account_per_hour");
    s->account_max_per_second = bz_config_double(cfg, "rate.account_max_per_second");
    s->workspace_per_second = bz_config_double(cfg, "rate.workspace_per_second");
    s->workspace_per_minute = bz_config_double(cfg, "rate.workspace_per_minute");
    s->workspace_per_hour = bz_config_double(cfg, "rate.workspace_per_hour");
    s->window_guard_ms = bz_config_int(cfg, "budget.window_guard_ms");
    s->reach_window_s = bz_config_int(cfg, "budget.reach_window_s");
    s->pair_interval_ms = bz_config_int(cfg, "budget.pair_interval_s") * 1000;
    s->pair_burst = bz_config_int(cfg, "budget.pair_burst");
    s->warmup_window_s = bz_config_int(cfg, "warmup.window_s");
    s->warmup_jitter_min_ms = bz_config_int(cfg, "warmup.jitter_min_ms");
    s->warmup_jitter_max_ms = bz_config_int(cfg, "warmup.jitter_max_ms");
    if (s->warmup_jitter_max_ms > 0 && s->warmup_jitter_min_ms > s->warmup_jitter_max_ms)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "warmup.jitter_min_ms %" PRId64 " exceeds warmup.jitter_max_ms %" PRId64,
                       s->warmup_jitter_min_ms, s->warmup_jitter_max_ms);
    bz_status st = cmp_warmup_schedule_parse(bz_config_string(cfg, "warmup.schedule"),
                                             &s->warmup_schedule, err);
    if (st != BZ_OK)
        return st;
    s->agent_max_wait_ms = bz_config_int(cfg, "agent.max_wait_s") * 1000;
    s->agent_batch_max = (int)bz_config_int(cfg, "agent.batch_max");
    return BZ_OK;
}

static bz_status register_metrics(cmp_metrics *m, bz_metrics *reg, bz_error *err)
{
    static const char *const reason[] = {"reason", NULL};
    const bz_metric_decl decls[] = {
        {.def = {.name = "blazz_campaign_sender_campaigns",
                 .help = "Campaigns by state (refreshed by the active sender).",
                 .label_names = (const char *const[]){"state", NULL}},
         .gauges = &m->campaigns},
        {.def = {.name = "blazz_campaign_sender_campaigns_paused",
                 .help = "Paused campaigns by why (token_invalid, template_not_sendable, "
                         "account_standing, failure_rate, no_account, meta_refused, manual, "
                         "other).",
                 .label_names = reason},
         .gauges = &m->paused},
        {.def = {.name = "blazz_campaign_sender_sends_total",
                 .help = "Messages queued to wa.outbound, by sending account.",
                 .label_names = (const char *const[]){"account", NULL},
                 .max_children = 256},
         .counters = &m->sends},
        {.def = {.name = "blazz_campaign_sender_bucket_wait_seconds",
                 .help = "Time a campaign with pending logs waited for room in its send "
                         "budget."},
         .histogram = &m->bucket_wait},
        {.def = {.name = "blazz_campaign_sender_failures_total",
                 .help = "Failed send attempts by error code (a retried batch may count "
                         "twice).",
                 .label_names = reason},
         .counters = &m->failures},
        {.def = {.name = "blazz_campaign_sender_receipts_total",
                 .help = "Campaign receipts applied."},
         .counter = &m->receipts},
        {.def = {.name = "blazz_campaign_sender_receipts_waiting_total",
                 .help = "Campaign receipts a restore's replay brought before the start that "
                         "makes their logs: kept until it does (campaign_receipts_waiting)."},
         .counter = &m->receipts_waiting},
        {.def = {.name = "blazz_campaign_sender_commands_total",
                 .help = "Campaign commands applied."},
         .counter = &m->commands},
        {.def = {.name = "blazz_campaign_sender_autopauses_total",
                 .help = "Campaigns paused for their failure rate."},
         .counter = &m->autopauses},
        {.def = {.name = "blazz_campaign_sender_failovers_total",
                 .help = "Sending account changes after a disconnect."},
         .counter = &m->failovers},
        {.def = {.name = "blazz_campaign_sender_leader",
                 .help = "1 while this instance runs the send loop."},
         .gauge = &m->leader},
        {.def = {.name = "blazz_campaign_sender_agent_released_total",
                 .help = "Agents' messages released to wa.outbound."},
         .counter = &m->agent_released},
        {.def = {.name = "blazz_campaign_sender_agent_failed_total",
                 .help = "Agents' messages failed before release, by reason (rate_limited, "
                         "no_connected_account).",
                 .label_names = reason},
         .counters = &m->agent_failed},
        {.def = {.name = "blazz_campaign_sender_agent_already_sent_total",
                 .help = "Agents' messages queued again by a restore's replay whose echo "
                         "showed the gateway had sent them: left the queue unsent."},
         .counter = &m->agent_already_sent},
        {.def = {.name = "blazz_campaign_sender_agent_wait_seconds",
                 .help = "Time an agent's message spent in outbound_queue before its "
                         "release."},
         .histogram = &m->agent_wait},
        {.def = {.name = "blazz_campaign_sender_agent_waiting",
                 .help = "Queued agents' messages waiting for send budget or a connected "
                         "account (last round)."},
         .gauge = &m->agent_waiting},
        {.def = {.name = "blazz_campaign_sender_agent_held_total",
                 .help = "Agents' messages a release round left waiting, by reason "
                         "(send_budget, pair_rate: beyond Meta's burst to one recipient, "
                         "no_connected_account, restore_fence: a restore's replay is under "
                         "way); once per round.",
                 .label_names = reason},
         .counters = &m->agent_held},
        {.def = {.name = "blazz_campaign_sender_accounts_slowed",
                 .help = "Accounts whose release limits the send budget scales down, by "
                         "reason (meta_throttled: Meta throttled them lately; last refresh).",
                 .label_names = reason},
         .gauges = &m->accounts_slowed},
        {.def = {.name = "blazz_campaign_sender_held_total",
                 .help = "Campaign messages picked and held back pending by a rule of the "
                         "release, by reason (meta_messaging_limit: the portfolio's tier is "
                         "reached; warmup_cap: a webjs number in warm-up reached its new "
                         "recipients of the day; pair_rate: the recipient had a message from "
                         "the account too lately).",
                 .label_names = reason},
         .counters = &m->held},
        {.def = {.name = "blazz_campaign_sender_campaigns_waiting",
                 .help = "Running campaigns that could release nothing in the last round, by "
                         "why (agents_first, account_rate, workspace_rate, meta_throttled, "
                         "restore_fence: a restore's replay is under way, or the rule of the "
                         "release holding their next messages).",
                 .label_names = reason},
         .gauges = &m->waiting},
        {.def = {.name = "blazz_campaign_sender_skipped_total",
                 .help = "Campaign messages a rule of the release skipped for good, by reason "
                         "(opted_out: the contact opted out; outside_service_window: a "
                         "free-form message through Meta to a contact who had not written "
                         "within 24 h).",
                 .label_names = reason},
         .counters = &m->skipped},
    };
    return BZ_METRICS_DECLARE(reg, decls, err);
}

bz_status cmp_ctx_init(cmp_ctx *ctx, const bz_config *cfg, bz_metrics *metrics, bz_error *err)
{
    bz_status st = read_settings(&ctx->set, cfg, err);
    if (st == BZ_OK)
        st = register_metrics(&ctx->m, metrics, err);
    return st;
}
