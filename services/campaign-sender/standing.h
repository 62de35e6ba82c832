/*
 * standing.h - whether Meta lets an account send a campaign now, from the
 * account's standing as Meta reports it (whatsapp_accounts, 0034;
 * ARCHITECTURE.md §12.8).
 *
 * Three things stop a campaign on a Meta account: the number flagged for
 * low quality stops its marketing campaigns (Meta downgrades a flagged
 * number that keeps sending them; utility and authentication templates go
 * on); a restriction of business-initiated messaging, while it lasts, and
 * a disabled WABA stop every campaign. The rules are SQL expressions over
 * whatsapp_accounts `a` (and, for "marketing", templates `t` of the
 * campaign: a template campaign of another category is not marketing;
 * a free-form campaign, or a template Meta gave no category, is), written
 * once here: refresh.c pauses by them and resumes by their negation (so
 * none may be NULL).
 */
#ifndef CMP_STANDING_H
#define CMP_STANDING_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define CMP_MARKETING "coalesce(t.category, 'MARKETING') = 'MARKETING'"
#define CMP_FLAG_STOPS "a.meta_flagged"
#define CMP_RESTRICTION_STOPS                                                                     \
    "coalesce(a.meta_restriction = 'RESTRICTED_BIZ_INITIATED_MESSAGING' AND "                     \
    "coalesce(a.meta_restricted_until > now(), true), false)"
#define CMP_BAN_STOPS "coalesce(a.meta_ban_state = 'DISABLE', false)"
/* The whole rule, for a campaign whose template (or none) is t. */
#define CMP_STANDING_STOPS                                                                        \
    "((" CMP_FLAG_STOPS " AND " CMP_MARKETING ") OR " CMP_RESTRICTION_STOPS " OR "                \
    CMP_BAN_STOPS ")"

/* The pause_reason prefix of a campaign paused for its account's standing. */
#define CMP_STANDING_PAUSE "account_standing"

/* Whether account lets the campaign (marketing or not) send now: *stopped
 * 1 with why (cap bytes: "account_standing: Meta flagged ...") or 0. */
bz_status cmp_standing_check(PGconn *conn, int64_t account, int marketing, int *stopped,
                             char *why, size_t cap, bz_error *err);

#endif
