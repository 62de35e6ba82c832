/*
 * test_meta_graph.c - meta-sender's pure parts: the Cloud API request body
 * built from a SendMessage (graph_request.c) and Meta's limits on it
 * (wa/meta_limits.h), the verdict on Meta's answers
 * by documented error code (graph_outcome.c), and an account's pace
 * (pacing.c: never more than the limit in any window, throttling halves
 * it and it recovers), and the request's URL (jobs.c: only a phone number
 * id of digits goes into its path, issue 32).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "active_sender.h"
#include "meta_sender.h"

static json_t *body_of(const Blazz__V1__SendMessage *m)
{
    char *text = NULL;
    bz_error err;
    bz_error_clear(&err);
    assert_int_equal(ms_graph_body(m, &text, &err), BZ_OK);
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(doc);
    return doc;
}

static const char *at(json_t *doc, const char *path)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", path);
    json_t *cur = doc;
    for (char *part = strtok(copy, "."); part && cur; part = strtok(NULL, "."))
        cur = json_is_array(cur) ? json_array_get(cur, strtoul(part, NULL, 10))
                                 : json_object_get(cur, part);
    return json_is_string(cur) ? json_string_value(cur) : json_is_true(cur) ? "true"
                                                     : json_is_false(cur) ? "false"
                                                                          : NULL;
}

static Blazz__V1__SendMessage message(Blazz__V1__MessageType type, const char *body)
{
    Blazz__V1__SendMessage m = BLAZZ__V1__SEND_MESSAGE__INIT;
    m.idempotency_key = "k1";
    m.client_reference = "0190a1b2-0000-7000-8000-000000000001";
    m.to_phone = "+6281300000001";
    m.message_type = type;
    m.body = (char *)body;
    return m;
}

static void text_with_link_reply_and_reference(void **state)
{
    (void)state;
    Blazz__V1__SendMessage m = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT,
                                       "see https://example.com");
    m.quoted_wam_id = "wamid.A";
    json_t *doc = body_of(&m);
    assert_string_equal(at(doc, "messaging_product"), "whatsapp");
    assert_string_equal(at(doc, "recipient_type"), "individual");
    assert_string_equal(at(doc, "to"), "6281300000001");
    assert_string_equal(at(doc, "type"), "text");
    assert_string_equal(at(doc, "text.body"), "see https://example.com");
    assert_string_equal(at(doc, "text.preview_url"), "true");
    assert_string_equal(at(doc, "context.message_id"), "wamid.A");
    assert_string_equal(at(doc, "biz_opaque_callback_data"), m.client_reference);
    json_decref(doc);
    m.body = "no link";
    m.quoted_wam_id = "";
    doc = body_of(&m);
    assert_string_equal(at(doc, "text.preview_url"), "false");
    assert_null(json_object_get(doc, "context"));
    json_decref(doc);
}

static void template_with_header_media_body_and_buttons(void **state)
{
    (void)state;
    Blazz__V1__SendMessage m = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE, "");
    Blazz__V1__TemplateMessage t = BLAZZ__V1__TEMPLATE_MESSAGE__INIT;
    Blazz__V1__MediaInfo header = BLAZZ__V1__MEDIA_INFO__INIT;
    char *body_params[] = {"Ann", "42"}, *buttons[] = {"yes", "no"};
    header.url = "https://example.com/h.png";
    header.mime_type = "image/png";
    t.name = "promo";
    t.language = "id";
    t.header_media = &header;
    t.body_params = body_params;
    t.n_body_params = 2;
    t.button_params = buttons;
    t.n_button_params = 2;
    m.template_ = &t;
    json_t *doc = body_of(&m);
    assert_string_equal(at(doc, "type"), "template");
    assert_string_equal(at(doc, "template.name"), "promo");
    assert_string_equal(at(doc, "template.language.code"), "id");
    assert_string_equal(at(doc, "template.components.0.type"), "header");
    assert_string_equal(at(doc, "template.components.0.parameters.0.type"), "image");
    assert_string_equal(at(doc, "template.components.0.parameters.0.image.link"), header.url);
    assert_string_equal(at(doc, "template.components.1.type"), "body");
    assert_string_equal(at(doc, "template.components.1.parameters.1.text"), "42");
    assert_string_equal(at(doc, "template.components.2.sub_type"), "quick_reply");
    assert_string_equal(at(doc, "template.components.3.index"), "1");
    assert_string_equal(at(doc, "template.components.3.parameters.0.payload"), "no");
    json_decref(doc);
    t.header_media = NULL;
    char *header_params[] = {"Halo"};
    t.header_params = header_params;
    t.n_header_params = 1;
    doc = body_of(&m);
    assert_string_equal(at(doc, "template.components.0.parameters.0.text"), "Halo");
    assert_null(at(doc, "template.components.1.parameters.0.parameter_name"));
    json_decref(doc);
    /* a template of named variables: each parameter names the one it fills */
    char *names[] = {"first_name", "order_id"};
    t.body_param_names = names;
    t.n_body_param_names = 2;
    doc = body_of(&m);
    assert_string_equal(at(doc, "template.components.1.type"), "body");
    assert_string_equal(at(doc, "template.components.1.parameters.0.parameter_name"), "first_name");
    assert_string_equal(at(doc, "template.components.1.parameters.0.text"), "Ann");
    assert_string_equal(at(doc, "template.components.1.parameters.1.parameter_name"), "order_id");
    assert_string_equal(at(doc, "template.components.1.parameters.1.text"), "42");
    json_decref(doc);
}

