/*
 * crm_publish.h - what `blazzctl send`, `read` and `sessions` share: the
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

/* The options both commands take (BZ_CTL_CRM_LONGOPTS). */
typedef struct bz_ctl_crm_options {
    const char *workspace, *to, *group, *user, *brokers, *prefix;
    int json;
} bz_ctl_crm_options;

#define BZ_CTL_CRM_LONGOPTS                                                                      \
    {"workspace", required_argument, NULL, 'w'}, {"to", required_argument, NULL, 't'},          \
        {"group", required_argument, NULL, 'g'}, {"user", required_argument, NULL, 'u'},        \
        {"brokers", required_argument, NULL, 'b'}, {"prefix", required_argument, NULL, 'X'},    \
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}

/* Store option (a val of BZ_CTL_CRM_LONGOPTS) with its value in o; 0, or 1
 * when it is none of them. */
int bz_ctl_crm_option(bz_ctl_crm_options *o, int option, char *value);

/* After option parsing: brokers and prefix from the options or the
 * environment, and the checks both commands make (workspace and brokers
 * given, no extra arguments). 0, or 1 after printing the usage error. */
int bz_ctl_crm_kafka(const char *command, int extra_args, bz_ctl_crm_options *o);

/* The conversation o names (its --workspace, and --to or --group) into
 * conv, --user into *user and send's --account (account, may be NULL) into
 * *account_id; 0 for the ones not given. Checked in the order of send's
 * usage line, so the first mistake is the one reported. */
bz_status bz_ctl_crm_target(const bz_ctl_crm_options *o, const char *account,
                            bz_ctl_conversation *conv, int *account_id, int *user,
                            bz_error *err);

/* Parse --to (a phone number or a contact JID) or --group (a group JID). */
bz_status bz_ctl_conversation_parse(const char *to, const char *group, bz_ctl_conversation *out,
                                    bz_error *err);

/* Check cmd (its envelope and conversation are filled here from c and
 * event_id) and publish it to <prefix>crm.commands, waiting for the ack. */
bz_status bz_ctl_crm_publish(Blazz__V1__CrmCommand *cmd, const bz_ctl_conversation *c,
                             char *event_id, const char *brokers, const char *prefix,
                             bz_error *err);

/* The same for a command of workspace_id under conversation (its record
 * key after "<workspace_id>:"), about session_id (NULL: none). */
bz_status bz_ctl_crm_publish_in(Blazz__V1__CrmCommand *cmd, int64_t workspace_id,
                                const char *conversation, const char *session_id, char *event_id,
                                const char *brokers, const char *prefix, bz_error *err);

#endif
