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
 * transaction, so the count survives any restart. The verdicts go into
 * the batch's release plan (release_plan.h). The window is
 * sender.reach_window_s (24 h; a test shortens it). Agents' templates to
 * users outside their window count too, recorded when they are released
 * (cmp_reach_record_agents), never held.
 */
#ifndef CMP_REACH_H
#define CMP_REACH_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "release_plan.h"

/* The reason of the logs this rule holds. */
#define CMP_REACH_REASON "meta_messaging_limit"

/* Apply the limit to the logs of plan that still go (contacts[i]: log i's
 * contact) through account: those it holds wait with CMP_REACH_REASON
 * until the first user reached ages out, the hold's detail naming the
 * tier. Records, for the logs that go and are business-initiated, that
 * the portfolio reached their contacts now. Nothing applies when the
 * account's portfolio has no tier. */
bz_status cmp_reach_apply(PGconn *conn, int64_t account, int64_t workspace,
                          const int64_t *contacts, int64_t window_s, cmp_release_plan *plan,
                          bz_error *err);

/* Agents' messages released through accounts[i] of workspaces[i] to
 * contacts[i] (0: a group, not asked): those of a Meta account whose
 * portfolio has a tier, to a contact outside their service window, were
 * business-initiated (a template a person sent) and count as the portfolio
 * reaching the contact now, as Meta counts them. They are never held: a
 * person sends them one at a time. In conn's open transaction. */
bz_status cmp_reach_record_agents(PGconn *conn, const int64_t *accounts,
                                  const int64_t *workspaces, const int64_t *contacts, size_t n,
                                  bz_error *err);

#endif
