/*
 * test_crm_command.c - the contract rules of CRM commands (libs/wa/crm_command.h):
 *  - a well-formed text, media and template send and a mark-read pass;
 *  - a reaction names its target and an emoji ("" removes), nothing else;
 *  - each bad input is refused with its reason and the field named the way
 *    the HTTP API spells it;
 *  - the message id depends on the workspace and the key only, and is a
 *    canonical UUID; different workspaces never share one;
 *  - a session id is a safe file name (gateways name a session's
 *    credentials after it), and a session request with any other is
 *    refused;
 *  - a contact request creates by an E.164 phone and/or a BSUID, opting
 *    nothing out, or changes a contact by id with a name or an opt-out.
 * (A template's variables: test_wa_template_vars.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/uuid.h"
#include "wa/crm_command.h"

typedef struct send_fx {
    Blazz__V1__Envelope env;
    Blazz__V1__CrmCommand cmd;
    Blazz__V1__SendChatMessage send;
    Blazz__V1__MediaInfo media;
    Blazz__V1__TemplateMessage tpl;
    char id[BZ_UUID_STR_SIZE];
} send_fx;

static void init_send(send_fx *f)
{
    memset(f, 0, sizeof *f);
    blazz__v1__envelope__init(&f->env);
    blazz__v1__crm_command__init(&f->cmd);
    blazz__v1__send_chat_message__init(&f->send);
    blazz__v1__media_info__init(&f->media);
    blazz__v1__template_message__init(&f->tpl);
    f->env.event_id = "7f2b3c1e-1111-4222-8333-444455556666";
    f->env.workspace_id = 42;
    f->cmd.envelope = &f->env;
    f->cmd.conversation = "+6281234567890";
    f->cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_SEND;
    f->cmd.send = &f->send;
    f->send.idempotency_key = "order-17-reply";
    bz_crm_message_id(42, "order-17-reply", f->id);
    f->send.message_id = f->id;
    f->send.contact_id = 7;
    f->send.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    f->send.body = "hello";
}

/* The check's verdict: NULL when accepted, else "reason|field". */
static const char *verdict(const Blazz__V1__CrmCommand *cmd)
{
    static char out[160];
    bz_error err = {0};
    if (bz_crm_command_check(cmd, &err) == BZ_OK)
        return NULL;
    const char *field = strncmp(err.msg, "field ", 6) == 0 ? err.msg + 6 : "";
    size_t len = strcspn(field, ":");
    snprintf(out, sizeof out, "%s|%.*s", err.reason ? err.reason : "?", (int)len, field);
    return out;
}

static void well_formed_commands_pass(void **state)
{
    (void)state;
    send_fx f;
    init_send(&f);
    assert_null(verdict(&f.cmd));

    f.send.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE;
    f.send.body = "";
    f.send.media = &f.media;
    f.media.url = "https://cdn.example.com/a.jpg";
    f.media.mime_type = "image/jpeg";
    f.media.caption = "caf\xc3\xa9";
    assert_null(verdict(&f.cmd));

    f.send.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE;
    f.send.template_ = &f.tpl;
    char *params[] = {"Ann", "17"};
    f.tpl.name = "order_update";
    f.tpl.language = "en";
    f.tpl.body_params = params;
    f.tpl.n_body_params = 2;
    assert_null(verdict(&f.cmd));

    Blazz__V1__MarkChatRead read = BLAZZ__V1__MARK_CHAT_READ__INIT;
    read.group_jid = "120363025555555555@g.us";
    f.cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_MARK_READ;
    f.cmd.mark_read = &read;
    assert_null(verdict(&f.cmd));
}

