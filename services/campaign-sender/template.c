/*
 * template.c - compile and render personalized messages (see template.h).
 *
 * Compilation scans for "{{", reads the name up to "}}", trims spaces and
 * maps it to a contact field; everything else is literal. A lone "{" or
 * "}" is literal text, but "{{" without its "}}" is an error, because it is
 * almost certainly a typo the sender would otherwise put in front of every
 * recipient. The size checks run on the finished segments, which know how
 * much is literal text and how many placeholders there are.
 */
#include "template.h"

#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

static const struct {
    const char *name;
    cmp_field field;
} known_fields[] = {
    {"first_name", CMP_FIELD_FIRST_NAME},
    {"full_name", CMP_FIELD_FULL_NAME},
    {"phone", CMP_FIELD_PHONE},
};

static cmp_field field_named(const char *name, size_t len)
{
    while (len && name[0] == ' ')
        name++, len--;
    while (len && name[len - 1] == ' ')
        len--;
    for (size_t i = 0; i < sizeof known_fields / sizeof known_fields[0]; i++)
        if (strlen(known_fields[i].name) == len && memcmp(known_fields[i].name, name, len) == 0)
            return known_fields[i].field;
    return CMP_FIELD_NONE;
}

static int add_segment(cmp_template *t, size_t *cap, cmp_field field, size_t offset, size_t len)
{
    if (field == CMP_FIELD_NONE && len == 0)
        return 1;
    if (!bz_grow((void **)&t->segs, cap, t->nsegs + 1, sizeof *t->segs, 8))
        return 0;
    t->segs[t->nsegs++] = (cmp_segment){field, offset, len};
    return 1;
}

/* Refuse a text that is, or could render, longer than a message may be. */
static bz_status check_size(const cmp_template *t, size_t n, bz_error *err)
{
    if (n > BZ_WA_TEXT_MAX_BYTES)
        return bz_reject(err, "bad_template", "is %zu bytes, more than the %d a message may have",
                         n, BZ_WA_TEXT_MAX_BYTES);
    size_t literal = 0, fields = 0;
    for (size_t i = 0; i < t->nsegs; i++) {
        literal += t->segs[i].field ? 0 : t->segs[i].len;
        fields += t->segs[i].field != CMP_FIELD_NONE;
    }
    size_t most = literal + fields * CMP_FIELD_VALUE_MAX;
    if (most > BZ_WA_TEXT_MAX_BYTES)
        return bz_reject(err, "bad_template",
                         "could render to %zu bytes (%zu of text and %zu placeholder(s) of up to "
                         "%d bytes each), more than the %d a message may have",
                         most, literal, fields, CMP_FIELD_VALUE_MAX, BZ_WA_TEXT_MAX_BYTES);
    return BZ_OK;
}

bz_status cmp_template_compile(const char *text, cmp_template *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    size_t n = text ? strlen(text) : 0;
    if (n > BZ_WA_TEXT_MAX_BYTES)
        return check_size(out, n, err);
    out->text = strdup(text ? text : "");
    if (!out->text)
        return bz_fail(err, BZ_ERR_NOMEM, "compile template: out of memory");
    size_t cap = 0, literal = 0, i = 0;
    const char *s = out->text;
    while (i < n) {
        if (s[i] != '{' || s[i + 1] != '{') {
            i++;
            continue;
        }
        const char *close = strstr(s + i + 2, "}}");
        if (!close) {
            cmp_template_free(out);
            return bz_reject(err, "bad_template", "template: unterminated placeholder at byte %zu",
                             i);
        }
        size_t name_len = (size_t)(close - (s + i + 2));
        cmp_field f = field_named(s + i + 2, name_len);
        if (f == CMP_FIELD_NONE) {
            bz_status st = bz_reject(err, "bad_template",
                                     "template: unknown placeholder {{%.*s}} (known: first_name, "
                                     "full_name, phone)",
                                     (int)(name_len > 64 ? 64 : name_len), s + i + 2);
            cmp_template_free(out);
            return st;
        }
        if (!add_segment(out, &cap, CMP_FIELD_NONE, literal, i - literal) ||
            !add_segment(out, &cap, f, 0, 0)) {
            cmp_template_free(out);
            return bz_fail(err, BZ_ERR_NOMEM, "compile template: out of memory");
        }
        i = (size_t)(close - s) + 2;
        literal = i;
    }
    if (!add_segment(out, &cap, CMP_FIELD_NONE, literal, n - literal)) {
        cmp_template_free(out);
        return bz_fail(err, BZ_ERR_NOMEM, "compile template: out of memory");
    }
    bz_status st = check_size(out, n, err);
    if (st != BZ_OK)
        cmp_template_free(out);
    return st;
}

void cmp_template_free(cmp_template *t)
{
    free(t->text);
    free(t->segs);
    memset(t, 0, sizeof *t);
}

static const char *field_value(cmp_field f, const cmp_contact_fields *c)
{
    const char *v = f == CMP_FIELD_FIRST_NAME ? c->first_name
                    : f == CMP_FIELD_FULL_NAME ? c->full_name
                                               : c->phone;
    return v ? v : "";
}

/* Bytes of v to render: all, or CMP_FIELD_VALUE_MAX less the start of a
 * character the cut would split (UTF-8 continuation bytes are 10xxxxxx). */
static size_t field_len(const char *v)
{
    size_t n = strlen(v);
    if (n <= CMP_FIELD_VALUE_MAX)
        return n;
    n = CMP_FIELD_VALUE_MAX;
    while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
        n--;
    return n;
}

char *cmp_template_render(const cmp_template *t, const cmp_contact_fields *c)
{
    size_t len = 0;
    for (size_t i = 0; i < t->nsegs; i++)
        len += t->segs[i].field ? field_len(field_value(t->segs[i].field, c)) : t->segs[i].len;
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < t->nsegs; i++) {
        const cmp_segment *sg = &t->segs[i];
        const char *src = sg->field ? field_value(sg->field, c) : t->text + sg->offset;
        size_t n = sg->field ? field_len(src) : sg->len;
        memcpy(out + used, src, n);
        used += n;
    }
    out[used] = '\0';
    return out;
}
