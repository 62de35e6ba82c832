/*
 * crm_json.c - parsing the CRM's request bodies (see crm_json.h).
 *
 * The commands are built field by field with heap strings on top of the
 * generated initializers (whose empty strings are protobuf-c's shared
 * default), so protobuf-c's free_unpacked releases a command built here
 * exactly as it releases an unpacked one, also halfway through a failure.
 */
#include "crm/crm_json.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json_number.h"
#include "core/timespec.h"
#include "core/utf8.h"
#include "crm/crm_interactive_json.h"
#include "crm/crm_json_members.h"
#include "kafka/topics.h"
#include "pg/columns.h"
#include "wa/jid.h"
#include "wa/meta_group.h"
#include "wa/phone.h"


static const field_rule recipient_rules[] = {
    {"contact_id", JSON_INTEGER}, {"contact_phone", JSON_STRING}, {"contact_jid", JSON_STRING},
    {"group_id", JSON_INTEGER},   {"group_jid", JSON_STRING},     {"user_id", JSON_INTEGER},
    {NULL, JSON_NULL}};

static const field_rule send_rules[] = {
    {"idempotency_key", JSON_STRING}, {"whatsapp_account_id", JSON_INTEGER},
    {"message_type", JSON_STRING},    {"body", JSON_STRING},
    {"media", JSON_OBJECT},           {"template", JSON_OBJECT},
    {"reply_to_wam_id", JSON_STRING}, {"target_wam_id", JSON_STRING},
    {"emoji", JSON_STRING},           {"interactive", JSON_OBJECT},
    {NULL, JSON_NULL}};

static const field_rule read_rules[] = {
    {"up_to_wam_id", JSON_STRING}, {"up_to_ms", JSON_INTEGER}, {NULL, JSON_NULL}};

static const field_rule media_rules[] = {
    {"url", JSON_STRING},     {"media_id", JSON_STRING}, {"mime_type", JSON_STRING},
    {"caption", JSON_STRING}, {"filename", JSON_STRING}, {NULL, JSON_NULL}};

static const field_rule template_rules[] = {
    {"name", JSON_STRING},         {"language", JSON_STRING},     {"body_params", JSON_ARRAY},
    {"header_params", JSON_ARRAY}, {"button_params", JSON_ARRAY}, {NULL, JSON_NULL}};

static bz_status take_params(json_t *obj, const char *name, const char *path, char ***dst,
                             size_t *n, bz_error *err)
{
    json_t *a = json_object_get(obj, name);
    size_t count = json_array_size(a);
    if (count == 0)
        return BZ_OK;
    if (!(*dst = calloc(count, sizeof **dst)))
        return bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
    for (size_t i = 0; i < count; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s)
            return bz_reject(err, "invalid_field", "field %s[%zu]: must be a string", path, i);
        if (!((*dst)[i] = strdup(s)))
            return bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
        (*n)++;
    }
    return BZ_OK;
}

/* ---- the recipient -------------------------------------------------------------------- */

typedef struct recipient {
    int64_t *contact_id, *group_id, *user_id;
    char **contact_phone, **contact_jid, **group_jid;
} recipient;

/* Phones to E.164, JIDs canonical; a user JID is its phone. A user JID
 * that gave the phone stays in contact_jid too, so that a contact not
 * found is told by the field the request named (crm_messages.c); the
 * lookup replaces it. */
