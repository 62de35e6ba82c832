/*
 * template.h - message personalization: {{first_name}}, {{full_name}} and
 * {{phone}} (spaces inside the braces allowed) replaced by contact fields.
 *
 * A text is compiled once per campaign into literal and field segments, so
 * an unknown placeholder is found when the campaign starts, never while
 * sending, and rendering a message is a single pass over the segments.
 *
 * Size is settled at compile time too: a text longer than
 * BZ_WA_TEXT_MAX_BYTES (wa/text_limits.h) is refused, and so is one whose
 * longest possible rendering is: its literal bytes plus CMP_FIELD_VALUE_MAX
 * per placeholder, since rendering cuts a longer field value (at a UTF-8
 * character boundary) to that many bytes. So every rendered message fits,
 * and the campaign fails at start with the sizes in its error rather than
 * producing messages no gateway could be sent.
 */
#ifndef CMP_TEMPLATE_H
#define CMP_TEMPLATE_H

#include <stddef.h>

#include "core/status.h"
#include "wa/text_limits.h"

/* Bytes of a contact field a placeholder renders at most: a name of 255
 * characters (the seeds' VARCHAR(255)) in UTF-8, twice over for full_name
 * (first and last name). */
#define CMP_FIELD_VALUE_MAX 2048

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

/* Compile text (NULL reads as ""). BZ_ERR_INVALID (reason "bad_template")
 * names the first unknown or unterminated placeholder, or says how long the
 * text is or could render, against BZ_WA_TEXT_MAX_BYTES. Free with
 * cmp_template_free. */
bz_status cmp_template_compile(const char *text, cmp_template *out, bz_error *err);

void cmp_template_free(cmp_template *t);

/* Render for one contact; a field value longer than CMP_FIELD_VALUE_MAX is
 * cut to it. Returns a heap string the caller frees, or NULL when out of
 * memory. */
char *cmp_template_render(const cmp_template *t, const cmp_contact_fields *c);

#endif
