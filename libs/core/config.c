/*
 * config.c - schema-driven configuration loading (see config.h).
 *
 * Loading fills one value slot per schema key, in layers: defaults, then the
 * libconfig file (walked recursively so nested groups become dotted names,
 * each scalar checked against the schema), then BLAZZ_<NAME>_FILE for secret
 * keys, then BLAZZ_<NAME>. Each layer overwrites the slot and records where
 * the value came from, so later errors (range, required) can say "from the
 * config file line 12" or "from BLAZZ_X". Range and required checks run once
 * at the end, on the effective values only: an out-of-range file value that
 * the environment overrides is not an error.
 *
 * Text from every source other than the file (defaults, env, _FILE) goes
 * through one parser per type, so "500" means the same everywhere.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "utf8.h"

#define CONFIG_NAME_MAX 128
#define CONFIG_SOURCE_MAX 160
#define SECRET_FILE_MAX (64 * 1024)

typedef struct config_value {
    bool set;
    int64_t i;
    double d;
    bool b;
    char *s;
    char source[CONFIG_SOURCE_MAX]; /* "default", "BLAZZ_X", "config file f line 3" */
} config_value;

struct bz_config {
    const bz_config_key *schema;
    size_t n;
    config_value *values;
};

static const char *type_name(bz_config_type type)
{
    switch (type) {
    case BZ_CFG_STRING: return "a string";
    case BZ_CFG_INT: return "an integer";
    case BZ_CFG_BOOL: return "a boolean";
    case BZ_CFG_DOUBLE: return "a number";
    }
    return "a value";
}

void bz_config_env_name(const char *name, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    size_t used = (size_t)snprintf(buf, cap, "BLAZZ_");
    for (const char *p = name; *p && used + 1 < cap; p++)
        buf[used++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    buf[used < cap ? used : cap - 1] = '\0';
}

static long find_key(const bz_config_key *schema, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(schema[i].name, name) == 0)
            return (long)i;
    return -1;
}

static bool has_range(const bz_config_key *key)
{
    return key->min != key->max && (key->type == BZ_CFG_INT || key->type == BZ_CFG_DOUBLE);
}

/* Values may be secrets: wipe before freeing. */
static void clear_value(config_value *v)
{
    if (v->s)
        explicit_bzero(v->s, strlen(v->s));
    free(v->s);
    v->s = NULL;
    v->set = false;
}

/* ---- parsing text values (defaults, environment, secret files) ---------- */

static bool parse_int(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || isspace((unsigned char)*text))
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || isspace((unsigned char)*text) ||
        !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Store text as key's value, parsed by type; on a parse failure say what was
 * expected, quoting the text unless the key is secret. */
static bz_status set_from_text(const bz_config_key *key, config_value *v, const char *text,
                               const char *source, bz_error *err)
{
    int64_t i = 0;
    double d = 0;
    bool b = false;
    bool ok = true;
    switch (key->type) {
    case BZ_CFG_STRING: break;
    case BZ_CFG_INT: ok = parse_int(text, &i); break;
    case BZ_CFG_BOOL: ok = parse_bool(text, &b); break;
    case BZ_CFG_DOUBLE: ok = parse_double(text, &d); break;
    }
    if (!ok) {
        if (key->secret)
            return bz_fail(err, BZ_ERR_CONFIG, "%s: expected %s (value hidden: %s is secret)",
                           source, type_name(key->type), key->name);
        return bz_fail(err, BZ_ERR_CONFIG, "%s: expected %s, got '%s'", source,
                       type_name(key->type), text);
    }
    if (key->type == BZ_CFG_STRING && !bz_utf8_valid(text, strlen(text)))
        return bz_fail(err, BZ_ERR_CONFIG, "%s: %s is not UTF-8 text", source, key->name);
    char *copy = NULL;
    if (key->type == BZ_CFG_STRING && !(copy = strdup(text)))
        return bz_fail(err, BZ_ERR_NOMEM, "%s: out of memory", key->name);
    clear_value(v);
    v->set = true;
    v->i = i;
    v->d = d;
    v->b = b;
    v->s = copy;
    snprintf(v->source, sizeof v->source, "%s", source);
    return BZ_OK;
}

