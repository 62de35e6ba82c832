/*
 * graph_request.c - a SendMessage as the body of the Cloud API's
 * POST /{phone_number_id}/messages (see meta_sender.h).
 *
 * Every message carries messaging_product "whatsapp", recipient_type
 * "individual", the addressee (`to`, the E.164 phone without "+"; or, for a
 * contact known only by its business-scoped user id, `recipient`, the
 * BSUID: Meta's BSUID page, decision 0010), or recipient_type "group" and
 * the group's id as `to` for a Meta group (its key, to_jid: Meta's group
 * messaging page; a group takes text, media and templates, no interactive
 * message), and
 * biz_opaque_callback_data = the client reference: Meta repeats that string
 * in every status webhook of the message, ingest maps it to the receipt's
 * client_reference, and that is how a send whose answer was lost can still
 * be recognised (claim.c). Kinds:
 *   text       {"text": {"body", "preview_url"}}; preview_url when the body
 *              holds an http(s) link (WhatsApp shows the preview then);
 *   template   {"template": {"name", "language": {"code"}, "components"}}:
 *              a header (media by link or id, else text parameters), the
 *              body parameters (with parameter_name for a template of
 *              named variables), quick-reply buttons by index;
 *   media      {"image"|"video"|"audio"|"document"|"sticker": {"link"|"id",
 *              "caption", "filename"}} (voice notes go as audio);
 *   reaction   {"reaction": {"message_id", "emoji"}}: the emoji is the body,
 *              the target quoted_wam_id;
 *   campaign extras on a text (SendMessage header_media or header_text,
 *              footer, buttons): buttons make it {"interactive": {"type":
 *              "button", "header" (the media, else the text), "body",
 *              "footer", "action": {"buttons": [{"type": "reply", "reply":
 *              {"id", "title"}}]}}}; a media header alone makes it that
 *              media with the body as caption;
 *   an agent's interactive message (SendMessage.interactive, body the
 *              text): {"interactive": {"type": "list", "body", "action":
 *              {"button", "sections": [{"title", "rows": [{"id", "title",
 *              "description"}]}]}}}, {"type": "cta_url", "body", "action":
 *              {"name": "cta_url", "parameters": {"display_text", "url"}}},
 *              {"type": "location_request_message", "body", "action":
 *              {"name": "send_location"}} or {"type": "flow", "body",
 *              "action": {"name": "flow", "parameters":
 *              {"flow_message_version": "3", "flow_id" | "flow_name",
 *              "flow_cta", "flow_token", "mode", "flow_action",
 *              "flow_action_payload": {"screen", "data"}}}}, with a text
 *              header and a footer where given;
 *   read mark  {"status": "read", "message_id"}: Meta marks that message and
 *              every earlier one read, so the newest named is enough.
 * A reply adds {"context": {"message_id": quoted_wam_id}}.
 * Before any of it, every string of the message must be UTF-8 (JSON's
 * text; jansson would leave a member out), and the message is held to
 * Meta's limits
 * (wa/meta_limits.h): a message Meta would refuse, or whose parts a
 * request has no place for, is refused here (reason provider_limit), so
 * nothing of a message is silently left out of its request.
 */
#include <jansson.h>
#include <string.h>

#include "meta_sender.h"
#include "proto/text_fields.h"
#include "wa/meta_group.h"
#include "wa/meta_limits.h"

/* Text parameters; with names (one per value, a template's named
 * variables), each carries its parameter_name. */
static json_t *text_params(char **values, size_t n, char **names, size_t n_names)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *p = json_pack("{s:s, s:s}", "type", "text", "text", values[i] ? values[i] : "");
        if (i < n_names && names[i] && *names[i])
            json_object_set_new(p, "parameter_name", json_string(names[i]));
        json_array_append_new(arr, p);
    }
    return arr;
}

