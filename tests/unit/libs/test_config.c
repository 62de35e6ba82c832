/*
 * test_config.c - configuration loading: defaults, the libconfig file, the
 * environment and secret files in their order of precedence; every class of
 * refusal names the key; dumps never show secrets; getters abort on
 * programming errors.
 *
 * Files are written under a mkdtemp folder removed at the end; every test
 * starts from an environment with none of the schema's BLAZZ_ variables set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

static const bz_config_key schema[] = {
    {.name = "kafka.brokers", .type = BZ_CFG_STRING, .required = 1, .help = "bootstrap servers"},
    {.name = "pg.dsn", .type = BZ_CFG_STRING, .required = 1, .secret = 1, .help = "DSN"},
    {.name = "http.listen", .type = BZ_CFG_STRING, .def = "127.0.0.1:9101"},
    {.name = "consumer.batch_max", .type = BZ_CFG_INT, .def = "500", .min = 1, .max = 10000},
    {.name = "consumer.linger_s", .type = BZ_CFG_DOUBLE, .def = "0.05", .min = 0, .max = 10},
    {.name = "consumer.offset", .type = BZ_CFG_INT, .def = "0"},
    {.name = "log.level", .type = BZ_CFG_STRING, .def = "info"},
    {.name = "ingest.dry_run", .type = BZ_CFG_BOOL, .def = "false"},
    {.name = "webhook.app_secret", .type = BZ_CFG_STRING, .secret = 1},
    {.name = "webhook.pin", .type = BZ_CFG_INT, .secret = 1, .min = 1000, .max = 9999},
};
#define N_SCHEMA (sizeof schema / sizeof schema[0])

static const char *const env_vars[] = {
    "BLAZZ_KAFKA_BROKERS",      "BLAZZ_PG_DSN",           "BLAZZ_PG_DSN_FILE",
    "BLAZZ_HTTP_LISTEN",        "BLAZZ_CONSUMER_BATCH_MAX", "BLAZZ_CONSUMER_LINGER_S",
    "BLAZZ_CONSUMER_OFFSET",    "BLAZZ_LOG_LEVEL",        "BLAZZ_INGEST_DRY_RUN",
    "BLAZZ_WEBHOOK_APP_SECRET", "BLAZZ_WEBHOOK_APP_SECRET_FILE", "BLAZZ_WEBHOOK_PIN",
    "BLAZZ_WEBHOOK_PIN_FILE",   "BLAZZ_HTTP_LISTEN_FILE",
};

static char tmp_dir[64];
static char created[32][128];
static size_t n_created;

/* Write content to a new file in the temp folder; returns its path (static
 * storage, valid until teardown). */
