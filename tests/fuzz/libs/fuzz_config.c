/*
 * fuzz_config.c - the configuration loader (libs/core/config.c): a
 * libconfig file, optionally followed by environment overrides, against a
 * schema with every type, a secret, ranges, defaults and nested groups.
 *
 * Input: the file's text; after a line "%%env", lines NAME=VALUE set those
 * of the schema's BLAZZ_* variables (no other variable is ever touched, no
 * _FILE variant, and a file with @include is skipped: it would read other
 * files). The file is handed over as a memfd's /proc/self/fd path.
 * Properties: loading twice gives the same verdict; a refusal is
 * BZ_ERR_CONFIG with a message; an accepted configuration
 * respects every range, dumps (--check-config) to JSON that agrees with the
 * getters and masks the secret, and written back as a libconfig file it
 * loads again to the same values: the loader never accepts a value it could
 * not read back. Accepted means the configuration loaded.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "core/config.h"
#include "fuzz_target.h"

static const bz_config_key schema[] = {
    {.name = "kafka.brokers", .type = BZ_CFG_STRING, .required = 1},
    {.name = "pg.dsn", .type = BZ_CFG_STRING, .secret = 1},
    {.name = "consumer.batch_max", .type = BZ_CFG_INT, .def = "500", .min = 1, .max = 10000},
    {.name = "consumer.offset", .type = BZ_CFG_INT},
    {.name = "http.enabled", .type = BZ_CFG_BOOL, .def = "true"},
    {.name = "rate.per_second", .type = BZ_CFG_DOUBLE, .def = "0.25", .min = 0, .max = 1000},
    {.name = "rate.burst", .type = BZ_CFG_DOUBLE},
    {.name = "deep.a.b.c", .type = BZ_CFG_STRING},
    {.name = "webhook.pin", .type = BZ_CFG_INT, .secret = 1, .min = 1000, .max = 9999},
};
#define N_KEYS (sizeof schema / sizeof schema[0])

/* libconfig 1.5 (Debian bookworm) leaks its string buffer when a syntax
 * error interrupts a string; a service stops on that error anyway. Not ours
 * to fix, so LeakSanitizer is told to ignore leaks from inside it. */
const char *__lsan_default_suppressions(void); // NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)
const char *__lsan_default_suppressions(void) // NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)
{
    return "leak:libconfig.so\n";
}

/* A memfd holding the text of one file, and its path. */
typedef struct mem_file {
    int fd;
    char path[64];
} mem_file;

static void mem_file_write(mem_file *f, const char *name, const char *text, size_t len)
{
    if (f->fd <= 0) {
        f->fd = memfd_create(name, MFD_CLOEXEC);
        BZ_FUZZ_CHECK(f->fd >= 0);
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    }
    BZ_FUZZ_CHECK(ftruncate(f->fd, 0) == 0 && lseek(f->fd, 0, SEEK_SET) == 0);
    BZ_FUZZ_CHECK(len == 0 || pwrite(f->fd, text, len, 0) == (ssize_t)len);
}

static char *mem_file_read(const mem_file *f)
{
    off_t len = lseek(f->fd, 0, SEEK_END);
    BZ_FUZZ_CHECK(len >= 0);
    char *text = malloc((size_t)len + 1);
    BZ_FUZZ_CHECK(text != NULL && pread(f->fd, text, (size_t)len, 0) == len);
    text[len] = '\0';
    return text;
}

static mem_file input_file, reread_file, dump_file;

/* Apply the NAME=VALUE lines of env (schema variables only). */
static void set_environment(char *env)
{
    for (char *line = strtok(env, "\n"); line; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        for (size_t i = 0; i < N_KEYS; i++) {
            char name[96];
            bz_config_env_name(schema[i].name, name, sizeof name);
            if (strcmp(name, line) != 0)
                continue;
            setenv(name, eq + 1, 1);
        }
    }
}

static void clear_environment(void)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        char name[96];
        bz_config_env_name(schema[i].name, name, sizeof name);
        unsetenv(name);
    }
}

/* A libconfig string literal for s. */
static void put_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void put_value(FILE *out, const bz_config *cfg, const bz_config_key *k)
{
    switch (k->type) {
    case BZ_CFG_STRING: put_string(out, bz_config_string(cfg, k->name)); break;
    case BZ_CFG_INT: fprintf(out, "%lldL", (long long)bz_config_int(cfg, k->name)); break;
    case BZ_CFG_BOOL: fputs(bz_config_bool(cfg, k->name) ? "true" : "false", out); break;
    case BZ_CFG_DOUBLE: fprintf(out, "%.17e", bz_config_double(cfg, k->name)); break;
    }
}

/* Write the set keys under prefix (e.g. "deep.a."), each group once. */
static void put_group(FILE *out, const bz_config *cfg, const char *prefix)
{
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *name = schema[i].name;
        if (strncmp(name, prefix, plen) != 0 || !bz_config_is_set(cfg, name))
            continue;
        const char *rest = name + plen, *dot = strchr(rest, '.');
        size_t clen = dot ? (size_t)(dot - rest) : strlen(rest);
        int seen = 0; /* an earlier key already wrote this group */
        for (size_t j = 0; j < i && !seen; j++)
            seen = strncmp(schema[j].name, name, plen + clen + 1) == 0 &&
                   bz_config_is_set(cfg, schema[j].name);
        if (!dot) {
            fprintf(out, "%s = ", rest);
            put_value(out, cfg, &schema[i]);
            fputs(";\n", out);
        } else if (!seen) {
            char sub[128];
            snprintf(sub, sizeof sub, "%.*s", (int)(plen + clen + 1), name);
            fprintf(out, "%.*s = {\n", (int)clen, rest);
            put_group(out, cfg, sub);
            fputs("};\n", out);
        }
    }
}

