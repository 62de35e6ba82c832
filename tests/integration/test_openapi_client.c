/*
 * test_openapi_client.c - docs/openapi.yaml as a CRM developer uses it: a
 * client generated from it by a generator no one here wrote, then a short
 * program using only that client against a real ingest.
 *
 * openapi-python-client (the version pinned in scripts/lib/schemathesis.sh,
 * its virtualenv $BLAZZ_OPENAPI_CLIENT_HOME) generates the client into this
 * test's state dir with --fail-on-warning: an operation it cannot generate
 * or an error model it drops fails the test, with the generator's own
 * words; its settings are tests/integration/openapi_python_client.yaml.
 * The program, tests/integration/openapi_client_first_day.py, then does the
 * CRM's first day against ingest (support/ingest_itest.c: a workspace with
 * a webjs account, a media store of its own) with an API key made by
 * blazzctl: sessions, a contact by phone, a send (repeated with its
 * idempotency key), the conversation page by page, one message's status, a
 * read mark, an upload and its facts. The conversation's messages are
 * inserted here, since no chat-sync runs to store the send; the program
 * checks every answer against the success model the client parsed it as,
 * so it waits for nothing and its verdict is the same every run.
 *
 * The second generator is openapi-generator (the jar scripts/deps.sh
 * fetched from Maven Central, $BLAZZ_OPENAPI_GENERATOR_JAR): its `validate`
 * must find no issue, and its Go client generator, which logs what it
 * cannot express and carries on, must log no warning about the document;
 * tests/integration/openapi_generator_check.py then checks that the client
 * has a method for every operationId of the document and decodes each
 * operation's every JSON error answer into a model of the client. (Its
 * Python generator is not the one: 7.25.0 stops with "Codegen Property not
 * yet supported" at the first property typed only 'null'.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "ingest_itest.h"
#include "itest.h"

#define SPEC "docs/openapi.yaml"
#define GENERATOR_CONFIG "tests/integration/openapi_python_client.yaml"
#define PROGRAM "tests/integration/openapi_client_first_day.py"
#define GENERATOR_CHECK "tests/integration/openapi_generator_check.py"
#define PHONE "+6281234567801"
/* a conversation of three pages of two (the program's page size) */
#define STORED_MESSAGES 5

static ingest_fx fx;
static char dir[512];

/* A contact with STORED_MESSAGES inbound messages on the fixture's account. */
static void insert_conversation(void)
{
    int64_t contact = itest_pg_int64f(fx.conn,
                                      "INSERT INTO contacts (workspace_id, phone, first_name) "
                                      "VALUES (%lld, '%s', 'Dewi') RETURNING id",
                                      (long long)fx.workspace, PHONE);
    for (int i = 0; i < STORED_MESSAGES; i++)
        itest_pg_int64f(fx.conn,
                        "INSERT INTO chats (workspace_id, whatsapp_account_id, contact_id, "
                        "wam_id, type, chat_type) VALUES (%lld, %lld, %lld, 'first-day-%d', "
                        "'inbound', 'private') RETURNING id",
                        (long long)fx.workspace, (long long)fx.account, (long long)contact, i);
}

static int setup(void **state)
{
    (void)state;
    ingest_fx_setup(&fx);
    const char *base = getenv("BLAZZ_STATE_DIR");
    snprintf(dir, sizeof dir, "%s/%sopenapi_client", base ? base : "/tmp", fx.prefix);
    mkdir(dir, 0755);
    insert_conversation();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ingest_fx_teardown(&fx);
    return 0;
}

/* Run argv with its output in <dir>/<name>.log; fail, printing it, unless
 * it exits 0. */
static void run_step(const char *name, char *const *argv)
{
    char log[800];
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    int rc = itest_wait(itest_spawn(argv, log));
    itest_print_file(log);
    if (rc != 0)
        fail_msg("%s failed (exit %d, log: %s)", name, rc, log);
}

/* The generator's virtualenv first on PATH: it formats what it wrote with
 * the ruff installed beside it. */
