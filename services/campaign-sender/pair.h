/*
 * pair.h - Meta's pair rate as a rule of the send budget: how often one
 * account may send to one recipient (ARCHITECTURE.md §11.3, issue 35).
 *
 * WhatsApp lets a business number send one message every 6 s to the same
 * user (error 131056 beyond) and a burst of up to 45, after which the
 * sender waits what the burst would have taken at that rate: a token
 * bucket per (account, recipient) of capacity budget.pair_burst refilling
 * one token per budget.pair_interval_s. It is kept as the moment the
 * bucket is full again (a "theoretical arrival time", GCRA): each release
 * at t moves it to max(it, t) + interval; a message may take a token at
 * full - (burst - 1) * interval. Agents' messages may burst (a live
 * conversation does not wait 6 s for a reply); campaign messages never
 * borrow: they go only once the bucket is full again, so a campaign's
 * messages to a recipient are at least an interval apart from any
 * message of the account to them, and never eat a conversation's burst.
 *
 * The state is derived from send_ledger (its recipient column, 0039):
 * a sender that becomes active replays the releases of the last
 * burst * interval into buckets assumed empty at the start of that span.
 * No bucket can be emptier than that (a bucket is full again burst *
 * interval after its last release at the latest), so the loaded state is
 * never more generous than the truth; at worst a recipient who had n
 * releases then has n tokens fewer until they refill. Buckets full again
 * are dropped, so memory holds only recipients released to lately.
 *
 * Not thread-safe: the sender thread owns it (through cmp_budget).
 */
#ifndef CMP_PAIR_H
#define CMP_PAIR_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "release_plan.h"

/* The recipient as the pair rate counts it, in SQL, of a contact id
 * expression: the contact ("contact:<id>"), not the phone text, so that a
 * person keeps one bucket when their phone changes or a LID is learned to
 * be it (decision 0010). send_ledger.recipient holds it; rows a release
 * before it wrote hold the phone, whose buckets simply run out. */
#define CMP_PAIR_RECIPIENT(contact_id) "'contact:' || " contact_id

/* The reason a message waits for the pair rate (campaigns' metadata.held,
 * blazz_campaign_sender_held_total and ..._agent_held_total). */
#define CMP_PAIR_REASON "pair_rate"

typedef struct cmp_pair_rate {
    int64_t interval_ms; /* 0: the rule is off */
    int64_t burst;       /* tokens a recipient's bucket holds, >= 1 */
} cmp_pair_rate;

/* Who may borrow from the bucket: agents up to the burst, campaigns not. */
typedef enum { CMP_PAIR_AGENT, CMP_PAIR_CAMPAIGN } cmp_pair_kind;

typedef struct cmp_pairs cmp_pairs;

/* Empty state under rate; NULL when out of memory. */
cmp_pairs *cmp_pairs_new(cmp_pair_rate rate);
void cmp_pairs_free(cmp_pairs *p);

/* How far back releases matter: burst * interval (0 when off). */
int64_t cmp_pairs_span_ms(const cmp_pairs *p);

/* Forget everything; releases recorded until the next reset or
 * cmp_pairs_loaded find a new recipient's bucket as it was at the worst,
 * empty at now_ms - span (see above). */
void cmp_pairs_reset(cmp_pairs *p, int64_t now_ms);
/* The load is over: new recipients start with a full bucket again. */
void cmp_pairs_loaded(cmp_pairs *p);

/* Count a release from account to recipient at at_ms ("" or NULL: not a
 * user, e.g. a group; nothing counts). 0, or -1 when out of memory. */
int cmp_pairs_record(cmp_pairs *p, int64_t account, const char *recipient, int64_t at_ms);

/* When a message of kind from account may next go to recipient (now_ms
 * when it may now). */
int64_t cmp_pairs_next(cmp_pairs *p, int64_t account, const char *recipient, cmp_pair_kind kind,
                       int64_t now_ms);

/* The rule of the release for campaign logs: of the logs of plan that
 * still go (recipients[i]: log i's recipient), those whose recipient's
 * bucket is not full again at now_ms, or that a log before them in the
 * batch already goes to, wait with CMP_PAIR_REASON until it is. */
bz_status cmp_pairs_apply(cmp_pairs *p, int64_t account, const char *const *recipients,
                          int64_t now_ms, cmp_release_plan *plan, bz_error *err);

#endif