/* The effective configuration as a libconfig file, heap text. */
static char *as_libconfig(const bz_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    BZ_FUZZ_CHECK(out != NULL);
    put_group(out, cfg, "");
    BZ_FUZZ_CHECK(fclose(out) == 0);
    return text;
}

static void check_same_values(const bz_config *a, const bz_config *b)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *name = schema[i].name;
        BZ_FUZZ_CHECK(bz_config_is_set(a, name) == bz_config_is_set(b, name));
        switch (schema[i].type) {
        case BZ_CFG_STRING: {
            const char *x = bz_config_string(a, name), *y = bz_config_string(b, name);
            BZ_FUZZ_CHECK((!x && !y) || (x && y && strcmp(x, y) == 0));
            break;
        }
        case BZ_CFG_INT: BZ_FUZZ_CHECK(bz_config_int(a, name) == bz_config_int(b, name)); break;
        case BZ_CFG_BOOL: BZ_FUZZ_CHECK(bz_config_bool(a, name) == bz_config_bool(b, name)); break;
        case BZ_CFG_DOUBLE:
            BZ_FUZZ_CHECK(bz_config_double(a, name) == bz_config_double(b, name));
            break;
        }
    }
}

static void check_ranges(const bz_config *cfg)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const bz_config_key *k = &schema[i];
        if (k->min == k->max || !bz_config_is_set(cfg, k->name))
            continue;
        double v = k->type == BZ_CFG_INT ? (double)bz_config_int(cfg, k->name)
                                         : bz_config_double(cfg, k->name);
        BZ_FUZZ_CHECK(v >= k->min && v <= k->max);
    }
}

static void check_dump(const bz_config *cfg)
{
    mem_file_write(&dump_file, "fuzz-config-dump", "", 0);
    BZ_FUZZ_CHECK(bz_config_dump(cfg, dump_file.fd) == BZ_OK);
    char *text = mem_file_read(&dump_file);
    json_t *doc = json_loads(text, 0, NULL);
    BZ_FUZZ_CHECK(json_is_object(doc) && json_object_size(doc) == N_KEYS);
    for (size_t i = 0; i < N_KEYS; i++) {
        const bz_config_key *k = &schema[i];
        const json_t *v = json_object_get(doc, k->name);
        BZ_FUZZ_CHECK(v != NULL);
        if (!bz_config_is_set(cfg, k->name)) {
            BZ_FUZZ_CHECK(json_is_null(v));
        } else if (k->secret) {
            BZ_FUZZ_CHECK(json_is_string(v) && strcmp(json_string_value(v), "***") == 0);
        } else if (k->type == BZ_CFG_STRING) {
            BZ_FUZZ_CHECK(json_is_string(v) &&
                          strcmp(json_string_value(v), bz_config_string(cfg, k->name)) == 0);
        } else if (k->type == BZ_CFG_INT) {
            BZ_FUZZ_CHECK(json_integer_value(v) == bz_config_int(cfg, k->name));
        } else if (k->type == BZ_CFG_BOOL) {
            BZ_FUZZ_CHECK(json_is_boolean(v) && json_is_true(v) == bz_config_bool(cfg, k->name));
        } else {
            BZ_FUZZ_CHECK(json_number_value(v) == bz_config_double(cfg, k->name));
        }
    }
    json_decref(doc);
    free(text);
}

static void check_reread(const bz_config *cfg)
{
    char *text = as_libconfig(cfg);
    mem_file_write(&reread_file, "fuzz-config-reread", text, strlen(text));
    free(text);
    clear_environment();
    bz_config *again = NULL;
    bz_error err;
    BZ_FUZZ_CHECK(bz_config_load(schema, N_KEYS, reread_file.path, &again, &err) == BZ_OK);
    check_same_values(cfg, again);
    bz_config_free(again);
}

static int fuzz_config(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    BZ_FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    char *env = strstr(text, "\n%%env\n");
    size_t file_len = env ? (size_t)(env - text) : size;
    if (memmem(text, file_len, "@include", 8)) {
        free(text);
        return BZ_FUZZ_REJECTED;
    }
    mem_file_write(&input_file, "fuzz-config", text, file_len);
    if (env)
        set_environment(env + 7);

    bz_config *cfg = NULL, *twice = NULL;
    bz_error err;
    bz_status st = bz_config_load(schema, N_KEYS, input_file.path, &cfg, &err);
    bz_status st2 = bz_config_load(schema, N_KEYS, input_file.path, &twice, NULL);
    BZ_FUZZ_CHECK(st == st2);
    if (st != BZ_OK) {
        BZ_FUZZ_CHECK(st == BZ_ERR_CONFIG && err.msg[0] != '\0');
    } else {
        check_same_values(cfg, twice);
        check_ranges(cfg);
        check_dump(cfg);
        check_reread(cfg);
    }
    bz_config_free(cfg);
    bz_config_free(twice);
    clear_environment();
    free(text);
    return st == BZ_OK ? BZ_FUZZ_ACCEPTED : BZ_FUZZ_REJECTED;
}

static const bz_fuzz_expect expect[] = {
    {"service.conf", BZ_FUZZ_ACCEPTED},
    {"env_overrides.conf", BZ_FUZZ_ACCEPTED},
    {"unknown_key.conf", BZ_FUZZ_REJECTED},
    {"out_of_range.conf", BZ_FUZZ_REJECTED},
    {"string_not_utf8.conf", BZ_FUZZ_REJECTED},
    {"double_infinite.conf", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_config, expect)
