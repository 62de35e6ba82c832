/*
 * extras.h - what a campaign adds to its messages beyond the compiled text
 * (seed 000 campaigns columns): the provider it prefers for account
 * selection (preferred_provider), a media header (header_type,
 * header_media) and reply buttons (buttons_data), for both providers
 * (ARCHITECTURE.md §12).
 */
#ifndef CMP_EXTRAS_H
#define CMP_EXTRAS_H

#include <stddef.h>
#include <stdint.h>

#include "blazz/v1/campaign.pb-c.h"
#include "core/status.h"

typedef struct cmp_extras {
    int64_t provider;     /* Blazz__V1__Provider preferred: META or WEBJS */
    char header_mime[32]; /* "" when the header is not media */
    char *header_url;     /* heap; NULL when none */
    char **buttons;       /* heap texts */
    size_t nbuttons;
} cmp_extras;

/* Read the columns as text (buttons_json: buttons_data, "" when NULL): a
 * JSON array of strings, or of objects whose "text", "title", "payload" or
 * "id" names the button (the first present). A header_type other than
 * image, video or document means no media header. BZ_ERR_INVALID for
 * buttons_data of another shape (the sender pauses the campaign with the
 * reason), BZ_ERR_NOMEM. */
bz_status cmp_extras_read(const char *provider, const char *header_type, const char *header_media,
                          const char *buttons_json, cmp_extras *out, bz_error *err);

/* Put them on m: into template (header_media, button_params) when m is a
 * template, else into m's header_media and buttons. media is storage for
 * the header the caller keeps alive while m is used. */
void cmp_extras_apply(const cmp_extras *x, Blazz__V1__SendMessage *m,
                      Blazz__V1__TemplateMessage *template_, Blazz__V1__MediaInfo *media);

void cmp_extras_free(cmp_extras *x);

#endif
