/*
 * cmd_read.c - `blazzctl read`: mark a conversation read as the CRM would
 * (a MarkChatRead on crm.commands; crm_publish.h). chat-sync marks the
 * conversation's unread inbound messages up to the bound read, lowers the
 * contact's unread_messages by exactly that many, tells the CRM (chat.read)
 * and sends WhatsApp one read receipt per webjs account.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazzctl.h"
#include "core/uuid.h"
#include "crm_publish.h"

static const char read_help[] =
    "usage: blazzctl read --workspace W (--to PHONE|JID | --group JID)\n"
    "                     [--up-to-wam WAM_ID | --up-to-ms MS] [--user ID] [--json]\n"
    "\n"
    "Marks the conversation's unread inbound messages read: up to the message WAM_ID,\n"
    "or those created at or before MS (Unix milliseconds), or all of them so far.\n"
    "\n"
    "  --brokers B   Kafka (default $BLAZZ_KAFKA_BROKERS)\n"
    "  --prefix P    topic prefix (default $BLAZZ_KAFKA_TOPIC_PREFIX, $BLAZZ_TOPIC_PREFIX or none)\n"
    "  --json        print the outcome as JSON\n"
    "  --help        this text\n";

typedef struct read_options {
    bz_ctl_crm_options crm;
    const char *up_to_wam, *up_to_ms;
} read_options;

static int read_option(void *opts, int option, char *value)
{
    read_options *o = opts;
    switch (option) {
    case 'W': o->up_to_wam = value; return 0;
    case 'm': o->up_to_ms = value; return 0;
    default: return bz_ctl_crm_option(&o->crm, option, value);
    }
}

static int parse_read_options(int argc, char **argv, read_options *o)
{
    static const struct option longopts[] = {
        BZ_CTL_CRM_LONGOPTS, {"up-to-wam", required_argument, NULL, 'W'},
        {"up-to-ms", required_argument, NULL, 'm'}, {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"read", read_help, longopts, read_option, 0};
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc == BZ_CTL_OPTIONS_RUN && bz_ctl_crm_kafka("read", optind != argc, &o->crm))
        return BZ_CTL_OPTIONS_BAD;
    return rc;
}

static int mark_read(const read_options *o)
{
    bz_error err;
    bz_error_clear(&err);
    bz_ctl_conversation conv;
    int account = 0, user = 0;
    char *end = NULL;
    long long up_to_ms = o->up_to_ms ? strtoll(o->up_to_ms, &end, 10) : 0;
    if (o->up_to_ms && (*end || up_to_ms <= 0)) {
        bz_ctl_usage_error("read", "--up-to-ms '%s': expected Unix milliseconds", o->up_to_ms);
        return 1;
    }
    if (bz_ctl_crm_target(&o->crm, NULL, &conv, &account, &user, &err) != BZ_OK)
        return bz_ctl_fail("read", &err);
    char event_id[BZ_UUID_STR_SIZE];
    if (bz_uuid_v4(event_id, &err) != BZ_OK)
        return bz_ctl_fail("read", &err);
    Blazz__V1__MarkChatRead r = BLAZZ__V1__MARK_CHAT_READ__INIT;
    r.contact_phone = conv.phone;
    if (conv.group)
        r.group_jid = conv.jid;
    else
        r.contact_jid = conv.jid;
    r.up_to_wam_id = (char *)(o->up_to_wam ? o->up_to_wam : "");
    r.up_to_ms = up_to_ms;
    r.user_id = user;
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_MARK_READ;
    cmd.mark_read = &r;
    if (bz_ctl_crm_publish(&cmd, &conv, event_id, o->crm.brokers, o->crm.prefix, &err) != BZ_OK)
        return bz_ctl_fail("read", &err);
    if (o->crm.json)
        return bz_ctl_print_json(json_pack("{s:s, s:I}", "event_id", event_id, "workspace_id",
                                           (json_int_t)conv.workspace_id));
    printf("mark read accepted (event %s)\n", event_id);
    return 0;
}

int bz_ctl_cmd_read(int argc, char **argv)
{
    read_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_read_options(argc, argv, &o);
    if (rc)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    return mark_read(&o);
}
