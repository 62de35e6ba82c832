/*
 * meta_templates.h - `blazzctl meta templates sync` (meta_templates.c):
 * the templates of a Meta account's WhatsApp Business Account as Meta
 * lists them, applied to the templates table; and the reading of one page
 * of Meta's list, apart so that unit tests can hold it to Meta's shape.
 */
#ifndef BZ_CTL_META_TEMPLATES_H
#define BZ_CTL_META_TEMPLATES_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/status.h"

/* One template of the list. Strings point into the page's JSON (NULL when
 * Meta left the field out) except header_type, Meta's HEADER format in
 * lower case as templates.header_type keeps it ("text", "image", ...). */
typedef struct bz_ctl_meta_template {
    const char *name, *language, *id, *status, *category, *quality, *reason;
    int has_components; /* the texts below are Meta's, absent parts included */
    char header_type[16];
    const char *header_text, *body_text, *footer_text;
} bz_ctl_meta_template;

/* Read one element of the list's data. BZ_ERR_INVALID, naming what is
 * wrong, when it lacks a name or language or a field has the wrong type. */
bz_status bz_ctl_meta_template_read(json_t *t, bz_ctl_meta_template *out, bz_error *err);

/* The cursor of the page after doc into *after (points into doc), NULL
 * when doc is the last page (Meta leaves paging.next out). BZ_ERR_INVALID
 * when there is a next page but no paging.cursors.after. */
bz_status bz_ctl_meta_page_after(json_t *doc, const char **after, bz_error *err);

/* Run the sync for Meta account `account` (decimal id) on conn; prints
 * the counts (as JSON with json) or what failed. Returns the exit code. */
int bz_ctl_meta_templates_sync(PGconn *conn, const char *account, int json);

#endif