/* {"link": url} or {"id": media_id}, with caption / filename when given. */
static json_t *media_object(const Blazz__V1__MediaInfo *media, int with_caption)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (media->media_id && *media->media_id)
        json_object_set_new(o, "id", json_string(media->media_id));
    else
        json_object_set_new(o, "link", json_string(media->url ? media->url : ""));
    if (with_caption && media->caption && *media->caption)
        json_object_set_new(o, "caption", json_string(media->caption));
    if (media->filename && *media->filename)
        json_object_set_new(o, "filename", json_string(media->filename));
    return o;
}

static const char *media_kind(const Blazz__V1__MediaInfo *media)
{
    const char *mime = media && media->mime_type ? media->mime_type : "";
    if (strncmp(mime, "image/", 6) == 0)
        return "image";
    if (strncmp(mime, "video/", 6) == 0)
        return "video";
    return "document";
}

static int has_media(const Blazz__V1__MediaInfo *media)
{
    return media && ((media->url && *media->url) || (media->media_id && *media->media_id));
}

static json_t *template_components(const Blazz__V1__TemplateMessage *t)
{
    json_t *components = json_array();
    if (!components)
        return NULL;
    if (has_media(t->header_media)) {
        const char *kind = media_kind(t->header_media);
        json_t *param = json_pack("{s:s, s:o}", "type", kind, kind, media_object(t->header_media, 0));
        json_array_append_new(components,
                              json_pack("{s:s, s:[o]}", "type", "header", "parameters", param));
    } else if (t->n_header_params) {
        json_array_append_new(components,
                              json_pack("{s:s, s:o}", "type", "header", "parameters",
                                        text_params(t->header_params, t->n_header_params,
                                                    t->header_param_names,
                                                    t->n_header_param_names)));
    }
    if (t->n_body_params)
        json_array_append_new(components,
                              json_pack("{s:s, s:o}", "type", "body", "parameters",
                                        text_params(t->body_params, t->n_body_params,
                                                    t->body_param_names,
                                                    t->n_body_param_names)));
    for (size_t i = 0; i < t->n_button_params; i++) {
        char index[24];
        snprintf(index, sizeof index, "%zu", i);
        json_array_append_new(
            components,
            json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}]}", "type", "button", "sub_type", "quick_reply",
                      "index", index, "parameters", "type", "payload", "payload",
                      t->button_params[i] ? t->button_params[i] : ""));
    }
    return components;
}

static int has_link(const char *text)
{
    return strstr(text, "https://") || strstr(text, "http://");
}

static json_t *interactive_of(const Blazz__V1__SendMessage *m)
{
    json_t *buttons = json_array();
    for (size_t i = 0; i < m->n_buttons; i++) {
        char id[24];
        snprintf(id, sizeof id, "b%zu", i);
        json_array_append_new(buttons, json_pack("{s:s, s:{s:s, s:s}}", "type", "reply", "reply",
                                                 "id", id, "title", m->buttons[i]));
    }
    json_t *in = json_pack("{s:s, s:{s:s}, s:{s:o}}", "type", "button", "body", "text", m->body,
                           "action", "buttons", buttons);
    if (has_media(m->header_media)) {
        const char *kind = media_kind(m->header_media);
        json_object_set_new(in, "header", json_pack("{s:s, s:o}", "type", kind, kind,
                                                    media_object(m->header_media, 0)));
    } else if (m->header_text && *m->header_text) {
        json_object_set_new(in, "header", json_pack("{s:s, s:s}", "type", "text", "text",
                                                    m->header_text));
    }
    if (m->footer && *m->footer)
        json_object_set_new(in, "footer", json_pack("{s:s}", "text", m->footer));
    return in;
}

static json_t *list_sections(const Blazz__V1__InteractiveMessage *in)
{
    json_t *sections = json_array();
    for (size_t i = 0; i < in->n_sections; i++) {
        const Blazz__V1__InteractiveSection *sec = in->sections[i];
        json_t *rows = json_array();
        for (size_t r = 0; r < sec->n_rows; r++) {
            json_t *row = json_pack("{s:s, s:s}", "id", sec->rows[r]->id, "title",
                                    sec->rows[r]->title);
            if (sec->rows[r]->description && *sec->rows[r]->description)
                json_object_set_new(row, "description", json_string(sec->rows[r]->description));
            json_array_append_new(rows, row);
        }
        json_t *o = json_pack("{s:o}", "rows", rows);
        if (sec->title && *sec->title)
            json_object_set_new(o, "title", json_string(sec->title));
        json_array_append_new(sections, o);
    }
    return sections;
}

