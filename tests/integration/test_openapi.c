/*
 * test_openapi.c - docs/openapi.yaml attacked by a client no one here wrote.
 *
 * Schemathesis ($BLAZZ_SCHEMATHESIS, the version pinned in
 * scripts/lib/schemathesis.sh) generates requests from docs/openapi.yaml,
 * valid and invalid ones, and sends them to a running ingest (the ASan
 * build under `make test`, support/ingest_itest.c: a registered gateway and
 * the Meta app's gateway with their keys, a workspace with accounts); the
 * hooks (tests/integration/openapi_hooks.py) give most of them the real
 * credentials: an API key made with blazzctl for the CRM routes, the
 * gateway's HMAC over the exact bytes sent, Meta's signature under the app
 * secret, the verify token; the others keep made-up ones, and Schemathesis'
 * own probes send none or wrong ones. With every check on
 * (`--checks all`; the settings in tests/integration/openapi_schemathesis.toml), each answer must be one the document lists for the
 * operation, with its content type, headers and schema, never a 5xx, and
 * an authenticated request must not be accepted without its credentials;
 * a request Schemathesis gets no answer to within the request timeout
 * fails the run. Then ingest must still run, must not have logged a
 * sanitizer report, and must exit cleanly (the fixture's teardown).
 *
 * The public listener and the admin port are two runs (the admin paths are
 * on a server of their own in the document). A case count per operation
 * (`generation.max-examples`) keeps the whole under a minute or two, and a
 * fixed seed makes `make test` send the same requests every time, so that
 * its verdict is the code's, not the draw's. To explore, run it with
 * BLAZZ_OPENAPI_SEED=random (or a number) and BLAZZ_OPENAPI_EXAMPLES=N
 * (BLAZZ_TEST_ONLY=test_openapi make test); what a draw finds is a case to
 * fix and keep (tests/unit/ingest/test_ingest_parsers.c). The calls log
 * the hooks write says how many requests passed authentication, which must
 * be most of them (or the run proved little beyond the 401s) and, per
 * secured operation, not all (the 401s are part of what is tested).
 *
 * Schemathesis sends the document's request examples whatever their schema
 * says, so first every example must be valid against its own schema
 * (tests/integration/openapi_examples.py): the examples are requests the
 * server accepts (what they name is stored here), so a schema refusing one
 * does not describe the server (a reaction, once).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/uuid.h"
#include "ingest_itest.h"
#include "itest.h"
#include "wa/crm_command.h"

#define SPEC "docs/openapi.yaml"
#define CONFIG "tests/integration/openapi_schemathesis.toml"
/* per run of DEFAULT_EXAMPLES cases an operation (the configuration's max-examples): 150
 * took make test past its 12 minutes once the webhook reads were added, 100 to its edge once
 * the CRM managed its endpoints and keys (54 CPU-s, Schemathesis the most of it) */
#define RUN_LIMIT_MS (5 * 60 * 1000)
#define DEFAULT_EXAMPLES 50
/* make test's draw; any other is BLAZZ_OPENAPI_SEED's */
#define DEFAULT_SEED "20261124"

/* the share of requests that must carry the right credentials, percent */
#define AUTHENTICATED_MIN_PERCENT 60
/* phones, the group and the message of the document's examples, so that
 * they are found (the reaction's target is the phone's message) */
#define EXAMPLE_PHONE "+6281234567890"
#define EXAMPLE_GROUP "120363012345678901@g.us"
#define EXAMPLE_TARGET_WAM_ID "3EB0C431C26A1916E0D8"
/* the key of a message stored with another request than any the hooks send */
#define REUSED_KEY "openapi-reused-key"

static ingest_fx fx;
static char dir[512], calls_log[700];

/* ---- the stage ---------------------------------------------------------- */

/* What the document's CRM examples name, so that they can be accepted;
 * the group's id as text into group (cap bytes), with a message, so that
 * its conversation answers a page. */
