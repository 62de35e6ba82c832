/*
 * campaign_sender.h - what the modules of blazz-campaign-sender share.
 *
 * The service has two threads of work:
 *  - the exactly-once consumer (handler.c) applies campaign.commands
 *    (commands.c -> lifecycle.c) and campaign.receipts (receipts.c), each
 *    batch in one PostgreSQL transaction together with its offsets;
 *  - the sender thread (sender.c) starts due scheduled campaigns
 *    (scheduler.c), and, while it holds the sender lock (one active sender
 *    per database, so rate limits are enforced in one place), re-reads the
 *    running campaigns (refresh.c) and, in each round (send_round.c),
 *    releases the agents' messages chat-sync queued (agent_sends.c) and
 *    then the running campaigns, under the one durable send budget of each
 *    account and workspace that also paces them (budget.c: counted from
 *    send_ledger) and the rules of the release (release_plan.h), picks
 *    the sending account (libs/wa/account_select.c), personalizes
 *    (template.c), moves logs pending -> queued in the same transaction as
 *    their wa.outbound outbox rows, auto-pauses on failure storms
 *    (autopause.c) and completes campaigns whose logs are all final.
 * Events on campaign.events go through the outbox (events.c).
 *
 * Everything here is internal to the service; the prefix is cmp_.
 */
#ifndef CMP_CAMPAIGN_SENDER_H
#define CMP_CAMPAIGN_SENDER_H

#include <libpq-fe.h>
#include <stdint.h>

#include "blazz/v1/campaign.pb-c.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/status.h"
#include "kafka/eo_consumer.h"
#include "kafka/topics.h"
#include "warmup.h"

/* Settings read once from the configuration (see campaign-sender.conf.example). */
typedef struct cmp_settings {
    int failover_pause;          /* failover.mode = "pause" */
    int retry_max;               /* retry.max */
    char transient_errors[512];  /* retry.transient_errors, comma-separated */
    int marketing_limit_after_s; /* retry.marketing_limit_after_s (0: no retry) */
    int autopause_enabled;
    double autopause_threshold;
    int autopause_window_s;
    int autopause_min_samples;
    int progress_interval_ms;
    int sender_enabled;
    int sender_batch_max;
    int sender_idle_ms;
    int sender_refresh_ms;
    int64_t expire_after_ms;
    char lock_name[128];
    int scheduler_enabled;
    int scheduler_interval_ms;
    int64_t smoothing_ms;
    double account_per_second, account_per_minute, account_per_hour, account_max_per_second;
    double workspace_per_second, workspace_per_minute, workspace_per_hour;
    int64_t window_guard_ms;     /* budget.window_guard_ms */
    int64_t reach_window_s;      /* budget.reach_window_s */
    int64_t pair_interval_ms;    /* budget.pair_interval_s */
    int64_t pair_burst;          /* budget.pair_burst */
    cmp_warmup_schedule warmup_schedule; /* warmup.schedule (warmup.h) */
    int64_t warmup_window_s;     /* warmup.window_s */
    int64_t warmup_jitter_min_ms, warmup_jitter_max_ms; /* warmup.jitter_*_ms; max 0: none */
    int64_t agent_max_wait_ms;   /* agent.max_wait_s */
    int agent_batch_max;         /* agent.batch_max */
} cmp_settings;

typedef struct cmp_metrics {
    bz_gauge_family *campaigns;    /* by state */
    bz_gauge_family *paused;       /* paused campaigns by why (sender.c) */
    bz_counter_family *sends;      /* by account */
    bz_histogram *bucket_wait;     /* seconds a ready campaign waited for its budget */
    bz_counter_family *failures;   /* failed send attempts by reason */
    bz_counter *receipts;          /* receipts applied (may repeat on retried batches) */
    bz_counter *receipts_waiting;  /* receipts a replay brought before their logs: kept */
    bz_counter *commands;
    bz_counter *autopauses;
    bz_counter *failovers;
    bz_gauge *leader;              /* 1 while this instance runs the send loop */
    bz_counter *agent_released;    /* agents' messages released to wa.outbound */
    bz_counter_family *agent_failed; /* agents' messages failed, by reason */
    bz_counter *agent_already_sent; /* replayed agents' messages the gateway had sent: not again */
    bz_histogram *agent_wait;      /* seconds from queued by chat-sync to released */
    bz_gauge *agent_waiting;       /* queued agents' messages waiting for budget or an account */
    bz_counter_family *agent_held; /* agents' messages a round left waiting, by reason */
    bz_gauge_family *accounts_slowed; /* accounts whose limits the budget scales down, by reason */
    bz_counter_family *held;       /* picked campaign messages held back, by reason */
    bz_counter_family *skipped;    /* picked campaign messages skipped for good, by reason */
    bz_gauge_family *waiting;      /* running campaigns waiting, by reason (last round) */
} cmp_metrics;