/* ---- layer 1: defaults ------------------------------------------------- */

static bz_status apply_defaults(bz_config *cfg, bz_error *err)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const bz_config_key *key = &cfg->schema[i];
        if (!key->name || find_key(cfg->schema, i, key->name) >= 0)
            return bz_fail(err, BZ_ERR_INTERNAL, "config schema: key %zu ('%s') is missing or duplicated",
                           i, key->name ? key->name : "(null)");
        if (!key->def)
            continue;
        bz_status st = set_from_text(key, &cfg->values[i], key->def, "default", err);
        if (st != BZ_OK) {
            err->code = BZ_ERR_INTERNAL;
            return bz_wrap(err, "config schema: %s", key->name);
        }
    }
    return BZ_OK;
}

/* ---- layer 2: the libconfig file --------------------------------------- */

static bz_status set_from_setting(bz_config *cfg, const char *path, const char *name,
                                  config_setting_t *s, bz_error *err)
{
    unsigned line = config_setting_source_line(s);
    long idx = find_key(cfg->schema, cfg->n, name);
    if (idx < 0)
        return bz_fail(err, BZ_ERR_CONFIG, "config file %s line %u: unknown key '%s'", path, line,
                       name);
    const bz_config_key *key = &cfg->schema[idx];
    config_value *v = &cfg->values[idx];
    int type = config_setting_type(s);
    bool ok = (key->type == BZ_CFG_STRING && type == CONFIG_TYPE_STRING) ||
              (key->type == BZ_CFG_INT && (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)) ||
              (key->type == BZ_CFG_BOOL && type == CONFIG_TYPE_BOOL) ||
              (key->type == BZ_CFG_DOUBLE && (type == CONFIG_TYPE_FLOAT || type == CONFIG_TYPE_INT ||
                                              type == CONFIG_TYPE_INT64));
    if (!ok)
        return bz_fail(err, BZ_ERR_CONFIG, "config file %s line %u: key '%s': expected %s", path,
                       line, name, type_name(key->type));

    /* libconfig reads 1e999 as infinity; the environment's parser refuses it. */
    if (type == CONFIG_TYPE_FLOAT && !isfinite(config_setting_get_float(s)))
        return bz_fail(err, BZ_ERR_CONFIG, "config file %s line %u: key '%s': not a finite number",
                       path, line, name);
    const char *text = key->type == BZ_CFG_STRING ? config_setting_get_string(s) : NULL;
    if (text && !bz_utf8_valid(text, strlen(text)))
        return bz_fail(err, BZ_ERR_CONFIG, "config file %s line %u: key '%s': not UTF-8 text",
                       path, line, name);
    char *copy = NULL;
    if (text && !(copy = strdup(text)))
        return bz_fail(err, BZ_ERR_NOMEM, "config file %s: key '%s': out of memory", path, name);
    clear_value(v);
    v->set = true;
    v->s = copy;
    if (key->type == BZ_CFG_INT)
        v->i = config_setting_get_int64(s);
    else if (key->type == BZ_CFG_BOOL)
        v->b = config_setting_get_bool(s) != 0;
    else if (key->type == BZ_CFG_DOUBLE)
        v->d = type == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
                                         : (double)config_setting_get_int64(s);
    snprintf(v->source, sizeof v->source, "config file %s line %u", path, line);
    return BZ_OK;
}

static bz_status walk_group(bz_config *cfg, const char *path, const char *prefix,
                            config_setting_t *group, bz_error *err)
{
    int count = config_setting_length(group);
    for (int i = 0; i < count; i++) {
        config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        char name[CONFIG_NAME_MAX];
        int w = snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "",
                         config_setting_name(s));
        if (w < 0 || (size_t)w >= sizeof name)
            return bz_fail(err, BZ_ERR_CONFIG, "config file %s line %u: key '%s...' is too long",
                           path, config_setting_source_line(s), prefix);
        bz_status st;
        if (config_setting_is_group(s))
            st = walk_group(cfg, path, name, s, err);
        else if (config_setting_is_aggregate(s))
            st = bz_fail(err, BZ_ERR_CONFIG,
                         "config file %s line %u: key '%s': lists and arrays are not supported",
                         path, config_setting_source_line(s), name);
        else
            st = set_from_setting(cfg, path, name, s, err);
        if (st != BZ_OK)
            return st;
    }
    return BZ_OK;
}

