/*
 * test_compose.c - the container deployment, checked without a container
 * engine: what compose.yaml, docker/config, Prometheus and Grafana say must
 * agree with what the binaries and the local stack actually do.
 *
 * `docker-compose config` (Debian's docker-compose 1.29, the oldest parser
 * we promise to support) resolves compose.yaml with the .env `make secrets`
 * writes (scripts/secrets.sh); python3's
 * YAML module (a dependency of docker-compose) turns that and prometheus.yml
 * into JSON for jansson. Then, per service: its binary exists, accepts the
 * mounted config file under exactly the environment compose gives it
 * (--check-config), reads every variable compose sets (its --help lists
 * them), listens for /metrics where the health check and Prometheus look,
 * and can be scaled (no container name, no fixed host port). Kafka and
 * PostgreSQL versions, partitions and addresses must match the local stack;
 * every metric the dashboard queries must be registered in the sources.
 * Kafka must be authenticated and authorized (ARCHITECTURE.md §9.1).
 * Last, `blazzctl health` (the image's HEALTHCHECK) is pointed at a real
 * chat-sync started from its compose config file. Resolved with
 * .env.example instead, nothing starts: kafka-setup and every service
 * refuse the example secrets and say to run `make secrets`.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "itest.h"
#include "kafka/topics.h"

#define HEALTH_WAIT_MS (60 * 1000)

static const char *const services[] = {"ingest",          "chat-sync", "webhook-dispatcher",
                                       "campaign-sender", "cleanup",   "meta-sender"};
#define NSERVICES (sizeof services / sizeof services[0])

static char repo[1024];
static char tmp_dir[1024];
static json_t *compose; /* resolved compose.yaml */
static char env_file[1200]; /* the .env of make secrets */

/* ---- processes ------------------------------------------------------------- */

typedef struct run_result {
    int status;
    char *out; /* stdout; caller frees */
} run_result;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* Run argv (PATH searched) with envp (NULL: inherit), stdout captured,
 * stderr to <tmp>/<name>.err. */
static run_result run(char *const argv[], char *const envp[], const char *name)
{
    char out_path[1200], err_path[1200];
    snprintf(out_path, sizeof out_path, "%s/%s.out", tmp_dir, name);
    snprintf(err_path, sizeof err_path, "%s/%s.err", tmp_dir, name);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0)
            _exit(126);
        dup2(out, 1);
        dup2(err, 2);
        if (envp)
            execve(argv[0], argv, envp);
        else
            execvp(argv[0], argv);
        _exit(127);
    }
    run_result r = {.status = itest_wait(pid)};
    r.out = slurp(out_path);
    return r;
}

static json_t *yaml_file_as_json(const char *path)
{
    static const char script[] =
        "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)";
    char *argv[] = {"python3", "-c", (char *)script, (char *)path, NULL};
    run_result r = run(argv, NULL, "yaml2json");
    if (r.status != 0)
        fail_msg("python3 could not read %s as YAML (exit %d; see %s/yaml2json.err)", path,
                 r.status, tmp_dir);
    json_error_t jerr;
    json_t *doc = json_loads(r.out, 0, &jerr);
    free(r.out);
    if (!doc)
        fail_msg("YAML of %s did not convert to JSON: %s", path, jerr.text);
    return doc;
}

static const char *ctl_path(void)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/bin/blazzctl", itest_env("BLAZZ_TEST_BIN_DIR"));
    return path;
}

static const char *service_binary(const char *service)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/bin/blazz-%s", itest_env("BLAZZ_TEST_BIN_DIR"), service);
    if (access(path, X_OK) != 0)
        fail_msg("service binary %s is missing: every compose service must be built", path);
    return path;
}