/* Meta's flow message parameters: version 3, the flow by id or name, the
 * button, the token and mode when given, the action and, when it
 * navigates, its first screen and data. */
static json_t *flow_parameters(const Blazz__V1__InteractiveMessage *in)
{
    json_t *p = json_pack("{s:s, s:s}", "flow_message_version", "3", "flow_cta", in->flow_cta);
    if (in->flow_id && *in->flow_id)
        json_object_set_new(p, "flow_id", json_string(in->flow_id));
    else
        json_object_set_new(p, "flow_name", json_string(in->flow_name));
    if (in->flow_token && *in->flow_token)
        json_object_set_new(p, "flow_token", json_string(in->flow_token));
    if (in->flow_draft)
        json_object_set_new(p, "mode", json_string("draft"));
    if (in->flow_action && *in->flow_action)
        json_object_set_new(p, "flow_action", json_string(in->flow_action));
    json_t *data = in->flow_data_json && *in->flow_data_json
                       ? json_loads(in->flow_data_json, 0, NULL)
                       : NULL;
    if ((in->flow_screen && *in->flow_screen) || data) {
        json_t *payload = json_object();
        if (in->flow_screen && *in->flow_screen)
            json_object_set_new(payload, "screen", json_string(in->flow_screen));
        if (data)
            json_object_set_new(payload, "data", data);
        json_object_set_new(p, "flow_action_payload", payload);
    }
    return p;
}

/* An agent's interactive message: a list, a URL button, a location
 * request or a flow, as Meta's pages for each show it. */
static bz_status add_interactive(json_t *o, const Blazz__V1__SendMessage *m, bz_error *err)
{
    const Blazz__V1__InteractiveMessage *in = m->interactive;
    if (!in || !m->body || !*m->body)
        return bz_reject(err, "invalid_send", "send %s: interactive message without its body",
                         m->idempotency_key);
    json_t *body = json_pack("{s:s}", "text", m->body), *action, *it;
    switch (in->kind) {
    case BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LIST:
        action = json_pack("{s:s, s:o}", "button", in->button, "sections", list_sections(in));
        it = json_pack("{s:s, s:o, s:o}", "type", "list", "body", body, "action", action);
        break;
    case BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_CTA_URL:
        action = json_pack("{s:s, s:{s:s, s:s}}", "name", "cta_url", "parameters", "display_text",
                           in->display_text, "url", in->url);
        it = json_pack("{s:s, s:o, s:o}", "type", "cta_url", "body", body, "action", action);
        break;
    case BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LOCATION_REQUEST:
        it = json_pack("{s:s, s:o, s:{s:s}}", "type", "location_request_message", "body", body,
                       "action", "name", "send_location");
        break;
    case BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_FLOW:
        action = json_pack("{s:s, s:o}", "name", "flow", "parameters", flow_parameters(in));
        it = json_pack("{s:s, s:o, s:o}", "type", "flow", "body", body, "action", action);
        break;
    default:
        json_decref(body);
        return bz_reject(err, "invalid_send", "send %s: interactive kind %d has no Cloud API form",
                         m->idempotency_key, (int)in->kind);
    }
    if (!it)
        return bz_fail(err, BZ_ERR_NOMEM, "send %s: out of memory", m->idempotency_key);
    if (in->header_text && *in->header_text)
        json_object_set_new(it, "header", json_pack("{s:s, s:s}", "type", "text", "text",
                                                    in->header_text));
    if (in->footer && *in->footer)
        json_object_set_new(it, "footer", json_pack("{s:s}", "text", in->footer));
    json_object_set_new(o, "type", json_string("interactive"));
    json_object_set_new(o, "interactive", it);
    return BZ_OK;
}

