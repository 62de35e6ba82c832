/*
 * meta_limits.c - Meta's limits on one message (see meta_limits.h). The
 * message's Cloud API form is decided as meta-sender decides it
 * (services/meta-sender/graph_request.c): buttons with a body make reply
 * buttons, a media header alone makes a media message, else a text; an
 * interactive message (a list, a URL button, a location request) is its
 * own kind.
 */
#include "wa/meta_limits.h"

#include <stdio.h>
#include <string.h>

#include "core/utf8.h"

static int set(const char *s)
{
    return s && *s;
}

static bz_status refuse(bz_error *err, const char *field, const char *what)
{
    return bz_reject(err, BZ_WA_META_LIMIT_REASON, "field %s: %s", field, what);
}

/* s has at most max characters (and at least one when required). */
static bz_status check_length(const char *field, const char *s, size_t max, int required,
                              bz_error *err)
{
    size_t n = bz_utf8_chars(s);
    if (required && n == 0)
        return bz_reject(err, BZ_WA_META_LIMIT_REASON, "field %s: required, 1-%zu characters",
                         field, max);
    if (n > max)
        return bz_reject(err, BZ_WA_META_LIMIT_REASON,
                         "field %s: %zu characters, Meta takes at most %zu", field, n, max);
    return BZ_OK;
}

static int has_media(const Blazz__V1__MediaInfo *media)
{
    return media && (set(media->url) || set(media->media_id));
}

static bz_status check_buttons(const Blazz__V1__SendMessage *m, bz_error *err)
{
    if (m->n_buttons > BZ_WA_META_BUTTONS_MAX)
        return bz_reject(err, BZ_WA_META_LIMIT_REASON,
                         "field buttons: %zu reply buttons, Meta takes at most %d", m->n_buttons,
                         BZ_WA_META_BUTTONS_MAX);
    for (size_t i = 0; i < m->n_buttons; i++) {
        char field[32];
        snprintf(field, sizeof field, "buttons[%zu]", i);
        bz_status st = check_length(field, m->buttons[i], BZ_WA_META_BUTTON_TITLE_MAX, 1, err);
        for (size_t k = 0; st == BZ_OK && k < i; k++)
            if (strcmp(m->buttons[k], m->buttons[i]) == 0)
                st = refuse(err, field, "the same title as another button; Meta wants each "
                                        "one unique");
        if (st != BZ_OK)
            return st;
    }
    return BZ_OK;
}

/* A text with reply buttons: Meta's interactive "button" message. */
static bz_status check_reply_buttons(const Blazz__V1__SendMessage *m, bz_error *err)
{
    bz_status st = check_length("body", m->body, BZ_WA_META_BUTTONS_BODY_MAX, 1, err);
    if (st == BZ_OK)
        st = check_buttons(m, err);
    if (st == BZ_OK && has_media(m->header_media) && set(m->header_text))
        st = refuse(err, "header_text", "a message has one header, the media or a text");
    if (st == BZ_OK)
        st = check_length("header_text", m->header_text, BZ_WA_META_HEADER_TEXT_MAX, 0, err);
    if (st == BZ_OK)
        st = check_length("footer", m->footer, BZ_WA_META_FOOTER_MAX, 0, err);
    return st;
}

static bz_status check_text(const Blazz__V1__SendMessage *m, bz_error *err)
{
    if (m->n_buttons)
        return set(m->body) ? check_reply_buttons(m, err)
                            : refuse(err, "body", "reply buttons need a body text");
    if (set(m->header_text))
        return refuse(err, "header_text", "a Meta text or media message has no header text "
                                          "(only one with reply buttons has)");
    if (set(m->footer))
        return refuse(err, "footer", "a Meta text or media message has no footer (only one "
                                     "with reply buttons has)");
    if (has_media(m->header_media))
        return check_length("body", m->body, BZ_WA_META_CAPTION_MAX, 0, err);
    return check_length("body", m->body, BZ_WA_META_TEXT_MAX, 1, err);
}

/* The caption a media message carries: the media's, else the body. */
static const char *caption_of(const Blazz__V1__SendMessage *m)
{
    return m->media && set(m->media->caption) ? m->media->caption : m->body;
}

static bz_status check_media(const Blazz__V1__SendMessage *m, int captioned, bz_error *err)
{
    const char *caption = caption_of(m);
    if (!captioned && set(caption))
        return refuse(err, "media.caption", "Meta sends no caption with audio, voice notes and "
                                            "stickers");
    return check_length("media.caption", caption, BZ_WA_META_CAPTION_MAX, 0, err);
}

/* ---- interactive messages ----------------------------------------------------------- */

static bz_status check_list_row(const Blazz__V1__InteractiveRow *row, size_t s, size_t r,
                                bz_error *err)
{
    char field[96];
    snprintf(field, sizeof field, "interactive.sections[%zu].rows[%zu].id", s, r);
    bz_status st = check_length(field, row->id, BZ_WA_META_ROW_ID_MAX, 1, err);
    snprintf(field, sizeof field, "interactive.sections[%zu].rows[%zu].title", s, r);
    if (st == BZ_OK)
        st = check_length(field, row->title, BZ_WA_META_ROW_TITLE_MAX, 1, err);
    snprintf(field, sizeof field, "interactive.sections[%zu].rows[%zu].description", s, r);
    if (st == BZ_OK)
        st = check_length(field, row->description, BZ_WA_META_ROW_DESCRIPTION_MAX, 0, err);
    return st;
}

