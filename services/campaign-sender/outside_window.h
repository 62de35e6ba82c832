/*
 * outside_window.h - Meta's 24-hour customer-service window as a rule of
 * the release (issue 35, ARCHITECTURE.md §12.7).
 *
 * Through a Meta account a message other than a template reaches a user
 * only within 24 hours of the user's last message to that account; outside
 * it Meta refuses it (131047). A free-form campaign through a Meta account
 * therefore skips, in its release plan (release_plan.h), the logs of
 * contacts who have not written to the account within 24 hours: they
 * become skipped with CMP_SKIP_OUTSIDE_WINDOW, counted in
 * campaigns.messages_skipped, and nothing goes to Meta for them. Decided
 * at release, as the opt-out is: a contact who writes while the campaign
 * runs is sent to from then on. The window itself is read in one place,
 * libs/wa/service_window.h, for ingest, chat-sync and campaigns alike.
 */
#ifndef CMP_OUTSIDE_WINDOW_H
#define CMP_OUTSIDE_WINDOW_H

#include <libpq-fe.h>
#include <stdint.h>

#include "core/status.h"
#include "message.h"
#include "release_plan.h"
#include "wa/account_select.h"
#include "wa/service_window.h"

/* campaign_logs.skip_reason of such a log (0040). */
#define CMP_SKIP_OUTSIDE_WINDOW BZ_WA_SERVICE_WINDOW_REASON

/* Whether msg through acc is held to the window: free-form through Meta. */
int cmp_service_window_applies(const bz_account *acc, const cmp_message *msg);

/* Skip the logs of plan that still go (contacts[i]: log i's contact) whose
 * contact has not written to account within the window; one statement for
 * the batch. */
bz_status cmp_service_window_apply(PGconn *conn, int64_t account, const int64_t *contacts,
                                   cmp_release_plan *plan, bz_error *err);

#endif
