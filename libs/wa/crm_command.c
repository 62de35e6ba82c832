/*
 * crm_command.c - contract rules, message ids and conversation keys of CRM
 * commands (see crm_command.h).
 *
 * Lengths are counted in characters (Unicode code points of well-formed
 * UTF-8), as WhatsApp counts them. The message id hashes length-prefixed
 * fields after a domain tag (bz_uuid_derive), so ("1","2x") and ("12","x")
 * never collide by concatenation; a key longer than the checked maximum is
 * cut for hashing only (such a command is refused anyway).
 */
#include "wa/crm_command.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/utf8.h"
#include "kafka/topics.h"
#include "wa/bsuid.h"
#include "wa/jid.h"
#include "wa/meta_group.h"
#include "wa/phone.h"

#define DOMAIN "blazz.v1/crm/message"

/* Well-formed UTF-8 of at most max characters; empty allowed. */
static bz_status check_text(const char *field, const char *s, size_t max, bz_error *err)
{
    if (!s || !*s)
        return BZ_OK;
    if (!bz_utf8_valid(s, strlen(s)))
        return bz_reject(err, "invalid_field", "field %s: not valid UTF-8", field);
    size_t n = bz_utf8_chars(s);
    if (n > max)
        return bz_reject(err, "invalid_field", "field %s: %zu characters, at most %zu", field, n,
                         max);
    return BZ_OK;
}

static int set(const char *s)
{
    return s && *s;
}

bz_status bz_crm_idempotency_key_check(const char *key, bz_error *err)
{
    if (!set(key))
        return bz_reject(err, "missing_field",
                         "field idempotency_key: required (the same key returns the same message)");
    size_t n = strlen(key);
    if (n > BZ_CRM_IDEMPOTENCY_KEY_MAX)
        return bz_reject(err, "invalid_field", "field idempotency_key: %zu bytes, at most %d", n,
                         BZ_CRM_IDEMPOTENCY_KEY_MAX);
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x20 || key[i] > 0x7e)
            return bz_reject(err, "invalid_field",
                             "field idempotency_key: printable ASCII characters only");
    return BZ_OK;
}

/* Exactly one recipient: a contact (id, phone or JID) or a group (id or JID). */
static bz_status check_recipient(int64_t contact_id, const char *phone, const char *contact_jid,
                                 int64_t group_id, const char *group_jid, bz_error *err)
{
    int contact = contact_id != 0 || set(phone) || set(contact_jid);
    int group = group_id != 0 || set(group_jid);
    if (contact_id < 0 || group_id < 0)
        return bz_reject(err, "invalid_field", "field %s: must be a positive id",
                         contact_id < 0 ? "contact_id" : "group_id");
    if (contact && group)
        return bz_reject(err, "invalid_field", "field %s: give a contact or a group, not both",
                         group_id ? "group_id" : "group_jid");
    if (!contact && !group)
        return bz_reject(err, "missing_field",
                         "field contact_id: a recipient is required (contact_id, contact_phone, "
                         "contact_jid, group_id or group_jid)");
    if (set(group_jid) && !bz_jid_is_group(group_jid) && !bz_meta_group_id_valid(group_jid))
        return bz_reject(err, "invalid_field",
                         "field group_jid: neither a group JID (...@g.us) nor a Meta group id");
    bz_status st = check_text("contact_phone", phone, 32, err);
    if (st == BZ_OK)
        st = check_text("contact_jid", contact_jid, 128, err);
    if (st == BZ_OK)
        st = check_text("group_jid", group_jid, 128, err);
    return st;
}

static int is_media_type(int t)
{
    switch (t) {
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VIDEO:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_AUDIO:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_DOCUMENT:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_STICKER:
        return 1;
    default:
        return 0;
    }
}

/* The length of the host name at p (the URL after its scheme): dotted
 * labels of letters, digits and '-', at least two, the last starting with
 * a letter, followed by an optional :port and then the end, '/', '?' or
 * '#' (docs/openapi.yaml's pattern); 0 when p has no such host. */
