/*
 * fuzz_crm_json.c - the CRM's JSON bodies (crm_json.h), the bytes an API
 * key holder sends to POST /v1/messages and POST /v1/chats/read.
 *
 * Input: a first byte 'R' makes the rest a mark-read body, anything else a
 * send. Properties:
 *  - a refusal is BZ_ERR_INVALID with a reason and a message "field <name>:
 *    ..." (the 400 names the field), or out of memory;
 *  - an accepted body, resolved and addressed as ingest does (ids given
 *    alone get the phone or JID a lookup would find; workspace 1, the
 *    message id derived from the idempotency key), meets the contract check
 *    chat-sync applies or is refused by it the same way, so nothing the
 *    parser lets through can reach the consumer unchecked;
 *  - the addressed command packs and unpacks to the same bytes.
 * The replay pins the seeds: the well-formed examples are accepted, the
 * broken ones refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/crm.pb-c.h"
#include "core/uuid.h"
#include "crm/crm_json.h"
#include "fuzz_target.h"
#include "wa/crm_command.h"

#define WORKSPACE 1

static void check_refusal(const bz_error *err)
{
    BZ_FUZZ_CHECK(err->code == BZ_ERR_INVALID || err->code == BZ_ERR_NOMEM);
    if (err->code != BZ_ERR_INVALID)
        return;
    BZ_FUZZ_CHECK(err->reason != NULL && err->reason[0] != '\0');
    BZ_FUZZ_CHECK(strncmp(err->msg, "field ", 6) == 0 && strchr(err->msg + 6, ':') != NULL);
}

/* What crm_api.c's lookups add: the phone or JID of a recipient named by
 * id alone (any positive id exists here). */
static void resolve_like_ingest(int64_t contact_id, char **phone, char **contact_jid,
                                int64_t group_id, char **group_jid)
{
    char text[64];
    bz_error err;
    if (contact_id > 0 && !**phone && !**contact_jid) {
        snprintf(text, sizeof text, "+62812%09lld", (long long)(contact_id % 1000000000));
        BZ_FUZZ_CHECK(ing_crm_set_string(phone, text, &err) == BZ_OK);
    }
    if (group_id > 0 && !**group_jid) {
        snprintf(text, sizeof text, "1203630%011lld@g.us", (long long)(group_id % 100000000000));
        BZ_FUZZ_CHECK(ing_crm_set_string(group_jid, text, &err) == BZ_OK);
    }
}

/* Address cmd as ingest does and check it like chat-sync; 1 when it passes. */
static int check_command(Blazz__V1__CrmCommand *cmd, char *event_id, const char *conversation)
{
    Blazz__V1__Envelope env;
    bz_crm_command_address(cmd, &env, event_id, WORKSPACE, "fuzz", conversation);
    bz_error err;
    if (bz_crm_command_check(cmd, &err) != BZ_OK) {
        check_refusal(&err);
        return 0;
    }
    size_t len = blazz__v1__crm_command__get_packed_size(cmd);
    uint8_t *a = malloc(len ? len : 1), *b = NULL;
    BZ_FUZZ_CHECK(a != NULL);
    blazz__v1__crm_command__pack(cmd, a);
    Blazz__V1__CrmCommand *again = blazz__v1__crm_command__unpack(NULL, len, a);
    BZ_FUZZ_CHECK(again != NULL);
    BZ_FUZZ_CHECK(blazz__v1__crm_command__get_packed_size(again) == len);
    b = malloc(len ? len : 1);
    BZ_FUZZ_CHECK(b != NULL);
    blazz__v1__crm_command__pack(again, b);
    BZ_FUZZ_CHECK(memcmp(a, b, len) == 0);
    blazz__v1__crm_command__free_unpacked(again, NULL);
    free(a);
    free(b);
    return 1;
}

static int fuzz_send(const char *body, size_t len)
{
    Blazz__V1__SendChatMessage *s = NULL;
    bz_error err;
    if (ing_crm_json_send(body, len, NULL, "62", &s, &err) != BZ_OK) {
        check_refusal(&err);
        return BZ_FUZZ_REJECTED;
    }
    resolve_like_ingest(s->contact_id, &s->contact_phone, &s->contact_jid, s->group_id,
                        &s->group_jid);
    char message_id[BZ_UUID_STR_SIZE];
    bz_crm_message_id(WORKSPACE, s->idempotency_key, message_id);
    BZ_FUZZ_CHECK(ing_crm_set_string(&s->message_id, message_id, &err) == BZ_OK);
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_SEND;
    cmd.send = s;
    int ok = check_command(&cmd, message_id,
                           bz_crm_conversation(s->contact_phone, s->contact_jid, s->group_jid));
    blazz__v1__send_chat_message__free_unpacked(s, NULL);
    return ok ? BZ_FUZZ_ACCEPTED : BZ_FUZZ_REJECTED;
}

static int fuzz_read(const char *body, size_t len)
{
    Blazz__V1__MarkChatRead *r = NULL;
    bz_error err;
    if (ing_crm_json_read(body, len, "62", &r, &err) != BZ_OK) {
        check_refusal(&err);
        return BZ_FUZZ_REJECTED;
    }
    resolve_like_ingest(r->contact_id, &r->contact_phone, &r->contact_jid, r->group_id,
                        &r->group_jid);
    char event_id[BZ_UUID_STR_SIZE] = "00000000-0000-4000-8000-000000000001";
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_MARK_READ;
    cmd.mark_read = r;
    int ok = check_command(&cmd, event_id,
                           bz_crm_conversation(r->contact_phone, r->contact_jid, r->group_jid));
    blazz__v1__mark_chat_read__free_unpacked(r, NULL);
    return ok ? BZ_FUZZ_ACCEPTED : BZ_FUZZ_REJECTED;
}

static int fuzz_crm_json(const uint8_t *data, size_t size)
{
    if (size == 0)
        return BZ_FUZZ_REJECTED;
    /* the parsers take the body as the HTTP layer hands it: NUL-terminated */
    char *body = malloc(size);
    BZ_FUZZ_CHECK(body != NULL);
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    int outcome = data[0] == 'R' ? fuzz_read(body, size - 1) : fuzz_send(body, size - 1);
    free(body);
    return outcome;
}

static const bz_fuzz_expect expect[] = {
    {"send_text.bin", BZ_FUZZ_ACCEPTED},      {"send_phone.bin", BZ_FUZZ_ACCEPTED},
    {"send_media.bin", BZ_FUZZ_ACCEPTED},     {"send_template.bin", BZ_FUZZ_ACCEPTED},
    {"send_group.bin", BZ_FUZZ_ACCEPTED},     {"read_up_to.bin", BZ_FUZZ_ACCEPTED},
    {"read_group.bin", BZ_FUZZ_ACCEPTED},     {"send_unknown_field.bin", BZ_FUZZ_REJECTED},
    {"send_two_recipients.bin", BZ_FUZZ_REJECTED}, {"send_no_key.bin", BZ_FUZZ_REJECTED},
    {"send_not_json.bin", BZ_FUZZ_REJECTED},  {"read_bad_jid.bin", BZ_FUZZ_REJECTED},
    {"send_long_unknown_field.bin", BZ_FUZZ_REJECTED},
    {"send_reaction.bin", BZ_FUZZ_ACCEPTED},  {"send_reaction_no_target.bin", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_crm_json, expect)