static bz_status add_text(json_t *o, const Blazz__V1__SendMessage *m, bz_error *err)
{
    if (m->n_buttons && m->body && *m->body) {
        json_object_set_new(o, "type", json_string("interactive"));
        json_object_set_new(o, "interactive", interactive_of(m));
        return BZ_OK;
    }
    if (has_media(m->header_media)) {
        const char *kind = media_kind(m->header_media);
        json_t *obj = media_object(m->header_media, 0);
        if (m->body && *m->body)
            json_object_set_new(obj, "caption", json_string(m->body));
        json_object_set_new(o, "type", json_string(kind));
        json_object_set_new(o, kind, obj);
        return BZ_OK;
    }
    const char *body = m->body ? m->body : "";
    if (!*body)
        return bz_reject(err, "invalid_send", "send %s: text message without a body",
                         m->idempotency_key);
    json_object_set_new(o, "type", json_string("text"));
    json_object_set_new(o, "text", json_pack("{s:s, s:b}", "body", body, "preview_url",
                                             has_link(body)));
    return BZ_OK;
}

static bz_status add_template(json_t *o, const Blazz__V1__SendMessage *m, bz_error *err)
{
    const Blazz__V1__TemplateMessage *t = m->template_;
    if (!t || !t->name || !*t->name)
        return bz_reject(err, "invalid_send", "send %s: template message without a name",
                         m->idempotency_key);
    json_t *tpl = json_pack("{s:s, s:{s:s}}", "name", t->name, "language", "code",
                            t->language && *t->language ? t->language : "en_US");
    json_t *components = template_components(t);
    if (json_array_size(components))
        json_object_set_new(tpl, "components", components);
    else
        json_decref(components);
    json_object_set_new(o, "type", json_string("template"));
    json_object_set_new(o, "template", tpl);
    return BZ_OK;
}

static bz_status add_media(json_t *o, const Blazz__V1__SendMessage *m, const char *kind,
                           bz_error *err)
{
    const Blazz__V1__MediaInfo *media = m->media;
    if (!media || !((media->url && *media->url) || (media->media_id && *media->media_id)))
        return bz_reject(err, "invalid_send", "send %s: %s message without a link or media id",
                         m->idempotency_key, kind);
    int captioned = strcmp(kind, "audio") != 0 && strcmp(kind, "sticker") != 0;
    json_t *obj = media_object(media, captioned);
    if (captioned && !json_object_get(obj, "caption") && m->body && *m->body)
        json_object_set_new(obj, "caption", json_string(m->body));
    if (strcmp(kind, "document") != 0)
        json_object_del(obj, "filename");
    json_object_set_new(o, "type", json_string(kind));
    json_object_set_new(o, kind, obj);
    return BZ_OK;
}

static bz_status add_reaction(json_t *o, const Blazz__V1__SendMessage *m, bz_error *err)
{
    if (!m->quoted_wam_id || !*m->quoted_wam_id)
        return bz_reject(err, "invalid_send", "send %s: reaction without the message it reacts to",
                         m->idempotency_key);
    json_object_set_new(o, "type", json_string("reaction"));
    json_object_set_new(o, "reaction", json_pack("{s:s, s:s}", "message_id", m->quoted_wam_id,
                                                 "emoji", m->body ? m->body : ""));
    return BZ_OK;
}

static bz_status add_content(json_t *o, const Blazz__V1__SendMessage *m, bz_error *err)
{
    switch (m->message_type) {
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNSPECIFIED:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT:
        return add_text(o, m, err);
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE:
        return add_template(o, m, err);
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE:
        return add_media(o, m, "image", err);
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VIDEO:
        return add_media(o, m, "video", err);
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_AUDIO:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE:
        return add_media(o, m, "audio", err);
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_DOCUMENT:
        return add_media(o, m, "document", err);
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_STICKER:
        return add_media(o, m, "sticker", err);
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION:
        return add_reaction(o, m, err);
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE:
        return add_interactive(o, m, err);
    default:
        return bz_reject(err, "invalid_send", "send %s: message type %d has no Cloud API form",
                         m->idempotency_key, (int)m->message_type);
    }
}