static void media_reaction_and_read(void **state)
{
    (void)state;
    Blazz__V1__SendMessage m = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_DOCUMENT, "");
    Blazz__V1__MediaInfo media = BLAZZ__V1__MEDIA_INFO__INIT;
    media.media_id = "1234";
    media.caption = "invoice";
    media.filename = "inv.pdf";
    m.media = &media;
    json_t *doc = body_of(&m);
    assert_string_equal(at(doc, "type"), "document");
    assert_string_equal(at(doc, "document.id"), "1234");
    assert_string_equal(at(doc, "document.caption"), "invoice");
    assert_string_equal(at(doc, "document.filename"), "inv.pdf");
    json_decref(doc);
    m.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE;
    media.caption = "";
    doc = body_of(&m);
    assert_string_equal(at(doc, "type"), "audio");
    assert_null(at(doc, "audio.caption"));
    json_decref(doc);

    Blazz__V1__SendMessage r = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION, "👍");
    r.quoted_wam_id = "wamid.B";
    doc = body_of(&r);
    assert_string_equal(at(doc, "reaction.message_id"), "wamid.B");
    assert_string_equal(at(doc, "reaction.emoji"), "👍");
    assert_null(json_object_get(doc, "context"));
    json_decref(doc);

    Blazz__V1__SendMessage read = BLAZZ__V1__SEND_MESSAGE__INIT;
    char *ids[] = {"wamid.old", "wamid.new"};
    read.kind = BLAZZ__V1__SEND_KIND__SEND_KIND_MARK_READ;
    read.idempotency_key = "r1";
    read.read_wam_ids = ids;
    read.n_read_wam_ids = 2;
    doc = body_of(&read);
    assert_string_equal(at(doc, "status"), "read");
    assert_string_equal(at(doc, "message_id"), "wamid.new");
    assert_null(json_object_get(doc, "to"));
    json_decref(doc);
}

static void campaign_header_and_buttons(void **state)
{
    (void)state;
    Blazz__V1__SendMessage m = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT, "Promo");
    Blazz__V1__MediaInfo header = BLAZZ__V1__MEDIA_INFO__INIT;
    char *buttons[] = {"Ya", "Tidak", "Nanti", "Lain"};
    header.url = "https://example.com/p.jpg";
    header.mime_type = "image/jpeg";
    m.header_media = &header;
    json_t *doc = body_of(&m);
    assert_string_equal(at(doc, "type"), "image");
    assert_string_equal(at(doc, "image.link"), header.url);
    assert_string_equal(at(doc, "image.caption"), "Promo");
    json_decref(doc);
    m.buttons = buttons;
    m.n_buttons = 3;
    m.footer = "stop: STOP";
    doc = body_of(&m);
    assert_string_equal(at(doc, "type"), "interactive");
    assert_string_equal(at(doc, "interactive.type"), "button");
    assert_string_equal(at(doc, "interactive.body.text"), "Promo");
    assert_string_equal(at(doc, "interactive.footer.text"), "stop: STOP");
    assert_string_equal(at(doc, "interactive.header.image.link"), header.url);
    assert_string_equal(at(doc, "interactive.action.buttons.2.reply.title"), "Nanti");
    json_decref(doc);
    /* a text header goes as the header when there is no media */
    m.header_media = NULL;
    m.header_text = "Promo Juni";
    doc = body_of(&m);
    assert_string_equal(at(doc, "interactive.header.type"), "text");
    assert_string_equal(at(doc, "interactive.header.text"), "Promo Juni");
    json_decref(doc);
}

