/*
 * warmup.h - the warm-up of a whatsapp-web.js number as a rule of the
 * release (ARCHITECTURE.md §11.3, issue 35): WhatsApp bans unofficial
 * numbers for sudden volume, so a young number may reach only a few new
 * recipients a day, more as it ages, and its campaign sends are spaced by
 * a random gap instead of leaving machine-regular.
 *
 * The number's age counts from whatsapp_accounts.created_at, or from
 * metadata.warmup_since ("YYYY-MM-DD") when an operator says the number is
 * older than its account row (a number new to the backbone, not to
 * WhatsApp). The schedule (warmup.schedule, "from_day:cap,...") gives the
 * daily cap of new recipients at that age; 0 is no cap, and a number past
 * its last capped step is out of warm-up.
 *
 * A new recipient is a contact the account has no conversation with (no
 * chats row with it, either way) and never released a campaign message
 * to. At each release through an account in warm-up the picked logs are
 * planned in id order: a known contact goes; a new one goes while fewer
 * than the cap were first reached within the window (warmup.window_s,
 * 24 h; a test shortens it); the rest are held (CMP_WARMUP_REASON) until
 * the first of those ages out. Who was first reached when is recorded in
 * warmup_recipients in the releasing transaction, so a restart or a
 * hand-over counts the same day. Agents' messages are not concerned: a
 * person answers a person.
 */
#ifndef CMP_WARMUP_H
#define CMP_WARMUP_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "release_plan.h"

/* The reason of the logs this rule holds. */
#define CMP_WARMUP_REASON "warmup_cap"

/* Steps a schedule may have. */
#define CMP_WARMUP_STEPS 16

typedef struct cmp_warmup_step {
    int64_t from_day; /* the number's age in whole days from which cap applies */
    int64_t cap;      /* new recipients per window; 0: no cap */
} cmp_warmup_step;

typedef struct cmp_warmup_schedule {
    cmp_warmup_step steps[CMP_WARMUP_STEPS]; /* from_day ascending, the first 0 */
    size_t n;                                 /* 0: warm-up off */
} cmp_warmup_schedule;

/* Parse "0:20,3:50,7:100,14:200,30:0" (spaces allowed; "" turns warm-up
 * off): days strictly ascending from 0, caps >= 0. */
bz_status cmp_warmup_schedule_parse(const char *text, cmp_warmup_schedule *out, bz_error *err);

/* The cap of new recipients for a number age_days old (0: no cap). */
int64_t cmp_warmup_cap_at(const cmp_warmup_schedule *s, int64_t age_days);

/* metadata.warmup_since "YYYY-MM-DD" as Unix ms at 00:00 UTC; 0 when text
 * is no such date. */
int64_t cmp_warmup_since_ms(const char *text);

/* A gap in [min_ms, max_ms] drawn from *seed (advanced). */
int64_t cmp_warmup_gap_ms(int64_t min_ms, int64_t max_ms, uint64_t *seed);

/* An account's warm-up as its slot keeps it (re-read each refresh). */
typedef struct cmp_warmup {
    int64_t cap;      /* today's cap of new recipients; 0: not in warm-up */
    int64_t age_days; /* the number's age */
} cmp_warmup;

/* The warm-up of account (a webjs account) now, on PostgreSQL's clock. */
bz_status cmp_warmup_of(PGconn *conn, int64_t account, const cmp_warmup_schedule *s,
                        cmp_warmup *out, bz_error *err);

/* Apply the cap w to the logs of plan that still go (contacts[i]: log i's
 * contact) through account: the new recipients beyond the cap wait with
 * CMP_WARMUP_REASON until the first reached in the window ages out, the
 * hold's detail ("warmup") naming the cap and the age; the new recipients
 * that go are recorded as reached now. */
bz_status cmp_warmup_apply(PGconn *conn, int64_t account, int64_t workspace, const cmp_warmup *w,
                           const int64_t *contacts, int64_t window_s, cmp_release_plan *plan,
                           bz_error *err);

#endif