static bz_status apply_file(bz_config *cfg, const char *path, bz_error *err)
{
    config_t lc;
    config_init(&lc);
    bz_status st;
    if (config_read_file(&lc, path) != CONFIG_TRUE) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            st = bz_fail(err, BZ_ERR_CONFIG, "config file %s: cannot read: %s", path,
                         strerror(errno));
        else
            st = bz_fail(err, BZ_ERR_CONFIG, "config file %s line %d: %s",
                         config_error_file(&lc) ? config_error_file(&lc) : path,
                         config_error_line(&lc), config_error_text(&lc));
    } else {
        st = walk_group(cfg, path, "", config_root_setting(&lc), err);
    }
    config_destroy(&lc);
    return st;
}

/* ---- layers 3 and 4: the environment ----------------------------------- */

/* Read a secret file into a heap string without its one trailing newline. */
static bz_status read_secret_file(const char *var, const char *file, char **out, bz_error *err)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bz_fail(err, BZ_ERR_CONFIG, "%s: cannot open '%s': %s", var, file, strerror(errno));
    char *buf = malloc(SECRET_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        return bz_fail(err, BZ_ERR_NOMEM, "%s: out of memory", var);
    }
    size_t used = 0;
    ssize_t r = 0;
    while (used < SECRET_FILE_MAX && (r = read(fd, buf + used, SECRET_FILE_MAX - used)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        used += (size_t)r;
    }
    int read_errno = errno;
    char probe;
    bool too_big = used == SECRET_FILE_MAX && read(fd, &probe, 1) > 0;
    close(fd);
    if (r < 0 || too_big) {
        free(buf);
        if (too_big)
            return bz_fail(err, BZ_ERR_CONFIG, "%s: '%s' is larger than %d bytes", var, file,
                           SECRET_FILE_MAX);
        return bz_fail(err, BZ_ERR_CONFIG, "%s: cannot read '%s': %s", var, file,
                       strerror(read_errno));
    }
    if (used > 0 && buf[used - 1] == '\n')
        used--;
    if (used > 0 && buf[used - 1] == '\r')
        used--;
    buf[used] = '\0';
    if (memchr(buf, '\0', used)) {
        free(buf);
        return bz_fail(err, BZ_ERR_CONFIG, "%s: '%s' contains a NUL byte", var, file);
    }
    *out = buf;
    return BZ_OK;
}

static bz_status apply_secret_file(bz_config *cfg, size_t i, const char *env_name, bz_error *err)
{
    char var[CONFIG_NAME_MAX + 16];
    snprintf(var, sizeof var, "%s_FILE", env_name);
    const char *file = getenv(var);
    if (!file)
        return BZ_OK;
    char *text = NULL;
    bz_status st = read_secret_file(var, file, &text, err);
    if (st != BZ_OK)
        return st;
    st = set_from_text(&cfg->schema[i], &cfg->values[i], text, var, err);
    explicit_bzero(text, strlen(text));
    free(text);
    return st;
}

static bz_status apply_environment(bz_config *cfg, bz_error *err)
{
    for (size_t i = 0; i < cfg->n; i++) {
        char env_name[CONFIG_NAME_MAX + 8];
        bz_config_env_name(cfg->schema[i].name, env_name, sizeof env_name);
        if (cfg->schema[i].secret) {
            bz_status st = apply_secret_file(cfg, i, env_name, err);
            if (st != BZ_OK)
                return st;
        }
        const char *text = getenv(env_name);
        if (text) {
            bz_status st = set_from_text(&cfg->schema[i], &cfg->values[i], text, env_name, err);
            if (st != BZ_OK)
                return st;
        }
    }
    return BZ_OK;
}