static const char *write_file(const char *name, const char *content)
{
    assert_true(n_created < sizeof created / sizeof created[0]);
    char *path = created[n_created++];
    snprintf(path, sizeof created[0], "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void set_required_env(void)
{
    setenv("BLAZZ_KAFKA_BROKERS", "127.0.0.1:9092", 1);
    setenv("BLAZZ_PG_DSN", "postgresql://u:hunter2@127.0.0.1/blazz", 1);
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_created; i++)
        unlink(created[i]);
    n_created = 0;
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/bz-test-config-XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return rmdir(tmp_dir);
}

static bz_config *load_ok(const char *path)
{
    bz_config *cfg = NULL;
    bz_error err = {0};
    bz_status st = bz_config_load(schema, N_SCHEMA, path, &cfg, &err);
    if (st != BZ_OK)
        fail_msg("load failed: %s", err.msg);
    assert_non_null(cfg);
    return cfg;
}

/* ---- values and precedence --------------------------------------------- */

static void test_defaults_apply_when_nothing_else_is_set(void **state)
{
    (void)state;
    set_required_env();
    bz_config *cfg = load_ok(NULL);
    assert_string_equal(bz_config_string(cfg, "kafka.brokers"), "127.0.0.1:9092");
    assert_string_equal(bz_config_string(cfg, "http.listen"), "127.0.0.1:9101");
    assert_int_equal(bz_config_int(cfg, "consumer.batch_max"), 500);
    assert_float_equal(bz_config_double(cfg, "consumer.linger_s"), 0.05, 1e-12);
    assert_false(bz_config_bool(cfg, "ingest.dry_run"));
    assert_true(bz_config_is_set(cfg, "log.level"));
    assert_false(bz_config_is_set(cfg, "webhook.app_secret"));
    assert_null(bz_config_string(cfg, "webhook.app_secret"));
    assert_int_equal(bz_config_int(cfg, "webhook.pin"), 0);
    bz_config_free(cfg);
}

static void test_file_nested_groups_map_to_dotted_names(void **state)
{
    (void)state;
    const char *path = write_file("nested.cfg",
                                  "kafka = { brokers = \"k1:9092,k2:9092\"; };\n"
                                  "pg: { dsn = \"postgresql://file\"; };\n"
                                  "consumer = {\n"
                                  "  batch_max = 250;\n"
                                  "  linger_s = 2;           # an integer is fine for a double\n"
                                  "  offset = 9000000000L;\n"
                                  "};\n"
                                  "ingest = { dry_run = true; };\n");
    bz_config *cfg = load_ok(path);
    assert_string_equal(bz_config_string(cfg, "kafka.brokers"), "k1:9092,k2:9092");
    assert_string_equal(bz_config_string(cfg, "pg.dsn"), "postgresql://file");
    assert_int_equal(bz_config_int(cfg, "consumer.batch_max"), 250);
    assert_float_equal(bz_config_double(cfg, "consumer.linger_s"), 2.0, 0);
    assert_true(bz_config_int(cfg, "consumer.offset") == 9000000000LL);
    assert_true(bz_config_bool(cfg, "ingest.dry_run"));
    assert_string_equal(bz_config_string(cfg, "log.level"), "info");
    bz_config_free(cfg);
}

static void test_env_beats_file_for_every_type(void **state)
{
    (void)state;
    const char *path = write_file("base.cfg",
                                  "kafka = { brokers = \"file:9092\"; };\n"
                                  "pg = { dsn = \"file-dsn\"; };\n"
                                  "consumer = { batch_max = 0; linger_s = 1.5; };\n"
                                  "ingest = { dry_run = false; };\n");
    /* batch_max = 0 is out of range in the file, but only effective values
     * are range-checked, and the environment replaces it. */
    setenv("BLAZZ_KAFKA_BROKERS", "env:9092", 1);
    setenv("BLAZZ_PG_DSN", "env-dsn", 1);
    setenv("BLAZZ_CONSUMER_BATCH_MAX", "42", 1);
    setenv("BLAZZ_CONSUMER_LINGER_S", "0.25", 1);
    setenv("BLAZZ_INGEST_DRY_RUN", "yes", 1);
    bz_config *cfg = load_ok(path);
    assert_string_equal(bz_config_string(cfg, "kafka.brokers"), "env:9092");
    assert_string_equal(bz_config_string(cfg, "pg.dsn"), "env-dsn");
    assert_int_equal(bz_config_int(cfg, "consumer.batch_max"), 42);
    assert_float_equal(bz_config_double(cfg, "consumer.linger_s"), 0.25, 0);
    assert_true(bz_config_bool(cfg, "ingest.dry_run"));
    bz_config_free(cfg);
}

static void test_env_bool_spellings(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool value;
    } cases[] = {
        {"true", true}, {"TRUE", true},   {"yes", true}, {"On", true},   {"1", true},
        {"false", false}, {"No", false}, {"off", false}, {"0", false},
    };
    set_required_env();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("BLAZZ_INGEST_DRY_RUN", cases[i].text, 1);
        bz_config *cfg = load_ok(NULL);
        if (bz_config_bool(cfg, "ingest.dry_run") != cases[i].value)
            fail_msg("'%s' should read as %d", cases[i].text, cases[i].value);
        bz_config_free(cfg);
    }
}

static void test_env_numbers_accept_signs_and_exponents(void **state)
{
    (void)state;
    set_required_env();
    setenv("BLAZZ_CONSUMER_OFFSET", "-12", 1);
    setenv("BLAZZ_CONSUMER_LINGER_S", "1e-3", 1);
    bz_config *cfg = load_ok(NULL);
    assert_int_equal(bz_config_int(cfg, "consumer.offset"), -12);
    assert_float_equal(bz_config_double(cfg, "consumer.linger_s"), 0.001, 1e-15);
    bz_config_free(cfg);
}

/* ---- secrets from files ------------------------------------------------ */