static size_t named_host_length(const char *p)
{
    size_t n = 0, label = 0, dots = 0;
    for (; isalnum((unsigned char)p[n]) || p[n] == '-' || p[n] == '.'; n++) {
        if (p[n] != '.')
            continue;
        if (n == label)
            return 0;
        dots++;
        label = n + 1;
    }
    if (dots == 0 || n == label || !isalpha((unsigned char)p[label]))
        return 0;
    size_t after = n;
    if (p[after] == ':') {
        size_t digits = strspn(p + after + 1, "0123456789");
        if (digits < 1 || digits > 5)
            return 0;
        after += 1 + digits;
    }
    return strchr("/?#", p[after]) ? n : 0;
}

/* A gateway downloads media.url, so its host is a public name: address
 * literals (127.0.0.1, [::1], 2130706433), names without a dot (localhost,
 * intranet hosts), .localhost names and userinfo are refused. What a name
 * resolves to is the gateway's to check at connect time (ARCHITECTURE.md
 * §9), as the webhook dispatcher does. */
static bz_status check_media_host(const char *url, bz_error *err)
{
    const char *host = strstr(url, "://") + 3;
    size_t n = named_host_length(host);
    if (n >= 10 && strncasecmp(host + n - 10, ".localhost", 10) == 0)
        n = 0;
    if (n > 0)
        return BZ_OK;
    return bz_reject(err, "invalid_field",
                     "field media.url: the host must be a public DNS name (dotted labels of "
                     "letters, digits and '-', ending in a label that starts with a letter); "
                     "address literals, localhost and names without a dot are refused");
}

/* An http(s) URL of at most BZ_CRM_URL_MAX bytes, spaces and non-ASCII
 * percent-encoded. */
static bz_status check_url(const char *field, const char *url, bz_error *err)
{
    size_t n = strlen(url);
    if (n > BZ_CRM_URL_MAX)
        return bz_reject(err, "invalid_field", "field %s: %zu bytes, at most %d", field, n,
                         BZ_CRM_URL_MAX);
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
        return bz_reject(err, "invalid_field", "field %s: must be http:// or https://", field);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
            return bz_reject(err, "invalid_field",
                             "field %s: spaces and non-ASCII must be percent-encoded", field);
    return BZ_OK;
}

static bz_status check_media(const Blazz__V1__MediaInfo *m, bz_error *err)
{
    if (!m)
        return bz_reject(err, "missing_field", "field media: required for a media message");
    /* exactly one source: a link, a provider's media id, or media the
     * backbone stores (stored_media_uuid, resolved by ingest, §16.6) */
    int sources = set(m->url) + set(m->media_id) + set(m->stored_media_uuid);
    if (sources != 1)
        return bz_reject(err, sources ? "invalid_field" : "missing_field",
                         "field media.url: give either a url, a provider media_id or the "
                         "media_id of stored media");
    if (set(m->url)) {
        bz_status st = check_url("media.url", m->url, err);
        if (st == BZ_OK)
            st = check_media_host(m->url, err);
        if (st != BZ_OK)
            return st;
    }
    const char *slash = set(m->mime_type) ? strchr(m->mime_type, '/') : NULL;
    if (!slash || slash == m->mime_type || !slash[1] || strlen(m->mime_type) > 127 ||
        strchr(m->mime_type, ' '))
        return bz_reject(err, set(m->mime_type) ? "invalid_field" : "missing_field",
                         "field media.mime_type: required, as type/subtype (image/jpeg)");
    bz_status st = check_text("media.caption", m->caption, BZ_CRM_CAPTION_MAX_CHARS, err);
    if (st == BZ_OK)
        st = check_text("media.filename", m->filename, 255, err);
    if (st == BZ_OK)
        st = check_text("media.media_id", m->media_id, 256, err);
    return st;
}

static bz_status check_params(const char *field, char *const *params, size_t n, bz_error *err)
{
    if (n > BZ_CRM_TEMPLATE_PARAMS_MAX)
        return bz_reject(err, "invalid_field", "field %s: %zu parameters, at most %d", field, n,
                         BZ_CRM_TEMPLATE_PARAMS_MAX);
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s[%zu]", field, i);
        if (!set(params[i]))
            return bz_reject(err, "missing_field", "field %s: empty parameter", name);
        bz_status st = check_text(name, params[i], BZ_CRM_PARAM_MAX_CHARS, err);
        if (st != BZ_OK)
            return st;
    }
    return BZ_OK;
}

