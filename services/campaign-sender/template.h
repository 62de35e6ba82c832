/*
 * template.h - message personalization: {{first_name}}, {{full_name}} and
 * {{phone}} (spaces inside the braces allowed) replaced by contact fields.
 *
 * A text is compiled once per campaign into literal and field segments, so
 * an unknown placeholder is found when the campaign starts, never while
 * sending, and rendering a message is a single pass over the segments.
 */
#ifndef CMP_TEMPLATE_H
#define CMP_TEMPLATE_H

#include <stddef.h>

#include "core/status.h"

typedef enum cmp_field {
    CMP_FIELD_NONE = 0, /* a literal segment */
    CMP_FIELD_FIRST_NAME,
    CMP_FIELD_FULL_NAME,
    CMP_FIELD_PHONE
} cmp_field;

typedef struct cmp_segment {
    cmp_field field;
    size_t offset, len; /* literal: bytes of the source text */
} cmp_segment;

typedef struct cmp_template {
    char *text;         /* owned copy of the source */
    cmp_segment *segs;  /* owned */
    size_t nsegs;
} cmp_template;

/* The contact fields a message may use (NULL reads as ""). */
typedef struct cmp_contact_fields {
    const char *first_name;
    const char *full_name;
    const char *phone;
} cmp_contact_fields;

/* Compile text (NULL reads as ""). BZ_ERR_INVALID names the first unknown
 * or unterminated placeholder. Free with cmp_template_free. */
bz_status cmp_template_compile(const char *text, cmp_template *out, bz_error *err);

void cmp_template_free(cmp_template *t);

/* Render for one contact. Returns a heap string the caller frees, or NULL
 * when out of memory. */
char *cmp_template_render(const cmp_template *t, const cmp_contact_fields *c);

#endif