/* What Meta would refuse, or a request would leave out, is refused before
 * it is built: nothing of a message is silently dropped. */
/* Meta's BSUID page: `to` addresses a phone, `recipient` a business-scoped
 * user id, and `to` wins when both are given; a contact known only by its
 * BSUID goes by `recipient`, one with a phone by `to` alone. */
static void a_bsuid_only_contact_is_addressed_by_recipient(void **state)
{
    (void)state;
    Blazz__V1__SendMessage m = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT, "hi");
    m.to_phone = "";
    m.to_bsuid = "US.13491208655302741918";
    json_t *doc = body_of(&m);
    assert_string_equal(at(doc, "recipient"), "US.13491208655302741918");
    assert_null(json_object_get(doc, "to"));
    assert_string_equal(at(doc, "recipient_type"), "individual");
    assert_string_equal(at(doc, "text.body"), "hi");
    json_decref(doc);
    m.to_phone = "+6281300000001";
    doc = body_of(&m);
    assert_string_equal(at(doc, "to"), "6281300000001");
    assert_null(json_object_get(doc, "recipient"));
    json_decref(doc);
    /* a template goes the same way (Meta takes templates to BSUIDs) */
    m = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE, "");
    Blazz__V1__TemplateMessage tpl = BLAZZ__V1__TEMPLATE_MESSAGE__INIT;
    tpl.name = "promo";
    tpl.language = "id";
    m.template_ = &tpl;
    m.to_phone = "";
    m.to_bsuid = "US.13491208655302741918";
    doc = body_of(&m);
    assert_string_equal(at(doc, "recipient"), "US.13491208655302741918");
    assert_null(json_object_get(doc, "to"));
    assert_string_equal(at(doc, "template.name"), "promo");
    json_decref(doc);
}

/* Meta's group messaging page: recipient_type group, the group id as to. */
static void a_meta_group_is_addressed_as_one(void **state)
{
    (void)state;
    Blazz__V1__SendMessage m = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT, "hi all");
    m.to_phone = "";
    m.to_jid = "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD";
    json_t *doc = body_of(&m);
    assert_string_equal(at(doc, "recipient_type"), "group");
    assert_string_equal(at(doc, "to"), m.to_jid);
    assert_null(json_object_get(doc, "recipient"));
    assert_string_equal(at(doc, "text.body"), "hi all");
    json_decref(doc);
    /* a whatsapp-web.js JID is no Meta group: nothing to address */
    m.to_jid = "120363025555555555@g.us";
    char *body = NULL;
    bz_error err;
    assert_int_equal(ms_graph_body(&m, &body, &err), BZ_ERR_INVALID);
    assert_null(body);
    /* buttons make an interactive message, which a group does not take */
    m.to_jid = "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD";
    char *buttons[] = {"Yes", "No"};
    m.buttons = buttons;
    m.n_buttons = 2;
    assert_int_equal(ms_graph_body(&m, &body, &err), BZ_ERR_INVALID);
    assert_string_equal(err.reason, "provider_limit");
    assert_non_null(strstr(err.msg, "takes no interactive message"));
}

/* An agent's list of two sections, as Meta's list message page shows it. */
typedef struct list_fx {
    Blazz__V1__InteractiveRow rows[11];
    Blazz__V1__InteractiveRow *first[11], *second[1];
    Blazz__V1__InteractiveSection sections[2];
    Blazz__V1__InteractiveSection *all[2];
    Blazz__V1__InteractiveMessage in;
} list_fx;

