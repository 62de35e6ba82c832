/*
 * options.c - reading blazzctl's command lines (see options.h).
 *
 * getopt keeps its place in globals, so bz_ctl_read_options starts over
 * (optind = 1) at each call and silences getopt's own messages (opterr = 0):
 * the unknown option is named here, in blazzctl's words, with the command.
 */
#include "options.h"

#include "core/config.h"
#include "kafka/topics.h"
#include "pg/pg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int bz_ctl_read_options(int argc, char **argv, const bz_ctl_command_line *cl, void *opts)
{
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, cl->options_first ? "+h" : "h", cl->longopts, NULL)) !=
           -1) {
        if (c == 'h') {
            fputs(cl->help, stdout);
            return BZ_CTL_OPTIONS_HELP;
        }
        if (c == '?' || c == ':') {
            bz_ctl_usage_error(cl->command, "bad option '%s'", argv[optind - 1]);
            return BZ_CTL_OPTIONS_BAD;
        }
        if (cl->on_option(opts, c, optarg) != 0)
            return BZ_CTL_OPTIONS_BAD;
    }
    return BZ_CTL_OPTIONS_RUN;
}

const char *bz_ctl_setting(const char *given, const char *env_name, const char *fallback)
{
    return given ? given : bz_env_or(env_name, fallback);
}

const char *bz_ctl_topic_prefix(const char *given)
{
    return given ? given : bz_topic_prefix_from_env();
}

int bz_ctl_dsn_setting(const char *command, const char *given, const char **out)
{
    *out = bz_ctl_setting(given, "BLAZZ_PG_DSN", NULL);
    if (!given || !bz_pg_dsn_has_password(given))
        return 0;
    bz_ctl_usage_error(command, "--dsn carries a password, which every user of this machine can "
                                "read on a command line: set BLAZZ_PG_DSN instead, or keep the "
                                "password in a pgpass file (PGPASSFILE)");
    return 1;
}

int bz_ctl_require_dsn(const char *command, const char *given, const char **out)
{
    if (bz_ctl_dsn_setting(command, given, out))
        return 1;
    if (*out)
        return 0;
    bz_ctl_usage_error(command, "no database: set BLAZZ_PG_DSN or pass --dsn");
    return 1;
}

int bz_ctl_require_brokers(const char *command, const char *given, const char **out)
{
    *out = bz_ctl_setting(given, "BLAZZ_KAFKA_BROKERS", NULL);
    if (*out)
        return 0;
    bz_ctl_usage_error(command, "no brokers: set BLAZZ_KAFKA_BROKERS or pass --brokers");
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

int bz_ctl_option_int(const char *command, const char *text, int min, int max, const char *what,
                      int *out)
{
    bz_error err;
    if (bz_ctl_parse_int(text, min, max, what, out, &err) == BZ_OK)
        return 0;
    bz_ctl_usage_error(command, "%s", err.msg);
    return 1;
}
