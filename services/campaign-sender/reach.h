/*
 * reach.h - Meta's messaging limit: how many unique users a business
 * portfolio may reach with business-initiated messages in a moving 24
 * hours (its tier, whatsapp_accounts.meta_business_limit; ARCHITECTURE.md
 * §12.10), as a rule of the release.
 *
 * At each release of campaign messages through a Meta account whose
 * portfolio has a tier, the picked logs are planned in id order: a contact
 * inside their customer-service window (libs/wa/service_window.h) goes
 * without counting; one the portfolio reached within the window goes and
 * counts nothing new; any other goes while the tier has room, and the rest
 * stay pending for the next window (the campaign continues then, nothing
 * fails). What went is recorded in meta_reach (0037) in the releasing
 * transaction, so the count survives any restart. The window is
 * sender.reach_window_s (24 h; a test shortens it).
 */
#ifndef CMP_REACH_H
#define CMP_REACH_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* The tier's limit of unique users: TIER_250 -> 250, ...; 0 for none
 * (unlimited, unknown, never reported). */
int64_t cmp_reach_limit_of(const char *tier);

typedef struct cmp_reach_plan {
    int *go;              /* per picked log: 1 release, 0 hold (heap, n entries) */
    size_t held;          /* logs held for the next window */
    int64_t next_room_ms; /* when held: PostgreSQL's clock (ms) when a user ages out */
    char tier[32];        /* the portfolio's tier, for the reason shown */
} cmp_reach_plan;

/* Plan the release of n picked logs (their contacts, in order) through
 * account; no limit applies when the account's portfolio has no tier.
 * Records, for the logs that go and are business-initiated, that the
 * portfolio reached their contacts now. Free plan->go with
 * cmp_reach_plan_free. */
bz_status cmp_reach_plan_release(PGconn *conn, int64_t account, int64_t workspace,
                                 const int64_t *contacts, size_t n, int64_t window_s,
                                 cmp_reach_plan *plan, bz_error *err);
void cmp_reach_plan_free(cmp_reach_plan *plan);

#endif