static void list_init(list_fx *f)
{
    static const char *const ids[] = {"r0", "r1", "r2", "r3", "r4", "r5",
                                      "r6", "r7", "r8", "r9", "r10"};
    blazz__v1__interactive_message__init(&f->in);
    for (int i = 0; i < 11; i++) {
        blazz__v1__interactive_row__init(&f->rows[i]);
        f->rows[i].id = (char *)ids[i];
        f->rows[i].title = "Kirim besok";
        f->first[i] = &f->rows[i];
    }
    f->rows[0].description = "1-2 hari kerja";
    f->second[0] = &f->rows[10];
    for (int i = 0; i < 2; i++) {
        blazz__v1__interactive_section__init(&f->sections[i]);
        f->all[i] = &f->sections[i];
    }
    f->sections[0].title = "Kurir";
    f->sections[0].rows = f->first;
    f->sections[0].n_rows = 2;
    f->sections[1].title = "Ambil sendiri";
    f->sections[1].rows = f->second;
    f->sections[1].n_rows = 1;
    f->in.kind = BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LIST;
    f->in.button = "Pilih pengiriman";
    f->in.header_text = "Pengiriman";
    f->in.footer = "Toko Budi";
    f->in.sections = f->all;
    f->in.n_sections = 2;
}

static void refused_naming(const Blazz__V1__SendMessage *m, const char *reason, const char *has)
{
    char *text = NULL;
    bz_error err;
    assert_int_equal(ms_graph_body(m, &text, &err), BZ_ERR_INVALID);
    assert_null(text);
    assert_string_equal(err.reason, reason);
    if (!strstr(err.msg, has))
        fail_msg("refusal \"%s\" does not say \"%s\"", err.msg, has);
}

/* Meta's list, CTA URL button and location request pages: each request as
 * the page shows it. */
static void interactive_list_url_button_and_location_request(void **state)
{
    (void)state;
    list_fx f;
    list_init(&f);
    Blazz__V1__SendMessage m =
        message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE, "Mau dikirim bagaimana?");
    m.interactive = &f.in;
    json_t *doc = body_of(&m);
    assert_string_equal(at(doc, "type"), "interactive");
    assert_string_equal(at(doc, "interactive.type"), "list");
    assert_string_equal(at(doc, "interactive.header.type"), "text");
    assert_string_equal(at(doc, "interactive.header.text"), "Pengiriman");
    assert_string_equal(at(doc, "interactive.body.text"), "Mau dikirim bagaimana?");
    assert_string_equal(at(doc, "interactive.footer.text"), "Toko Budi");
    assert_string_equal(at(doc, "interactive.action.button"), "Pilih pengiriman");
    assert_string_equal(at(doc, "interactive.action.sections.0.title"), "Kurir");
    assert_string_equal(at(doc, "interactive.action.sections.0.rows.0.id"), "r0");
    assert_string_equal(at(doc, "interactive.action.sections.0.rows.0.description"),
                        "1-2 hari kerja");
    assert_null(at(doc, "interactive.action.sections.0.rows.1.description"));
    assert_string_equal(at(doc, "interactive.action.sections.1.rows.0.id"), "r10");
    assert_string_equal(at(doc, "biz_opaque_callback_data"), m.client_reference);
    json_decref(doc);

    Blazz__V1__InteractiveMessage cta = BLAZZ__V1__INTERACTIVE_MESSAGE__INIT;
    cta.kind = BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_CTA_URL;
    cta.display_text = "Lihat jadwal";
    cta.url = "https://example.com/jadwal?id=7";
    m.interactive = &cta;
    doc = body_of(&m);
    assert_string_equal(at(doc, "interactive.type"), "cta_url");
    assert_string_equal(at(doc, "interactive.action.name"), "cta_url");
    assert_string_equal(at(doc, "interactive.action.parameters.display_text"), "Lihat jadwal");
    assert_string_equal(at(doc, "interactive.action.parameters.url"), cta.url);
    assert_null(json_object_get(json_object_get(doc, "interactive"), "header"));
    json_decref(doc);

    Blazz__V1__InteractiveMessage where = BLAZZ__V1__INTERACTIVE_MESSAGE__INIT;
    where.kind = BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LOCATION_REQUEST;
    m.interactive = &where;
    doc = body_of(&m);
    assert_string_equal(at(doc, "interactive.type"), "location_request_message");
    assert_string_equal(at(doc, "interactive.body.text"), "Mau dikirim bagaimana?");
    assert_string_equal(at(doc, "interactive.action.name"), "send_location");
    json_decref(doc);
}