/* The addressee: the digits of the E.164 phone as `to` when the contact
 * has one, else its BSUID as `recipient` (Meta lets `to` win when both are
 * given, so only one is sent). */
static bz_status add_recipient(json_t *o, const Blazz__V1__SendMessage *m, bz_error *err)
{
    const char *phone = m->to_phone ? m->to_phone : "";
    if (*phone == '+')
        phone++;
    if (*phone) {
        json_object_set_new(o, "to", json_string(phone));
        return BZ_OK;
    }
    if (m->to_bsuid && *m->to_bsuid) {
        json_object_set_new(o, "recipient", json_string(m->to_bsuid));
        return BZ_OK;
    }
    return bz_reject(err, "invalid_send",
                     "send %s: no recipient phone or BSUID (Meta sends to nothing else)",
                     m->idempotency_key);
}

int ms_sends_to_meta_group(const Blazz__V1__SendMessage *m)
{
    return !(m->to_phone && *m->to_phone) && !(m->to_bsuid && *m->to_bsuid) && m->to_jid &&
           bz_meta_group_id_valid(m->to_jid);
}

/* The group as Meta's group messaging page addresses it. */
static bz_status add_group(json_t *o, const Blazz__V1__SendMessage *m, bz_error *err)
{
    if (m->n_buttons > 0 || m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE)
        return bz_reject(err, BZ_WA_META_LIMIT_REASON,
                         "send %s: a Meta group takes no interactive message (%s)",
                         m->idempotency_key, m->n_buttons > 0 ? "buttons" : "message_type");
    json_object_set_new(o, "recipient_type", json_string("group"));
    json_object_set_new(o, "to", json_string(m->to_jid));
    return BZ_OK;
}

static bz_status build(json_t *o, const Blazz__V1__SendMessage *m, bz_error *err)
{
    json_object_set_new(o, "messaging_product", json_string("whatsapp"));
    if (m->kind == BLAZZ__V1__SEND_KIND__SEND_KIND_MARK_READ) {
        if (!m->n_read_wam_ids || !*m->read_wam_ids[m->n_read_wam_ids - 1])
            return bz_reject(err, "invalid_send", "read mark %s names no message",
                             m->idempotency_key);
        json_object_set_new(o, "status", json_string("read"));
        json_object_set_new(o, "message_id", json_string(m->read_wam_ids[m->n_read_wam_ids - 1]));
        return BZ_OK;
    }
    bz_status st;
    if (ms_sends_to_meta_group(m)) {
        st = add_group(o, m, err);
    } else {
        json_object_set_new(o, "recipient_type", json_string("individual"));
        st = add_recipient(o, m, err);
    }
    if (st != BZ_OK)
        return st;
    if (m->client_reference && *m->client_reference)
        json_object_set_new(o, "biz_opaque_callback_data", json_string(m->client_reference));
    if (m->quoted_wam_id && *m->quoted_wam_id &&
        m->message_type != BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION)
        json_object_set_new(o, "context", json_pack("{s:s}", "message_id", m->quoted_wam_id));
    return add_content(o, m, err);
}

bz_status ms_graph_body(const Blazz__V1__SendMessage *m, char **out, bz_error *err)
{
    *out = NULL;
    const char *not_utf8 = bz_proto_first_non_utf8(&m->base);
    if (not_utf8)
        return bz_reject(err, "invalid_send", "send %s: field %s is not UTF-8",
                         m->idempotency_key, not_utf8);
    if (bz_wa_meta_check(m, err) != BZ_OK)
        return bz_wrap(err, "send %s", m->idempotency_key);
    json_t *o = json_object();
    if (!o)
        return bz_fail(err, BZ_ERR_NOMEM, "send %s: out of memory", m->idempotency_key);
    bz_status st = build(o, m, err);
    if (st == BZ_OK) {
        *out = json_dumps(o, JSON_COMPACT);
        if (!*out)
            st = bz_fail(err, BZ_ERR_NOMEM, "send %s: out of memory", m->idempotency_key);
    }
    json_decref(o);
    return st;
}
