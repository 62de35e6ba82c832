/*
 * extras.c - a campaign's provider preference, media header and buttons
 * (see extras.h).
 */
#include "extras.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define BUTTONS_MAX 10

static const char *mime_of(const char *header_type)
{
    if (strcmp(header_type, "image") == 0)
        return "image/jpeg";
    if (strcmp(header_type, "video") == 0)
        return "video/mp4";
    if (strcmp(header_type, "document") == 0)
        return "application/pdf";
    return "";
}

static const char *button_text(json_t *b)
{
    if (json_is_string(b))
        return json_string_value(b);
    static const char *const keys[] = {"text", "title", "payload", "id"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = json_string_value(json_object_get(b, keys[i]));
        if (v && *v)
            return v;
    }
    return NULL;
}

static bz_status read_buttons(const char *text, cmp_extras *out, bz_error *err)
{
    if (!*text)
        return BZ_OK;
    json_t *doc = json_loads(text, 0, NULL);
    if (!json_is_array(doc) || json_array_size(doc) > BUTTONS_MAX) {
        json_decref(doc);
        return bz_reject(err, "invalid_campaign",
                         "buttons_data: an array of at most %d buttons is expected", BUTTONS_MAX);
    }
    out->buttons = calloc(json_array_size(doc) + 1, sizeof *out->buttons);
    bz_status st = out->buttons ? BZ_OK : bz_fail(err, BZ_ERR_NOMEM, "buttons: out of memory");
    for (size_t i = 0; st == BZ_OK && i < json_array_size(doc); i++) {
        const char *t = button_text(json_array_get(doc, i));
        if (!t || !*t)
            st = bz_reject(err, "invalid_campaign", "buttons_data[%zu]: no text", i);
        else if (!(out->buttons[out->nbuttons++] = strdup(t)))
            st = bz_fail(err, BZ_ERR_NOMEM, "buttons: out of memory");
    }
    json_decref(doc);
    return st;
}

bz_status cmp_extras_read(const char *provider, const char *header_type, const char *header_media,
                          const char *buttons_json, cmp_extras *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    out->provider = strcmp(provider, "meta") == 0 ? BLAZZ__V1__PROVIDER__PROVIDER_META
                                                  : BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    const char *mime = mime_of(header_type);
    if (*mime && *header_media) {
        snprintf(out->header_mime, sizeof out->header_mime, "%s", mime);
        if (!(out->header_url = strdup(header_media)))
            return bz_fail(err, BZ_ERR_NOMEM, "header: out of memory");
    }
    bz_status st = read_buttons(buttons_json, out, err);
    if (st != BZ_OK)
        cmp_extras_free(out);
    return st;
}

void cmp_extras_apply(const cmp_extras *x, Blazz__V1__SendMessage *m,
                      Blazz__V1__TemplateMessage *template_, Blazz__V1__MediaInfo *media)
{
    Blazz__V1__MediaInfo *header = NULL;
    if (x->header_url) {
        blazz__v1__media_info__init(media);
        media->url = x->header_url;
        media->mime_type = (char *)x->header_mime;
        header = media;
    }
    if (m->template_) {
        template_->header_media = header;
        template_->button_params = x->buttons;
        template_->n_button_params = x->nbuttons;
    } else {
        m->header_media = header;
        m->buttons = x->buttons;
        m->n_buttons = x->nbuttons;
    }
}

void cmp_extras_free(cmp_extras *x)
{
    free(x->header_url);
    for (size_t i = 0; i < x->nbuttons; i++)
        free(x->buttons[i]);
    free(x->buttons);
    memset(x, 0, sizeof *x);
}