static bz_status check_template(const Blazz__V1__TemplateMessage *t, bz_error *err)
{
    if (!t || !set(t->name))
        return bz_reject(err, "missing_field", "field template.name: required for a template");
    for (const char *c = t->name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return bz_reject(err, "invalid_field",
                             "field template.name: lowercase letters, digits and _ only");
    if (strlen(t->name) > 512)
        return bz_reject(err, "invalid_field", "field template.name: longer than 512");
    if (set(t->language) && strlen(t->language) > 16)
        return bz_reject(err, "invalid_field", "field template.language: longer than 16");
    bz_status st = check_params("template.body_params", t->body_params, t->n_body_params, err);
    if (st == BZ_OK)
        st = check_params("template.header_params", t->header_params, t->n_header_params, err);
    if (st == BZ_OK)
        st = check_params("template.button_params", t->button_params, t->n_button_params, err);
    return st;
}

/* A reaction: the message it acts on and the emoji, nothing else. */
static bz_status check_reaction(const Blazz__V1__SendChatMessage *s, bz_error *err)
{
    if (set(s->body) || s->media || s->template_ || s->interactive || set(s->reply_to_wam_id))
        return bz_reject(err, "invalid_field",
                         "field message_type: a reaction carries target_wam_id and emoji only");
    if (!set(s->target_wam_id))
        return bz_reject(err, "missing_field",
                         "field target_wam_id: required for a reaction (the message reacted to)");
    bz_status st = check_text("target_wam_id", s->target_wam_id, 128, err);
    return st == BZ_OK ? check_text("emoji", s->emoji, BZ_CRM_EMOJI_MAX_CHARS, err) : st;
}

/* The strings of an interactive message: UTF-8 and bounded (Meta's own
 * limits, per kind, are wa/meta_limits.h's). */
static bz_status check_interactive_text(const Blazz__V1__InteractiveMessage *in, bz_error *err)
{
    bz_status st = check_text("interactive.header_text", in->header_text,
                               BZ_CRM_INTERACTIVE_TEXT_MAX_CHARS, err);
    if (st == BZ_OK)
        st = check_text("interactive.footer", in->footer, BZ_CRM_INTERACTIVE_TEXT_MAX_CHARS, err);
    if (st == BZ_OK)
        st = check_text("interactive.button", in->button, BZ_CRM_INTERACTIVE_TEXT_MAX_CHARS, err);
    if (st == BZ_OK)
        st = check_text("interactive.display_text", in->display_text,
                        BZ_CRM_INTERACTIVE_TEXT_MAX_CHARS, err);
    const char *const flow_texts[] = {in->flow_id, in->flow_name, in->flow_cta, in->flow_token,
                                      in->flow_screen};
    static const char *const flow_names[] = {"interactive.flow_id", "interactive.flow_name",
                                             "interactive.flow_cta", "interactive.flow_token",
                                             "interactive.flow_screen"};
    for (size_t i = 0; st == BZ_OK && i < sizeof flow_texts / sizeof flow_texts[0]; i++)
        st = check_text(flow_names[i], flow_texts[i], BZ_CRM_INTERACTIVE_TEXT_MAX_CHARS, err);
    for (size_t i = 0; st == BZ_OK && i < in->n_sections; i++) {
        char field[96];
        snprintf(field, sizeof field, "interactive.sections[%zu].title", i);
        st = check_text(field, in->sections[i]->title, BZ_CRM_INTERACTIVE_TEXT_MAX_CHARS, err);
        for (size_t r = 0; st == BZ_OK && r < in->sections[i]->n_rows; r++) {
            const Blazz__V1__InteractiveRow *row = in->sections[i]->rows[r];
            const char *parts[] = {row->id, row->title, row->description};
            static const char *const names[] = {"id", "title", "description"};
            for (size_t k = 0; st == BZ_OK && k < 3; k++) {
                snprintf(field, sizeof field, "interactive.sections[%zu].rows[%zu].%s", i, r,
                         names[k]);
                st = check_text(field, parts[k], BZ_CRM_INTERACTIVE_TEXT_MAX_CHARS, err);
            }
        }
    }
    return st;
}

/* A list's button, and its sections each with rows that have an id and a
 * title. */
static bz_status check_list_parts(const Blazz__V1__InteractiveMessage *in, bz_error *err)
{
    if (!set(in->button))
        return bz_reject(err, "missing_field", "field interactive.button: required for a list");
    if (!in->n_sections)
        return bz_reject(err, "missing_field",
                         "field interactive.sections: a list has at least one");
    for (size_t i = 0; i < in->n_sections; i++) {
        if (!in->sections[i]->n_rows)
            return bz_reject(err, "missing_field",
                             "field interactive.sections[%zu].rows: a section has at least one", i);
        for (size_t r = 0; r < in->sections[i]->n_rows; r++) {
            const Blazz__V1__InteractiveRow *row = in->sections[i]->rows[r];
            if (!set(row->id) || !set(row->title))
                return bz_reject(err, "missing_field",
                                 "field interactive.sections[%zu].rows[%zu].%s: required", i, r,
                                 set(row->id) ? "title" : "id");
        }
    }
    return BZ_OK;
}

/* The name of the first flow member in given, NULL when none is. */
static const char *flow_part_given(const Blazz__V1__InteractiveMessage *in)
{
    const char *const parts[] = {in->flow_id,     in->flow_name,   in->flow_cta,
                                 in->flow_token,  in->flow_action, in->flow_screen,
                                 in->flow_data_json};
    static const char *const names[] = {"flow_id",     "flow_name",   "flow_cta", "flow_token",
                                        "flow_action", "flow_screen", "flow_data"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (set(parts[i]))
            return names[i];
    return in->flow_draft ? "flow_mode" : NULL;
}

/* Meta's flow message: the flow by id or name, not both; its button's
 * label; "navigate" (the default) or "data_exchange", a first screen and
 * its data (a non-empty JSON object, given with the screen it is for)
 * only when it navigates. */
static bz_status check_flow_parts(const Blazz__V1__InteractiveMessage *in, bz_error *err)
{
    if (set(in->flow_id) == set(in->flow_name))
        return bz_reject(err, set(in->flow_id) ? "invalid_field" : "missing_field",
                         "field interactive.flow_id: a flow is named by flow_id or flow_name, "
                         "one of them");
    if (!set(in->flow_cta))
        return bz_reject(err, "missing_field", "field interactive.flow_cta: required for a flow");
    int exchange = set(in->flow_action) && strcmp(in->flow_action, "data_exchange") == 0;
    if (set(in->flow_action) && !exchange && strcmp(in->flow_action, "navigate") != 0)
        return bz_reject(err, "invalid_field",
                         "field interactive.flow_action: navigate or data_exchange");
    if (exchange && (set(in->flow_screen) || set(in->flow_data_json)))
        return bz_reject(err, "invalid_field",
                         "field interactive.%s: only a flow that navigates starts at a screen",
                         set(in->flow_screen) ? "flow_screen" : "flow_data");
    if (!set(in->flow_data_json))
        return BZ_OK;
    if (!set(in->flow_screen))
        return bz_reject(err, "missing_field",
                         "field interactive.flow_screen: the first screen, which flow_data is "
                         "for");
    size_t n = strlen(in->flow_data_json);
    if (n > BZ_CRM_FLOW_DATA_MAX)
        return bz_reject(err, "invalid_field", "field interactive.flow_data: %zu bytes, at most %d",
                         n, BZ_CRM_FLOW_DATA_MAX);
    json_t *data = json_loadb(in->flow_data_json, n, JSON_REJECT_DUPLICATES, NULL);
    int object = json_is_object(data) && json_object_size(data) > 0;
    json_decref(data);
    return object ? BZ_OK
                  : bz_reject(err, "invalid_field",
                              "field interactive.flow_data: a JSON object with at least one "
                              "member (Meta takes no empty one)");
}

/* An interactive message: its kind, its body, and only its kind's parts;
 * to a contact (no group takes one: Meta's group messaging page). */
static bz_status check_interactive(const Blazz__V1__SendChatMessage *s, bz_error *err)
{
    const Blazz__V1__InteractiveMessage *in = s->interactive;
    if (!in || in->kind == BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_UNSPECIFIED)
        return bz_reject(err, "missing_field",
                         "field interactive.type: required for an interactive message (list, "
                         "cta_url, location_request or flow)");
    if (s->media || s->template_)
        return bz_reject(err, "invalid_field", "field %s: an interactive message has none",
                         s->media ? "media" : "template");
    if (s->group_id || set(s->group_jid))
        return bz_reject(err, "invalid_field",
                         "field message_type: a group takes no interactive message");
    if (!set(s->body))
        return bz_reject(err, "missing_field", "field body: required for an interactive message");
    int list = in->kind == BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LIST;
    int cta = in->kind == BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_CTA_URL;
    int flow = in->kind == BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_FLOW;
    const char *flow_part = flow_part_given(in);
    if (!flow && flow_part)
        return bz_reject(err, "invalid_field", "field interactive.%s: only a flow has one",
                         flow_part);
    if (!list && (set(in->button) || in->n_sections))
        return bz_reject(err, "invalid_field", "field interactive.%s: only a list has one",
                         set(in->button) ? "button" : "sections");
    if (!cta && (set(in->display_text) || set(in->url)))
        return bz_reject(err, "invalid_field", "field interactive.%s: only a cta_url has one",
                         set(in->url) ? "url" : "display_text");
    if (cta && !set(in->url))
        return bz_reject(err, "missing_field", "field interactive.url: required for a cta_url");
    if (cta && !set(in->display_text))
        return bz_reject(err, "missing_field",
                         "field interactive.display_text: required for a cta_url");
    bz_status st = cta    ? check_url("interactive.url", in->url, err)
                   : list ? check_list_parts(in, err)
                   : flow ? check_flow_parts(in, err)
                          : BZ_OK;
    if (st == BZ_OK)
        st = check_text("body", s->body, BZ_CRM_TEXT_MAX_CHARS, err);
    return st == BZ_OK ? check_interactive_text(in, err) : st;
}

bz_status bz_crm_send_content_check(const Blazz__V1__SendChatMessage *s, bz_error *err)
{
    int type = s->message_type;
    if (type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION)
        return check_reaction(s, err);
    if (set(s->target_wam_id) || set(s->emoji))
        return bz_reject(err, "invalid_field",
                         "field %s: only a reaction (message_type reaction) has one",
                         set(s->target_wam_id) ? "target_wam_id" : "emoji");
    if (type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE)
        return check_interactive(s, err);
    if (s->interactive)
        return bz_reject(err, "invalid_field",
                         "field interactive: only an interactive message (message_type "
                         "interactive) has one");
    if (type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT) {
        if (!set(s->body))
            return bz_reject(err, "missing_field", "field body: required for a text message");
        return check_text("body", s->body, BZ_CRM_TEXT_MAX_CHARS, err);
    }
    if (type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE)
        return check_template(s->template_, err);
    if (is_media_type(type))
        return check_media(s->media, err);
    return bz_reject(err, "invalid_field",
                     "field message_type: text, image, video, audio, voice, document, sticker, "
                     "template, reaction or interactive");
}

static bz_status check_send(const Blazz__V1__SendChatMessage *s, int64_t workspace_id,
                            bz_error *err)
{
    bz_status st = bz_crm_idempotency_key_check(s->idempotency_key, err);
    if (st != BZ_OK)
        return st;
    char expected[BZ_UUID_STR_SIZE];
    bz_crm_message_id(workspace_id, s->idempotency_key, expected);
    if (!set(s->message_id) || strcmp(s->message_id, expected) != 0)
        return bz_reject(err, "invalid_field",
                         "field message_id: must be derived from the workspace and "
                         "idempotency_key (libs/wa/crm_command.h)");
    if (s->whatsapp_account_id < 0 || s->user_id < 0)
        return bz_reject(err, "invalid_field", "field %s: must be a positive id",
                         s->user_id < 0 ? "user_id" : "whatsapp_account_id");
    st = check_recipient(s->contact_id, s->contact_phone, s->contact_jid, s->group_id,
                         s->group_jid, err);
    if (st == BZ_OK)
        st = bz_crm_send_content_check(s, err);
    if (st == BZ_OK)
        st = check_text("reply_to_wam_id", s->reply_to_wam_id, 128, err);
    return st;
}

static bz_status check_read(const Blazz__V1__MarkChatRead *r, bz_error *err)
{
    if (r->up_to_ms < 0 || r->user_id < 0)
        return bz_reject(err, "invalid_field", "field %s: must not be negative",
                         r->user_id < 0 ? "user_id" : "up_to_ms");
    bz_status st =
        check_recipient(r->contact_id, r->contact_phone, r->contact_jid, r->group_id,
                        r->group_jid, err);
    if (st == BZ_OK)
        st = check_text("up_to_wam_id", r->up_to_wam_id, 128, err);
    return st;
}

/* Reads at most BZ_SESSION_ID_MAX + 1 bytes of s, whatever its length. */
int bz_session_id_valid(const char *s)
{
    if (!s || s[0] == '.')
        return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        int safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == '-';
        if (n == BZ_SESSION_ID_MAX || !safe || (c == '.' && s[n + 1] == '.'))
            return 0;
    }
    return n > 0;
}

bz_status bz_session_id_check(const char *field, const char *s, bz_error *err)
{
    if (bz_session_id_valid(s))
        return BZ_OK;
    return bz_reject(err, "invalid_field",
                     "field %s: 1 to %d letters, digits, '.', '_' or '-', not starting with '.' "
                     "and without '..'",
                     field, BZ_SESSION_ID_MAX);
}

static bz_status check_session(const Blazz__V1__CrmCommand *cmd, bz_error *err)
{
    const Blazz__V1__SessionRequest *r = cmd->session;
    if (r->action <= BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_UNSPECIFIED ||
        r->action > BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_HISTORY_SYNC)
        return bz_reject(err, "invalid_field", "field action: unknown session action %d",
                         r->action);
    bz_status st = bz_session_id_check("session_id", cmd->envelope->session_id, err);
    if (st != BZ_OK)
        return st;
    if (set(r->gateway_id) && !bz_gateway_id_valid(r->gateway_id))
        return bz_reject(err, "invalid_field", "field gateway_id: not a gateway id");
    if (r->user_id < 0)
        return bz_reject(err, "invalid_field", "field user_id: must not be negative");
    if (!set(cmd->conversation) || strcmp(cmd->conversation, BZ_CRM_SESSION_CONVERSATION) != 0)
        return bz_reject(err, "invalid_field", "field conversation: a session command's is '%s'",
                         BZ_CRM_SESSION_CONVERSATION);
    return BZ_OK;
}

/* A merge names two contacts by id, neither the other, and nothing else. */
static bz_status check_merge(const Blazz__V1__ContactRequest *r, bz_error *err)
{
    if (r->merged_contact_id < 0)
        return bz_reject(err, "invalid_field", "field merged_contact_id: must be a positive id");
    if (r->contact_id == 0)
        return bz_reject(err, "missing_field",
                         "field contact_id: a merge names the contact that survives it");
    if (r->merged_contact_id == r->contact_id)
        return bz_reject(err, "invalid_field",
                         "field merged_contact_id: a contact cannot be merged into itself");
    const char *more = set(r->phone)   ? "phone"
                       : set(r->bsuid) ? "bsuid"
                       : set(r->name)  ? "name"
                       : r->opt_out    ? "opted_out"
                                       : NULL;
    if (more)
        return bz_reject(err, "invalid_field", "field %s: a merge changes nothing else", more);
    return BZ_OK;
}

/* A create names the contact by an E.164 phone and/or a BSUID and changes
 * no opt-out; a change names the contact by id and changes something; a
 * merge is check_merge's. */
static bz_status check_contact(const Blazz__V1__ContactRequest *r, bz_error *err)
{
    if (r->contact_id < 0)
        return bz_reject(err, "invalid_field", "field contact_id: must be a positive id");
    if (r->merged_contact_id)
        return check_merge(r, err);
    if (r->opt_out < BLAZZ__V1__CONTACT_OPT_OUT__CONTACT_OPT_OUT_UNCHANGED ||
        r->opt_out > BLAZZ__V1__CONTACT_OPT_OUT__CONTACT_OPT_OUT_IN)
        return bz_reject(err, "invalid_field", "field opted_out: unknown opt-out change %d",
                         r->opt_out);
    bz_status st = check_text("name", r->name, BZ_CRM_CONTACT_NAME_MAX_CHARS, err);
    if (st != BZ_OK || r->contact_id > 0) {
        if (st == BZ_OK && !set(r->name) && !r->opt_out)
            st = bz_reject(err, "missing_field",
                           "field name: a change needs a name or opted_out");
        return st;
    }
    if (!set(r->phone) && !set(r->bsuid))
        return bz_reject(err, "missing_field",
                         "field phone: a new contact needs a phone (E.164) or a bsuid");
    if (set(r->phone) && !bz_phone_is_e164(r->phone))
        return bz_reject(err, "invalid_field", "field phone: not an E.164 phone (+<digits>)");
    if (set(r->bsuid) && !bz_bsuid_valid(r->bsuid))
        return bz_reject(err, "invalid_field",
                         "field bsuid: not a BSUID (CC.<1-128 letters and digits>)");
    if (r->opt_out)
        return bz_reject(err, "invalid_field",
                         "field opted_out: a new contact takes campaigns; opt it out with PATCH");
    return BZ_OK;
}

bz_status bz_crm_command_check(const Blazz__V1__CrmCommand *cmd, bz_error *err)
{
    const Blazz__V1__Envelope *env = cmd->envelope;
    if (!env || !set(env->event_id))
        return bz_reject(err, "missing_event_id", "crm command without envelope.event_id");
    if (env->workspace_id <= 0)
        return bz_reject(err, "missing_workspace", "crm command %s without workspace_id",
                         env->event_id);
    bz_status st;
    switch (cmd->command_case) {
    case BLAZZ__V1__CRM_COMMAND__COMMAND_SEND:
        st = check_send(cmd->send, env->workspace_id, err);
        break;
    case BLAZZ__V1__CRM_COMMAND__COMMAND_MARK_READ:
        st = check_read(cmd->mark_read, err);
        break;
    case BLAZZ__V1__CRM_COMMAND__COMMAND_SESSION:
        st = check_session(cmd, err);
        break;
    case BLAZZ__V1__CRM_COMMAND__COMMAND_CONTACT:
        st = check_contact(cmd->contact, err);
        break;
    default:
        return bz_reject(err, "unknown_command", "crm command %s: no command set (newer producer?)",
                         env->event_id);
    }
    /* after the command's own fields: the conversation is derived from its
     * recipient, so a request without one (or with two) is told about the
     * field it gave or lacks, not about the record's key */
    if (st == BZ_OK && !set(cmd->conversation))
        st = bz_reject(err, "missing_field", "field conversation: crm command %s has none",
                       env->event_id);
    return st;
}

void bz_crm_send_content(const Blazz__V1__SendChatMessage *s, const char *body_text,
                         Blazz__V1__SendMessage *m)
{
    int reaction = s->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION;
    m->message_type = s->message_type;
    m->body = (char *)(reaction ? s->emoji : body_text);
    m->template_ = s->template_;
    m->media = s->media;
    m->interactive = s->interactive;
    /* a reaction's target travels as the quoted message (SendMessage's
     * convention) */
    m->quoted_wam_id = reaction ? s->target_wam_id : s->reply_to_wam_id;
}

/* Append s to buf with a 4-byte big-endian length prefix. */
static size_t feed(unsigned char *buf, size_t at, const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len > max)
        len = max;
    buf[at] = (unsigned char)(len >> 24);
    buf[at + 1] = (unsigned char)(len >> 16);
    buf[at + 2] = (unsigned char)(len >> 8);
    buf[at + 3] = (unsigned char)len;
    memcpy(buf + at + 4, s, len);
    return at + 4 + len;
}