/* Meta's flow messages page: version 3, the flow by id or by name, the
 * first screen and its data only for a flow that navigates. */
static void interactive_flow(void **state)
{
    (void)state;
    Blazz__V1__InteractiveMessage flow = BLAZZ__V1__INTERACTIVE_MESSAGE__INIT;
    flow.kind = BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_FLOW;
    flow.flow_id = "1234567890";
    flow.flow_cta = "Pesan sekarang";
    flow.flow_token = "order-17";
    flow.flow_action = "navigate";
    flow.flow_screen = "ORDER";
    flow.flow_data_json = "{\"product\":\"Kopi\",\"price\":100}";
    flow.header_text = "Pesanan";
    Blazz__V1__SendMessage m =
        message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE, "Isi pesanan Anda");
    m.interactive = &flow;
    json_t *doc = body_of(&m);
    assert_string_equal(at(doc, "interactive.type"), "flow");
    assert_string_equal(at(doc, "interactive.header.text"), "Pesanan");
    assert_string_equal(at(doc, "interactive.body.text"), "Isi pesanan Anda");
    assert_string_equal(at(doc, "interactive.action.name"), "flow");
    json_t *p = json_object_get(json_object_get(json_object_get(doc, "interactive"), "action"),
                                "parameters");
    assert_string_equal(at(p, "flow_message_version"), "3");
    assert_string_equal(at(p, "flow_id"), "1234567890");
    assert_null(json_object_get(p, "flow_name"));
    assert_string_equal(at(p, "flow_cta"), "Pesan sekarang");
    assert_string_equal(at(p, "flow_token"), "order-17");
    assert_string_equal(at(p, "flow_action"), "navigate");
    assert_string_equal(at(p, "flow_action_payload.screen"), "ORDER");
    assert_string_equal(at(p, "flow_action_payload.data.product"), "Kopi");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(p, "flow_action_payload"), "data"),
                         "price")),
                     100);
    assert_null(json_object_get(p, "mode"));
    json_decref(doc);

    /* by name, a draft, data exchanged first: no payload, no token given */
    flow.flow_id = "";
    flow.flow_name = "pesanan_kopi";
    flow.flow_token = "";
    flow.flow_action = "data_exchange";
    flow.flow_screen = "";
    flow.flow_data_json = "";
    flow.flow_draft = 1;
    doc = body_of(&m);
    p = json_object_get(json_object_get(json_object_get(doc, "interactive"), "action"),
                        "parameters");
    assert_string_equal(at(p, "flow_name"), "pesanan_kopi");
    assert_null(json_object_get(p, "flow_id"));
    assert_null(json_object_get(p, "flow_token"));
    assert_null(json_object_get(p, "flow_action_payload"));
    assert_string_equal(at(p, "mode"), "draft");
    json_decref(doc);

    flow.flow_cta = "Pesan kopi dan kue untuk besok";
    json_decref(body_of(&m)); /* 30 characters: as Meta's page advises */
    flow.flow_cta = "Pesan kopi dan kue untuk besok!";
    refused_naming(&m, "provider_limit", "field interactive.flow_cta: 31 characters");
}

/* Meta's limits on each kind, named by the field as the API spells it. */
static void interactive_over_meta_limits_is_refused(void **state)
{
    (void)state;
    list_fx f;
    list_init(&f);
    Blazz__V1__SendMessage m =
        message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE, "Mau dikirim bagaimana?");
    m.interactive = &f.in;
    f.sections[0].n_rows = 10; /* 11 rows in all */
    refused_naming(&m, "provider_limit", "field interactive.sections: 11 rows in all");
    list_init(&f);
    f.rows[1].id = "r0";
    refused_naming(&m, "provider_limit", "field interactive.sections[0].rows[1].id: the same id");
    list_init(&f);
    f.rows[10].id = "r1"; /* unique within its section, not in the list */
    refused_naming(&m, "provider_limit", "field interactive.sections[1].rows[0].id: the same id");
    list_init(&f);
    f.rows[0].title = "Kirim besok pagi sebelum jam 9";
    refused_naming(&m, "provider_limit", "field interactive.sections[0].rows[0].title: 30");
    list_init(&f);
    f.sections[1].title = "";
    refused_naming(&m, "provider_limit", "field interactive.sections[1].title: required");
    list_init(&f);
    f.in.button = "Pilih cara pengiriman Anda";
    refused_naming(&m, "provider_limit", "field interactive.button: 26 characters");
    list_init(&f);
    f.sections[1].n_rows = 0;
    refused_naming(&m, "provider_limit", "field interactive.sections[1].rows: a section needs");
    list_init(&f);
    f.in.n_sections = 1; /* one section: its title may go */
    f.sections[0].title = "";
    json_decref(body_of(&m));

    Blazz__V1__InteractiveMessage where = BLAZZ__V1__INTERACTIVE_MESSAGE__INIT;
    where.kind = BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LOCATION_REQUEST;
    where.footer = "Toko Budi";
    m.interactive = &where;
    refused_naming(&m, "provider_limit", "field interactive.footer: a location request");
    where.footer = "";
    char long_body[1100];
    memset(long_body, 'x', 1025);
    long_body[1025] = '\0';
    m.body = long_body;
    refused_naming(&m, "provider_limit", "field body: 1025 characters, Meta takes at most 1024");

    /* no group takes one (Meta's group messaging page) */
    m.body = "Kirim lokasi Anda";
    m.to_phone = "";
    m.to_jid = "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD";
    refused_naming(&m, "provider_limit", "takes no interactive message");
}