const char *bz_env_or(const char *name, const char *fallback)
{
    const char *v = name ? getenv(name) : NULL;
    return v && *v ? v : fallback;
}

bz_status bz_config_read_secret(const char *file, const char *env_name, char **out,
                                bz_error *err)
{
    *out = NULL;
    char var[CONFIG_NAME_MAX + 16];
    snprintf(var, sizeof var, "%s_FILE", env_name);
    if (file)
        return read_secret_file(strcmp(file, "-") == 0 ? "standard input" : "secret file",
                                strcmp(file, "-") == 0 ? "/dev/stdin" : file, out, err);
    const char *value = getenv(env_name);
    if (value && *value)
        return (*out = strdup(value)) ? BZ_OK : bz_fail(err, BZ_ERR_NOMEM, "%s: out of memory",
                                                        env_name);
    const char *path = getenv(var);
    if (path && *path)
        return read_secret_file(var, path, out, err);
    return BZ_OK;
}

/* ---- final checks ------------------------------------------------------ */

static bz_status check_range(const bz_config_key *key, const config_value *v, bz_error *err)
{
    double value = key->type == BZ_CFG_INT ? (double)v->i : v->d;
    if (value >= key->min && value <= key->max)
        return BZ_OK;
    if (key->secret)
        return bz_fail(err, BZ_ERR_CONFIG, "%s: value out of range [%g, %g] (from %s)", key->name,
                       key->min, key->max, v->source);
    if (key->type == BZ_CFG_INT)
        return bz_fail(err, BZ_ERR_CONFIG, "%s: %lld is out of range [%g, %g] (from %s)",
                       key->name, (long long)v->i, key->min, key->max, v->source);
    return bz_fail(err, BZ_ERR_CONFIG, "%s: %g is out of range [%g, %g] (from %s)", key->name,
                   v->d, key->min, key->max, v->source);
}

static bz_status check_values(const bz_config *cfg, bz_error *err)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const bz_config_key *key = &cfg->schema[i];
        const config_value *v = &cfg->values[i];
        bool missing = !v->set || (key->type == BZ_CFG_STRING && v->s[0] == '\0');
        if (key->required && missing) {
            char env_name[CONFIG_NAME_MAX + 8];
            bz_config_env_name(key->name, env_name, sizeof env_name);
            return bz_fail(err, BZ_ERR_CONFIG,
                           "%s: required but not set (set it in the config file or %s%s%s)",
                           key->name, env_name, key->secret ? " or " : "",
                           key->secret ? "its _FILE variant" : "");
        }
        if (v->set && has_range(key)) {
            bz_status st = check_range(key, v, err);
            if (st != BZ_OK)
                return st;
        }
    }
    return BZ_OK;
}

/* ---- public API -------------------------------------------------------- */

bz_status bz_config_load(const bz_config_key *schema, size_t n, const char *path,
                         bz_config **out, bz_error *err)
{
    bz_error ignored;
    if (!err)
        err = &ignored;
    *out = NULL;
    bz_config *cfg = calloc(1, sizeof *cfg);
    if (cfg)
        cfg->values = calloc(n ? n : 1, sizeof *cfg->values);
    if (!cfg || !cfg->values) {
        free(cfg);
        return bz_fail(err, BZ_ERR_NOMEM, "load config: out of memory");
    }
    cfg->schema = schema;
    cfg->n = n;

    bz_status st = apply_defaults(cfg, err);
    if (st == BZ_OK && path)
        st = apply_file(cfg, path, err);
    if (st == BZ_OK)
        st = apply_environment(cfg, err);
    if (st == BZ_OK)
        st = check_values(cfg, err);
    if (st != BZ_OK) {
        bz_config_free(cfg);
        return st;
    }
    *out = cfg;
    return BZ_OK;
}

void bz_config_free(bz_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n; i++)
        clear_value(&cfg->values[i]);
    free(cfg->values);
    free(cfg);
}

/* A getter called with a name the schema lacks, or with the wrong type, is a
 * bug in the service; stop loudly rather than run on a zero. */
