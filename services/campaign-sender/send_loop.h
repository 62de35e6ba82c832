/*
 * send_loop.h - what the files of the send loop share, and nothing
 * outside them sees.
 *
 * The send loop is one thread (sender.c) working on one cmp_sender: the
 * running campaigns, their sending accounts and their workspaces, each a
 * slot kept across rounds (sender_slots.c) so pacing buckets and
 * auto-pause windows survive between refreshes. refresh.c re-reads the
 * slots from PostgreSQL every sender.refresh_ms; send_round.c releases
 * agents' messages and campaign sends between refreshes; each change is a
 * transaction of its own on the sender's connection (sender_db.c). All of
 * it runs on the sender thread only: nothing here is locked, except the
 * two atomics the service's other threads read (stop, leader).
 */
#ifndef CMP_SEND_LOOP_H
#define CMP_SEND_LOOP_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_sends.h"
#include "autopause.h"
#include "budget.h"
#include "campaign_sender.h"
#include "core/uuid.h"
#include "message.h"
#include "pg/pg.h"
#include "ratelimit.h"
#include "wa/account_select.h"

/* The pause_reason prefixes of the campaigns the sender pauses on its own
 * for a cause Meta gave (refresh.c), which it resumes when the cause is
 * gone, and which sender.c counts by cause. */
#define CMP_TOKEN_PAUSE "token_invalid"
#define CMP_TEMPLATE_PAUSE "template_not_sendable"

/* The same type sender.h names for the service (C11 allows the repeat). */
typedef struct cmp_sender cmp_sender;

/* How long the loop sleeps after a failed transaction. */
#define CMP_SENDER_ERROR_BACKOFF_MS 500

typedef struct cmp_account_slot {
    int64_t id;
    bz_account acc;
    cmp_limits limits;
    bz_counter *sends;
    int seen;
    cmp_warmup warmup;      /* a webjs number's warm-up (warmup.h; re-read each refresh) */
    int64_t jitter_next_ms; /* budget clock: its next campaign send while it warms up */
} cmp_account_slot;

typedef struct cmp_workspace_slot {
    int64_t id;
    cmp_limits limits;
} cmp_workspace_slot;

typedef struct cmp_campaign_slot {
    int64_t id, workspace_id, preferred_account, sticky_account, account_id;
    char uuid[BZ_UUID_STR_SIZE];
    int failover_pause, seen, drained;
    cmp_message msg; /* compiled once (message.h) */
    int64_t meta_checked_account; /* the Meta account msg was found to fit */
    int template_sent;            /* Meta sends its template (re-read each refresh) */
    int marketing;                /* a marketing campaign (standing.h; re-read each refresh) */
    char template_why[BZ_ERROR_MSG_MAX]; /* why not, when it does not */
    int64_t sent, delivered, read, failed, failed_attempts;
    int64_t last_progress_ms, progress_signature, waiting_since_ms;
    int64_t held_until_ms; /* budget clock: a rule of the release holds it until then */
    int held_ahead;        /* the last round held logs: the next looks past them */
    int held_shown;        /* metadata.held may be set (1 at first: a restart's leftover) */
    const char *wait_reason; /* static: why it waits now, NULL when it goes (send_round.c) */
    const char *wait_noted;  /* static: the rate wait metadata.held shows, NULL: none */
    cmp_window window;
} cmp_campaign_slot;

/* Distinct reasons campaigns waited for that the sender keeps counting. */
#define CMP_WAIT_REASONS 12

struct cmp_sender {
    const cmp_ctx *ctx;
    bz_pg *pg;
    pthread_t thread;
    atomic_int stop;
    atomic_int leader;
    int leader_pid;
    cmp_campaign_slot **campaigns;
    size_t ncampaigns, capcampaigns;
    cmp_account_slot **accounts;
    size_t naccounts, capaccounts;
    cmp_workspace_slot **workspaces;
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
    const char *wait_reasons[CMP_WAIT_REASONS]; /* static: every wait reason met, for the gauge */
    size_t nwait_reasons;
    uint64_t jitter_seed;   /* the warm-up's random gaps (cmp_warmup_gap_ms) */
    int fenced;             /* a restore's replay is under way: no campaign sends (refresh.c) */
};

/* ---- sender_db.c: the sender's connection, its transactions and clock --------- */

/* A step run inside one transaction of the sender's connection. */
typedef bz_status (*cmp_sender_tx_step)(cmp_sender *s, PGconn *conn, void *arg);

/* Run fn(s, conn, arg) in one transaction: committed when it returns BZ_OK,
 * rolled back otherwise. */
bz_status cmp_sender_run_in_tx(cmp_sender *s, cmp_sender_tx_step fn, void *arg, bz_error *err);

/* Now on the budget's clock (PostgreSQL's; see budget.h). */
int64_t cmp_sender_budget_now(const cmp_sender *s);

/* Align the budget's clock with PostgreSQL's (measured at the middle of
 * the round trip). */
bz_status cmp_sender_align_clock(cmp_sender *s, bz_error *err);

/* ---- sender_slots.c: the campaigns, accounts and workspaces tracked ------------ */

/* Free a campaign slot and its compiled message. */
void cmp_campaign_slot_free(cmp_campaign_slot *c);

/* The slot of account acc->id, added (with its sends counter) when new;
 * NULL when out of memory. The slot does not take acc. */
cmp_account_slot *cmp_account_slot_for(cmp_sender *s, const bz_account *acc);

/* The slot of account id, NULL when not tracked. */
cmp_account_slot *cmp_account_slot_find(cmp_sender *s, int64_t id);

/* The slot of workspace id, added when new; NULL when out of memory. */
cmp_workspace_slot *cmp_workspace_slot_for(cmp_sender *s, int64_t id);

/* ---- refresh.c: the running campaigns and their accounts ----------------------- */

/* Re-read the running campaigns, choose their sending accounts, configure
 * the buckets and review each (auto-pause, completion, progress); paused
 * and completed campaigns leave the slots. */
bz_status cmp_sender_refresh(cmp_sender *s, bz_error *err);

/* ---- send_round.c: agents' messages, then the campaigns' sends ----------------- */

/* Register the statements a round uses on pg (bz_pg prepares them on every
 * new connection). */
bz_status cmp_sender_prepare_sends(bz_pg *pg, bz_error *err);

/* One pass: agents' messages, then the running campaigns in turn; returns
 * the milliseconds the loop may sleep before room or work can be there
 * again. *failed is set to 1 when a transaction failed. */
int64_t cmp_sender_send_round(cmp_sender *s, int *failed);

#endif