void bz_crm_message_id(int64_t workspace_id, const char *idempotency_key,
                       char out[BZ_UUID_STR_SIZE])
{
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, workspace_id);
    unsigned char name[3 * 4 + sizeof DOMAIN + sizeof ws + BZ_CRM_IDEMPOTENCY_KEY_MAX * 8];
    size_t n = feed(name, 0, DOMAIN, sizeof DOMAIN);
    n = feed(name, n, ws, sizeof ws);
    n = feed(name, n, idempotency_key ? idempotency_key : "", BZ_CRM_IDEMPOTENCY_KEY_MAX * 8);
    bz_uuid_derive(name, n, out);
}

void bz_crm_command_address(Blazz__V1__CrmCommand *cmd, Blazz__V1__Envelope *env,
                            char *event_id, int64_t workspace_id, const char *source,
                            const char *conversation)
{
    blazz__v1__envelope__init(env);
    env->event_id = env->trace_id = event_id;
    env->occurred_at_ms = env->produced_at_ms = bz_wall_ms();
    env->source = (char *)source;
    env->workspace_id = workspace_id;
    cmd->envelope = env;
    cmd->conversation = (char *)conversation;
}

const char *bz_crm_conversation(const char *phone, const char *contact_jid, const char *group_jid)
{
    if (set(phone))
        return phone;
    if (set(contact_jid))
        return contact_jid;
    return group_jid ? group_jid : "";
}