static void what_meta_would_not_take_is_refused(void **state)
{
    (void)state;
    char *text = NULL;
    bz_error err;
    Blazz__V1__SendMessage m = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT, "Promo");
    char *four[] = {"Ya", "Tidak", "Nanti", "Lain"};
    m.buttons = four;
    m.n_buttons = 4;
    assert_int_equal(ms_graph_body(&m, &text, &err), BZ_ERR_INVALID);
    assert_string_equal(err.reason, "provider_limit");
    assert_non_null(strstr(err.msg, "field buttons: 4 reply buttons"));
    char *long_title[] = {"Ya", "Tidak, terima kasih banyak"};
    m.buttons = long_title;
    m.n_buttons = 2;
    assert_int_equal(ms_graph_body(&m, &text, &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "field buttons[1]: 26 characters"));
    char *twice[] = {"Ya", "Ya"};
    m.buttons = twice;
    assert_int_equal(ms_graph_body(&m, &text, &err), BZ_ERR_INVALID);
    m.n_buttons = 1;
    m.footer = "0123456789012345678901234567890123456789012345678901234567890";
    assert_int_equal(ms_graph_body(&m, &text, &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "field footer: 61 characters"));
    m.n_buttons = 0;
    m.footer = "stop";
    assert_int_equal(ms_graph_body(&m, &text, &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "field footer: a Meta text"));

    Blazz__V1__SendMessage a = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_AUDIO, "");
    Blazz__V1__MediaInfo media = BLAZZ__V1__MEDIA_INFO__INIT;
    media.url = "https://example.com/a.ogg";
    media.mime_type = "audio/ogg";
    media.caption = "dengarkan";
    a.media = &media;
    assert_int_equal(ms_graph_body(&a, &text, &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "field media.caption: Meta sends no caption"));
    assert_null(text);
}

static void what_cannot_be_sent_is_refused(void **state)
{
    (void)state;
    char *text = NULL;
    bz_error err;
    Blazz__V1__SendMessage m = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT, "hi");
    m.to_phone = "";
    assert_int_equal(ms_graph_body(&m, &text, &err), BZ_ERR_INVALID);
    assert_string_equal(err.reason, "invalid_send");
    assert_non_null(strstr(err.msg, "no recipient phone or BSUID"));
    assert_null(text);
    m = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE, "caption only");
    assert_int_equal(ms_graph_body(&m, &text, &err), BZ_ERR_INVALID);
    m = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_LOCATION, "");
    assert_int_equal(ms_graph_body(&m, &text, &err), BZ_ERR_INVALID);
    /* a string that is not UTF-8 would be left out of the JSON: refused */
    m = message(BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT, "Promo");
    char *buttons[] = {"Ya", "Pro\xc2\x01"};
    m.buttons = buttons;
    m.n_buttons = 2;
    assert_int_equal(ms_graph_body(&m, &text, &err), BZ_ERR_INVALID);
    assert_string_equal(err.reason, "invalid_send");
    assert_non_null(strstr(err.msg, "field buttons is not UTF-8"));
    assert_null(text);
}