static bz_status take_recipient(json_t *root, const char *default_cc, const recipient *r,
                                bz_error *err)
{
    *r->contact_id = ing_crm_int_of(root, "contact_id");
    *r->group_id = ing_crm_int_of(root, "group_id");
    *r->user_id = ing_crm_int_of(root, "user_id");
    const char *phone = json_string_value(json_object_get(root, "contact_phone"));
    const char *jid = json_string_value(json_object_get(root, "contact_jid"));
    const char *group = json_string_value(json_object_get(root, "group_jid"));
    char out[BZ_JID_SIZE];
    bz_status st = BZ_OK;
    if (phone) {
        if (bz_phone_normalize(phone, default_cc, out, sizeof out, err) != BZ_OK) {
            bz_wrap(err, "field contact_phone");
            return bz_reclass(err, BZ_ERR_INVALID, "invalid_field");
        }
        st = ing_crm_set_string(r->contact_phone, out, err);
    }
    if (st == BZ_OK && jid) {
        bz_jid_kind kind;
        if (bz_jid_canonicalize(jid, out, sizeof out, &kind, err) != BZ_OK ||
            (kind != BZ_JID_USER && kind != BZ_JID_LID))
            return bz_reject(err, "invalid_field", "field contact_jid: not a contact's JID");
        if (kind == BZ_JID_USER) {
            char e164[BZ_PHONE_E164_SIZE];
            st = bz_jid_to_phone(out, e164, sizeof e164, err);
            if (st == BZ_OK && !**r->contact_phone) {
                st = ing_crm_set_string(r->contact_phone, e164, err);
                if (st == BZ_OK)
                    st = ing_crm_set_string(r->contact_jid, out, err);
            }
        } else {
            st = ing_crm_set_string(r->contact_jid, out, err);
        }
    }
    if (st == BZ_OK && group && bz_meta_group_id_valid(group)) {
        /* a Meta group's id, kept as Meta gave it (wa/meta_group.h) */
        st = ing_crm_set_string(r->group_jid, group, err);
    } else if (st == BZ_OK && group) {
        bz_jid_kind kind;
        if (bz_jid_canonicalize(group, out, sizeof out, &kind, err) != BZ_OK ||
            kind != BZ_JID_GROUP)
            return bz_reject(err, "invalid_field",
                             "field group_jid: neither a group JID (...@g.us) nor a Meta group "
                             "id");
        st = ing_crm_set_string(r->group_jid, out, err);
    }
    return st;
}

static json_t *load_object(const char *body, size_t len, bz_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        bz_reject(err, "invalid_json", "field body: not JSON: %s (line %d)", jerr.text,
                  jerr.line);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        bz_reject(err, "invalid_json", "field body: must be a JSON object");
        return NULL;
    }
    return root;
}

/* ---- sends ----------------------------------------------------------------------------- */

static int message_type_of(const char *name)
{
    static const struct {
        const char *name;
        int type;
    } types[] = {{"text", BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT},
                 {"image", BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE},
                 {"video", BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VIDEO},
                 {"audio", BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_AUDIO},
                 {"voice", BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE},
                 {"document", BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_DOCUMENT},
                 {"sticker", BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_STICKER},
                 {"template", BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE},
                 {"reaction", BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION},
                 {"interactive", BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, name) == 0)
            return types[i].type;
    return -1;
}

