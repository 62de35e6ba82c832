/*
 * config.h - typed service configuration from a libconfig file plus the
 * environment.
 *
 * A service declares every key it understands in a static schema table and
 * loads it once at start-up:
 *
 *   static const bz_config_key schema[] = {
 *       {.name = "kafka.brokers", .type = BZ_CFG_STRING, .required = 1,
 *        .help = "Kafka bootstrap servers"},
 *       {.name = "pg.dsn", .type = BZ_CFG_STRING, .required = 1, .secret = 1,
 *        .help = "PostgreSQL connection string"},
 *       {.name = "consumer.batch_max", .type = BZ_CFG_INT, .def = "500",
 *        .min = 1, .max = 10000, .help = "messages applied per transaction"},
 *   };
 *   bz_config *cfg;
 *   if (bz_config_load(schema, sizeof schema / sizeof schema[0], path, &cfg, &err))
 *       ... print err.msg, exit non-zero ...
 *   const char *dsn = bz_config_string(cfg, "pg.dsn");
 *
 * Key names use dots for groups; in the file they are nested groups
 * (`kafka = { brokers = "127.0.0.1:9092"; };`) and in the environment they are
 * BLAZZ_ + the name upper-cased with dots turned into underscores
 * (BLAZZ_KAFKA_BROKERS).
 *
 * Precedence, lowest to highest:
 *   1. the schema default (.def, written as text and parsed like an env value)
 *   2. the config file
 *   3. BLAZZ_<NAME>_FILE, for secret keys only: the file's content with one
 *      trailing newline removed (the Docker/Kubernetes secrets convention)
 *   4. BLAZZ_<NAME>: an explicit value beats a file reference
 * BLAZZ_* variables that match no key are ignored, because several services
 * commonly share one environment; unknown keys in the file are refused, since
 * a file belongs to one service and a typo there would silently do nothing.
 *
 * Validation refuses, with BZ_ERR_CONFIG and a message naming the key and
 * where its value came from: file syntax errors (with line number), unknown
 * keys in the file, wrong types, unparsable environment values, text that
 * is not UTF-8 (values end up in JSON logs and --check-config), numbers
 * outside [min, max], and required keys that are missing (an empty string
 * counts as missing). Messages never contain the value of a secret key.
 */
#ifndef BZ_CONFIG_H
#define BZ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef enum bz_config_type {
    BZ_CFG_STRING = 0,
    BZ_CFG_INT,    /* int64_t; file: integer; env: decimal, e.g. "-12" */
    BZ_CFG_BOOL,   /* file: true/false; env: true/false/yes/no/on/off/1/0 */
    BZ_CFG_DOUBLE  /* file: float or integer; env: strtod syntax; finite */
} bz_config_type;

typedef struct bz_config_key {
    const char *name;    /* dotted, e.g. "consumer.batch_max" */
    bz_config_type type;
    const char *def;     /* default as text ("500", "true", "0.25"); NULL: none */
    int required;        /* refuse to start when no source sets it */
    double min, max;     /* inclusive bounds for INT/DOUBLE; min == max: none */
    int secret;          /* masked in dumps and messages; _FILE allowed */
    const char *help;    /* one line, for --help output */
} bz_config_key;

typedef struct bz_config bz_config;

/* Load configuration for schema[0..n). path may be NULL (environment and
 * defaults only). The schema must outlive the returned config (it is normally
 * a static table); *out is heap memory owned by the caller, released with
 * bz_config_free. On failure *out is NULL and err names the offending key.
 * A malformed schema (bad default, duplicate name) fails with
 * BZ_ERR_INTERNAL. */
bz_status bz_config_load(const bz_config_key *schema, size_t n, const char *path,
                         bz_config **out, bz_error *err);

void bz_config_free(bz_config *cfg);

/* Getters. Asking for a key that is not in the schema, or with the wrong
 * type, is a programming error: the getter logs an error line naming the key
 * and calls abort(), so the mistake shows up on the first test run instead of
 * silently using a zero. Optional keys without a default that no source set
 * read as NULL / 0 / false / 0.0; bz_config_is_set tells them apart. The
 * string belongs to cfg and lives until bz_config_free. */
const char *bz_config_string(const bz_config *cfg, const char *name);
int64_t bz_config_int(const bz_config *cfg, const char *name);
bool bz_config_bool(const bz_config *cfg, const char *name);
double bz_config_double(const bz_config *cfg, const char *name);
bool bz_config_is_set(const bz_config *cfg, const char *name);

/* Write the effective configuration to fd as a JSON object keyed by dotted
 * name, in schema order; secrets that are set appear as "***", unset keys as
 * null. For --check-config and debugging. Returns BZ_ERR_NOMEM or BZ_ERR_IO
 * (errno tells why) on failure. */
bz_status bz_config_dump(const bz_config *cfg, int fd);

/* Write a human-readable table of the schema to fd: key, environment
 * variable, type, default, flags and help. For --help. */
void bz_config_usage(const bz_config_key *schema, size_t n, int fd);

/* The environment variable name when it is set and not empty, else
 * fallback (may be NULL): how the tools, which have no schema, read a
 * setting. Not owned by the caller. */
const char *bz_env_or(const char *name, const char *fallback);

/* A secret a program takes from outside its command line (where the
 * process list would show it): the content of file ("-": standard input),
 * else the environment variable env_name, else the file env_name_FILE
 * names; one trailing newline is removed, as for _FILE keys. *out is heap
 * memory the caller wipes (explicit_bzero / OPENSSL_cleanse) and frees, or
 * NULL with BZ_OK when none of them is set. */
bz_status bz_config_read_secret(const char *file, const char *env_name, char **out,
                                bz_error *err);

/* Write the environment variable name for a key ("kafka.brokers" ->
 * "BLAZZ_KAFKA_BROKERS") into buf; truncates to cap. */
void bz_config_env_name(const char *name, char *buf, size_t cap);

#endif