/* ---- setup ----------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    snprintf(repo, sizeof repo, "%s", itest_repo_dir("compose.yaml"));
    const char *base = getenv("BLAZZ_STATE_DIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/compose-test-XXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(tmp_dir));
    snprintf(env_file, sizeof env_file, "%s/.env", tmp_dir);
    char script[1200];
    snprintf(script, sizeof script, "%s/scripts/secrets.sh", repo);
    char *argv[] = {script, env_file, NULL};
    run_result r = run(argv, NULL, "make-secrets");
    free(r.out);
    if (r.status != 0)
        fail_msg("scripts/secrets.sh failed (exit %d; see %s/make-secrets.err)", r.status,
                 tmp_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(compose);
    return 0;
}

static json_t *service_def(const char *name)
{
    json_t *svc = json_object_get(json_object_get(compose, "services"), name);
    if (!svc)
        fail_msg("compose.yaml has no service '%s'", name);
    return svc;
}

static const char *text_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        return json_string_value(v);
    return NULL;
}

/* ---- compose parses -------------------------------------------------------- */

/* compose.yaml resolved by docker-compose with env (a .env file), as JSON. */
static json_t *resolved_compose(const char *env, const char *name)
{
    char file[1200], resolved[1200];
    snprintf(file, sizeof file, "%s/compose.yaml", repo);
    char *argv[] = {"docker-compose", "-f", file, "--env-file", (char *)env, "config", NULL};
    run_result r = run(argv, NULL, name);
    if (r.status != 0)
        fail_msg("docker-compose config failed (exit %d; see %s/%s.err)", r.status, tmp_dir,
                 name);
    snprintf(resolved, sizeof resolved, "%s/%s.out", tmp_dir, name);
    free(r.out);
    return yaml_file_as_json(resolved);
}

static void compose_file_parses_with_docker_compose_1_29(void **state)
{
    (void)state;
    compose = resolved_compose(env_file, "compose-config");
    const char *infra[] = {"postgres", "kafka", "kafka-setup", "migrate", "prometheus", "grafana"};
    for (size_t i = 0; i < sizeof infra / sizeof infra[0]; i++)
        service_def(infra[i]);
    for (size_t i = 0; i < NSERVICES; i++)
        service_def(services[i]);
}

/* ---- per service ----------------------------------------------------------- */

static int health_port(json_t *svc)
{
    json_t *test = json_object_get(json_object_get(svc, "healthcheck"), "test");
    size_t i;
    json_t *word;
    json_array_foreach(test, i, word) {
        const char *url = json_string_value(word);
        const char *at = url ? strstr(url, "127.0.0.1:") : NULL;
        if (at && strstr(url, "/healthz"))
            return (int)strtol(at + strlen("127.0.0.1:"), NULL, 10);
    }
    fail_msg("health check does not probe http://127.0.0.1:PORT/healthz");
    return -1;
}

static void assert_scalable(const char *name, json_t *svc)
{
    if (json_object_get(svc, "container_name"))
        fail_msg("%s: container_name prevents --scale", name);
    size_t i;
    json_t *port;
    json_array_foreach(json_object_get(svc, "ports"), i, port) {
        if (json_object_get(port, "published") ||
            (json_is_string(port) && strchr(json_string_value(port), ':')))
            fail_msg("%s: a fixed host port prevents --scale", name);
    }
}

static void assert_runs_like_a_service(const char *name, json_t *svc)
{
    assert_string_equal(text_at(json_object_get(json_object_get(svc, "build"), "args"),
                                "SERVICE"),
                        name);
    assert_string_equal(text_at(svc, "restart"), "unless-stopped");
    assert_string_equal(text_at(svc, "stop_signal"), "SIGTERM");
    json_t *limits =
        json_object_get(json_object_get(json_object_get(svc, "deploy"), "resources"), "limits");
    assert_non_null(json_object_get(limits, "memory"));
    assert_non_null(json_object_get(limits, "cpus"));
    assert_string_equal(text_at(json_object_get(json_object_get(svc, "depends_on"), "migrate"),
                                "condition"),
                        "service_completed_successfully");
}

static void services_are_scalable_supervised_and_wait_for_migrate(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSERVICES; i++) {
        json_t *svc = service_def(services[i]);
        assert_scalable(services[i], svc);
        assert_runs_like_a_service(services[i], svc);
        assert_int_equal(health_port(svc), 9100);
    }
}