static void insert_example_recipients(char *group, size_t cap)
{
    int64_t contact = itest_pg_int64f(
        fx.conn,
        "INSERT INTO contacts (workspace_id, phone, first_name) VALUES (%lld, '%s', "
        "'Budi') RETURNING id",
        (long long)fx.workspace, EXAMPLE_PHONE);
    itest_pg_int64f(fx.conn,
                    "INSERT INTO chats (workspace_id, whatsapp_account_id, contact_id, wam_id, "
                    "type, chat_type) VALUES (%lld, %lld, %lld, '%s', 'inbound', 'private') "
                    "RETURNING id",
                    (long long)fx.workspace, (long long)fx.account, (long long)contact,
                    EXAMPLE_TARGET_WAM_ID);
    int64_t group_id = itest_pg_int64f(fx.conn,
                                       "INSERT INTO whatsapp_groups (workspace_id, group_jid, "
                                       "name) VALUES (%lld, '%s', 'Tim Sales') RETURNING id",
                                       (long long)fx.workspace, EXAMPLE_GROUP);
    itest_pg_int64f(fx.conn,
                    "INSERT INTO chats (workspace_id, whatsapp_account_id, group_id, type, "
                    "chat_type, metadata) VALUES (%lld, %lld, %lld, 'inbound', 'group', "
                    "'{\"message_type\": \"text\", \"body\": \"halo\", \"sender_phone\": "
                    "\"%s\"}') RETURNING id",
                    (long long)fx.workspace, (long long)fx.account, (long long)group_id,
                    EXAMPLE_PHONE);
    snprintf(group, cap, "%lld", (long long)group_id);
}

/* What only state reaches (the hooks' _send_known_refusals): a message
 * stored under REUSED_KEY with another request's fingerprint, and media
 * of another workspace, its uuid into media (BZ_UUID_STR_SIZE bytes). */
static void insert_refusal_state(char *media)
{
    char message_id[BZ_UUID_STR_SIZE];
    bz_crm_message_id(fx.workspace, REUSED_KEY, message_id);
    itest_pg_int64f(fx.conn,
                    "INSERT INTO chats (uuid, workspace_id, whatsapp_account_id, contact_id, type, "
                    "chat_type, metadata) SELECT '%s', %lld, %lld, id, 'outbound', 'private', "
                    "jsonb_build_object('request_fingerprint', repeat('0', 64)) FROM contacts "
                    "WHERE workspace_id = %lld AND phone = '%s' RETURNING id",
                    message_id, (long long)fx.workspace, (long long)fx.account,
                    (long long)fx.workspace, EXAMPLE_PHONE);
    char *uuid = itest_pg_textf(fx.conn,
                                "INSERT INTO chat_media (workspace_id, path, location, type, "
                                "kind, size, sha256, source) VALUES (%lld, 'ws/openapi', "
                                "'local', 'image/jpeg', 'image', 1, repeat('a', 64), 'crm') "
                                "RETURNING uuid::text",
                                (long long)fx.other_workspace);
    snprintf(media, BZ_UUID_STR_SIZE, "%s", uuid);
    free(uuid);
}

/* A webhook endpoint of the workspace with deliveries, never due (no
 * dispatcher here), so that its reads answer pages: its id, as text into
 * out. */
static void insert_endpoint_with_deliveries(char *out, size_t cap)
{
    int64_t endpoint = itest_pg_int64f(
        fx.conn,
        "INSERT INTO webhook_endpoints (workspace_id, url, secret_ciphertext, secret_nonce, "
        "enabled) VALUES (%lld, 'http://127.0.0.1:9/openapi', decode(repeat('ab', 32), 'hex'), "
        "decode(repeat('cd', 12), 'hex'), false) RETURNING id",
        (long long)fx.workspace);
    assert_int_equal(itest_pg_int64f(fx.conn,
                                     "WITH d AS (INSERT INTO webhook_retry_queue (event_id, "
                                     "endpoint_id, workspace_id, event_type, payload, status, "
                                     "delivered_at) SELECT gen_random_uuid(), %lld, %lld, "
                                     "'message.created', '\\x7b7d'::bytea, 'success', now() FROM "
                                     "generate_series(1, 3) RETURNING 1) SELECT count(*) FROM d",
                                     (long long)endpoint, (long long)fx.workspace),
                     3);
    snprintf(out, cap, "%lld", (long long)endpoint);
}

