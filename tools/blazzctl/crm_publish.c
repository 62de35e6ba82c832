/*
 * crm_publish.c - conversations and CrmCommand publishing for blazzctl
 * send|read (see crm_publish.h).
 */
#include "crm_publish.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazzctl.h"
#include "kafka/producer.h"
#include "kafka/topics.h"
#include "wa/crm_command.h"
#include "wa/jid.h"
#include "wa/phone.h"

int bz_ctl_crm_option(bz_ctl_crm_options *o, int option, char *value)
{
    switch (option) {
    case 'w': o->workspace = value; return 0;
    case 't': o->to = value; return 0;
    case 'g': o->group = value; return 0;
    case 'u': o->user = value; return 0;
    case 'b': o->brokers = value; return 0;
    case 'X': o->prefix = value; return 0;
    case 'j': o->json = 1; return 0;
    default: return 1;
    }
}

int bz_ctl_crm_kafka(const char *command, int extra_args, bz_ctl_crm_options *o)
{
    o->brokers = bz_ctl_setting(o->brokers, "BLAZZ_KAFKA_BROKERS", NULL);
    o->prefix = bz_ctl_topic_prefix(o->prefix);
    if (extra_args || !o->workspace || !o->brokers) {
        bz_ctl_usage_error(command, "--workspace and brokers ($BLAZZ_KAFKA_BROKERS) are "
                                    "required, nothing else");
        return 1;
    }
    return 0;
}

/* A --to that did not parse is the operator's option to fix. */
static bz_status refuse_to(bz_error *err)
{
    bz_wrap(err, "--to");
    return bz_reclass(err, BZ_ERR_CONFIG, NULL);
}

bz_status bz_ctl_conversation_parse(const char *to, const char *group, bz_ctl_conversation *out,
                                    bz_error *err)
{
    out->phone[0] = out->jid[0] = '\0';
    out->group = group != NULL;
    if ((to != NULL) == (group != NULL))
        return bz_fail(err, BZ_ERR_CONFIG, "say --to PHONE|JID or --group JID (one of them)");
    bz_jid_kind kind;
    if (group) {
        if (bz_jid_canonicalize(group, out->jid, sizeof out->jid, &kind, err) != BZ_OK ||
            kind != BZ_JID_GROUP)
            return bz_fail(err, BZ_ERR_CONFIG, "--group '%s': not a group JID", group);
        return BZ_OK;
    }
    if (!strchr(to, '@'))
        return bz_phone_normalize(to, NULL, out->phone, sizeof out->phone, err) == BZ_OK
                   ? BZ_OK
                   : refuse_to(err);
    if (bz_jid_canonicalize(to, out->jid, sizeof out->jid, &kind, err) != BZ_OK)
        return refuse_to(err);
    if (kind == BZ_JID_USER) {
        bz_status st = bz_jid_to_phone(out->jid, out->phone, sizeof out->phone, err);
        out->jid[0] = '\0';
        return st;
    }
    return kind == BZ_JID_LID ? BZ_OK
                              : bz_fail(err, BZ_ERR_CONFIG, "--to '%s': not a contact", to);
}

bz_status bz_ctl_crm_target(const bz_ctl_crm_options *o, const char *account,
                            bz_ctl_conversation *conv, int *account_id, int *user,
                            bz_error *err)
{
    int workspace = 0;
    *account_id = *user = 0;
    if (bz_ctl_parse_int(o->workspace, 1, 2147483647, "--workspace", &workspace, err) != BZ_OK ||
        (account &&
         bz_ctl_parse_int(account, 1, 2147483647, "--account", account_id, err) != BZ_OK) ||
        (o->user && bz_ctl_parse_int(o->user, 1, 2147483647, "--user", user, err) != BZ_OK) ||
        bz_ctl_conversation_parse(o->to, o->group, conv, err) != BZ_OK)
        return err->code;
    conv->workspace_id = workspace;
    return BZ_OK;
}

bz_status bz_ctl_crm_publish(Blazz__V1__CrmCommand *cmd, const bz_ctl_conversation *c,
                             char *event_id, const char *brokers, const char *prefix,
                             bz_error *err)
{
    const char *conversation =
        bz_crm_conversation(c->phone, c->group ? "" : c->jid, c->group ? c->jid : "");
    return bz_ctl_crm_publish_in(cmd, c->workspace_id, conversation, NULL, event_id, brokers,
                                 prefix, err);
}

bz_status bz_ctl_crm_publish_in(Blazz__V1__CrmCommand *cmd, int64_t workspace_id,
                                const char *conversation, const char *session_id, char *event_id,
                                const char *brokers, const char *prefix, bz_error *err)
{
    Blazz__V1__Envelope env;
    bz_crm_command_address(cmd, &env, event_id, workspace_id, "blazzctl", conversation);
    if (session_id)
        env.session_id = (char *)session_id;
    bz_status st = bz_crm_command_check(cmd, err);
    if (st != BZ_OK)
        return st;
    size_t len = blazz__v1__crm_command__get_packed_size(cmd);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return bz_fail(err, BZ_ERR_NOMEM, "encode command: out of memory");
    blazz__v1__crm_command__pack(cmd, buf);
    char topic[BZ_TOPIC_NAME_MAX], key[160];
    snprintf(key, sizeof key, "%" PRId64 ":%s", workspace_id, cmd->conversation);
    st = bz_topic_name_checked(prefix, bz_topic_base(BZ_TOPIC_CRM_COMMANDS), topic, sizeof topic,
                               err);
    bz_producer *p = NULL;
    bz_kafka_settings ks = {.brokers = brokers, .client_id = "blazzctl"};
    if (st == BZ_OK)
        st = bz_producer_new(&ks, &p, err);
    bz_kafka_header headers[] = {{"event_id", event_id, strlen(event_id)},
                                 {"trace_id", event_id, strlen(event_id)}};
    if (st == BZ_OK)
        st = bz_producer_send_sync(p, topic, key, strlen(key), buf, len, headers, 2, 15000, err);
    if (p)
        bz_producer_free(p, 5000);
    free(buf);
    cmd->envelope = NULL;
    return st == BZ_OK ? st : bz_wrap(err, "publish to crm.commands");
}