static void bad_sends_name_their_field(void **state)
{
    (void)state;
    send_fx f;
    init_send(&f);
    f.send.idempotency_key = "";
    assert_string_equal(verdict(&f.cmd), "missing_field|idempotency_key");

    init_send(&f);
    f.send.message_id = "7f2b3c1e-1111-4222-8333-444455556666";
    assert_string_equal(verdict(&f.cmd), "invalid_field|message_id");

    init_send(&f);
    f.send.contact_id = 0;
    assert_string_equal(verdict(&f.cmd), "missing_field|contact_id");

    init_send(&f);
    f.send.group_id = 3;
    assert_string_equal(verdict(&f.cmd), "invalid_field|group_id");

    /* as ingest builds it: no recipient or both kinds leave the record
     * without a conversation, which is no field of the request; the
     * recipient is named, by the field the request gave (issue 54) */
    init_send(&f);
    f.cmd.conversation = "";
    f.send.contact_id = 0;
    assert_string_equal(verdict(&f.cmd), "missing_field|contact_id");
    init_send(&f);
    f.cmd.conversation = "";
    f.send.group_jid = "120363025555555555@g.us";
    assert_string_equal(verdict(&f.cmd), "invalid_field|group_jid");

    init_send(&f);
    f.send.body = "";
    assert_string_equal(verdict(&f.cmd), "missing_field|body");

    init_send(&f);
    static char long_text[BZ_CRM_TEXT_MAX_CHARS + 2];
    memset(long_text, 'x', sizeof long_text - 1);
    f.send.body = long_text;
    assert_string_equal(verdict(&f.cmd), "invalid_field|body");
    long_text[BZ_CRM_TEXT_MAX_CHARS] = '\0';
    assert_null(verdict(&f.cmd));

    init_send(&f);
    f.send.body = "bad \xc3";
    assert_string_equal(verdict(&f.cmd), "invalid_field|body");

    init_send(&f);
    f.send.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_DOCUMENT;
    assert_string_equal(verdict(&f.cmd), "missing_field|media");
    f.send.media = &f.media;
    f.media.mime_type = "application/pdf";
    assert_string_equal(verdict(&f.cmd), "missing_field|media.url");
    f.media.url = "ftp://x/y";
    assert_string_equal(verdict(&f.cmd), "invalid_field|media.url");
    f.media.url = "https://cdn.example.com/y";
    f.media.media_id = "12345";
    assert_string_equal(verdict(&f.cmd), "invalid_field|media.url");
    f.media.media_id = "";
    f.media.mime_type = "pdf";
    assert_string_equal(verdict(&f.cmd), "invalid_field|media.mime_type");

    init_send(&f);
    f.send.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE;
    assert_string_equal(verdict(&f.cmd), "missing_field|template.name");
    f.send.template_ = &f.tpl;
    f.tpl.name = "Order Update";
    assert_string_equal(verdict(&f.cmd), "invalid_field|template.name");
    f.tpl.name = "order_update";
    char *params[] = {"Ann", ""};
    f.tpl.body_params = params;
    f.tpl.n_body_params = 2;
    assert_string_equal(verdict(&f.cmd), "missing_field|template.body_params[1]");

    init_send(&f);
    f.send.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION;
    assert_string_equal(verdict(&f.cmd), "invalid_field|message_type"); /* a body too */
    f.send.body = "";
    assert_string_equal(verdict(&f.cmd), "missing_field|target_wam_id");
    f.send.target_wam_id = "wamid.T1";
    f.send.emoji = "\xf0\x9f\x91\x8d";
    assert_null(verdict(&f.cmd));
    f.send.emoji = ""; /* removes the reaction */
    assert_null(verdict(&f.cmd));
    f.send.emoji = "abcdefghijklmnopq";
    assert_string_equal(verdict(&f.cmd), "invalid_field|emoji");
    init_send(&f);
    f.send.emoji = "\xf0\x9f\x91\x8d";
    assert_string_equal(verdict(&f.cmd), "invalid_field|emoji");

    init_send(&f);
    f.send.contact_id = 0;
    f.send.group_jid = "+6281234567890";
    assert_string_equal(verdict(&f.cmd), "invalid_field|group_jid");

    init_send(&f);
    f.env.workspace_id = 0;
    assert_string_equal(verdict(&f.cmd), "missing_workspace|");
    init_send(&f);
    f.cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND__NOT_SET;
    assert_string_equal(verdict(&f.cmd), "unknown_command|");
}

/* The verdict on a document send whose media.url is url. */
static const char *verdict_on_document_at(const char *url)
{
    static send_fx f;
    init_send(&f);
    f.send.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_DOCUMENT;
    f.send.media = &f.media;
    f.media.mime_type = "application/pdf";
    f.media.url = (char *)url;
    return verdict(&f.cmd);
}

/* Issue 32: a gateway that downloads media.url fetched any host: only public
 * DNS names pass, as docs/openapi.yaml's pattern says. */