/* The host file mounted at the service's --config path. */
static void mounted_config(const char *name, json_t *svc, char *host, size_t cap)
{
    json_t *cmd = json_object_get(svc, "command");
    assert_string_equal(json_string_value(json_array_get(cmd, 0)), "--config");
    const char *target = json_string_value(json_array_get(cmd, 1));
    assert_non_null(target);
    size_t i;
    json_t *vol;
    json_array_foreach(json_object_get(svc, "volumes"), i, vol) {
        const char *spec = json_string_value(vol);
        const char *colon = spec ? strchr(spec, ':') : NULL;
        if (colon && strncmp(colon + 1, target, strlen(target)) == 0 &&
            colon[1 + strlen(target)] == ':') {
            snprintf(host, cap, "%.*s", (int)(colon - spec), spec);
            char expected[1200];
            snprintf(expected, sizeof expected, "%s/docker/config/%s.conf", repo, name);
            assert_string_equal(host, expected);
            return;
        }
    }
    fail_msg("%s: nothing is mounted at its --config path %s", name, target);
}

/* "KEY=value" strings of the service's compose environment; caller frees. */
static char **compose_environment(json_t *svc, size_t *n)
{
    json_t *env = json_object_get(svc, "environment");
    char **envp = calloc(json_object_size(env) + 1, sizeof *envp);
    assert_non_null(envp);
    const char *key;
    json_t *value;
    *n = 0;
    json_object_foreach(env, key, value) {
        char *text = json_is_string(value) ? strdup(json_string_value(value))
                                           : json_dumps(value, JSON_ENCODE_ANY);
        assert_non_null(text);
        size_t len = strlen(key) + strlen(text) + 2;
        envp[*n] = malloc(len);
        snprintf(envp[*n], len, "%s=%s", key, text);
        free(text);
        (*n)++;
    }
    return envp;
}

static void free_strings(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void config_files_pass_check_config_under_compose_environment(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSERVICES; i++) {
        json_t *svc = service_def(services[i]);
        char host[1200];
        mounted_config(services[i], svc, host, sizeof host);
        size_t n;
        char **envp = compose_environment(svc, &n);
        char name[64];
        snprintf(name, sizeof name, "check-config-%s", services[i]);
        char *argv[] = {(char *)service_binary(services[i]), "--config", host, "--check-config",
                        NULL};
        run_result r = run(argv, envp, name);
        free_strings(envp, n);
        if (r.status != 0)
            fail_msg("%s refuses %s under compose's environment (exit %d; see %s/%s.err)",
                     services[i], host, r.status, tmp_dir, name);
        json_t *effective = json_loads(r.out, 0, NULL);
        free(r.out);
        assert_non_null(effective);
        char listen[32];
        snprintf(listen, sizeof listen, "0.0.0.0:%d", health_port(svc));
        assert_string_equal(text_at(effective, "http.listen"), listen);
        assert_string_equal(text_at(effective, "kafka.brokers"), "kafka:9092");
        assert_string_equal(text_at(effective, "pg.dsn"), "***");
        json_decref(effective);
    }
}

/* envp (heap, NULL-terminated, n entries) with a heap copy of entry added. */
static char **with_entry(char **envp, size_t *n, const char *entry)
{
    char **grown = realloc(envp, (*n + 2) * sizeof *grown);
    assert_non_null(grown);
    grown[(*n)++] = strdup(entry);
    grown[*n] = NULL;
    return grown;
}

static void assert_refused_with_advice(const run_result *r, const char *what, const char *name)
{
    char err_path[1300];
    snprintf(err_path, sizeof err_path, "%s/%s.err", tmp_dir, name);
    char *err = slurp(err_path);
    if (r->status == 0 || !strstr(err, "make secrets"))
        fail_msg("%s under .env.example: exit %d, no advice to run `make secrets` (see %s)", what,
                 r->status, err_path);
    assert_null(strstr(err, "change-me"));
    free(err);
}

