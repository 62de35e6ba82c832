/*
 * cmd_send.c - `blazzctl send`: an operator sends a WhatsApp message
 * through the backbone as an agent would (a SendChatMessage on
 * crm.commands; crm_publish.h). chat-sync stores it as a pending chats row
 * and queues it, campaign-sender releases it under the account's send
 * budget. The message id is derived from the workspace and the idempotency
 * key (a random one unless --idempotency-key is given), so running the same
 * command with the same key sends once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazzctl.h"
#include "core/uuid.h"
#include "crm_publish.h"
#include "wa/crm_command.h"

#define MAX_PARAMS 32

static const char send_help[] =
    "usage: blazzctl send --workspace W (--to PHONE|JID | --group JID)\n"
    "                     (--text T | --media URL --mime TYPE [--type image|video|audio|document]\n"
    "                      [--caption C] | --template NAME [--language L] [--param P]...\n"
    "                      | --reaction EMOJI --target WAM_ID)\n"
    "                     [--account ID] [--user ID] [--reply-to WAM_ID]\n"
    "                     [--idempotency-key K] [--json]\n"
    "\n"
    "Publishes an agent's message to crm.commands. The account is chosen like the CRM's\n"
    "messages (the conversation's last account, the primary, the best health) unless\n"
    "--account names one. The same --idempotency-key always names the same message and\n"
    "never sends twice. Prints the message id (chats.uuid). A reaction acts on the\n"
    "conversation's message --target; --reaction \"\" removes the account's reaction.\n"
    "\n"
    "  --brokers B   Kafka (default $BLAZZ_KAFKA_BROKERS)\n"
    "  --prefix P    topic prefix (default $BLAZZ_KAFKA_TOPIC_PREFIX, $BLAZZ_TOPIC_PREFIX or none)\n"
    "  --json        print the outcome as JSON\n"
    "  --help        this text\n";

typedef struct send_options {
    bz_ctl_crm_options crm;
    const char *text, *media, *mime, *type, *caption, *template_name, *language, *account;
    const char *reply_to, *key, *reaction, *target;
    char *params[MAX_PARAMS];
    size_t nparams;
} send_options;

static int send_option(void *opts, int option, char *value)
{
    send_options *o = opts;
    switch (option) {
    case 'x': o->text = value; return 0;
    case 'm': o->media = value; return 0;
    case 'M': o->mime = value; return 0;
    case 'T': o->type = value; return 0;
    case 'c': o->caption = value; return 0;
    case 'P': o->template_name = value; return 0;
    case 'l': o->language = value; return 0;
    case 'p':
        if (o->nparams == MAX_PARAMS) {
            bz_ctl_usage_error("send", "at most %d --param", MAX_PARAMS);
            return 1;
        }
        o->params[o->nparams++] = value;
        return 0;
    case 'a': o->account = value; return 0;
    case 'r': o->reply_to = value; return 0;
    case 'k': o->key = value; return 0;
    case 'e': o->reaction = value; return 0;
    case 'G': o->target = value; return 0;
    default: return bz_ctl_crm_option(&o->crm, option, value);
    }
}

static int parse_send_options(int argc, char **argv, send_options *o)
{
    static const struct option longopts[] = {
        BZ_CTL_CRM_LONGOPTS,
        {"text", required_argument, NULL, 'x'},     {"media", required_argument, NULL, 'm'},
        {"mime", required_argument, NULL, 'M'},     {"type", required_argument, NULL, 'T'},
        {"caption", required_argument, NULL, 'c'},  {"template", required_argument, NULL, 'P'},
        {"language", required_argument, NULL, 'l'}, {"param", required_argument, NULL, 'p'},
        {"account", required_argument, NULL, 'a'},  {"reply-to", required_argument, NULL, 'r'},
        {"idempotency-key", required_argument, NULL, 'k'},
        {"reaction", required_argument, NULL, 'e'}, {"target", required_argument, NULL, 'G'},
        {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"send", send_help, longopts, send_option, 0};
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (bz_ctl_crm_kafka("send", optind != argc, &o->crm))
        return BZ_CTL_OPTIONS_BAD;
    if (!!o->text + !!o->media + !!o->template_name + !!o->reaction != 1) {
        bz_ctl_usage_error("send", "say exactly one of --text, --media, --template, --reaction");
        return BZ_CTL_OPTIONS_BAD;
    }
    if (!o->reaction != !o->target) {
        bz_ctl_usage_error("send", "--reaction and --target go together");
        return BZ_CTL_OPTIONS_BAD;
    }
    return BZ_CTL_OPTIONS_RUN;
}

static int media_type(const char *name)
{
    if (!name || strcmp(name, "image") == 0)
        return BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE;
    if (strcmp(name, "video") == 0)
        return BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VIDEO;
    if (strcmp(name, "audio") == 0)
        return BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_AUDIO;
    if (strcmp(name, "document") == 0)
        return BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_DOCUMENT;
    return BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNSPECIFIED;
}

static int send_message(const send_options *o)
{
    bz_error err;
    bz_error_clear(&err);
    bz_ctl_conversation conv;
    int account = 0, user = 0;
    if (bz_ctl_crm_target(&o->crm, o->account, &conv, &account, &user, &err) != BZ_OK)
        return bz_ctl_fail("send", &err);
    char key[BZ_UUID_STR_SIZE], message_id[BZ_UUID_STR_SIZE];
    if (!o->key && bz_uuid_v4(key, &err) != BZ_OK)
        return bz_ctl_fail("send", &err);
    const char *idem = o->key ? o->key : key;
    bz_crm_message_id(conv.workspace_id, idem, message_id);
    Blazz__V1__MediaInfo media = BLAZZ__V1__MEDIA_INFO__INIT;
    Blazz__V1__TemplateMessage tpl = BLAZZ__V1__TEMPLATE_MESSAGE__INIT;
    Blazz__V1__SendChatMessage s = BLAZZ__V1__SEND_CHAT_MESSAGE__INIT;
    s.message_id = message_id;
    s.idempotency_key = (char *)idem;
    s.contact_phone = conv.phone;
    if (conv.group)
        s.group_jid = conv.jid;
    else
        s.contact_jid = conv.jid;
    s.whatsapp_account_id = account;
    s.user_id = user;
    s.reply_to_wam_id = (char *)(o->reply_to ? o->reply_to : "");
    if (o->text) {
        s.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
        s.body = (char *)o->text;
    } else if (o->media) {
        s.message_type = media_type(o->type);
        media.url = (char *)o->media;
        media.mime_type = (char *)(o->mime ? o->mime : "");
        media.caption = (char *)(o->caption ? o->caption : "");
        s.media = &media;
    } else if (o->reaction) {
        s.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION;
        s.emoji = (char *)o->reaction;
        s.target_wam_id = (char *)o->target;
    } else {
        s.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE;
        tpl.name = (char *)o->template_name;
        tpl.language = (char *)(o->language ? o->language : "");
        tpl.body_params = (char **)o->params;
        tpl.n_body_params = o->nparams;
        s.template_ = &tpl;
    }
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_SEND;
    cmd.send = &s;
    if (bz_ctl_crm_publish(&cmd, &conv, message_id, o->crm.brokers, o->crm.prefix, &err) != BZ_OK)
        return bz_ctl_fail("send", &err);
    if (o->crm.json)
        return bz_ctl_print_json(json_pack("{s:s, s:s, s:I}", "message_id", message_id,
                                           "idempotency_key", idem, "workspace_id",
                                           (json_int_t)conv.workspace_id));
    printf("message %s accepted (idempotency key %s)\n", message_id, idem);
    return 0;
}

int bz_ctl_cmd_send(int argc, char **argv)
{
    send_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_send_options(argc, argv, &o);
    if (rc)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    return send_message(&o);
}