static ms_outcome classify(long status, const char *body)
{
    ms_outcome o;
    ms_graph_classify(0, status, body, strlen(body), &o);
    return o;
}

static const char *meta_error(long code, const char *type)
{
    static char buf[512];
    snprintf(buf, sizeof buf,
             "{\"error\":{\"message\":\"(#%ld) something\",\"type\":\"%s\",\"code\":%ld,"
             "\"error_data\":{\"messaging_product\":\"whatsapp\",\"details\":\"detail %ld\"},"
             "\"fbtrace_id\":\"A\"}}",
             code, type, code, code);
    return buf;
}

static void answers_by_documented_code(void **state)
{
    (void)state;
    ms_outcome o = classify(200, "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":"
                                 "\"62813\",\"wa_id\":\"62813\"}],\"messages\":[{\"id\":"
                                 "\"wamid.XYZ\"}]}");
    assert_int_equal(o.verdict, MS_SENT);
    assert_string_equal(o.wam_id, "wamid.XYZ");
    assert_int_equal(classify(200, "{\"success\":true}").verdict, MS_SENT);
    assert_int_equal(classify(200, "{}").verdict, MS_AMBIGUOUS);
    o = classify(401, meta_error(190, "OAuthException"));
    assert_int_equal(o.verdict, MS_TOKEN_INVALID);
    assert_string_equal(o.code, "token_invalid");
    o = classify(400, meta_error(130429, "OAuthException"));
    assert_int_equal(o.verdict, MS_THROTTLED);
    assert_string_equal(o.code, "130429");
    assert_int_equal(classify(400, meta_error(131056, "OAuthException")).verdict, MS_THROTTLED);
    o = classify(400, meta_error(131047, "OAuthException"));
    assert_int_equal(o.verdict, MS_FAILED);
    assert_string_equal(o.code, "reengagement_required");
    assert_string_equal(o.message, "detail 131047");
    o = classify(400, meta_error(131026, "OAuthException"));
    assert_int_equal(o.verdict, MS_FAILED);
    assert_string_equal(o.code, "131026");
    assert_int_equal(classify(400, meta_error(100, "OAuthException")).verdict, MS_FAILED);
    assert_int_equal(classify(400, meta_error(131008, "OAuthException")).verdict, MS_FAILED);
    assert_int_equal(classify(400, meta_error(131009, "OAuthException")).verdict, MS_FAILED);
    assert_int_equal(classify(400, meta_error(132001, "OAuthException")).verdict, MS_FAILED);
    assert_int_equal(classify(500, meta_error(131000, "OAuthException")).verdict, MS_RETRY);
    assert_int_equal(classify(503, "<html>busy</html>").verdict, MS_RETRY);
    assert_int_equal(classify(429, "").verdict, MS_THROTTLED);
    assert_int_equal(classify(404, "not json").verdict, MS_FAILED);
    ms_graph_classify(1, 0, NULL, 0, &o);
    assert_int_equal(o.verdict, MS_RETRY);
    ms_graph_classify(2, 0, NULL, 0, &o);
    assert_int_equal(o.verdict, MS_AMBIGUOUS);
}

/* Meta's code decides, not the HTTP status (Meta: build error handling on
 * code): only 190 and 0 (AuthException), the codes Meta documents with 401,
 * refuse the token; a 401 carrying another code is that code's verdict. The
 * status decides only when the answer has no code. */
static void code_wins_over_http_status(void **state)
{
    (void)state;
    ms_outcome o = classify(401, meta_error(131047, "OAuthException"));
    assert_int_equal(o.verdict, MS_FAILED);
    assert_string_equal(o.code, "reengagement_required");
    o = classify(401, meta_error(131026, "OAuthException"));
    assert_int_equal(o.verdict, MS_FAILED);
    assert_string_equal(o.code, "131026");
    assert_int_equal(classify(401, meta_error(130429, "OAuthException")).verdict, MS_THROTTLED);
    assert_int_equal(classify(400, meta_error(190, "OAuthException")).verdict, MS_TOKEN_INVALID);
    o = classify(401, meta_error(0, "OAuthException"));
    assert_int_equal(o.verdict, MS_TOKEN_INVALID);
    assert_int_equal(classify(401, "{\"error\":{\"message\":\"bad\",\"type\":\"OAuthException\"}}")
                         .verdict,
                     MS_TOKEN_INVALID);
    assert_int_equal(classify(401, "").verdict, MS_TOKEN_INVALID);
}

