/*
 * common.c - option defaults, error reporting and JSON output shared by the
 * blazzctl command modules (see blazzctl.h).
 */
#include "blazzctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *bz_ctl_setting(const char *given, const char *env_name, const char *fallback)
{
    if (given)
        return given;
    const char *env = env_name ? getenv(env_name) : NULL;
    if (env && *env)
        return env;
    return fallback;
}

int bz_ctl_fail(const char *command, const bz_error *err)
{
    fprintf(stderr, "blazzctl %s: %s\n", command, err->msg[0] ? err->msg : bz_status_name(err->code));
    return 1;
}

void bz_ctl_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "blazzctl %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'blazzctl %s --help')\n", command);
}

int bz_ctl_print_json(json_t *doc)
{
    if (!doc) {
        fprintf(stderr, "blazzctl: out of memory building JSON output\n");
        return 1;
    }
    int rc = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (rc != 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        fprintf(stderr, "blazzctl: writing JSON to stdout failed\n");
        return 1;
    }
    return 0;
}

bz_status bz_ctl_parse_int(const char *text, int min, int max, const char *what, int *out,
                           bz_error *err)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return bz_fail(err, BZ_ERR_CONFIG, "%s '%s': expected an integer from %d to %d", what,
                       text, min, max);
    *out = (int)v;
    return BZ_OK;
}