/* Issue 32: .env.example's values started the whole stack. */
static void example_secrets_start_nothing(void **state)
{
    (void)state;
    char example[1200], script[1200], example_var[1300];
    snprintf(example, sizeof example, "%s/.env.example", repo);
    json_t *saved = compose;
    compose = resolved_compose(example, "compose-config-example");
    size_t n;
    char **envp = compose_environment(service_def("kafka-setup"), &n);
    snprintf(example_var, sizeof example_var, "BLAZZ_ENV_EXAMPLE=%s", example);
    envp = with_entry(envp, &n, example_var);
    envp = with_entry(envp, &n, "PATH=/usr/bin:/bin");
    snprintf(script, sizeof script, "%s/docker/kafka/setup.sh", repo);
    char *setup[] = {"/bin/bash", script, NULL};
    run_result r = run(setup, envp, "kafka-setup-example");
    free_strings(envp, n);
    free(r.out);
    assert_refused_with_advice(&r, "kafka-setup", "kafka-setup-example");
    for (size_t i = 0; i < NSERVICES; i++) {
        json_t *svc = service_def(services[i]);
        char host[1200], name[64];
        mounted_config(services[i], svc, host, sizeof host);
        envp = compose_environment(svc, &n);
        snprintf(name, sizeof name, "check-config-example-%s", services[i]);
        char *argv[] = {(char *)service_binary(services[i]), "--config", host, "--check-config",
                        NULL};
        r = run(argv, envp, name);
        free_strings(envp, n);
        free(r.out);
        assert_refused_with_advice(&r, services[i], name);
    }
    json_decref(compose);
    compose = saved;
}

/* Every BLAZZ_* name the binary's --help says it reads. */
static int help_mentions_env(const char *help, const char *var)
{
    char needle[256];
    snprintf(needle, sizeof needle, "env %s\n", var);
    if (strstr(help, needle))
        return 1;
    snprintf(needle, sizeof needle, "env %s or ", var);
    return strstr(help, needle) != NULL;
}

static void every_compose_variable_is_read_by_its_binary(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSERVICES; i++) {
        char name[64];
        snprintf(name, sizeof name, "help-%s", services[i]);
        char *argv[] = {(char *)service_binary(services[i]), "--help", NULL};
        run_result r = run(argv, NULL, name);
        assert_int_equal(r.status, 0);
        const char *key;
        json_t *value;
        json_object_foreach(json_object_get(service_def(services[i]), "environment"), key,
                            value) {
            if (!help_mentions_env(r.out, key))
                fail_msg("compose sets %s for %s, which blazz-%s does not read", key,
                         services[i], services[i]);
        }
        free(r.out);
    }
}

/* ---- agreement with the local stack ---------------------------------------- */

/* The value after `marker` in file (up to a quote, brace or newline). */
static void value_after(const char *file, const char *marker, char *out, size_t cap)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", repo, file);
    char *text = slurp(path);
    const char *at = strstr(text, marker);
    if (!at)
        fail_msg("%s has no '%s'", file, marker);
    at += strlen(marker);
    size_t len = strcspn(at, "\"}\n ");
    snprintf(out, cap, "%.*s", (int)len, at);
    free(text);
}

static const char *env_of(const char *service, const char *var)
{
    const char *v = text_at(json_object_get(service_def(service), "environment"), var);
    if (!v)
        fail_msg("compose gives %s no %s", service, var);
    return v;
}