typedef struct cmp_ctx {
    cmp_settings set;
    cmp_metrics m;
    char commands_topic[BZ_TOPIC_NAME_MAX];
    char receipts_topic[BZ_TOPIC_NAME_MAX];
} cmp_ctx;

/* ---- handler.c: the exactly-once consumer handler ------------------------ */

extern const bz_eo_handler cmp_handler;

/* Read settings and register metrics. */
bz_status cmp_ctx_init(cmp_ctx *ctx, const bz_config *cfg, bz_metrics *metrics, bz_error *err);

/* ---- commands.c ---------------------------------------------------------- */

/* Validate a decoded command (no database): BZ_OK or a rejection. */
bz_status cmp_command_check(const Blazz__V1__CampaignCommand *cmd, bz_error *err);

/* Apply one command in conn's open transaction. */
bz_status cmp_command_apply(const cmp_ctx *ctx, PGconn *conn, const Blazz__V1__CampaignCommand *cmd,
                            bz_error *err);

/* ---- receipts.c ---------------------------------------------------------- */

bz_status cmp_receipt_check(const Blazz__V1__CampaignReceipt *rc, bz_error *err);

/* The uuid a receipt names: its log uuid, else the echoed client reference;
 * NULL when neither is a uuid. */
const char *cmp_receipt_log_uuid(const Blazz__V1__CampaignReceipt *rc);

/* Apply receipts[0..n) in order in conn's open transaction. A receipt
 * whose log does not exist is refused (unknown_campaign_log), except in a
 * restore's replay, where it waits for its log (receipts_waiting.h). */
bz_status cmp_receipts_apply(const cmp_ctx *ctx, PGconn *conn,
                             const Blazz__V1__CampaignReceipt *const *receipts, size_t n,
                             bz_error *err);

/* ---- lifecycle.c: state transitions with their events --------------------- */

typedef struct cmp_actor {
    const char *actor;    /* "user:12", "blazzctl", "system", "scheduler" */
    int64_t user_id;      /* 0 when not a person */
    const char *reason;   /* may be NULL or "" */
    const char *event_id; /* the command's event id, NULL when internal */
} cmp_actor;

/* draft|scheduled -> running: validate the message (unknown placeholders,
 * and a template Meta does not send, fail the campaign here, never at send
 * time), expand the audience, emit STARTED (or FAILED). *started is 1 when this call moved the campaign. */
bz_status cmp_campaign_start(PGconn *conn, int64_t campaign_id,
                             const cmp_actor *who, int *started, bz_error *err);
/* running -> paused; error_message (may be NULL) is stored for auto-pauses. */
bz_status cmp_campaign_pause(PGconn *conn, int64_t campaign_id, const cmp_actor *who,
                             const char *error_message, int *paused, bz_error *err);
bz_status cmp_campaign_resume(PGconn *conn, int64_t campaign_id, const cmp_actor *who,
                              int *resumed, bz_error *err);
bz_status cmp_campaign_cancel(PGconn *conn, int64_t campaign_id, const cmp_actor *who,
                              int *cancelled, bz_error *err);
/* running -> completed when no log is pending or queued. */
bz_status cmp_campaign_complete_if_done(PGconn *conn, int64_t campaign_id, int *completed,
                                        bz_error *err);

/* ---- events.c ------------------------------------------------------------ */

/* Add a campaign.events outbox row describing the campaign as it is now in
 * conn's transaction. actor/reason may be NULL; account_id 0 if unknown. */
bz_status cmp_event_emit(PGconn *conn, int64_t campaign_id, Blazz__V1__CampaignEventKind kind,
                         const char *actor, const char *reason, int64_t account_id,
                         bz_error *err);

/* ---- audience.c ---------------------------------------------------------- */

/* Insert one pending log per eligible member of the contact group (active,
 * not deleted, E.164 phone) in one statement; existing logs are kept.
 * *inserted receives the rows added, *total the campaign's audience size. */
bz_status cmp_audience_expand(PGconn *conn, int64_t campaign_id, int64_t workspace_id,
                              int64_t contact_group_id, int64_t *inserted, int64_t *total,
                              bz_error *err);

/* ---- scheduler.c --------------------------------------------------------- */

/* Start the scheduled campaigns that are due, each exactly once across all
 * instances. *started receives how many this call started. */
bz_status cmp_scheduler_run(PGconn *conn, int *started, bz_error *err);

#endif