static void media_comes_from_public_hosts_only(void **state)
{
    (void)state;
    static const char *const inside[] = {
        "http://127.0.0.1/a.pdf",         "https://localhost:8080/a.pdf",
        "http://LOCALHOST./a.pdf",        "http://admin.localhost/a.pdf",
        "http://169.254.169.254/latest/", "http://10.0.0.7/a.pdf",
        "http://[::1]:80/a.pdf",          "http://[::ffff:192.168.1.1]/a.pdf",
        "http://2130706433/a.pdf",        "http://0x7f.1/a.pdf",
        "https://user@127.0.0.1/a.pdf",   "https://cdn.example.com@10.1.2.3/a.pdf",
        "http:///a.pdf",                  "https://93.184.216.34/a.pdf",
        "http://intranet/a.pdf",          "http://a_b.example.com/a.pdf",
        "https://example.com./a.pdf",     "https://cdn.example.1/a.pdf",
        "https://cdn..example.com/a.pdf", "https://cdn.example.com:123456/a.pdf",
    };
    static const char *const outside[] = {"https://cdn.example.com/a.pdf",
                                          "https://cdn.example.com:8443/a.pdf?x=1&y=@2",
                                          "https://a-b.example.co.id#top",
                                          "http://localhost.example.com"};
    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++) {
        const char *got = verdict_on_document_at(inside[i]);
        if (!got || strcmp(got, "invalid_field|media.url") != 0)
            fail_msg("media.url %s: %s", inside[i], got ? got : "accepted");
    }
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        const char *got = verdict_on_document_at(outside[i]);
        if (got)
            fail_msg("media.url %s refused: %s", outside[i], got);
    }
}

/* An interactive message: its kind, its body and its kind's parts only,
 * to a contact; Meta's own limits are meta-sender's tests'. */
static void interactive_messages_name_their_field(void **state)
{
    (void)state;
    send_fx f;
    Blazz__V1__InteractiveRow row = BLAZZ__V1__INTERACTIVE_ROW__INIT, *rows[] = {&row};
    Blazz__V1__InteractiveSection sec = BLAZZ__V1__INTERACTIVE_SECTION__INIT, *secs[] = {&sec};
    Blazz__V1__InteractiveMessage in = BLAZZ__V1__INTERACTIVE_MESSAGE__INIT;
    row.id = "r1";
    row.title = "Besok";
    sec.rows = rows;
    sec.n_rows = 1;
    in.kind = BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LIST;
    in.button = "Pilih";
    in.sections = secs;
    in.n_sections = 1;
    init_send(&f);
    f.send.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE;
    f.send.interactive = &in;
    assert_null(verdict(&f.cmd));

    f.send.body = "";
    assert_string_equal(verdict(&f.cmd), "missing_field|body");
    f.send.body = "hello";
    f.send.interactive = NULL;
    assert_string_equal(verdict(&f.cmd), "missing_field|interactive.type");
    f.send.interactive = &in;
    f.send.contact_id = 0;
    f.send.group_id = 3;
    assert_string_equal(verdict(&f.cmd), "invalid_field|message_type");
    f.send.contact_id = 7;
    f.send.group_id = 0;
    f.send.media = &f.media;
    assert_string_equal(verdict(&f.cmd), "invalid_field|media");
    f.send.media = NULL;
    row.id = "";
    assert_string_equal(verdict(&f.cmd), "missing_field|interactive.sections[0].rows[0].id");
    row.id = "r1";
    sec.n_rows = 0;
    assert_string_equal(verdict(&f.cmd), "missing_field|interactive.sections[0].rows");
    sec.n_rows = 1;
    row.title = "\xc3\x28";
    assert_string_equal(verdict(&f.cmd), "invalid_field|interactive.sections[0].rows[0].title");
    row.title = "Besok";

    in.kind = BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_CTA_URL;
    assert_string_equal(verdict(&f.cmd), "invalid_field|interactive.button");
    in.button = "";
    assert_string_equal(verdict(&f.cmd), "invalid_field|interactive.sections");
    in.n_sections = 0;
    assert_string_equal(verdict(&f.cmd), "missing_field|interactive.url");
    in.url = "https://example.com/jadwal";
    assert_string_equal(verdict(&f.cmd), "missing_field|interactive.display_text");
    in.display_text = "Lihat";
    assert_null(verdict(&f.cmd));
    in.url = "ftp://example.com/x";
    assert_string_equal(verdict(&f.cmd), "invalid_field|interactive.url");
    in.url = "https://example.com/jadwal";

    in.kind = BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LOCATION_REQUEST;
    assert_string_equal(verdict(&f.cmd), "invalid_field|interactive.url");
    in.url = in.display_text = "";
    assert_null(verdict(&f.cmd));

    in.flow_id = "123";
    assert_string_equal(verdict(&f.cmd), "invalid_field|interactive.flow_id");

    /* a flow: by id or by name, its button, navigating with a screen and
     * data, or exchanging data first without them */
    in.kind = BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_FLOW;
    in.flow_cta = "Pesan";
    assert_null(verdict(&f.cmd));
    in.flow_name = "pesanan";
    assert_string_equal(verdict(&f.cmd), "invalid_field|interactive.flow_id");
    in.flow_id = "";
    assert_null(verdict(&f.cmd));
    in.flow_name = "";
    assert_string_equal(verdict(&f.cmd), "missing_field|interactive.flow_id");
    in.flow_id = "123";
    in.flow_cta = "";
    assert_string_equal(verdict(&f.cmd), "missing_field|interactive.flow_cta");
    in.flow_cta = "Pesan";
    in.flow_action = "jump";
    assert_string_equal(verdict(&f.cmd), "invalid_field|interactive.flow_action");
    in.flow_action = "navigate";
    in.flow_screen = "ORDER";
    in.flow_data_json = "{\"a\":1}";
    assert_null(verdict(&f.cmd));
    in.flow_screen = "";
    assert_string_equal(verdict(&f.cmd), "missing_field|interactive.flow_screen");
    in.flow_screen = "ORDER";
    in.flow_data_json = "{}";
    assert_string_equal(verdict(&f.cmd), "invalid_field|interactive.flow_data");
    in.flow_data_json = "[1]";
    assert_string_equal(verdict(&f.cmd), "invalid_field|interactive.flow_data");
    in.flow_data_json = "";
    in.flow_action = "data_exchange";
    assert_string_equal(verdict(&f.cmd), "invalid_field|interactive.flow_screen");
    in.flow_screen = "";
    assert_null(verdict(&f.cmd));

    /* only an interactive message carries one */
    f.send.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    assert_string_equal(verdict(&f.cmd), "invalid_field|interactive");
}