/* The hooks' settings: secrets in the environment, never on argv. */
static void export_hook_settings(const char *api_key, const char *endpoint, const char *group,
                                 const char *foreign_media)
{
    char hooks_dir[1200];
    snprintf(hooks_dir, sizeof hooks_dir, "%s/tests/integration", itest_repo_dir(SPEC));
    setenv("PYTHONPATH", hooks_dir, 1);
    setenv("SCHEMATHESIS_HOOKS", "openapi_hooks", 1);
    setenv("BLAZZ_OPENAPI_API_KEY", api_key, 1);
    setenv("BLAZZ_OPENAPI_GATEWAY", fx.gateway, 1);
    setenv("BLAZZ_OPENAPI_SESSION", fx.session, 1);
    setenv("BLAZZ_OPENAPI_ENDPOINT", endpoint, 1);
    setenv("BLAZZ_OPENAPI_GROUP", group, 1);
    setenv("BLAZZ_OPENAPI_REUSED_KEY", REUSED_KEY, 1);
    setenv("BLAZZ_OPENAPI_FOREIGN_MEDIA", foreign_media, 1);
    setenv("BLAZZ_OPENAPI_PHONE", EXAMPLE_PHONE, 1);
    setenv("BLAZZ_OPENAPI_GATEWAY_KEY", INGEST_FX_SECRET, 1);
    setenv("BLAZZ_OPENAPI_META_SECRET", INGEST_FX_META_SECRET, 1);
    setenv("BLAZZ_OPENAPI_VERIFY_TOKEN", INGEST_FX_META_TOKEN, 1);
    setenv("BLAZZ_OPENAPI_CALLS_LOG", calls_log, 1);
    setenv("BLAZZ_OPENAPI_DIR", dir, 1); /* Schemathesis' cache */
    setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
}

static int setup(void **state)
{
    (void)state;
    ingest_fx_setup(&fx);
    const char *base = getenv("BLAZZ_STATE_DIR");
    snprintf(dir, sizeof dir, "%s/%sopenapi", base ? base : "/tmp", fx.prefix);
    mkdir(dir, 0755);
    snprintf(calls_log, sizeof calls_log, "%s/calls.log", dir);
    char group[24], foreign_media[BZ_UUID_STR_SIZE];
    insert_example_recipients(group, sizeof group);
    insert_refusal_state(foreign_media);
    char endpoint[24];
    insert_endpoint_with_deliveries(endpoint, sizeof endpoint);
    char err_log[800];
    snprintf(err_log, sizeof err_log, "%s/blazzctl.log", dir);
    char *key = itest_api_key(fx.workspace, err_log);
    export_hook_settings(key, endpoint, group, foreign_media);
    free(key);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ingest_fx_teardown(&fx);
    return 0;
}

/* ---- running Schemathesis ------------------------------------------------ */

static int examples_per_operation(void)
{
    return itest_env_int("BLAZZ_OPENAPI_EXAMPLES", DEFAULT_EXAMPLES, 1, 1000000);
}

/* Wait for pid within RUN_LIMIT_MS (longer for more cases); its exit code,
 * or a failure (the process killed) when it overran. */
