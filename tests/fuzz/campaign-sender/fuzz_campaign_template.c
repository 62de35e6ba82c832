/*
 * fuzz_campaign_template.c - campaign message templates (template.c):
 * compile a text, render it for a contact.
 *
 * The input is "text\0first_name\0full_name\0phone" (missing parts read as
 * empty). Properties: a text compiles exactly when every "{{" has a "}}"
 * after it enclosing a known name (spaces allowed) and neither the text nor
 * its longest rendering (literal bytes plus CMP_FIELD_VALUE_MAX a
 * placeholder) is over BZ_WA_TEXT_MAX_BYTES, and a refusal says
 * bad_template; the rendering is the text with each placeholder replaced by
 * its field, cut to CMP_FIELD_VALUE_MAX bytes on a character boundary, once
 * (a field holding "{{phone}}" stays literal), which this file computes
 * independently; rendering with empty fields removes just the placeholders.
 * Accepted means the text compiled.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"
#include "template.h"

/* The next NUL-terminated part of data[*at..size) as a heap string. */
static char *next_part(const uint8_t *data, size_t size, size_t *at)
{
    size_t start = *at < size ? *at : size, end = start;
    while (end < size && data[end] != '\0')
        end++;
    *at = end + 1;
    char *s = malloc(end - start + 1);
    BZ_FUZZ_CHECK(s != NULL);
    memcpy(s, data + start, end - start);
    s[end - start] = '\0';
    return s;
}

static const char *field_of(const char *name, size_t len, const cmp_contact_fields *c)
{
    while (len && *name == ' ')
        name++, len--;
    while (len && name[len - 1] == ' ')
        len--;
    if (len == 10 && memcmp(name, "first_name", 10) == 0)
        return c->first_name;
    if (len == 9 && memcmp(name, "full_name", 9) == 0)
        return c->full_name;
    if (len == 5 && memcmp(name, "phone", 5) == 0)
        return c->phone;
    return NULL;
}

/* How much of a field value a rendering holds: at most CMP_FIELD_VALUE_MAX
 * bytes, never ending inside a UTF-8 sequence's continuation bytes. */
static size_t rendered_len(const char *value)
{
    size_t n = 0, boundary = 0;
    while (n < CMP_FIELD_VALUE_MAX && value[n]) {
        n++;
        if (((unsigned char)value[n] & 0xC0) != 0x80)
            boundary = n;
    }
    return value[n] ? boundary : n;
}

/* The expected rendering, or NULL when text must not compile. */
static char *reference_render(const char *text, const cmp_contact_fields *c)
{
    if (strlen(text) > BZ_WA_TEXT_MAX_BYTES)
        return NULL;
    size_t literal = 0, placeholders = 0;
    size_t cap = strlen(text) + 1;
    for (const char *p = text; (p = strstr(p, "{{")) != NULL; p += 2)
        cap += strlen(c->first_name) + strlen(c->full_name) + strlen(c->phone);
    char *out = malloc(cap);
    BZ_FUZZ_CHECK(out != NULL);
    size_t used = 0;
    const char *p = text;
    const char *open;
    while ((open = strstr(p, "{{")) != NULL) {
        const char *close = strstr(open + 2, "}}");
        const char *value = close ? field_of(open + 2, (size_t)(close - open - 2), c) : NULL;
        if (!value) {
            free(out);
            return NULL;
        }
        memcpy(out + used, p, (size_t)(open - p));
        used += (size_t)(open - p);
        literal += (size_t)(open - p);
        placeholders++;
        memcpy(out + used, value, rendered_len(value));
        used += rendered_len(value);
        p = close + 2;
    }
    memcpy(out + used, p, strlen(p) + 1);
    literal += strlen(p);
    if (literal + placeholders * CMP_FIELD_VALUE_MAX > BZ_WA_TEXT_MAX_BYTES) {
        free(out);
        return NULL;
    }
    return out;
}

static int fuzz_campaign_template(const uint8_t *data, size_t size)
{
    size_t at = 0;
    char *text = next_part(data, size, &at);
    char *first = next_part(data, size, &at);
    char *full = next_part(data, size, &at);
    char *phone = next_part(data, size, &at);
    cmp_contact_fields fields = {first, full, phone};
    cmp_contact_fields empty = {"", "", ""};
    char *expected = reference_render(text, &fields);
    char *expected_empty = reference_render(text, &empty);
    cmp_template t;
    bz_error err;
    bz_status st = cmp_template_compile(text, &t, &err);
    BZ_FUZZ_CHECK((st == BZ_OK) == (expected != NULL));
    if (st == BZ_OK) {
        char *out = cmp_template_render(&t, &fields);
        BZ_FUZZ_CHECK(out != NULL && strcmp(out, expected) == 0);
        free(out);
        out = cmp_template_render(&t, &(cmp_contact_fields){NULL, NULL, NULL});
        BZ_FUZZ_CHECK(out != NULL && strcmp(out, expected_empty) == 0);
        free(out);
        cmp_template_free(&t);
    } else {
        BZ_FUZZ_CHECK(st == BZ_ERR_INVALID && strcmp(err.reason, "bad_template") == 0);
        BZ_FUZZ_CHECK(t.text == NULL && t.segs == NULL);
    }
    free(expected);
    free(expected_empty);
    free(text);
    free(first);
    free(full);
    free(phone);
    return st == BZ_OK ? BZ_FUZZ_ACCEPTED : BZ_FUZZ_REJECTED;
}

static const bz_fuzz_expect expect[] = {
    {"greeting", BZ_FUZZ_ACCEPTED},
    {"field_holds_placeholder", BZ_FUZZ_ACCEPTED},
    {"unknown_placeholder", BZ_FUZZ_REJECTED},
    {"unterminated", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_campaign_template, expect)