/* Issue 49: a session id was any printable ASCII, so "../../tmp/x" was
 * one, and gateways keep a session's credentials in <storage>/<session id>. */
static void session_ids_are_safe_file_names(void **state)
{
    (void)state;
    static const char *const safe[] = {
        "wa-7f2b3c1e-1111-4222-8333-444455556666", "ws12-sales-2", "first.itest-wh-ses-1.",
        "webjs_12_7", "106540352242922", "a", "a.b.c", "Z-_.9"};
    static const char *const unsafe[] = {
        "",     "../x",   "..",    ".",         ".hidden", "x/y",   "a..b",      "x..",
        "/etc", "a\\b",   "a b",   "a:b",       "1@c.us",  "caf\xc3\xa9", "a\tb", "~x",
        "a%2Fb", "a\nb", "-*", "x\x7f"};
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
        if (!bz_session_id_valid(safe[i]))
            fail_msg("session id \"%s\" refused", safe[i]);
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++)
        if (bz_session_id_valid(unsafe[i]))
            fail_msg("session id \"%s\" accepted", unsafe[i]);
    assert_false(bz_session_id_valid(NULL));
    char longest[BZ_SESSION_ID_MAX + 2];
    memset(longest, 'a', sizeof longest - 1);
    longest[BZ_SESSION_ID_MAX + 1] = '\0';
    assert_false(bz_session_id_valid(longest));
    longest[BZ_SESSION_ID_MAX] = '\0';
    assert_true(bz_session_id_valid(longest));
}

/* A SessionRequest on crm.commands (chat-sync, blazzctl) is held to the
 * same rule as the CRM API's. */
static void session_requests_name_safe_ids(void **state)
{
    (void)state;
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    Blazz__V1__SessionRequest r = BLAZZ__V1__SESSION_REQUEST__INIT;
    env.event_id = "7f2b3c1e-1111-4222-8333-444455556666";
    env.workspace_id = 42;
    env.session_id = "ws12-sales-2";
    cmd.envelope = &env;
    cmd.conversation = BZ_CRM_SESSION_CONVERSATION;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_SESSION;
    cmd.session = &r;
    r.action = BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_CREATE;
    assert_null(verdict(&cmd));
    static const char *const unsafe[] = {"../x", ".x", "a/b"};
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++) {
        env.session_id = (char *)unsafe[i];
        r.action = i % 2 ? BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_LOGOUT
                         : BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_CREATE;
        const char *got = verdict(&cmd);
        if (!got || strcmp(got, "invalid_field|session_id") != 0)
            fail_msg("session request for \"%s\": %s", unsafe[i], got ? got : "accepted");
    }
}

