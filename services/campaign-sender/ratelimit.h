/*
 * ratelimit.h - the send-time limits of one account or one workspace.
 *
 * Limits come from the account's or workspace's metadata ("rate_limits":
 * {"per_second": 20, "per_minute": 0, ...}; 0 means no limit of that
 * period; an absent key takes the configured default) and an account's
 * per-second rate never exceeds the configured maximum (Meta's 80/s tier
 * by default). The send budget (budget.h) holds every release to them
 * and paces campaigns by them.
 */
#ifndef CMP_RATELIMIT_H
#define CMP_RATELIMIT_H

typedef struct cmp_limits {
    double per_second, per_minute, per_hour; /* 0 = none */
} cmp_limits;

/* Limits from a metadata JSON text (NULL or unparsable: all defaults).
 * max_per_second > 0 caps the per-second rate (and stands in for it when
 * no per-second limit is set). */
cmp_limits cmp_limits_from_metadata(const char *metadata_json, const cmp_limits *defaults,
                                    double max_per_second);

#endif
