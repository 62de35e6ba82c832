/*
 * crm_publish.h - what `blazzctl send` and `blazzctl read` share: the
 * conversation they name and publishing a CrmCommand to crm.commands.
 *
 * The commands go straight to Kafka, like a CRM behind ingest would send
 * them but without ingest's lookups: chat-sync resolves the contact or
 * group in the workspace and dead-letters what it cannot apply (an unknown
 * contact, template or message) to chat.sync.dlq with the reason.
 */
#ifndef BZ_CTL_CRM_PUBLISH_H
#define BZ_CTL_CRM_PUBLISH_H

#include <stdint.h>

#include "blazz/v1/crm.pb-c.h"
#include "core/status.h"

typedef struct bz_ctl_conversation {
    int64_t workspace_id;
    char phone[32];     /* E.164, or "" */
    char jid[96];       /* phone-less contact (@lid) or group JID */
    int group;
} bz_ctl_conversation;

/* After option parsing: brokers and prefix from the options or the
 * environment, and the checks both commands make (workspace and brokers
 * given, no extra arguments). 0, or 1 after printing the usage error. */
int bz_ctl_crm_kafka(const char *command, const char *brokers, const char *prefix,
                     int extra_args, const char *workspace, const char **brokers_out,
                     const char **prefix_out);

/* Parse --to (a phone number or a contact JID) or --group (a group JID). */
bz_status bz_ctl_conversation_parse(const char *to, const char *group, bz_ctl_conversation *out,
                                    bz_error *err);

/* Check cmd (its envelope and conversation are filled here from c and
 * event_id) and publish it to <prefix>crm.commands, waiting for the ack. */
bz_status bz_ctl_crm_publish(Blazz__V1__CrmCommand *cmd, const bz_ctl_conversation *c,
                             char *event_id, const char *brokers, const char *prefix,
                             bz_error *err);

#endif
