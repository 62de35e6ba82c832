/*
 * status.c - filling and naming bz_error values (see status.h).
 */
#define BZ_STATUS_IMPL
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void fill(bz_error *err, bz_status code, const char *reason, const char *fmt,
                 va_list ap)
{
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    err->code = code;
    err->reason = reason;
}

bz_status bz_fail(bz_error *err, bz_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        fill(err, code, NULL, fmt, ap);
        va_end(ap);
    }
    return code;
}

bz_status bz_fail_because(bz_error *err, bz_status code, const char *reason, const char *fmt,
                          ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        fill(err, code, reason, fmt, ap);
        va_end(ap);
    }
    return code;
}

bz_status bz_reject(bz_error *err, const char *reason, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        fill(err, BZ_ERR_INVALID, reason, fmt, ap);
        va_end(ap);
    }
    return BZ_ERR_INVALID;
}

bz_status bz_wrap(bz_error *err, const char *fmt, ...)
{
    if (!err)
        return BZ_ERR_INTERNAL;
    char prefix[BZ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Build "prefix: inner" in a buffer big enough for both, then truncate. */
    char joined[2 * BZ_ERROR_MSG_MAX + 2];
    size_t plen = strlen(prefix);
    memcpy(joined, prefix, plen);
    memcpy(joined + plen, ": ", 2);
    memcpy(joined + plen + 2, err->msg, strnlen(err->msg, BZ_ERROR_MSG_MAX - 1) + 1);
    joined[sizeof joined - 1] = '\0';
    size_t len = strnlen(joined, BZ_ERROR_MSG_MAX - 1);
    memcpy(err->msg, joined, len);
    err->msg[len] = '\0';
    return err->code;
}

bz_status bz_reclass(bz_error *err, bz_status code, const char *reason)
{
    if (err) {
        err->code = code;
        err->reason = reason;
    }
    return code;
}

void bz_error_clear(bz_error *err)
{
    if (err) {
        err->code = BZ_OK;
        err->reason = NULL;
        err->msg[0] = '\0';
    }
}

const char *bz_status_name(bz_status code)
{
    switch (code) {
    case BZ_OK: return "ok";
    case BZ_ERR_INVALID: return "invalid";
    case BZ_ERR_TRANSIENT: return "transient";
    case BZ_ERR_CONFIG: return "config";
    case BZ_ERR_NOMEM: return "nomem";
    case BZ_ERR_IO: return "io";
    case BZ_ERR_NOT_FOUND: return "not_found";
    case BZ_ERR_CONFLICT: return "conflict";
    case BZ_ERR_FATAL: return "fatal";
    case BZ_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}