static bz_status take_media(json_t *root, Blazz__V1__SendChatMessage *s, bz_error *err)
{
    json_t *m = json_object_get(root, "media");
    if (!json_is_object(m))
        return BZ_OK;
    const field_rule *sets[] = {media_rules, NULL};
    bz_status st = ing_crm_check_members(m, "media.", sets, err);
    if (st != BZ_OK)
        return st;
    if (!(s->media = malloc(sizeof *s->media)))
        return bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
    blazz__v1__media_info__init(s->media);
    st = ing_crm_take_string(m, "url", &s->media->url, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(m, "media_id", &s->media->media_id, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(m, "mime_type", &s->media->mime_type, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(m, "caption", &s->media->caption, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(m, "filename", &s->media->filename, err);
    return st;
}

static bz_status take_template(json_t *root, Blazz__V1__SendChatMessage *s, bz_error *err)
{
    json_t *t = json_object_get(root, "template");
    if (!json_is_object(t))
        return BZ_OK;
    const field_rule *sets[] = {template_rules, NULL};
    bz_status st = ing_crm_check_members(t, "template.", sets, err);
    if (st != BZ_OK)
        return st;
    if (!(s->template_ = malloc(sizeof *s->template_)))
        return bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
    Blazz__V1__TemplateMessage *m = s->template_;
    blazz__v1__template_message__init(m);
    st = ing_crm_take_string(t, "name", &m->name, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(t, "language", &m->language, err);
    if (st == BZ_OK)
        st = take_params(t, "body_params", "template.body_params", &m->body_params,
                         &m->n_body_params, err);
    if (st == BZ_OK)
        st = take_params(t, "header_params", "template.header_params", &m->header_params,
                         &m->n_header_params, err);
    if (st == BZ_OK)
        st = take_params(t, "button_params", "template.button_params", &m->button_params,
                         &m->n_button_params, err);
    return st;
}

static bz_status fill_send(json_t *root, const char *idempotency_header, const char *default_cc,
                           Blazz__V1__SendChatMessage *s, bz_error *err)
{
    const field_rule *sets[] = {recipient_rules, send_rules, NULL};
    bz_status st = ing_crm_check_members(root, "", sets, err);
    recipient r = {&s->contact_id, &s->group_id, &s->user_id,
                   &s->contact_phone, &s->contact_jid, &s->group_jid};
    if (st == BZ_OK)
        st = take_recipient(root, default_cc, &r, err);
    s->whatsapp_account_id = ing_crm_int_of(root, "whatsapp_account_id");
    if (st == BZ_OK && idempotency_header && *idempotency_header)
        st = ing_crm_set_string(&s->idempotency_key, idempotency_header, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(root, "idempotency_key", &s->idempotency_key, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(root, "body", &s->body, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(root, "reply_to_wam_id", &s->reply_to_wam_id, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(root, "target_wam_id", &s->target_wam_id, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(root, "emoji", &s->emoji, err);
    if (st == BZ_OK)
        st = take_media(root, s, err);
    if (st == BZ_OK)
        st = take_template(root, s, err);
    if (st == BZ_OK)
        st = ing_crm_json_interactive(root, s, err);
    const char *type = json_string_value(json_object_get(root, "message_type"));
    if (st == BZ_OK) {
        s->message_type = type ? message_type_of(type)
                          : s->template_ ? BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE
                                         : BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
        if (s->message_type < 0)
            st = bz_reject(err, "invalid_field",
                           "field message_type: text, image, video, audio, voice, document, "
                           "sticker, template, reaction or interactive");
    }
    return st;
}

bz_status ing_crm_json_send(const char *body, size_t len, const char *idempotency_header,
                           const char *default_cc, Blazz__V1__SendChatMessage **out,
                           bz_error *err)
{
    json_t *root = load_object(body, len, err);
    if (!root)
        return err->code;
    Blazz__V1__SendChatMessage *s = malloc(sizeof *s);
    bz_status st = s ? BZ_OK : bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
    if (st == BZ_OK) {
        blazz__v1__send_chat_message__init(s);
        st = fill_send(root, idempotency_header, default_cc, s, err);
    }
    json_decref(root);
    if (st != BZ_OK) {
        if (s)
            blazz__v1__send_chat_message__free_unpacked(s, NULL);
        return st;
    }
    *out = s;
    return BZ_OK;
}

/* ---- reads ----------------------------------------------------------------------------- */

bz_status ing_crm_json_read(const char *body, size_t len, const char *default_cc,
                           Blazz__V1__MarkChatRead **out, bz_error *err)
{
    json_t *root = load_object(body, len, err);
    if (!root)
        return err->code;
    Blazz__V1__MarkChatRead *r = malloc(sizeof *r);
    bz_status st = r ? BZ_OK : bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
    const field_rule *sets[] = {recipient_rules, read_rules, NULL};
    if (st == BZ_OK) {
        blazz__v1__mark_chat_read__init(r);
        st = ing_crm_check_members(root, "", sets, err);
    }
    recipient rc = r ? (recipient){&r->contact_id, &r->group_id, &r->user_id, &r->contact_phone,
                                   &r->contact_jid, &r->group_jid}
                     : (recipient){0};
    if (st == BZ_OK)
        st = take_recipient(root, default_cc, &rc, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(root, "up_to_wam_id", &r->up_to_wam_id, err);
    if (st == BZ_OK)
        r->up_to_ms = ing_crm_int_of(root, "up_to_ms");
    json_decref(root);
    if (st != BZ_OK) {
        if (r)
            blazz__v1__mark_chat_read__free_unpacked(r, NULL);
        return st;
    }
    *out = r;
    return BZ_OK;
}

static const field_rule session_rules[] = {
    {"session_id", JSON_STRING}, {"gateway_id", JSON_STRING}, {"user_id", JSON_INTEGER},
    {"history_sync", JSON_TRUE}, {NULL, JSON_NULL}};

bz_status ing_crm_json_session(const char *body, size_t len, Blazz__V1__SessionRequest **out,
                               char **session_id, int *history_sync_named, bz_error *err)
{
    *session_id = NULL;
    *history_sync_named = 0;
    /* the restart, logout and primary routes take no body, or an empty one */
    json_t *root = len == 0 ? json_object() : load_object(body, len, err);
    if (!root)
        return len == 0 ? bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory") : err->code;
    Blazz__V1__SessionRequest *r = malloc(sizeof *r);
    bz_status st = r ? BZ_OK : bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
    const field_rule *sets[] = {session_rules, NULL};
    if (st == BZ_OK) {
        blazz__v1__session_request__init(r);
        st = ing_crm_check_members(root, "", sets, err);
    }
    if (st == BZ_OK)
        st = ing_crm_take_string(root, "gateway_id", &r->gateway_id, err);
    if (st == BZ_OK && *r->gateway_id && !bz_gateway_id_valid(r->gateway_id))
        st = bz_reject(err, "invalid_field", "field gateway_id: not a gateway id");
    const char *sid = json_string_value(json_object_get(root, "session_id"));
    if (st == BZ_OK && sid && !(*session_id = strdup(sid)))
        st = bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
    if (st == BZ_OK) {
        r->user_id = ing_crm_int_of(root, "user_id");
        /* absent or null: the sync the seeds start at every connect */
        json_t *sync = json_object_get(root, "history_sync");
        r->history_sync_off = json_is_false(sync);
        *history_sync_named = json_is_boolean(sync);
    }
    json_decref(root);
    if (st != BZ_OK) {
        if (r)
            blazz__v1__session_request__free_unpacked(r, NULL);
        free(*session_id);
        *session_id = NULL;
        return st;
    }
    *out = r;
    return BZ_OK;
}

/* ---- contacts ------------------------------------------------------------------------- */

static const field_rule contact_create_rules[] = {
    {"phone", JSON_STRING}, {"bsuid", JSON_STRING}, {"name", JSON_STRING}, {NULL, JSON_NULL}};

static const field_rule contact_change_rules[] = {
    {"name", JSON_STRING}, {"opted_out", JSON_TRUE}, {NULL, JSON_NULL}};

/* The members of a create or a change into r: a phone to E.164. */
static bz_status fill_contact(json_t *root, int create, const char *default_cc,
                              Blazz__V1__ContactRequest *r, bz_error *err)
{
    const field_rule *sets[] = {create ? contact_create_rules : contact_change_rules, NULL};
    bz_status st = ing_crm_check_members(root, "", sets, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(root, "name", &r->name, err);
    if (st == BZ_OK)
        st = ing_crm_take_string(root, "bsuid", &r->bsuid, err);
    json_t *out = json_object_get(root, "opted_out");
    if (json_is_boolean(out))
        r->opt_out = json_is_true(out) ? BLAZZ__V1__CONTACT_OPT_OUT__CONTACT_OPT_OUT_OUT
                                       : BLAZZ__V1__CONTACT_OPT_OUT__CONTACT_OPT_OUT_IN;
    const char *phone = json_string_value(json_object_get(root, "phone"));
    char e164[BZ_PHONE_E164_SIZE];
    if (st == BZ_OK && phone) {
        if (bz_phone_normalize(phone, default_cc, e164, sizeof e164, err) != BZ_OK) {
            bz_wrap(err, "field phone");
            return bz_reclass(err, BZ_ERR_INVALID, "invalid_field");
        }
        st = ing_crm_set_string(&r->phone, e164, err);
    }
    /* before the create has a conversation to be checked under */
    if (st == BZ_OK && create && !*r->phone && !*r->bsuid)
        st = bz_reject(err, "missing_field",
                       "field phone: a new contact needs a phone (E.164) or a bsuid");
    return st;
}

bz_status ing_crm_json_contact(const char *body, size_t len, int create, const char *default_cc,
                               Blazz__V1__ContactRequest **out, bz_error *err)
{
    json_t *root = load_object(body, len, err);
    if (!root)
        return err->code;
    Blazz__V1__ContactRequest *r = malloc(sizeof *r);
    bz_status st = r ? BZ_OK : bz_fail(err, BZ_ERR_NOMEM, "parse body: out of memory");
    if (st == BZ_OK) {
        blazz__v1__contact_request__init(r);
        st = fill_contact(root, create, default_cc, r, err);
    }
    json_decref(root);
    if (st != BZ_OK) {
        if (r)
            blazz__v1__contact_request__free_unpacked(r, NULL);
        return st;
    }
    *out = r;
    return BZ_OK;
}

/* The merged contact by id, or by uuid: the rule of its member's type, so
 * that anything else is refused as not the other. */
static const field_rule merge_by_id_rules[] = {{"merged_contact_id", JSON_INTEGER},
                                               {NULL, JSON_NULL}};
static const field_rule merge_by_uuid_rules[] = {{"merged_contact_id", JSON_STRING},
                                                 {NULL, JSON_NULL}};

bz_status ing_crm_json_merge(const char *body, size_t len, char *ref, size_t cap, bz_error *err)
{
    json_t *root = load_object(body, len, err);
    if (!root)
        return err->code;
    json_t *v = json_object_get(root, "merged_contact_id");
    const field_rule *sets[] = {json_is_string(v) ? merge_by_uuid_rules : merge_by_id_rules,
                                NULL};
    bz_status st = ing_crm_check_members(root, "", sets, err);
    if (st == BZ_OK && (!v || json_is_null(v)))
        st = bz_reject(err, "missing_field",
                       "field merged_contact_id: name the contact to merge into this one (its "
                       "uuid or id)");
    else if (st == BZ_OK && json_is_string(v))
        snprintf(ref, cap, "%s", json_string_value(v));
    else if (st == BZ_OK)
        snprintf(ref, cap, "%lld", (long long)ing_crm_int_of(root, "merged_contact_id"));
    json_decref(root);
    return st;
}

/* ---- webhook endpoints ---------------------------------------------------------------- */

static const field_rule endpoint_change_rules[] = {
    {"enabled", JSON_TRUE}, {"disabled_reason", JSON_STRING}, {NULL, JSON_NULL}};

bz_status ing_crm_json_endpoint_change(const char *body, size_t len, int *enabled, char *reason,
                                       size_t cap, bz_error *err)
{
    json_t *root = load_object(body, len, err);
    if (!root)
        return err->code;
    const field_rule *sets[] = {endpoint_change_rules, NULL};
    bz_status st = ing_crm_check_members(root, "", sets, err);
    json_t *on = json_object_get(root, "enabled");
    const char *why = json_string_value(json_object_get(root, "disabled_reason"));
    if (st == BZ_OK && !json_is_boolean(on))
        st = bz_reject(err, "missing_field",
                       "field enabled: say true to enable the endpoint or false to disable it");
    else if (st == BZ_OK && why && json_is_true(on))
        st = bz_reject(err, "invalid_field",
                       "field disabled_reason: only an endpoint being disabled has a reason");
    else if (st == BZ_OK && why && bz_utf8_chars(why) > ING_CRM_REASON_MAX)
        st = bz_reject(err, "invalid_field", "field disabled_reason: at most %d characters",
                       ING_CRM_REASON_MAX);
    if (st == BZ_OK) {
        *enabled = json_is_true(on);
        snprintf(reason, cap, "%s", why ? why : "");
    }
    json_decref(root);
    return st;
}

/* The date-time member name into *ms; *given 0 when absent or null. */
static bz_status take_date_time(json_t *root, const char *name, int64_t *ms, int *given,
                                bz_error *err)
{
    const char *v = json_string_value(json_object_get(root, name));
    *given = v != NULL;
    if (v && !bz_time_parse_rfc3339(v, ms))
        return bz_reject(err, "invalid_field",
                         "field %s: must be an RFC 3339 date-time with its offset, such as "
                         "2026-11-27T08:00:00Z",
                         name);
    return BZ_OK;
}

static const field_rule replay_rules[] = {{"since", JSON_STRING},
                                          {"until", JSON_STRING},
                                          {"status", JSON_STRING},
                                          {"cursor", JSON_STRING},
                                          {NULL, JSON_NULL}};

static const field_rule new_endpoint_rules[] = {
    {"url", JSON_STRING}, {"name", JSON_STRING}, {"event_types", JSON_ARRAY}, {NULL, JSON_NULL}};

/* What is wrong with url as a webhook endpoint's, NULL when nothing is:
 * the dispatcher posts to it, so it is an absolute http(s) URL with a host,
 * and carries no credentials (they would show wherever the URL does) and
 * no fragment (never sent). Where it may point is the dispatcher's to
 * check, at each connect (its SSRF guard). */
static const char *url_problem(const char *url)
{
    if (strlen(url) > ING_CRM_ENDPOINT_URL_MAX)
        return "at most 2048 bytes";
    /* libcurl's parser takes one to three slashes after the scheme; the
     * table takes http:// or https:// only (0008) */
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return "an http:// or https:// URL";
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *fragment = NULL;
    const char *problem = NULL;
    if (!u)
        problem = "a URL ingest can read (out of memory: retry)";
    else if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        problem = "a well-formed absolute URL";
    else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0))
        problem = "an http or https URL";
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        problem = "a URL with a host";
    else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
        problem = "a URL without credentials (user:password@)";
    else if (curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK)
        problem = "a URL without a fragment (#...)";
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(fragment);
    curl_url_cleanup(u);
    return problem;
}

/* An event type an endpoint may name: "*", or dotted lower-case words
 * ("message.created"), at most 64 bytes. */
static int is_event_type(const char *t)
{
    if (strcmp(t, "*") == 0)
        return 1;
    size_t n = strlen(t);
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '.' && i > 0 && i + 1 < n && t[i - 1] != '.')
            dots++;
        else if (!((t[i] >= 'a' && t[i] <= 'z') || t[i] == '_'))
            return 0;
    }
    return n <= 64 && dots > 0;
}

static bz_status take_event_types(json_t *root, char **literal, bz_error *err)
{
    json_t *types = json_object_get(root, "event_types");
    size_t n = json_is_array(types) ? json_array_size(types) : 0;
    const char *names[ING_CRM_ENDPOINT_TYPES_MAX];
    if (n == 0 && json_is_array(types))
        return bz_reject(err, "invalid_field",
                         "field event_types: name at least one, or leave it out for all (*)");
    if (n > ING_CRM_ENDPOINT_TYPES_MAX)
        return bz_reject(err, "invalid_field", "field event_types: at most %d types",
                         ING_CRM_ENDPOINT_TYPES_MAX);
    for (size_t i = 0; i < n; i++) {
        names[i] = json_string_value(json_array_get(types, i));
        if (!names[i] || !is_event_type(names[i]))
            return bz_reject(err, "invalid_field",
                             "field event_types[%zu]: an event type is * or a dotted name "
                             "such as message.created (docs/EVENTS.md)",
                             i);
    }
    static const char *const all[] = {"*"};
    *literal = n ? bz_pg_text_array(names, n) : bz_pg_text_array(all, 1);
    return *literal ? BZ_OK : bz_fail(err, BZ_ERR_NOMEM, "event types: out of memory");
}

bz_status ing_crm_json_new_endpoint(const char *body, size_t len, ing_crm_new_endpoint *out,
                                    bz_error *err)
{
    memset(out, 0, sizeof *out);
    json_t *root = load_object(body, len, err);
    if (!root)
        return err->code;
    const field_rule *sets[] = {new_endpoint_rules, NULL};
    bz_status st = ing_crm_check_members(root, "", sets, err);
    const char *url = json_string_value(json_object_get(root, "url"));
    const char *name = json_string_value(json_object_get(root, "name"));
    const char *problem = NULL;
    if (st == BZ_OK && !url)
        st = bz_reject(err, "missing_field",
                       "field url: say where the endpoint's webhooks are posted");
    else if (st == BZ_OK && (problem = url_problem(url)) != NULL)
        st = bz_reject(err, "invalid_field", "field url: must be %s", problem);
    else if (st == BZ_OK && name && bz_utf8_chars(name) > ING_CRM_ENDPOINT_NAME_MAX)
        st = bz_reject(err, "invalid_field", "field name: at most %d characters",
                       ING_CRM_ENDPOINT_NAME_MAX);
    if (st == BZ_OK)
        st = take_event_types(root, &out->event_types, err);
    if (st == BZ_OK && (!(out->url = strdup(url)) || (name && !(out->name = strdup(name)))))
        st = bz_fail(err, BZ_ERR_NOMEM, "endpoint: out of memory");
    json_decref(root);
    if (st != BZ_OK)
        ing_crm_new_endpoint_free(out);
    return st;
}

void ing_crm_new_endpoint_free(ing_crm_new_endpoint *e)
{
    free(e->url);
    free(e->name);
    free(e->event_types);
    memset(e, 0, sizeof *e);
}

static const field_rule rotation_rules[] = {{"overlap_s", JSON_INTEGER}, {NULL, JSON_NULL}};

bz_status ing_crm_json_secret_rotation(const char *body, size_t len, int *overlap_s,
                                       bz_error *err)
{
    json_t *root = load_object(body, len, err);
    if (!root)
        return err->code;
    const field_rule *sets[] = {rotation_rules, NULL};
    bz_status st = ing_crm_check_members(root, "", sets, err);
    int64_t seconds = ING_CRM_SECRET_OVERLAP_DEFAULT_S;
    json_t *given = json_object_get(root, "overlap_s");
    if (given && !json_is_null(given))
        bz_json_whole_number(given, &seconds);
    if (st == BZ_OK && (seconds < 0 || seconds > ING_CRM_SECRET_OVERLAP_MAX_S))
        st = bz_reject(err, "invalid_field",
                       "field overlap_s: from 0 (the old secret stops at once) to %d seconds "
                       "(a week)",
                       ING_CRM_SECRET_OVERLAP_MAX_S);
    *overlap_s = (int)seconds;
    json_decref(root);
    return st;
}

bz_status ing_crm_json_replay(const char *body, size_t len, ing_crm_replay *out, bz_error *err)
{
    json_t *root = load_object(body, len, err);
    if (!root)
        return err->code;
    const field_rule *sets[] = {replay_rules, NULL};
    int has_since = 0;
    bz_status st = ing_crm_check_members(root, "", sets, err);
    if (st == BZ_OK)
        st = take_date_time(root, "since", &out->since_ms, &has_since, err);
    if (st == BZ_OK && !has_since)
        st = bz_reject(err, "missing_field",
                       "field since: say from when (RFC 3339) the deliveries are replayed");
    if (st == BZ_OK)
        st = take_date_time(root, "until", &out->until_ms, &out->has_until, err);
    const char *cursor = json_string_value(json_object_get(root, "cursor"));
    out->has_cursor = cursor != NULL;
    if (st == BZ_OK && cursor)
        st = ing_crm_cursor_parse(cursor, "cursor", &out->cursor, err);
    const char *status = json_string_value(json_object_get(root, "status"));
    out->status = !status || strcmp(status, "failed") == 0 ? "failed"
                  : strcmp(status, "success") == 0         ? "success"
                                                           : NULL;
    if (st == BZ_OK && !out->status)
        st = bz_reject(err, "invalid_field",
                       "field status: failed or success (an open delivery is due already)");
    json_decref(root);
    return st;
}