static void contact_requests_name_the_contact_and_a_change(void **state)
{
    (void)state;
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    Blazz__V1__ContactRequest r = BLAZZ__V1__CONTACT_REQUEST__INIT;
    env.event_id = "7f2b3c1e-1111-4222-8333-444455556666";
    env.workspace_id = 42;
    cmd.envelope = &env;
    cmd.conversation = "+6281234567890";
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_CONTACT;
    cmd.contact = &r;
    r.phone = "+6281234567890";
    r.name = "Budi";
    assert_null(verdict(&cmd));
    r.bsuid = "US.13491208655302741918";
    assert_null(verdict(&cmd));
    r.phone = "";
    assert_null(verdict(&cmd));
    r.bsuid = "us.1";
    assert_string_equal(verdict(&cmd), "invalid_field|bsuid");
    r.bsuid = "";
    assert_string_equal(verdict(&cmd), "missing_field|phone");
    r.phone = "6281234567890";
    assert_string_equal(verdict(&cmd), "invalid_field|phone");
    r.phone = "+6281234567890";
    r.opt_out = BLAZZ__V1__CONTACT_OPT_OUT__CONTACT_OPT_OUT_OUT;
    assert_string_equal(verdict(&cmd), "invalid_field|opted_out");
    /* a change: the contact by id, and something to change */
    r.contact_id = 7;
    r.phone = "";
    assert_null(verdict(&cmd));
    r.opt_out = BLAZZ__V1__CONTACT_OPT_OUT__CONTACT_OPT_OUT_UNCHANGED;
    assert_null(verdict(&cmd));
    r.name = "";
    assert_string_equal(verdict(&cmd), "missing_field|name");
    r.opt_out = (Blazz__V1__ContactOptOut)9;
    assert_string_equal(verdict(&cmd), "invalid_field|opted_out");
    r.opt_out = BLAZZ__V1__CONTACT_OPT_OUT__CONTACT_OPT_OUT_IN;
    r.contact_id = -1;
    assert_string_equal(verdict(&cmd), "invalid_field|contact_id");
    /* a merge: two contacts by id, not one twice, nothing else */
    r.opt_out = BLAZZ__V1__CONTACT_OPT_OUT__CONTACT_OPT_OUT_UNCHANGED;
    r.contact_id = 7;
    r.merged_contact_id = 8;
    assert_null(verdict(&cmd));
    r.name = "Budi";
    assert_string_equal(verdict(&cmd), "invalid_field|name");
    r.name = "";
    r.merged_contact_id = 7;
    assert_string_equal(verdict(&cmd), "invalid_field|merged_contact_id");
    r.merged_contact_id = -8;
    assert_string_equal(verdict(&cmd), "invalid_field|merged_contact_id");
    r.merged_contact_id = 8;
    r.contact_id = 0;
    assert_string_equal(verdict(&cmd), "missing_field|contact_id");
}

static void message_id_is_the_workspace_and_key(void **state)
{
    (void)state;
    char a[BZ_UUID_STR_SIZE], b[BZ_UUID_STR_SIZE], c[BZ_UUID_STR_SIZE], d[BZ_UUID_STR_SIZE];
    bz_crm_message_id(42, "k1", a);
    bz_crm_message_id(42, "k1", b);
    bz_crm_message_id(43, "k1", c);
    bz_crm_message_id(4, "2k1", d);
    assert_true(bz_uuid_is_valid(a));
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
    assert_int_equal(a[14], '8'); /* version 8 */
    assert_true(strchr("89ab", a[19]) != NULL);
}

static void conversation_prefers_phone_then_jid(void **state)
{
    (void)state;
    assert_string_equal(bz_crm_conversation("+62812", "x@lid", ""), "+62812");
    assert_string_equal(bz_crm_conversation("", "x@lid", ""), "x@lid");
    assert_string_equal(bz_crm_conversation("", "", "1@g.us"), "1@g.us");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(well_formed_commands_pass),
        cmocka_unit_test(bad_sends_name_their_field),
        cmocka_unit_test(media_comes_from_public_hosts_only),
        cmocka_unit_test(interactive_messages_name_their_field),
        cmocka_unit_test(session_ids_are_safe_file_names),
        cmocka_unit_test(session_requests_name_safe_ids),
        cmocka_unit_test(contact_requests_name_the_contact_and_a_change),
        cmocka_unit_test(message_id_is_the_workspace_and_key),
        cmocka_unit_test(conversation_prefers_phone_then_jid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