static const config_value *lookup_or_abort(const bz_config *cfg, const char *name,
                                           bz_config_type type)
{
    long idx = find_key(cfg->schema, cfg->n, name);
    if (idx < 0) {
        bz_log(BZ_LOG_ERROR, "config: key '%s' is not in the schema (programming error)", name);
        abort();
    }
    if (cfg->schema[idx].type != type) {
        bz_log(BZ_LOG_ERROR, "config: key '%s' is %s, read as %s (programming error)", name,
               type_name(cfg->schema[idx].type), type_name(type));
        abort();
    }
    return &cfg->values[idx];
}

const char *bz_config_string(const bz_config *cfg, const char *name)
{
    const config_value *v = lookup_or_abort(cfg, name, BZ_CFG_STRING);
    return v->set ? v->s : NULL;
}

int64_t bz_config_int(const bz_config *cfg, const char *name)
{
    const config_value *v = lookup_or_abort(cfg, name, BZ_CFG_INT);
    return v->set ? v->i : 0;
}

bool bz_config_bool(const bz_config *cfg, const char *name)
{
    const config_value *v = lookup_or_abort(cfg, name, BZ_CFG_BOOL);
    return v->set && v->b;
}

double bz_config_double(const bz_config *cfg, const char *name)
{
    const config_value *v = lookup_or_abort(cfg, name, BZ_CFG_DOUBLE);
    return v->set ? v->d : 0.0;
}

bool bz_config_is_set(const bz_config *cfg, const char *name)
{
    long idx = find_key(cfg->schema, cfg->n, name);
    if (idx < 0) {
        bz_log(BZ_LOG_ERROR, "config: key '%s' is not in the schema (programming error)", name);
        abort();
    }
    return cfg->values[idx].set;
}

/* ---- dump and usage ---------------------------------------------------- */

static json_t *value_as_json(const bz_config_key *key, const config_value *v)
{
    if (!v->set)
        return json_null();
    if (key->secret)
        return json_string("***");
    switch (key->type) {
    case BZ_CFG_STRING: return json_string(v->s);
    case BZ_CFG_INT: return json_integer((json_int_t)v->i);
    case BZ_CFG_BOOL: return json_boolean(v->b);
    case BZ_CFG_DOUBLE: return json_real(v->d);
    }
    return json_null();
}

static bool write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        buf += w;
        len -= (size_t)w;
    }
    return true;
}

bz_status bz_config_dump(const bz_config *cfg, int fd)
{
    json_t *obj = json_object();
    if (!obj)
        return BZ_ERR_NOMEM;
    for (size_t i = 0; i < cfg->n; i++) {
        if (json_object_set_new(obj, cfg->schema[i].name,
                                value_as_json(&cfg->schema[i], &cfg->values[i])) != 0) {
            json_decref(obj);
            return BZ_ERR_NOMEM;
        }
    }
    char *text = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!text)
        return BZ_ERR_NOMEM;
    bool ok = write_all(fd, text, strlen(text)) && write_all(fd, "\n", 1);
    free(text);
    return ok ? BZ_OK : BZ_ERR_IO;
}

void bz_config_usage(const bz_config_key *schema, size_t n, int fd)
{
    static const char *const short_types[] = {"string", "int", "bool", "double"};
    for (size_t i = 0; i < n; i++) {
        const bz_config_key *key = &schema[i];
        char env_name[CONFIG_NAME_MAX + 8];
        char range[80] = "";
        bz_config_env_name(key->name, env_name, sizeof env_name);
        if (has_range(key))
            snprintf(range, sizeof range, " [%g..%g]", key->min, key->max);
        dprintf(fd, "  %-28s %s%s%s%s%s%s\n", key->name, short_types[key->type], range,
                key->required ? " required" : "", key->def ? " default=" : "",
                key->def ? key->def : "", key->secret ? " secret" : "");
        if (key->secret)
            dprintf(fd, "      env %s or %s_FILE\n", env_name, env_name);
        else
            dprintf(fd, "      env %s\n", env_name);
        if (key->help)
            dprintf(fd, "      %s\n", key->help);
    }
}
