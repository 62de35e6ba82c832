/*
 * options.h - how blazzctl's commands read their command line: one getopt
 * loop for all of them, settings that default from the environment, and
 * the checks several commands make on what they were given.
 *
 * Every reader here prints its own usage error ("blazzctl <command>: ...",
 * then a hint to run --help) and returns 1, so a command stops with exit
 * code 1 and nothing more to say. Options may follow operands (getopt_long
 * permutes) unless the command asks otherwise.
 */
#ifndef BZ_CTL_OPTIONS_H
#define BZ_CTL_OPTIONS_H

#include <getopt.h>

#include "core/status.h"

/* What bz_ctl_read_options returns: run the command, or stop (exit 1 after
 * a usage error, or exit 0 once --help is printed). */
#define BZ_CTL_OPTIONS_RUN 0
#define BZ_CTL_OPTIONS_BAD 1
#define BZ_CTL_OPTIONS_HELP 2

/* One recognized option: its longopts val and argument (NULL for a flag).
 * 0, or 1 after printing a usage error. */
typedef int (*bz_ctl_option_fn)(void *opts, int option, char *value);

typedef struct bz_ctl_command_line {
    const char *command;           /* as the user typed it, for messages */
    const char *help;              /* printed on stdout for --help ('h') */
    const struct option *longopts; /* ends with {NULL, 0, NULL, 0} */
    bz_ctl_option_fn on_option;    /* every val of longopts but 'h' */
    int options_first;             /* stop at the first operand */
} bz_ctl_command_line;

/* Read argv[1..]'s options into opts through cl->on_option. On
 * BZ_CTL_OPTIONS_RUN the operands are argv[optind..argc). */
int bz_ctl_read_options(int argc, char **argv, const bz_ctl_command_line *cl, void *opts);

/* given if not NULL, else the environment variable env_name if set and not
 * empty, else fallback (may be NULL). The result is not owned by the caller. */
const char *bz_ctl_setting(const char *given, const char *env_name, const char *fallback);

/* The topic prefix: given, else $BLAZZ_KAFKA_TOPIC_PREFIX, else
 * $BLAZZ_TOPIC_PREFIX, else none (""). Not owned by the caller. */
const char *bz_ctl_topic_prefix(const char *given);

/* The PostgreSQL DSN (given by --dsn, else $BLAZZ_PG_DSN, else NULL) into
 * *out; 1 after the usage error when the given one carries a password: a
 * command line is readable by every user of the machine (put the DSN in
 * $BLAZZ_PG_DSN, or the password in a pgpass file). */
int bz_ctl_dsn_setting(const char *command, const char *given, const char **out);

/* bz_ctl_dsn_setting, and 1 after the usage error when there is no DSN. */
int bz_ctl_require_dsn(const char *command, const char *given, const char **out);

/* The Kafka brokers (given, else $BLAZZ_KAFKA_BROKERS) into *out; 1 after
 * the usage error when there are none. */
int bz_ctl_require_brokers(const char *command, const char *given, const char **out);

/* Report a usage mistake: the message, then a hint to run --help. */
void bz_ctl_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse a decimal integer option in [min, max]; the error names `what`. */
bz_status bz_ctl_parse_int(const char *text, int min, int max, const char *what, int *out,
                           bz_error *err);

/* bz_ctl_parse_int for an option value: 0, or 1 after the usage error. */
int bz_ctl_option_int(const char *command, const char *text, int min, int max, const char *what,
                      int *out);

#endif