static int wait_within_limit(pid_t pid, const char *what, const char *log)
{
    int64_t limit = (int64_t)RUN_LIMIT_MS * (examples_per_operation() + DEFAULT_EXAMPLES - 1) /
                    DEFAULT_EXAMPLES;
    int64_t deadline = bz_monotonic_ms() + limit;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (bz_monotonic_ms() > deadline) {
            kill(pid, SIGKILL);
            itest_wait(pid);
            itest_print_file(log);
            fail_msg("%s did not finish within %lld s (log: %s)", what,
                     (long long)(limit / 1000), log);
        }
        itest_sleep_ms(200);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* `schemathesis run` of the document against port, its output in
 * <dir>/<name>.log, with the extra arguments (NULL-terminated); fails the
 * test, printing the output, unless it passes. */
static void run_schemathesis(const char *name, int port, const char *const *extra)
{
    char spec[1200], config[1200], url[64], log[800], junit[800];
    snprintf(spec, sizeof spec, "%s/" SPEC, itest_repo_dir(SPEC));
    snprintf(config, sizeof config, "%s/" CONFIG, itest_repo_dir(CONFIG));
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    snprintf(junit, sizeof junit, "%s/%s-junit.xml", dir, name);
    const char *program = itest_env("BLAZZ_SCHEMATHESIS");
    /* every check but the one the config file explains */
    const char *argv[40] = {program, "--config-file", config, "run", spec, "--url", url,
                            "--checks", "all", "--exclude-checks", "ensure_resource_availability",
                            "--report", "junit", "--report-junit-path", junit, "--no-color"};
    size_t n = 16;
    const char *seed = getenv("BLAZZ_OPENAPI_SEED");
    if (!seed || !*seed)
        seed = DEFAULT_SEED;
    if (strcmp(seed, "random") != 0) {
        argv[n++] = "--seed";
        argv[n++] = seed;
    }
    char examples[16];
    snprintf(examples, sizeof examples, "%d", examples_per_operation());
    argv[n++] = "--max-examples";
    argv[n++] = examples;
    for (size_t i = 0; extra && extra[i] && n < 39; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    int64_t started = bz_monotonic_ms();
    pid_t pid = itest_spawn((char *const *)argv, log);
    int rc = wait_within_limit(pid, name, log);
    printf("schemathesis %s: exit %d in %.1f s (log: %s)\n", name, rc,
           (double)(bz_monotonic_ms() - started) / 1000, log);
    if (rc != 0) {
        itest_print_file(log);
        fail_msg("schemathesis %s found what the document does not allow (exit %d, log: %s)",
                 name, rc, log);
    }
}

/* ---- what was sent ---------------------------------------------------------- */

typedef struct operation_count {
    const char *method, *path;
    int calls, authenticated, accepted;
} operation_count;

/* A refusal an operation must have answered at least once: what the
 * hooks' _send_known_refusals makes sends reach. */
typedef struct refusal_seen {
    const char *method, *path, *error;
    int times;
} refusal_seen;
#define REFUSALS 2

/* The operations that take credentials (the admin port has none; methods
 * the document does not list are Schemathesis' probes for 405). */
#define SECURED_OPERATIONS 24

/* Requests per secured operation, how many carried the right credentials
 * and how many were accepted (2xx), and how often each refusal was
 * answered, from the hooks' calls log. */
static void count_calls(operation_count ops[SECURED_OPERATIONS], refusal_seen seen[REFUSALS])
{
    const operation_count secured[SECURED_OPERATIONS] = {
        {"POST", "/v1/messages", 0, 0, 0},     {"POST", "/v1/chats/read", 0, 0, 0},
        {"POST", "/v1/events", 0, 0, 0},       {"GET", "/v1/meta/webhook", 0, 0, 0},
        {"POST", "/v1/meta/webhook", 0, 0, 0}, {"POST", "/v1/sessions", 0, 0, 0},
        {"POST", "/v1/sessions/{session_id}/restart", 0, 0, 0},
        {"POST", "/v1/sessions/{session_id}/logout", 0, 0, 0},
        {"POST", "/v1/sessions/{session_id}/primary", 0, 0, 0},
        {"POST", "/v1/media", 0, 0, 0},        {"GET", "/v1/media/{media_uuid}", 0, 0, 0},
        {"POST", "/v1/gateway/media", 0, 0, 0},
        {"GET", "/v1/gateway/media/{media_uuid}", 0, 0, 0},
        {"GET", "/v1/webhook-endpoints", 0, 0, 0},
        {"POST", "/v1/webhook-endpoints", 0, 0, 0},
        {"GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries", 0, 0, 0},
        {"PATCH", "/v1/webhook-endpoints/{endpoint_id}", 0, 0, 0},
        {"DELETE", "/v1/webhook-endpoints/{endpoint_id}", 0, 0, 0},
        {"POST", "/v1/webhook-endpoints/{endpoint_id}/replay", 0, 0, 0},
        {"POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", 0, 0, 0},
        {"GET", "/v1/api-keys", 0, 0, 0},
        {"DELETE", "/v1/api-keys/{key_id}", 0, 0, 0},
        {"GET", "/v1/conversations", 0, 0, 0},
        {"GET", "/v1/groups/{group_id}/messages", 0, 0, 0}};
    const refusal_seen refusals[REFUSALS] = {
        {"POST", "/v1/messages", "idempotency_key_reused", 0},
        {"POST", "/v1/messages", "unknown_media", 0}};
    memcpy(ops, secured, sizeof secured);
    memcpy(seen, refusals, sizeof refusals);
    FILE *f = fopen(calls_log, "r");
    if (!f)
        fail_msg("no calls log %s: the hooks did not run", calls_log);
    char method[8], path[64], status_text[8], auth[8], error[64];
    while (fscanf(f, "%7s %63s %7s %7s %63s", method, path, status_text, auth, error) == 5) {
        char *end;
        long status = strtol(status_text, &end, 10);
        if (end == status_text || *end != '\0')
            fail_msg("calls log %s: status '%s' is not a number", calls_log, status_text);
        for (size_t i = 0; i < SECURED_OPERATIONS; i++) {
            if (strcmp(ops[i].method, method) != 0 || strcmp(ops[i].path, path) != 0)
                continue;
            ops[i].calls++;
            ops[i].authenticated += strcmp(auth, "auth") == 0;
            ops[i].accepted += status >= 200 && status < 300;
        }
        for (size_t i = 0; i < REFUSALS; i++)
            seen[i].times += strcmp(seen[i].method, method) == 0 &&
                             strcmp(seen[i].path, path) == 0 && strcmp(seen[i].error, error) == 0;
    }
    fclose(f);
}

static void check_authentication_share(void)
{
    operation_count ops[SECURED_OPERATIONS];
    refusal_seen seen[REFUSALS];
    size_t n = SECURED_OPERATIONS;
    count_calls(ops, seen);
    for (size_t i = 0; i < REFUSALS; i++) {
        printf("  %-4s %-33s %5d answered %s\n", seen[i].method, seen[i].path, seen[i].times,
               seen[i].error);
        if (seen[i].times == 0)
            fail_msg("%s %s: never answered %s", seen[i].method, seen[i].path, seen[i].error);
    }
    int calls = 0, authenticated = 0;
    for (size_t i = 0; i < n; i++) {
        printf("  %-4s %-33s %5d requests, %5d with the right credentials, %5d accepted\n",
               ops[i].method, ops[i].path, ops[i].calls, ops[i].authenticated, ops[i].accepted);
        if (ops[i].calls == 0)
            fail_msg("%s %s: not exercised", ops[i].method, ops[i].path);
        calls += ops[i].calls;
        authenticated += ops[i].authenticated;
        if (ops[i].authenticated == ops[i].calls)
            fail_msg("%s %s: no request without the right credentials", ops[i].method,
                     ops[i].path);
    }
    printf("  all: %d requests, %d (%d%%) with the right credentials\n", calls, authenticated,
           calls ? authenticated * 100 / calls : 0);
    if (authenticated * 100 < calls * AUTHENTICATED_MIN_PERCENT)
        fail_msg("only %d of %d requests passed authentication", authenticated, calls);
}

static void check_ingest_unharmed(void)
{
    int status;
    if (waitpid(fx.ingest, &status, WNOHANG) == fx.ingest) {
        fx.ingest = 0;
        fail_msg("ingest died during the run (log: %s)", fx.log_path);
    }
    static const char *const reports[] = {"AddressSanitizer", "LeakSanitizer",
                                          "runtime error:", "UndefinedBehaviorSanitizer"};
    for (size_t i = 0; i < sizeof reports / sizeof reports[0]; i++)
        if (itest_file_contains(fx.log_path, reports[i]))
            fail_msg("ingest logged a sanitizer report (%s; log: %s)", reports[i], fx.log_path);
}

/* Every request example of the document valid against its schema. */
static void check_examples_fit_their_schemas(void)
{
    char script[1200], spec[1200], log[800];
    snprintf(script, sizeof script, "%s/tests/integration/openapi_examples.py",
             itest_repo_dir("tests/integration/openapi_examples.py"));
    snprintf(spec, sizeof spec, "%s/" SPEC, itest_repo_dir(SPEC));
    snprintf(log, sizeof log, "%s/examples.log", dir);
    char *argv[] = {(char *)itest_env("BLAZZ_TEST_PYTHON"), script, spec, NULL};
    int rc = itest_wait(itest_spawn(argv, log));
    itest_print_file(log);
    if (rc != 0)
        fail_msg("an example of %s is refused by its own schema (exit %d, log: %s)", SPEC, rc,
                 log);
}

/* ---- the test ------------------------------------------------------------------ */

static void test_every_generated_request_gets_a_documented_answer(void **state)
{
    (void)state;
    check_examples_fit_their_schemas();
    const char *public_only[] = {"--exclude-path-regex", "^/(healthz|readyz|metrics)$", NULL};
    run_schemathesis("public", fx.port, public_only);
    const char *admin_only[] = {"--include-path-regex", "^/(healthz|readyz|metrics)$", NULL};
    run_schemathesis("admin", fx.admin_port, admin_only);
    check_ingest_unharmed();
    check_authentication_share();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_generated_request_gets_a_documented_answer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
