/*
 * business_notice.h - a notice about a WhatsApp Business Account
 * (BusinessNotice: Meta's template webhooks, ARCHITECTURE.md §12.5, and
 * its account webhooks, §12.8),
 * checked like every other event before it goes on. It names a WABA and no
 * session: the account it is accepted for, and so its workspace, is found
 * on the Kafka path from the WABA (record_route.c), and the conversation
 * part of its chat.sync key is "waba:<waba_id>", so one WABA's notices are
 * applied in the order Meta sent them.
 */
#ifndef ING_BUSINESS_NOTICE_H
#define ING_BUSINESS_NOTICE_H

#include <stddef.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"

/* Check n; conversation (cap bytes) becomes "waba:<waba_id>". */
bz_status ing_normalize_business_notice(const Blazz__V1__BusinessNotice *n, char *conversation,
                                        size_t cap, bz_error *err);

#endif