/* Row r of section s names an id an earlier row of the list has. */
static int row_id_taken(const Blazz__V1__InteractiveMessage *in, size_t s, size_t r)
{
    const char *id = in->sections[s]->rows[r]->id;
    for (size_t i = 0; i <= s; i++)
        for (size_t k = 0; k < (i < s ? in->sections[i]->n_rows : r); k++)
            if (strcmp(in->sections[i]->rows[k]->id, id) == 0)
                return 1;
    return 0;
}

static bz_status check_list(const Blazz__V1__InteractiveMessage *in, const char *body,
                            bz_error *err)
{
    bz_status st = check_length("body", body, BZ_WA_META_TEXT_MAX, 1, err);
    if (st == BZ_OK)
        st = check_length("interactive.button", in->button, BZ_WA_META_BUTTON_TITLE_MAX, 1, err);
    if (st == BZ_OK && (in->n_sections < 1 || in->n_sections > BZ_WA_META_SECTIONS_MAX))
        st = bz_reject(err, BZ_WA_META_LIMIT_REASON,
                       "field interactive.sections: %zu sections, Meta takes 1 to %d",
                       in->n_sections, BZ_WA_META_SECTIONS_MAX);
    size_t rows = 0;
    for (size_t i = 0; i < in->n_sections; i++)
        rows += in->sections[i]->n_rows;
    /* counted before any row is compared with the others: a list of
     * thousands of rows is refused at once */
    if (st == BZ_OK && rows > BZ_WA_META_ROWS_MAX)
        st = bz_reject(err, BZ_WA_META_LIMIT_REASON,
                       "field interactive.sections: %zu rows in all, Meta takes at most %d",
                       rows, BZ_WA_META_ROWS_MAX);
    for (size_t i = 0; st == BZ_OK && i < in->n_sections; i++) {
        const Blazz__V1__InteractiveSection *sec = in->sections[i];
        char field[96];
        snprintf(field, sizeof field, "interactive.sections[%zu].title", i);
        st = check_length(field, sec->title, BZ_WA_META_SECTION_TITLE_MAX, in->n_sections > 1,
                          err);
        snprintf(field, sizeof field, "interactive.sections[%zu].rows", i);
        if (st == BZ_OK && sec->n_rows == 0)
            st = refuse(err, field, "a section needs at least one row");
        for (size_t r = 0; st == BZ_OK && r < sec->n_rows; r++) {
            st = check_list_row(sec->rows[r], i, r, err);
            if (st == BZ_OK && row_id_taken(in, i, r))
                st = bz_reject(err, BZ_WA_META_LIMIT_REASON,
                               "field interactive.sections[%zu].rows[%zu].id: the same id as "
                               "another row; Meta wants each one unique",
                               i, r);
        }
    }
    return st;
}

static bz_status check_interactive(const Blazz__V1__SendMessage *m, bz_error *err)
{
    const Blazz__V1__InteractiveMessage *in = m->interactive;
    /* without a kind it is no message at all: the contract refuses it
     * (wa/crm_command.h), naming what is missing */
    if (!in || in->kind == BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_UNSPECIFIED)
        return BZ_OK;
    bz_status st = check_length("interactive.header_text", in->header_text,
                                BZ_WA_META_HEADER_TEXT_MAX, 0, err);
    if (st == BZ_OK)
        st = check_length("interactive.footer", in->footer, BZ_WA_META_FOOTER_MAX, 0, err);
    if (st != BZ_OK)
        return st;
    switch (in->kind) {
    case BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LIST:
        return check_list(in, m->body, err);
    case BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_CTA_URL:
        st = check_length("body", m->body, BZ_WA_META_BUTTONS_BODY_MAX, 1, err);
        return st == BZ_OK ? check_length("interactive.display_text", in->display_text,
                                          BZ_WA_META_BUTTON_TITLE_MAX, 1, err)
                           : st;
    case BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LOCATION_REQUEST:
        if (set(in->header_text) || set(in->footer))
            return refuse(err, set(in->header_text) ? "interactive.header_text"
                                                    : "interactive.footer",
                          "a location request has a body and its button only");
        return check_length("body", m->body, BZ_WA_META_BUTTONS_BODY_MAX, 1, err);
    case BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_FLOW:
        st = check_length("body", m->body, BZ_WA_META_BUTTONS_BODY_MAX, 1, err);
        return st == BZ_OK ? check_length("interactive.flow_cta", in->flow_cta,
                                          BZ_WA_META_FLOW_CTA_MAX, 1, err)
                           : st;
    default:
        return refuse(err, "interactive.type", "list, cta_url, location_request or flow");
    }
}

bz_status bz_wa_meta_check(const Blazz__V1__SendMessage *m, bz_error *err)
{
    if (m->kind == BLAZZ__V1__SEND_KIND__SEND_KIND_MARK_READ)
        return BZ_OK;
    switch (m->message_type) {
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNSPECIFIED:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT:
        return check_text(m, err);
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VIDEO:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_DOCUMENT:
        return check_media(m, 1, err);
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_AUDIO:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE:
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_STICKER:
        return check_media(m, 0, err);
    case BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE:
        return check_interactive(m, err);
    default:
        return BZ_OK;
    }
}

bz_status bz_wa_provider_check(Blazz__V1__Provider provider, const Blazz__V1__SendMessage *m,
                               bz_error *err)
{
    if (provider != BLAZZ__V1__PROVIDER__PROVIDER_META &&
        m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE)
        return refuse(err, "message_type", "an interactive message goes through a Meta account "
                                           "only; whatsapp-web.js sends none");
    return BZ_OK;
}