static void versions_addresses_and_topics_agree_with_the_local_stack(void **state)
{
    (void)state;
    char kafka_version[32], pg_bin[128], partitions[16], image[64];
    value_after("scripts/deps.sh", "KAFKA_VERSION=", kafka_version, sizeof kafka_version);
    snprintf(image, sizeof image, "apache/kafka:%s", kafka_version);
    assert_string_equal(text_at(service_def("kafka"), "image"), image);
    value_after("scripts/stack.sh", "PG_BIN=", pg_bin, sizeof pg_bin);
    assert_non_null(strstr(pg_bin, "/postgresql/15/"));
    assert_true(strncmp(text_at(service_def("postgres"), "image"), "postgres:15", 11) == 0);

    json_t *kenv = json_object_get(service_def("kafka"), "environment");
    assert_string_equal(text_at(kenv, "KAFKA_ADVERTISED_LISTENERS"), "SASL_PLAINTEXT://kafka:9092");
    assert_string_equal(text_at(kenv, "KAFKA_AUTO_CREATE_TOPICS_ENABLE"), "false");

    /* Topics come only from `blazzctl topics ensure` (the catalogue of
     * libs/kafka/topics.c) with the local stack's partition count and the
     * prefix the services use. */
    const char *cmd = json_string_value(json_array_get(
        json_object_get(service_def("migrate"), "command"), 0));
    assert_non_null(cmd);
    assert_non_null(strstr(cmd, "blazzctl migrate"));
    assert_non_null(strstr(cmd, "blazzctl topics ensure"));
    assert_non_null(strstr(cmd, "${BLAZZ_KAFKA_TOPIC_PREFIX}"));
    assert_non_null(strstr(cmd, "${BLAZZ_TOPIC_PARTITIONS}"));
    value_after("scripts/stack.sh", "BLAZZ_TOPIC_PARTITIONS:-", partitions, sizeof partitions);
    assert_string_equal(env_of("migrate", "BLAZZ_TOPIC_PARTITIONS"), partitions);
    for (size_t i = 0; i < NSERVICES; i++) {
        assert_string_equal(env_of(services[i], "BLAZZ_KAFKA_BROKERS"), "kafka:9092");
        assert_string_equal(env_of(services[i], "BLAZZ_KAFKA_TOPIC_PREFIX"),
                            env_of("migrate", "BLAZZ_KAFKA_TOPIC_PREFIX"));
        assert_non_null(strstr(env_of(services[i], "BLAZZ_PG_DSN"), "@postgres:5432/blazz"));
    }
    assert_string_equal(env_of("migrate", "BLAZZ_KAFKA_BROKERS"), "kafka:9092");

    /* The topic names ops are told to look at are the catalogue's. */
    char *argv[] = {(char *)ctl_path(), "dlq", "--help", NULL};
    run_result r = run(argv, NULL, "dlq-help");
    assert_int_equal(r.status, 0);
    const char *dlqs[] = {"wa.inbound.dlq", "chat.sync.dlq", "webhook.dlq", "campaign.dlq"};
    char readme[1200];
    snprintf(readme, sizeof readme, "%s/README.md", repo);
    char *text = slurp(readme);
    for (size_t i = 0; i < sizeof dlqs / sizeof dlqs[0]; i++) {
        bz_topic t;
        assert_int_equal(bz_topic_lookup(dlqs[i], &t, NULL), BZ_OK);
        assert_true(bz_topic_is_dlq(t));
        assert_non_null(strstr(r.out, dlqs[i]));
        assert_non_null(strstr(text, dlqs[i]));
    }
    free(text);
    free(r.out);
}

/* ARCHITECTURE.md §9.1 as compose deploys it: no listener without SASL,
 * nothing allowed without an ACL, every service logging in with a password
 * of its own (its user name defaults to the service's), the SCRAM users
 * made by kafka-setup and the ACLs by migrate before any service starts. */
static void kafka_is_authenticated_by_default(void **state)
{
    (void)state;
    json_t *kenv = json_object_get(service_def("kafka"), "environment");
    const char *map = text_at(kenv, "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP");
    assert_non_null(map);
    for (const char *p = map; (p = strchr(p, ':')) != NULL; p++)
        if (strncmp(p + 1, "SASL_", 5) != 0)
            fail_msg("a Kafka listener without SASL: %s", map);
    assert_non_null(strstr(text_at(kenv, "KAFKA_SASL_ENABLED_MECHANISMS"), "SCRAM-SHA-512"));
    assert_non_null(strstr(text_at(kenv, "KAFKA_AUTHORIZER_CLASS_NAME"), "StandardAuthorizer"));
    assert_string_equal(text_at(kenv, "KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"), "false");
    for (size_t i = 0; i < NSERVICES; i++) {
        assert_string_equal(env_of(services[i], "BLAZZ_KAFKA_SECURITY_PROTOCOL"), "sasl_plaintext");
        assert_true(strlen(env_of(services[i], "BLAZZ_KAFKA_SASL_PASSWORD")) > 0);
        assert_null(json_object_get(json_object_get(service_def(services[i]), "environment"),
                                    "BLAZZ_KAFKA_SASL_USERNAME"));
    }
    const char *cmd = json_string_value(json_array_get(
        json_object_get(service_def("migrate"), "command"), 0));
    assert_non_null(strstr(cmd, "blazzctl acls apply"));
    assert_string_equal(env_of("migrate", "BLAZZ_KAFKA_SASL_USERNAME"), "admin");
    assert_string_equal(
        text_at(json_object_get(json_object_get(service_def("migrate"), "depends_on"),
                                "kafka-setup"), "condition"),
        "service_completed_successfully");
}