static void test_secret_file_is_read_without_one_trailing_newline(void **state)
{
    (void)state;
    setenv("BLAZZ_KAFKA_BROKERS", "k:9092", 1);
    setenv("BLAZZ_PG_DSN_FILE", write_file("dsn", "postgresql://from-file\n"), 1);
    setenv("BLAZZ_WEBHOOK_APP_SECRET_FILE", write_file("app", "two-newlines\n\n"), 1);
    setenv("BLAZZ_WEBHOOK_PIN_FILE", write_file("pin", "4321\r\n"), 1);
    bz_config *cfg = load_ok(NULL);
    assert_string_equal(bz_config_string(cfg, "pg.dsn"), "postgresql://from-file");
    assert_string_equal(bz_config_string(cfg, "webhook.app_secret"), "two-newlines\n");
    assert_int_equal(bz_config_int(cfg, "webhook.pin"), 4321);
    bz_config_free(cfg);
}

static void test_secret_precedence_env_then_file_ref_then_config_file(void **state)
{
    (void)state;
    const char *path = write_file("secrets.cfg", "kafka = { brokers = \"k\"; };\n"
                                                 "pg = { dsn = \"from-config\"; };\n"
                                                 "webhook = { app_secret = \"from-config\"; };\n");
    setenv("BLAZZ_WEBHOOK_APP_SECRET_FILE", write_file("s1", "from-file-ref"), 1);
    setenv("BLAZZ_PG_DSN_FILE", write_file("s2", "from-file-ref"), 1);
    setenv("BLAZZ_PG_DSN", "from-env", 1);
    bz_config *cfg = load_ok(path);
    assert_string_equal(bz_config_string(cfg, "pg.dsn"), "from-env");
    assert_string_equal(bz_config_string(cfg, "webhook.app_secret"), "from-file-ref");
    bz_config_free(cfg);
}

static void test_file_reference_is_ignored_for_plain_keys(void **state)
{
    (void)state;
    set_required_env();
    setenv("BLAZZ_HTTP_LISTEN_FILE", write_file("listen", "0.0.0.0:1"), 1);
    bz_config *cfg = load_ok(NULL);
    assert_string_equal(bz_config_string(cfg, "http.listen"), "127.0.0.1:9101");
    bz_config_free(cfg);
}

/* ---- refusals ---------------------------------------------------------- */

typedef struct refusal_case {
    const char *what;
    const char *file;         /* config file content, NULL for none */
    const char *env[3][2];    /* extra variables on top of the required ones */
    bool without_required;    /* leave BLAZZ_KAFKA_BROKERS/BLAZZ_PG_DSN unset */
    const char *expect[3];    /* substrings the message must contain */
    const char *must_not;     /* a substring it must not contain (secrets) */
} refusal_case;

