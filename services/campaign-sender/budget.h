/*
 * budget.h - the send budget every account and workspace shares between
 * agent and campaign messages, durable across restarts and hand-overs
 * (ARCHITECTURE.md §11).
 *
 * The budget is not a refilling bucket but the record of what was actually
 * released to providers: every release writes a send_ledger row in the same
 * transaction as its wa.outbound outbox row (cmp_ledger_write), and the
 * active sender keeps the last hour of those releases in memory, per
 * account and per workspace, as sorted timestamps. A limit "L per period P"
 * holds when fewer than L releases lie in the window (now - P - guard,
 * now]; guard (budget.window_guard_ms) is added to the minute and hour
 * windows to absorb the jitter between release and the gateway receiving
 * the message (the outbox relay, the gateway's consumer), so that a
 * gateway's own clock also never sees more than L in any P. The per-second
 * windows get no guard: they exist to pace, not to keep a number from
 * being banned.
 *
 * The same windows pace campaigns: a limit L per period P also admits a
 * campaign at most B releases in any B*P/L (B: what the rate earns in
 * rate.smoothing_ms, at least one), counted over campaign releases only,
 * so a campaign's sends are spread evenly instead of spending a minute's
 * limit at once, and agents' messages, which may burst, do not slow it.
 * This replaced in-memory token buckets beside the windows: one record
 * of releases now answers both questions, and a restart keeps the pace.
 *
 * A sender that becomes active (start, crash of the holder, a second
 * instance taking over) loads the windows from send_ledger before it
 * releases anything (cmp_budget_load), so no restart or hand-over can
 * exceed a limit. Timestamps are PostgreSQL's clock (the caller passes
 * "now" aligned to it), so two hosts with skewed clocks agree.
 *
 * Meta's throttling of an account is a rule of the same budget: while
 * meta-sender's pace for the account is below its configured rate
 * (meta_throttle, wa/meta_throttle.h: halved per throttling answer,
 * recovering by a tenth per second), the account's per-second and
 * per-minute limits are multiplied by the same recovered factor, so what
 * is released is what Meta takes and released messages do not pile up in
 * meta_sends. The hour limit is a volume, not a throughput: it stays.
 *
 * Meta's pair rate, how often one account may send to one recipient, is
 * one more rule of the same record: send_ledger names each release's
 * recipient, and the budget keeps a bucket per account and recipient
 * beside the windows (pair.h), loaded with them.
 *
 * Not thread-safe: the sender thread owns it.
 */
#ifndef CMP_BUDGET_H
#define CMP_BUDGET_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "pair.h"
#include "ratelimit.h"

typedef struct cmp_budget cmp_budget;

/* Who released: an agent's message may burst up to the limits; a
 * campaign's is also paced (below). */
typedef enum { CMP_RELEASE_AGENT, CMP_RELEASE_CAMPAIGN } cmp_release_kind;

/* A new, empty budget; smoothing_ms is the pace's interval (rate.smoothing_ms),
 * pair_rate Meta's pair rate (pair.h). NULL when out of memory. Free with
 * cmp_budget_free. */
cmp_budget *cmp_budget_new(int64_t guard_ms, int64_t smoothing_ms, cmp_pair_rate pair_rate);
void cmp_budget_free(cmp_budget *b);

/* Forget everything and load the releases of the last hour (plus guard)
 * before now_ms from send_ledger, and those of the pair rate's span into
 * its buckets (pair.h). */
bz_status cmp_budget_load(cmp_budget *b, PGconn *conn, int64_t now_ms, bz_error *err);

/* Forget the throttle states known and read meta_throttle again (the
 * accounts whose factor is still below 1 at now_ms). */
bz_status cmp_budget_load_throttles(cmp_budget *b, PGconn *conn, int64_t now_ms, bz_error *err);

/* How many accounts the last cmp_budget_load_throttles found slowed. */
size_t cmp_budget_throttled_accounts(const cmp_budget *b);

/* How many more messages of kind account (under al, scaled by its
 * throttle factor) of workspace (under wl) may release at now_ms without
 * any window going over its limit, and for a campaign without going
 * ahead of its pace. */
int64_t cmp_budget_room(cmp_budget *b, cmp_release_kind kind, int64_t account,
                        const cmp_limits *al, int64_t workspace, const cmp_limits *wl,
                        int64_t now_ms);

/* When (on the same clock) room for one more of kind appears; now_ms when
 * there is room now. *why (when not NULL) receives what leaves no room
 * now (static): "meta_throttled" (the account's limits or pace while
 * Meta's throttling scales them), "account_rate", "workspace_rate" (a
 * limit's window is full), "account_pace", "workspace_pace" (a
 * campaign's next release is not due yet), or NULL. */
int64_t cmp_budget_next_room(cmp_budget *b, cmp_release_kind kind, int64_t account,
                             const cmp_limits *al, int64_t workspace, const cmp_limits *wl,
                             int64_t now_ms, const char **why);

/* Count n releases of kind at at_ms in the windows (after their
 * transaction committed; the pair rate counts per recipient:
 * cmp_pairs_record). 0, or -1 when out of memory (the releases are in
 * send_ledger anyway; the next load counts them). */
int cmp_budget_record(cmp_budget *b, cmp_release_kind kind, int64_t account, int64_t workspace,
                      int64_t at_ms, int64_t n);

/* The pair rate's buckets, which the budget loads with the windows: a
 * rule of the release asks them (pair.h). Owned by b. */
cmp_pairs *cmp_budget_pairs(cmp_budget *b);

/* A batch of send_ledger rows to insert with one statement. */
typedef struct cmp_ledger {
    int64_t *accounts, *workspaces; /* heap */
    char **refs;                    /* heap copies */
    char **recipients;              /* heap copies; "" for no user (a group) */
    size_t n, cap;
    int oom;
} cmp_ledger;

/* Count one release of kind to recipient at at_ms (windows and pair
 * rate), after its transaction committed; 0, or -1 when out of memory. */
int cmp_budget_record_release(cmp_budget *b, cmp_release_kind kind, int64_t account,
                              int64_t workspace, const char *recipient, int64_t at_ms);

/* Count every release of l, all of kind, at at_ms (windows and pair
 * rate), after its transaction committed; 0, or -1 when out of memory. */
int cmp_budget_record_ledger(cmp_budget *b, cmp_release_kind kind, const cmp_ledger *l,
                             int64_t at_ms);

void cmp_ledger_init(cmp_ledger *l);
/* Add one release (ref: the chats.uuid or campaign_logs.uuid released;
 * recipient: the user's phone as the provider sees it, NULL or "" when the
 * recipient is no user, e.g. a group). */
void cmp_ledger_add(cmp_ledger *l, int64_t account, int64_t workspace, const char *ref,
                    const char *recipient);
/* Insert the rows as kind ("agent" | "campaign") released at at_ms, in
 * conn's open transaction. */
bz_status cmp_ledger_write(cmp_ledger *l, PGconn *conn, const char *kind, int64_t at_ms,
                           bz_error *err);
void cmp_ledger_free(cmp_ledger *l);

/* PostgreSQL's clock now, in Unix ms (the budget's clock). */
bz_status cmp_pg_now_ms(PGconn *conn, int64_t *out, bz_error *err);

#endif