/* ---- Prometheus and Grafana ------------------------------------------------ */

static void prometheus_scrapes_every_service_replica(void **state)
{
    (void)state;
    char path[1200];
    snprintf(path, sizeof path, "%s/docker/prometheus/prometheus.yml", repo);
    json_t *prom = yaml_file_as_json(path);
    for (size_t i = 0; i < NSERVICES; i++) {
        int found = 0;
        size_t k;
        json_t *job;
        json_array_foreach(json_object_get(prom, "scrape_configs"), k, job) {
            json_t *sd = json_array_get(json_object_get(job, "dns_sd_configs"), 0);
            const char *name = json_string_value(json_array_get(json_object_get(sd, "names"), 0));
            if (name && strcmp(name, services[i]) == 0 &&
                json_integer_value(json_object_get(sd, "port")) ==
                    health_port(service_def(services[i])))
                found = 1;
        }
        if (!found)
            fail_msg("prometheus.yml does not scrape every %s replica on its admin port",
                     services[i]);
    }
    json_decref(prom);
}

/* Is `"name"` a string literal somewhere under services/ or libs/? */
static int metric_is_registered(const char *name)
{
    char needle[256], services_dir[1200], libs_dir[1200];
    snprintf(needle, sizeof needle, "\"%s\"", name);
    snprintf(services_dir, sizeof services_dir, "%s/services", repo);
    snprintf(libs_dir, sizeof libs_dir, "%s/libs", repo);
    char *argv[] = {"grep", "-rqF", "--include=*.c", "--", needle, services_dir, libs_dir, NULL};
    run_result r = run(argv, NULL, "grep-metric");
    free(r.out);
    return r.status == 0;
}

static void strip_histogram_suffix(char *name)
{
    const char *suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(name), s = strlen(suffixes[i]);
        if (n > s && strcmp(name + n - s, suffixes[i]) == 0) {
            name[n - s] = '\0';
            return;
        }
    }
}

static int check_expr_metrics(const char *expr, regex_t *re)
{
    int checked = 0;
    regmatch_t m;
    for (const char *p = expr; regexec(re, p, 1, &m, 0) == 0; p += m.rm_eo) {
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(m.rm_eo - m.rm_so), p + m.rm_so);
        strip_histogram_suffix(name);
        if (!metric_is_registered(name))
            fail_msg("the dashboard queries %s, which no service or library registers", name);
        checked++;
    }
    return checked;
}

static void dashboard_queries_only_registered_metrics(void **state)
{
    (void)state;
    char path[1200];
    snprintf(path, sizeof path, "%s/docker/grafana/dashboards/blazz.json", repo);
    json_error_t jerr;
    json_t *dash = json_load_file(path, 0, &jerr);
    if (!dash)
        fail_msg("%s: %s", path, jerr.text);
    snprintf(path, sizeof path, "%s/docker/grafana/provisioning/datasources/prometheus.yml",
             repo);
    json_t *ds = yaml_file_as_json(path);
    json_t *source = json_array_get(json_object_get(ds, "datasources"), 0);
    assert_string_equal(text_at(source, "url"), "http://prometheus:9090");
    const char *uid = text_at(source, "uid");
    regex_t re;
    assert_int_equal(regcomp(&re, "blazz_[a-z_]+", REG_EXTENDED), 0);
    int checked = 0;
    size_t i, k;
    json_t *panel, *target;
    json_array_foreach(json_object_get(dash, "panels"), i, panel) {
        json_array_foreach(json_object_get(panel, "targets"), k, target) {
            assert_string_equal(text_at(json_object_get(target, "datasource"), "uid"), uid);
            checked += check_expr_metrics(text_at(target, "expr"), &re);
        }
    }
    regfree(&re);
    assert_true(checked >= 20);
    json_decref(ds);
    json_decref(dash);
}