static const refusal_case refusals[] = {
    {"unknown key in file", "kafka = {\n  brokerz = \"x\";\n};\n", {{0}}, false,
     {"line 2", "unknown key 'kafka.brokerz'"}, NULL},
    {"scalar where a group is declared", "kafka = \"x\";\n", {{0}}, false,
     {"line 1", "unknown key 'kafka'"}, NULL},
    {"wrong type in file", "consumer = { batch_max = \"many\"; };\n", {{0}}, false,
     {"line 1", "consumer.batch_max", "expected an integer"}, NULL},
    {"float for an int", "consumer = { batch_max = 1.5; };\n", {{0}}, false,
     {"consumer.batch_max", "expected an integer"}, NULL},
    {"string for a bool", "ingest = { dry_run = \"yes\"; };\n", {{0}}, false,
     {"ingest.dry_run", "expected a boolean"}, NULL},
    {"list in file", "log = { level = [\"a\", \"b\"]; };\n", {{0}}, false,
     {"log.level", "not supported"}, NULL},
    {"syntax error", "kafka = {\n  brokers = \"x\";\n  oops oops\n};\n", {{0}}, false,
     {"line 3", "syntax error"}, NULL},
    {"int out of range in file", "consumer = { batch_max = 0; };\n", {{0}}, false,
     {"consumer.batch_max: 0 is out of range [1, 10000]", "config file"}, NULL},
    {"double out of range from env", NULL, {{"BLAZZ_CONSUMER_LINGER_S", "11"}}, false,
     {"consumer.linger_s: 11 is out of range [0, 10]", "BLAZZ_CONSUMER_LINGER_S"}, NULL},
    {"unparsable int from env", NULL, {{"BLAZZ_CONSUMER_BATCH_MAX", "abc"}}, false,
     {"BLAZZ_CONSUMER_BATCH_MAX: expected an integer, got 'abc'"}, NULL},
    {"int with trailing junk", NULL, {{"BLAZZ_CONSUMER_BATCH_MAX", "12x"}}, false,
     {"BLAZZ_CONSUMER_BATCH_MAX", "got '12x'"}, NULL},
    {"int with leading space", NULL, {{"BLAZZ_CONSUMER_BATCH_MAX", " 12"}}, false,
     {"BLAZZ_CONSUMER_BATCH_MAX", "expected an integer"}, NULL},
    {"int overflow", NULL, {{"BLAZZ_CONSUMER_OFFSET", "99999999999999999999"}}, false,
     {"BLAZZ_CONSUMER_OFFSET", "expected an integer"}, NULL},
    {"unparsable double", NULL, {{"BLAZZ_CONSUMER_LINGER_S", "fast"}}, false,
     {"BLAZZ_CONSUMER_LINGER_S: expected a number, got 'fast'"}, NULL},
    {"infinite double", NULL, {{"BLAZZ_CONSUMER_LINGER_S", "inf"}}, false,
     {"BLAZZ_CONSUMER_LINGER_S", "expected a number"}, NULL},
    {"unparsable bool", NULL, {{"BLAZZ_INGEST_DRY_RUN", "maybe"}}, false,
     {"BLAZZ_INGEST_DRY_RUN: expected a boolean, got 'maybe'"}, NULL},
    {"missing required", NULL, {{"BLAZZ_PG_DSN", "x"}}, true,
     {"kafka.brokers: required", "BLAZZ_KAFKA_BROKERS"}, NULL},
    {"empty required", NULL, {{"BLAZZ_KAFKA_BROKERS", ""}}, false,
     {"kafka.brokers: required"}, NULL},
    {"missing required secret", NULL, {{"BLAZZ_KAFKA_BROKERS", "k"}}, true,
     {"pg.dsn: required", "BLAZZ_PG_DSN", "_FILE"}, NULL},
    {"unreadable secret file", NULL, {{"BLAZZ_PG_DSN_FILE", "/nonexistent/blazz/dsn"}}, false,
     {"BLAZZ_PG_DSN_FILE", "/nonexistent/blazz/dsn", "No such file"}, NULL},
    {"secret not echoed on parse error", NULL, {{"BLAZZ_WEBHOOK_PIN", "s3cr3t-pin"}}, false,
     {"BLAZZ_WEBHOOK_PIN: expected an integer", "webhook.pin is secret"}, "s3cr3t-pin"},
    {"secret not echoed on range error", NULL, {{"BLAZZ_WEBHOOK_PIN", "12"}}, false,
     {"webhook.pin: value out of range"}, "12 "},
};

static void test_refusals_name_the_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        const refusal_case *c = &refusals[i];
        setup(NULL);
        if (!c->without_required)
            set_required_env();
        for (size_t e = 0; e < 3 && c->env[e][0]; e++)
            setenv(c->env[e][0], c->env[e][1], 1);
        const char *path = c->file ? write_file("refusal.cfg", c->file) : NULL;

        bz_config *cfg = (bz_config *)1;
        bz_error err = {0};
        bz_status st = bz_config_load(schema, N_SCHEMA, path, &cfg, &err);
        if (st != BZ_ERR_CONFIG)
            fail_msg("%s: expected BZ_ERR_CONFIG, got %s (%s)", c->what, bz_status_name(st),
                     err.msg);
        assert_null(cfg);
        assert_int_equal(err.code, BZ_ERR_CONFIG);
        for (size_t k = 0; k < 3 && c->expect[k]; k++)
            if (!strstr(err.msg, c->expect[k]))
                fail_msg("%s: message '%s' lacks '%s'", c->what, err.msg, c->expect[k]);
        if (c->must_not && strstr(err.msg, c->must_not))
            fail_msg("%s: message '%s' leaks '%s'", c->what, err.msg, c->must_not);
        teardown(NULL);
    }
}

static void test_missing_config_file_is_refused(void **state)
{
    (void)state;
    set_required_env();
    bz_config *cfg;
    bz_error err = {0};
    assert_int_equal(bz_config_load(schema, N_SCHEMA, "/nonexistent/blazz.cfg", &cfg, &err),
                     BZ_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "/nonexistent/blazz.cfg"));
    assert_non_null(strstr(err.msg, "cannot read"));
}

