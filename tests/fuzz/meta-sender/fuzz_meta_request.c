/*
 * fuzz_meta_request.c - what meta-sender asks the Cloud API for
 * (graph_request.c) and Meta's limits on it (libs/wa/meta_limits.c): a
 * SendMessage, as wa.outbound carries it, becomes a request body or is
 * refused.
 *
 * The input is a protobuf SendMessage. Properties: it is refused
 * (BZ_ERR_INVALID, reason invalid_send, e.g. a string that is not UTF-8,
 * or provider_limit; no body) or its body is a JSON object for
 * messaging_product whatsapp, and then Meta's limits hold for it; nothing
 * of it is left out: a text's body is the
 * message's, reply buttons are all the message's buttons with their titles
 * (at most 3), its footer and text header are there, an audio or sticker
 * carries no caption. Accepted means a body was built.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"
#include "meta_sender.h"
#include "wa/meta_limits.h"

static const char *text_at(json_t *doc, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(json_object_get(doc, a), b);
    return json_string_value(c ? json_object_get(v, c) : v);
}

static int same(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static void check_interactive(const Blazz__V1__SendMessage *m, json_t *doc)
{
    json_t *in = json_object_get(doc, "interactive");
    json_t *buttons = json_object_get(json_object_get(in, "action"), "buttons");
    BZ_FUZZ_CHECK(json_array_size(buttons) == m->n_buttons && m->n_buttons <= 3);
    for (size_t i = 0; i < m->n_buttons; i++)
        BZ_FUZZ_CHECK(same(json_string_value(json_object_get(
                               json_object_get(json_array_get(buttons, i), "reply"), "title")),
                           m->buttons[i]));
    BZ_FUZZ_CHECK(same(text_at(doc, "interactive", "body", "text"), m->body));
    BZ_FUZZ_CHECK(same(text_at(doc, "interactive", "footer", "text"), m->footer));
    if (m->header_text && *m->header_text)
        BZ_FUZZ_CHECK(same(text_at(doc, "interactive", "header", "text"), m->header_text));
}

static int fuzz_meta_request(const uint8_t *data, size_t size)
{
    Blazz__V1__SendMessage *m = blazz__v1__send_message__unpack(NULL, size, data);
    if (!m)
        return BZ_FUZZ_REJECTED;
    char *body = NULL;
    bz_error err;
    bz_error_clear(&err);
    bz_status st = ms_graph_body(m, &body, &err);
    if (st != BZ_OK) {
        BZ_FUZZ_CHECK(st == BZ_ERR_INVALID && body == NULL && err.reason &&
                      (strcmp(err.reason, "invalid_send") == 0 ||
                       strcmp(err.reason, BZ_WA_META_LIMIT_REASON) == 0));
        blazz__v1__send_message__free_unpacked(m, NULL);
        return BZ_FUZZ_REJECTED;
    }
    json_t *doc = json_loads(body, 0, NULL);
    BZ_FUZZ_CHECK(json_is_object(doc));
    BZ_FUZZ_CHECK(same(json_string_value(json_object_get(doc, "messaging_product")), "whatsapp"));
    BZ_FUZZ_CHECK(bz_wa_meta_check(m, &err) == BZ_OK);
    const char *type = json_string_value(json_object_get(doc, "type"));
    if (type && strcmp(type, "interactive") == 0)
        check_interactive(m, doc);
    else if (type && strcmp(type, "text") == 0)
        BZ_FUZZ_CHECK(same(text_at(doc, "text", "body", NULL), m->body));
    else if (type && (strcmp(type, "audio") == 0 || strcmp(type, "sticker") == 0))
        BZ_FUZZ_CHECK(!json_object_get(json_object_get(doc, type), "caption"));
    json_decref(doc);
    free(body);
    blazz__v1__send_message__free_unpacked(m, NULL);
    return BZ_FUZZ_ACCEPTED;
}

static const bz_fuzz_expect expect[] = {
    {"text.pb", BZ_FUZZ_ACCEPTED},          {"buttons.pb", BZ_FUZZ_ACCEPTED},
    {"image.pb", BZ_FUZZ_ACCEPTED},         {"reaction.pb", BZ_FUZZ_ACCEPTED},
    {"template_named.pb", BZ_FUZZ_ACCEPTED}, {"four_buttons.pb", BZ_FUZZ_REJECTED},
    {"long_title.pb", BZ_FUZZ_REJECTED},    {"audio_caption.pb", BZ_FUZZ_REJECTED},
    {"footer_on_text.pb", BZ_FUZZ_REJECTED}, {"header_not_utf8.pb", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_meta_request, expect)