/* ---- the health check against a real service ------------------------------- */

static run_result probe(const char *url)
{
    char *argv[] = {(char *)ctl_path(), "health", (char *)url, "--timeout", "2000", "--json",
                    NULL};
    return run(argv, NULL, "health");
}

static void health_check_follows_a_real_service(void **state)
{
    (void)state;
    char token[32], prefix[64], group[96], listen[64], url[96], log_path[1200], conf[1200];
    itest_unique("", token, sizeof token);
    snprintf(prefix, sizeof prefix, "itest-compose-%s.", token);
    snprintf(group, sizeof group, "blazz-chat-sync-compose-%s", token);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", itest_free_port());
    snprintf(url, sizeof url, "http://%s/healthz", listen);
    snprintf(log_path, sizeof log_path, "%s/chat-sync.log", tmp_dir);
    snprintf(conf, sizeof conf, "%s/docker/config/chat-sync.conf", repo);
    itest_topics_create(prefix, 1);
    /* The compose config file, pointed at the local stack; no outbox relay,
     * so nothing of other tests' can be published by this process. */
    setenv("BLAZZ_HTTP_LISTEN", listen, 1);
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", prefix, 1);
    setenv("BLAZZ_CONSUMER_GROUP_ID", group, 1);
    setenv("BLAZZ_OUTBOX_RELAY_ENABLED", "false", 1);
    itest_env("BLAZZ_KAFKA_BROKERS");
    itest_env("BLAZZ_PG_DSN");
    char *argv[] = {(char *)service_binary("chat-sync"), "--config", conf, NULL};
    pid_t pid = itest_spawn(argv, log_path);
    unsetenv("BLAZZ_HTTP_LISTEN");
    unsetenv("BLAZZ_KAFKA_TOPIC_PREFIX");
    unsetenv("BLAZZ_CONSUMER_GROUP_ID");
    unsetenv("BLAZZ_OUTBOX_RELAY_ENABLED");

    run_result r = probe(url);
    for (int waited = 0; r.status != 0; waited += 200) {
        if (waited > HEALTH_WAIT_MS)
            fail_msg("blazzctl health never saw %s healthy: %s (service log %s)", url, r.out,
                     log_path);
        free(r.out);
        itest_sleep_ms(200);
        r = probe(url);
    }
    json_t *doc = json_loads(r.out, 0, NULL);
    free(r.out);
    assert_true(json_is_true(json_object_get(doc, "healthy")));
    assert_int_equal(json_integer_value(json_object_get(doc, "status")), 200);
    json_decref(doc);

    kill(pid, SIGTERM);
    assert_int_equal(itest_wait(pid), 0);
    r = probe(url);
    assert_int_equal(r.status, 1);
    doc = json_loads(r.out, 0, NULL);
    free(r.out);
    assert_true(json_is_false(json_object_get(doc, "healthy")));
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compose_file_parses_with_docker_compose_1_29),
        cmocka_unit_test(services_are_scalable_supervised_and_wait_for_migrate),
        cmocka_unit_test(config_files_pass_check_config_under_compose_environment),
        cmocka_unit_test(example_secrets_start_nothing),
        cmocka_unit_test(every_compose_variable_is_read_by_its_binary),
        cmocka_unit_test(versions_addresses_and_topics_agree_with_the_local_stack),
        cmocka_unit_test(kafka_is_authenticated_by_default),
        cmocka_unit_test(prometheus_scrapes_every_service_replica),
        cmocka_unit_test(dashboard_queries_only_registered_metrics),
        cmocka_unit_test(health_check_follows_a_real_service),
    };
    return cmocka_run_group_tests_name("compose deployment", tests, setup, teardown);
}