static void test_malformed_schema_is_an_internal_error(void **state)
{
    (void)state;
    static const bz_config_key bad_default[] = {
        {.name = "a.n", .type = BZ_CFG_INT, .def = "ten"},
    };
    static const bz_config_key duplicate[] = {
        {.name = "a.n", .type = BZ_CFG_INT},
        {.name = "a.n", .type = BZ_CFG_STRING},
    };
    bz_config *cfg;
    bz_error err = {0};
    assert_int_equal(bz_config_load(bad_default, 1, NULL, &cfg, &err), BZ_ERR_INTERNAL);
    assert_non_null(strstr(err.msg, "a.n"));
    assert_int_equal(bz_config_load(duplicate, 2, NULL, &cfg, &err), BZ_ERR_INTERNAL);
    assert_non_null(strstr(err.msg, "a.n"));
}

/* ---- dump, usage, names ------------------------------------------------ */

static char *read_all(int fd)
{
    static char buf[8192];
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    return buf;
}

static void test_dump_masks_secrets(void **state)
{
    (void)state;
    set_required_env();
    setenv("BLAZZ_WEBHOOK_PIN", "1234", 1);
    bz_config *cfg = load_ok(NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/dump.json", tmp_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(bz_config_dump(cfg, fd), BZ_OK);
    char *text = read_all(fd);
    close(fd);
    unlink(path);
    bz_config_free(cfg);

    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "1234"));
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "pg.dsn")), "***");
    assert_string_equal(json_string_value(json_object_get(doc, "webhook.pin")), "***");
    assert_true(json_is_null(json_object_get(doc, "webhook.app_secret")));
    assert_string_equal(json_string_value(json_object_get(doc, "kafka.brokers")),
                        "127.0.0.1:9092");
    assert_int_equal(json_integer_value(json_object_get(doc, "consumer.batch_max")), 500);
    assert_true(json_is_false(json_object_get(doc, "ingest.dry_run")));
    assert_float_equal(json_real_value(json_object_get(doc, "consumer.linger_s")), 0.05, 1e-12);
    assert_int_equal(json_object_size(doc), N_SCHEMA);
    json_decref(doc);
}

static void test_usage_lists_keys_and_env_names(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/usage.txt", tmp_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    bz_config_usage(schema, N_SCHEMA, fd);
    char *text = read_all(fd);
    close(fd);
    unlink(path);
    assert_non_null(strstr(text, "consumer.batch_max"));
    assert_non_null(strstr(text, "BLAZZ_CONSUMER_BATCH_MAX"));
    assert_non_null(strstr(text, "[1..10000]"));
    assert_non_null(strstr(text, "BLAZZ_PG_DSN_FILE"));
    assert_non_null(strstr(text, "bootstrap servers"));
}

static void test_env_name_mapping(void **state)
{
    (void)state;
    char buf[64];
    bz_config_env_name("kafka.brokers", buf, sizeof buf);
    assert_string_equal(buf, "BLAZZ_KAFKA_BROKERS");
    bz_config_env_name("consumer.batch_max", buf, sizeof buf);
    assert_string_equal(buf, "BLAZZ_CONSUMER_BATCH_MAX");
    bz_config_env_name("kafka.brokers", buf, 10);
    assert_string_equal(buf, "BLAZZ_KAF");
}

/* ---- programming errors ------------------------------------------------ */

static void assert_aborts(const bz_config *cfg, void (*misuse)(const bz_config *))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the getter's "programming error" line, expected, stays out of the output */
        int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null_fd >= 0)
            dup2(null_fd, STDERR_FILENO);
        misuse(cfg);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void read_undeclared(const bz_config *cfg)
{
    bz_config_int(cfg, "consumer.batch_maxx");
}

static void read_with_wrong_type(const bz_config *cfg)
{
    bz_config_string(cfg, "consumer.batch_max");
}

static void test_getter_misuse_aborts(void **state)
{
    (void)state;
    set_required_env();
    bz_config *cfg = load_ok(NULL);
    assert_aborts(cfg, read_undeclared);
    assert_aborts(cfg, read_with_wrong_type);
    bz_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults_apply_when_nothing_else_is_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_nested_groups_map_to_dotted_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_beats_file_for_every_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_bool_spellings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_numbers_accept_signs_and_exponents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_file_is_read_without_one_trailing_newline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_precedence_env_then_file_ref_then_config_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_reference_is_ignored_for_plain_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_name_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_config_file_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_schema_is_an_internal_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_masks_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_lists_keys_and_env_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_name_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_getter_misuse_aborts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