static const char *client_home_on_path(void)
{
    const char *home = itest_env("BLAZZ_OPENAPI_CLIENT_HOME");
    static char path[4096];
    const char *old = getenv("PATH");
    snprintf(path, sizeof path, "%s/bin:%s", home, old ? old : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    return home;
}

static void generate_client(const char *home)
{
    char program[1200], spec[1200], config[1200], out[700];
    snprintf(program, sizeof program, "%s/bin/openapi-python-client", home);
    snprintf(spec, sizeof spec, "%s/" SPEC, itest_repo_dir(SPEC));
    snprintf(config, sizeof config, "%s/" GENERATOR_CONFIG, itest_repo_dir(GENERATOR_CONFIG));
    snprintf(out, sizeof out, "%s/blazz_client", dir);
    char *argv[] = {program, "generate", "--path", spec, "--config", config, "--meta", "none",
                    "--output-path", out, "--overwrite", "--fail-on-warning", NULL};
    run_step("generate", argv);
}

static void export_program_settings(void)
{
    char url[64], messages[16];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fx.port);
    snprintf(messages, sizeof messages, "%d", STORED_MESSAGES);
    char err_log[800];
    snprintf(err_log, sizeof err_log, "%s/blazzctl.log", dir);
    char *key = itest_api_key(fx.workspace, err_log);
    setenv("BLAZZ_CLIENT_KEY", key, 1); /* a secret: never on argv */
    free(key);
    setenv("BLAZZ_CLIENT_URL", url, 1);
    setenv("BLAZZ_CLIENT_SESSION", fx.session, 1);
    setenv("BLAZZ_CLIENT_PHONE", PHONE, 1);
    setenv("BLAZZ_CLIENT_MESSAGES", messages, 1);
    setenv("PYTHONPATH", dir, 1);
    setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
}

static void test_generated_client_does_the_first_day(void **state)
{
    (void)state;
    const char *home = client_home_on_path();
    generate_client(home);
    export_program_settings();
    char python[1200], program[1200];
    snprintf(python, sizeof python, "%s/bin/python", home);
    snprintf(program, sizeof program, "%s/" PROGRAM, itest_repo_dir(PROGRAM));
    char *argv[] = {python, program, NULL};
    run_step("first_day", argv);
}

/* openapi-generator's jar, run by the java on PATH (scripts/deps.sh sees to
 * one); env finds it, as execve does not search PATH. */
static void run_openapi_generator(const char *name, char *const *args)
{
    static char jar[1200];
    snprintf(jar, sizeof jar, "%s", itest_env("BLAZZ_OPENAPI_GENERATOR_JAR"));
    char *argv[16] = {"/usr/bin/env", "java", "-jar", jar};
    size_t n = 4;
    for (size_t i = 0; args[i]; i++) {
        if (n == sizeof argv / sizeof argv[0] - 1)
            fail_msg("%s: more arguments than run_openapi_generator holds", name);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    run_step(name, argv);
}

static void test_openapi_generator_keeps_every_operation_and_error(void **state)
{
    (void)state;
    char spec[1200], out[700], check[1200], validate_log[800], generate_log[800];
    snprintf(spec, sizeof spec, "%s/" SPEC, itest_repo_dir(SPEC));
    snprintf(out, sizeof out, "%s/openapi_generator_go", dir);
    snprintf(check, sizeof check, "%s/" GENERATOR_CHECK, itest_repo_dir(GENERATOR_CHECK));
    snprintf(validate_log, sizeof validate_log, "%s/oag_validate.log", dir);
    snprintf(generate_log, sizeof generate_log, "%s/oag_generate.log", dir);
    char *validate[] = {"validate", "-i", spec, NULL};
    run_openapi_generator("oag_validate", validate);
    /* No tests or docs of the client: nothing here reads them. */
    char *generate[] = {"generate", "-g", "go", "-i", spec, "-o", out, "--global-property",
                        "apiTests=false,modelTests=false,apiDocs=false,modelDocs=false", NULL};
    run_openapi_generator("oag_generate", generate);
    char python[1200];
    snprintf(python, sizeof python, "%s", itest_env("BLAZZ_TEST_PYTHON"));
    char *argv[] = {python, check, spec, out, validate_log, generate_log, NULL};
    run_step("oag_check", argv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_client_does_the_first_day),
        cmocka_unit_test(test_openapi_generator_keeps_every_operation_and_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
