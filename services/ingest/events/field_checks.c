/*
 * field_checks.c - the field-level checks of normalize.c (see
 * field_checks.h): field paths, rejections that name their field, bounded
 * text, identifiers and session ids.
 */
#include "events/field_checks.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/utf8.h"
#include "events/event_tree.h"
#include "wa/bsuid.h"
#include "wa/crm_command.h"

void ing_field_path(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
}

/* Append src to p at *len, truncating at the end of the buffer. */
static void path_append(ing_path *p, size_t *len, const char *src)
{
    size_t room = sizeof p->text - 1 - *len, n = strlen(src);
    if (n > room)
        n = room;
    memcpy(p->text + *len, src, n);
    *len += n;
}

/* "base.field" (or "field" at the top level). Built for every field that is
 * checked, valid or not, so plain copies rather than a printf: formatting
 * these paths was about 15% of the Kafka path's CPU. */
const char *ing_path_at(ing_path *p, const char *base, const char *field)
{
    size_t len = 0;
    path_append(p, &len, base);
    if (*base)
        path_append(p, &len, ".");
    path_append(p, &len, field);
    p->text[len] = '\0';
    return p->text;
}

bz_status ing_reject(bz_error *err, const char *reason, const char *field, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return bz_reject(err, reason, "field %s: %s", field, detail);
}

bz_status ing_out_of_memory(bz_error *err, const char *field)
{
    return bz_fail(err, BZ_ERR_NOMEM, "normalize %s: out of memory", field);
}

/* Free text: bounded, valid UTF-8. Unset is fine. */
bz_status ing_check_text(const char *s, size_t max, const char *field, bz_error *err)
{
    if (ing_str_empty(s))
        return BZ_OK;
    size_t len = strlen(s);
    if (len > max)
        return ing_reject(err, "invalid_field", field, "%zu bytes, at most %zu allowed", len, max);
    if (!bz_utf8_valid(s, len))
        return ing_reject(err, "invalid_field", field, "not valid UTF-8");
    return BZ_OK;
}

/* Identifiers: printable ASCII without spaces, bounded. */
bz_status ing_check_id(const char *s, int required, const char *field, bz_error *err)
{
    if (ing_str_empty(s))
        return required ? ing_reject(err, "missing_field", field, "required") : BZ_OK;
    size_t len = strlen(s);
    if (len > ING_ID_MAX)
        return ing_reject(err, "invalid_field", field, "%zu bytes, at most %d allowed", len,
                          ING_ID_MAX);
    for (const char *c = s; *c; c++)
        if (*c <= ' ' || *c > '~')
            return ing_reject(err, "invalid_field", field, "only printable ASCII without spaces");
    return BZ_OK;
}

bz_status ing_check_session_id(const char *s, int required, const char *field, bz_error *err)
{
    if (ing_str_empty(s))
        return required ? ing_reject(err, "missing_field", field, "required") : BZ_OK;
    return bz_session_id_check(field, s, err);
}

bz_status ing_check_storage_name(const char *s, const char *field, bz_error *err)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > 64 ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") != len)
        return ing_reject(err, "invalid_field", field,
                          "1 to 64 letters, digits, '.', '_', ':' or '-'");
    return BZ_OK;
}

bz_status ing_check_bsuid(const char *s, int parent, const char *field, bz_error *err)
{
    if (ing_str_empty(s) || (parent ? bz_parent_bsuid_valid(s) : bz_bsuid_valid(s)))
        return BZ_OK;
    /* the value is personal data: the message names the shape, not it */
    return ing_reject(err, "invalid_field", field, "not a %s (%s and 1 to %d letters and digits)",
                      parent ? "parent BSUID" : "BSUID", parent ? "CC.ENT." : "CC.",
                      BZ_BSUID_ID_MAX);
}

void ing_error_field(const bz_error *err, char out[ING_FIELD_MAX])
{
    out[0] = '\0';
    if (strncmp(err->msg, "field ", 6) != 0)
        return;
    const char *start = err->msg + 6, *end = strchr(start, ':');
    if (!end)
        return;
    size_t len = (size_t)(end - start);
    if (len >= ING_FIELD_MAX)
        len = ING_FIELD_MAX - 1;
    memcpy(out, start, len);
    out[len] = '\0';
}