static void pace_holds_any_window(void **state)
{
    (void)state;
    ms_pace p;
    ms_pace_init(&p, 10, 100, 1100);
    int64_t starts[200] = {0};
    int n = 0;
    for (int64_t now = 0; now < 5000 && n < 200; now += 7) {
        int room = ms_pace_room(&p, now);
        for (int i = 0; i < room && n < 200; i++) {
            ms_pace_started(&p, now);
            ms_pace_finished(&p);
            starts[n++] = now;
        }
    }
    for (int i = 0; i + 10 < n; i++)
        assert_true(starts[i + 10] - starts[i] >= 1100);
    assert_true(n >= 40);
    ms_pace_throttled(&p, 5000);
    assert_int_equal(ms_pace_limit(&p, 5000), 5);
    ms_pace_throttled(&p, 5000);
    assert_int_equal(ms_pace_limit(&p, 5000), 2);
    assert_int_equal(ms_pace_limit(&p, 8000), 5);
    assert_int_equal(ms_pace_limit(&p, 20000), 10);
    ms_pace_init(&p, 1000, 2, 1000);
    assert_int_equal(ms_pace_room(&p, 0), 2);
    ms_pace_started(&p, 0);
    ms_pace_started(&p, 0);
    assert_int_equal(ms_pace_room(&p, 0), 0);
    ms_pace_finished(&p);
    assert_int_equal(ms_pace_room(&p, 0), 1);
}

/* The URL a send goes to, or NULL when ms_job_prepare refused the
 * account's phone number id (the reason then in reason). */
static char *url_for(const char *phone_number_id, char reason[64])
{
    ms_settings s = {.base_url = "http://127.0.0.1:9", .api_version = "v23.0"};
    ms_worker w = {.s = &s};
    char token[] = "EAAtoken";
    ms_account acc = {.id = 7, .token = token};
    snprintf(acc.phone_number_id, sizeof acc.phone_number_id, "%s", phone_number_id);
    ms_job *j = calloc(1, sizeof *j);
    assert_non_null(j);
    j->acc = &acc;
    j->row.key = strdup("9");
    j->body = strdup("{}");
    bz_error err;
    bz_error_clear(&err);
    char *url = NULL, *effective = NULL;
    if (ms_job_prepare(&w, j, &err) == BZ_OK) {
        assert_int_equal(curl_easy_getinfo(j->easy, CURLINFO_EFFECTIVE_URL, &effective), CURLE_OK);
        url = strdup(effective);
    } else {
        snprintf(reason, 64, "%s", err.reason ? err.reason : "");
    }
    ms_job_free(j);
    return url;
}

static void only_digits_go_into_the_graph_url(void **state)
{
    (void)state;
    char reason[64] = "";
    char *url = url_for("106540352242922", reason);
    assert_string_equal(url, "http://127.0.0.1:9/v23.0/106540352242922/messages");
    free(url);
    static const char *const bad[] = {"1/../../me", "1?access_token=x", "1#", "12a", "",
                                      "123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        url = url_for(bad[i], reason);
        if (url)
            fail_msg("session_id '%s' went into %s", bad[i], url);
        assert_string_equal(reason, "invalid_phone_number_id");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_with_link_reply_and_reference),
        cmocka_unit_test(template_with_header_media_body_and_buttons),
        cmocka_unit_test(media_reaction_and_read),
        cmocka_unit_test(campaign_header_and_buttons),
        cmocka_unit_test(a_bsuid_only_contact_is_addressed_by_recipient),
        cmocka_unit_test(a_meta_group_is_addressed_as_one),
        cmocka_unit_test(what_cannot_be_sent_is_refused),
        cmocka_unit_test(what_meta_would_not_take_is_refused),
        cmocka_unit_test(interactive_list_url_button_and_location_request),
        cmocka_unit_test(interactive_over_meta_limits_is_refused),
        cmocka_unit_test(interactive_flow),
        cmocka_unit_test(answers_by_documented_code),
        cmocka_unit_test(code_wins_over_http_status),
        cmocka_unit_test(pace_holds_any_window),
        cmocka_unit_test(only_digits_go_into_the_graph_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
