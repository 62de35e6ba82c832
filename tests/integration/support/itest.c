/*
 * itest.c - integration test helpers (see itest.h).
 */
#include "itest.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "core/hex.h"
#include "core/keyring.h"
#include "kafka/acl.h"
#include "kafka/admin.h"
#include "kafka/producer.h"

const char *itest_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set: run integration tests through `make test` (scripts/test.sh)",
                 name);
    return v;
}

int itest_env_int(const char *name, int def, int lo, int hi)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < lo || n > hi)
        fail_msg("%s='%s': expected a whole number in [%d, %d]", name, v, lo, hi);
    return (int)n;
}

int itest_random(int lo, int hi)
{
    static int seeded;
    if (!seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        srandom((unsigned)(ts.tv_nsec ^ getpid()));
        seeded = 1;
    }
    return lo + (int)(random() % (hi - lo + 1));
}

void itest_unique(const char *prefix, char *out, size_t cap)
{
    snprintf(out, cap, "%s%d%06d", prefix, (int)getpid(), itest_random(0, 999999));
}

PGconn *itest_pg_connect(void)
{
    PGconn *conn = PQconnectdb(itest_env("BLAZZ_PG_DSN"));
    if (PQstatus(conn) != CONNECTION_OK)
        fail_msg("connect to PostgreSQL: %s", PQerrorMessage(conn));
    return conn;
}

static struct {
    char name[64];
    char *place_dsn; /* the BLAZZ_PG_DSN it replaced (heap) */
} own_database;

/* dsn with its database (the URI's path) replaced by name; heap text. */
static char *dsn_for_database(const char *dsn, const char *name)
{
    const char *query = strchr(dsn, '?');
    size_t base_len = query ? (size_t)(query - dsn) : strlen(dsn);
    const char *scheme = strstr(dsn, "://");
    const char *slash = scheme ? memchr(scheme + 3, '/', base_len - (size_t)(scheme + 3 - dsn)) : NULL;
    if (!slash)
        fail_msg("BLAZZ_PG_DSN is not a postgresql:// URI with a database: %s", dsn);
    char *out = NULL;
    if (asprintf(&out, "%.*s/%s%s", (int)(slash - dsn), dsn, name, query ? query : "") < 0)
        fail_msg("out of memory");
    return out;
}

void itest_pg_use_own_database(const char *prefix, const char *err_log)
{
    if (own_database.place_dsn)
        fail_msg("itest_pg_use_own_database: %s is in use already", own_database.name);
    itest_unique(prefix, own_database.name, sizeof own_database.name);
    PGconn *admin = itest_pg_connect();
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", own_database.name);
    itest_pg_exec(admin, sql);
    PQfinish(admin);
    own_database.place_dsn = strdup(itest_env("BLAZZ_PG_DSN"));
    char *own_dsn = dsn_for_database(own_database.place_dsn, own_database.name);
    setenv("BLAZZ_PG_DSN", own_dsn, 1);
    free(own_dsn);
    char migrations[1100];
    snprintf(migrations, sizeof migrations, "%s/db/migrations", itest_repo_dir("db/migrations"));
    const char *args[] = {"migrate", "--dir", migrations, NULL};
    char *out = NULL;
    int status = itest_blazzctl(args, err_log, &out);
    free(out);
    if (status != 0)
        fail_msg("blazzctl migrate of %s exited %d (stderr in %s)", own_database.name, status,
                 err_log);
}

void itest_pg_leave_own_database(void)
{
    if (!own_database.place_dsn)
        return;
    setenv("BLAZZ_PG_DSN", own_database.place_dsn, 1);
    free(own_database.place_dsn);
    own_database.place_dsn = NULL;
    PGconn *admin = itest_pg_connect();
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", own_database.name);
    itest_pg_exec(admin, sql);
    PQfinish(admin);
}

void itest_pg_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("SQL failed: %s\n%s", sql, PQresultErrorMessage(res));
    PQclear(res);
}

void itest_restore_fence_raise(PGconn *conn)
{
    itest_pg_exec(conn, "WITH f AS (INSERT INTO restore_fences (restored_to) VALUES ('itest') "
                        "RETURNING id) INSERT INTO restore_fence_offsets SELECT id, "
                        "'itest-no-such-group', 'itest.chat.sync', 0, 1 FROM f");
}

int64_t itest_pg_int64(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    /* Ride through database restarts the test itself causes. */
    for (int tries = 0; PQstatus(conn) != CONNECTION_OK && tries < 300; tries++) {
        PQclear(res);
        itest_sleep_ms(100);
        PQreset(conn);
        res = PQexec(conn, sql);
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("SQL failed: %s\n%s", sql, PQresultErrorMessage(res));
    int64_t v = PQgetisnull(res, 0, 0) ? -1 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* How long a test waits for the broker to create topics and apply ACLs:
 * with four programs side by side, one broker holding thousands of
 * partitions takes seconds to make a prefix's ready. */
#define KAFKA_ADMIN_TIMEOUT_MS 60000

/* The gateways scripts/stack.sh makes principals for (BLAZZ_STACK_GATEWAYS). */
static const char *const stack_gateways[] = {"sim", "a", "b"};

static void acls_create(const char *prefix)
{
    bz_kafka_acl_list acls = {0};
    bz_error err;
    bz_status st = bz_kafka_acls_for_services(prefix, &acls, &err);
    for (size_t i = 0; st == BZ_OK && i < sizeof stack_gateways / sizeof *stack_gateways; i++)
        st = bz_kafka_acls_for_gateway(prefix, stack_gateways[i], NULL, &acls, &err);
    if (st == BZ_OK)
        st = bz_kafka_acls_create(itest_env("BLAZZ_KAFKA_BROKERS"), &acls, KAFKA_ADMIN_TIMEOUT_MS,
                                  NULL, &err);
    bz_kafka_acl_list_free(&acls);
    if (st != BZ_OK)
        fail_msg("create ACLs for prefix %s: %s", prefix, err.msg);
}

/* blazz-gateway-sim's accounts are served by the gateway "sim" (its
 * default --gateway), whose row must exist; no signing key: tests that post
 * over HTTP register their own gateways (itest_gateway_create). */
static void sim_gateway_registered(void)
{
    PGconn *conn = itest_pg_connect();
    itest_pg_exec(conn, "INSERT INTO gateways (id, kind, kafka_principal, name) VALUES ('sim', "
                        "'webjs', 'gateway-sim', 'blazz-gateway-sim (tests)') "
                        "ON CONFLICT (id) DO NOTHING");
    PQfinish(conn);
}

void itest_topics_create(const char *prefix, int partitions)
{
    sim_gateway_registered();
    bz_kafka_ensure_report report;
    bz_error err;
    const char *brokers = itest_env("BLAZZ_KAFKA_BROKERS");
    int replication = itest_env_int("BLAZZ_TOPIC_REPLICATION", 1, 1, 3);
    if (bz_kafka_topics_ensure(brokers, prefix, partitions, replication, KAFKA_ADMIN_TIMEOUT_MS,
                               &report, &err) != BZ_OK)
        fail_msg("create topics with prefix %s: %s", prefix, err.msg);
    if (bz_kafka_gateway_topics_ensure(brokers, prefix, stack_gateways,
                                       sizeof stack_gateways / sizeof *stack_gateways, partitions,
                                       replication, KAFKA_ADMIN_TIMEOUT_MS, NULL, &err) != BZ_OK)
        fail_msg("create the gateways' topics with prefix %s: %s", prefix, err.msg);
    if (getenv("BLAZZ_KAFKA_CREDENTIALS_DIR"))
        acls_create(prefix);
}

/* Principal name's password file in credentials_dir. */
static void password_file_of(const char *credentials_dir, const char *name, char *path,
                             size_t cap)
{
    snprintf(path, cap, "%s/%s.password", credentials_dir, name);
}

void itest_principal(const char *name, bz_kafka_security *out)
{
    char path[1024];
    password_file_of(itest_env("BLAZZ_KAFKA_CREDENTIALS_DIR"), name, path, sizeof path);
    FILE *f = fopen(path, "r");
    char password[256] = "";
    if (!f || !fgets(password, sizeof password, f))
        fail_msg("no password for Kafka principal %s in %s", name, path);
    fclose(f);
    password[strcspn(password, "\r\n")] = '\0';
    memset(out, 0, sizeof *out);
    snprintf(out->protocol, sizeof out->protocol, "%s", itest_env("BLAZZ_KAFKA_SECURITY_PROTOCOL"));
    snprintf(out->mechanism, sizeof out->mechanism, "SCRAM-SHA-512");
    out->username = strdup(name);
    out->password = strdup(password);
    const char *ca = getenv("BLAZZ_KAFKA_SSL_CA_LOCATION");
    out->ca_location = ca && *ca ? strdup(ca) : NULL;
    if (!out->username || !out->password)
        fail_msg("out of memory");
}

/* The principal a program runs as, from its file name; NULL: the admin's. */
static const char *principal_of_program(const char *program)
{
    static const char *const map[][2] = {
        {"blazz-ingest", "ingest"},
        {"blazz-chat-sync", "chat-sync"},
        {"blazz-webhook-dispatcher", "webhook-dispatcher"},
        {"blazz-campaign-sender", "campaign-sender"},
        {"blazz-cleanup", "cleanup"},
        {"blazz-meta-sender", "meta-sender"},
        {"blazzctl", "blazzctl"},
        {"blazz-gateway-sim", "gateway-sim"},
    };
    const char *base = strrchr(program, '/');
    base = base ? base + 1 : program;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(base, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

void itest_gateway_create(const char *prefix, const char *id, const char *kind,
                          const char *principal, const char *key)
{
    setenv("BLAZZ_SECRETS_KEYS", ITEST_SECRETS_KEYS, 1);
    char key_path[] = "/tmp/itest-gateway-key-XXXXXX";
    int fd = mkstemp(key_path);
    if (fd < 0 || write(fd, key, strlen(key)) != (ssize_t)strlen(key) || close(fd) != 0)
        fail_msg("write the key of gateway %s to %s", id, key_path);
    const char *args[] = {"gateways", "add", id, "--kind", kind, "--principal", principal,
                          "--key-file", key_path, NULL};
    char *out = NULL, err_log[512];
    const char *state = getenv("BLAZZ_STATE_DIR");
    snprintf(err_log, sizeof err_log, "%s/logs/itest-blazzctl.log", state ? state : "/tmp");
    int rc = itest_blazzctl(args, err_log, &out);
    unlink(key_path);
    if (rc != 0)
        fail_msg("blazzctl gateways add %s exited %d: %s (stderr in %s)", id, rc, out, err_log);
    free(out);
    bz_error err;
    bz_kafka_acl_list acls = {0};
    const char *ids[] = {id};
    int replication = itest_env_int("BLAZZ_TOPIC_REPLICATION", 1, 1, 3);
    bz_status st =
        bz_kafka_gateway_topics_ensure(itest_env("BLAZZ_KAFKA_BROKERS"), prefix, ids, 1, 6,
                                       replication, KAFKA_ADMIN_TIMEOUT_MS, NULL, &err);
    if (st == BZ_OK && getenv("BLAZZ_KAFKA_CREDENTIALS_DIR"))
        st = bz_kafka_acls_for_gateway(prefix, id, principal, &acls, &err);
    if (st == BZ_OK && acls.count)
        st = bz_kafka_acls_create(itest_env("BLAZZ_KAFKA_BROKERS"), &acls, KAFKA_ADMIN_TIMEOUT_MS,
                                  NULL, &err);
    bz_kafka_acl_list_free(&acls);
    if (st != BZ_OK)
        fail_msg("Kafka side of gateway %s: %s", id, err.msg);
}

/* ---- a child's environment -------------------------------------------------------- */

/* An environment being built: "NAME=value" heap strings, NULL-terminated. */
typedef struct env_list {
    char **v;
    size_t n, cap;
} env_list;

static void env_append(env_list *e, char *entry)
{
    if (!entry)
        fail_msg("out of memory");
    if (e->n + 2 > e->cap) {
        e->cap *= 2;
        e->v = realloc(e->v, e->cap * sizeof *e->v);
        if (!e->v)
            fail_msg("out of memory");
    }
    e->v[e->n++] = entry;
    e->v[e->n] = NULL;
}

static size_t env_find(const env_list *e, const char *name, size_t len)
{
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->v[i], name, len) == 0 && e->v[i][len] == '=')
            return i;
    return e->n;
}

static const char *env_get(const env_list *e, const char *name)
{
    size_t len = strlen(name), i = env_find(e, name, len);
    return i < e->n ? e->v[i] + len + 1 : NULL;
}

/* Set name to value (NULL: remove it). */
static void env_put(env_list *e, const char *name, const char *value)
{
    size_t len = strlen(name), i = env_find(e, name, len);
    if (i < e->n) {
        free(e->v[i]);
        e->v[i] = e->v[--e->n];
        e->v[e->n] = NULL;
    }
    if (!value)
        return;
    char *entry = malloc(len + strlen(value) + 2);
    if (entry)
        sprintf(entry, "%s=%s", name, value);
    env_append(e, entry);
}

/* A service logs in to PostgreSQL as its own role (0027: blazz_<service>,
 * '-' as '_'): the user of the DSN's URI replaced. Other programs keep the
 * owner's. */
static void use_service_pg_role(env_list *e, const char *who)
{
    const char *dsn = env_get(e, "BLAZZ_PG_DSN");
    const char *scheme = dsn ? strstr(dsn, "://") : NULL;
    const char *at = scheme ? strchr(scheme, '@') : NULL;
    if (!at || strcmp(who, "blazzctl") == 0 || strcmp(who, "gateway-sim") == 0)
        return;
    char role[64], rewritten[2048];
    snprintf(role, sizeof role, "blazz_%s", who);
    for (char *c = role; *c; c++)
        if (*c == '-')
            *c = '_';
    snprintf(rewritten, sizeof rewritten, "%.*s%s%s", (int)(scheme + 3 - dsn), dsn, role, at);
    env_put(e, "BLAZZ_PG_DSN", rewritten);
}

char **itest_program_env(const char *program, const char *const *extra)
{
    extern char **environ;
    env_list e = {.v = calloc(64, sizeof(char *)), .cap = 64};
    if (!e.v)
        fail_msg("out of memory");
    for (char **p = environ; p && *p; p++)
        env_append(&e, strdup(*p));
    for (size_t i = 0; extra && extra[i]; i++) {
        const char *eq = strchr(extra[i], '=');
        if (!eq)
            fail_msg("environment entry without '=': %s", extra[i]);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - extra[i]), extra[i]);
        env_put(&e, name, eq + 1);
    }
    const char *who = principal_of_program(program);
    if (who)
        use_service_pg_role(&e, who);
    const char *credentials = env_get(&e, "BLAZZ_KAFKA_CREDENTIALS_DIR");
    if (who && credentials) {
        char path[1024];
        password_file_of(credentials, who, path, sizeof path);
        env_put(&e, "BLAZZ_KAFKA_SASL_USERNAME", who);
        env_put(&e, "BLAZZ_KAFKA_SASL_PASSWORD_FILE", path);
        env_put(&e, "BLAZZ_KAFKA_SASL_PASSWORD", NULL);
    }
    return e.v;
}

void itest_env_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

char *itest_api_key(int64_t workspace, const char *err_log)
{
    char ws[24];
    snprintf(ws, sizeof ws, "%lld", (long long)workspace);
    const char *args[] = {"apikeys", "create", "--workspace", ws, "--name", "itest", "--json",
                          NULL};
    json_t *out = itest_blazzctl_json(args, err_log);
    const char *key = json_string_value(json_object_get(out, "key"));
    if (!key)
        fail_msg("blazzctl apikeys create printed no key");
    char *copy = strdup(key);
    assert_non_null(copy);
    json_decref(out);
    return copy;
}

static int repo_has(const char *dir, const char *name)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, R_OK) == 0;
}

const char *itest_repo_dir(const char *name)
{
    static char repo[1024];
    const char *given = getenv("BLAZZ_REPO_DIR");
    if (given) {
        snprintf(repo, sizeof repo, "%s", given);
    } else {
        char bin[1024];
        snprintf(bin, sizeof bin, "%s/../..", itest_env("BLAZZ_TEST_BIN_DIR"));
        if (!realpath(bin, repo) || !repo_has(repo, name))
            assert_non_null(getcwd(repo, sizeof repo));
    }
    if (!repo_has(repo, name))
        fail_msg("no %s in %s (set BLAZZ_REPO_DIR)", name, repo);
    return repo;
}

const char *itest_program(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/tests/integration/%s", itest_env("BLAZZ_TEST_BIN_DIR"), name);
    if (access(path, X_OK) != 0)
        fail_msg("helper program %s is missing", path);
    return path;
}

pid_t itest_spawn_env(char *const argv[], const char *const *extra, const char *log_path)
{
    char **env = itest_program_env(argv[0], extra);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork failed");
    if (pid == 0) {
        /* a test that dies (timeout, crash) takes its services with it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execve(argv[0], argv, env);
        _exit(127);
    }
    itest_env_free(env);
    return pid;
}

pid_t itest_spawn(char *const argv[], const char *log_path)
{
    return itest_spawn_env(argv, NULL, log_path);
}

void itest_print_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[2048];
    while (fgets(line, sizeof line, f))
        fputs(line, stdout);
    fclose(f);
}

int itest_wait(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) < 0)
        fail_msg("waitpid failed");
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int itest_wait_within_grace(pid_t pid, int grace_ms)
{
    int status;
    for (int waited = 0; waited < grace_ms; waited += 50) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got < 0)
            fail_msg("waitpid failed");
        if (got == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    itest_wait(pid);
    return -1;
}

void itest_terminate(pid_t *pid, const char *what, const char *log_path)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    int rc = itest_wait(*pid);
    *pid = 0;
    if (rc != 0)
        fail_msg("%s exited with %d after SIGTERM (log: %s)", what, rc, log_path);
}

static void format_sql(char *sql, size_t cap, const char *fmt, va_list ap)
{
    int n = vsnprintf(sql, cap, fmt, ap);
    if (n < 0 || (size_t)n >= cap)
        fail_msg("test SQL longer than %zu bytes: %.80s...", cap, fmt);
}

int64_t itest_pg_int64f(PGconn *conn, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    format_sql(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return itest_pg_int64(conn, sql);
}

int64_t itest_pg_int64_as_crm(PGconn *conn, int64_t ws, const char *sql)
{
    char workspace[96];
    snprintf(workspace, sizeof workspace,
             "SELECT set_config('blazz.workspace_id', '%lld', false)", (long long)ws);
    itest_pg_exec(conn, workspace);
    itest_pg_exec(conn, "SET ROLE blazz_crm");
    int64_t value = itest_pg_int64(conn, sql);
    itest_pg_exec(conn, "RESET ROLE");
    itest_pg_exec(conn, "RESET blazz.workspace_id");
    return value;
}

/* The rows of the query fmt formats; fails the test unless it succeeded. */
static PGresult *query_rows(PGconn *conn, const char *fmt, va_list ap)
{
    char sql[4096];
    format_sql(sql, sizeof sql, fmt, ap);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("SQL failed: %s\n%s", sql, PQresultErrorMessage(res));
    return res;
}

PGresult *itest_pg_rowsf(PGconn *conn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *res = query_rows(conn, fmt, ap);
    va_end(ap);
    return res;
}

char *itest_pg_textf(PGconn *conn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *res = query_rows(conn, fmt, ap);
    va_end(ap);
    if (PQntuples(res) != 1)
        fail_msg("%d rows, not one, from %s", PQntuples(res), fmt);
    char *v = strdup(PQgetisnull(res, 0, 0) ? "(null)" : PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!v)
        fail_msg("out of memory");
    return v;
}

/* The inodes of process's sockets (up to cap); returns how many. */
static size_t socket_inodes_of(pid_t process, unsigned long *inodes, size_t cap)
{
    char dir_path[64];
    snprintf(dir_path, sizeof dir_path, "/proc/%d/fd", (int)process);
    DIR *dir = opendir(dir_path);
    size_t n = 0;
    struct dirent *d;
    while (dir && n < cap && (d = readdir(dir))) {
        char link_path[352], target[64];
        snprintf(link_path, sizeof link_path, "%s/%s", dir_path, d->d_name);
        ssize_t len = readlink(link_path, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        char *end = NULL;
        if (strncmp(target, "socket:[", 8) == 0 &&
            (inodes[n] = strtoul(target + 8, &end, 10)) > 0 && *end == ']')
            n++;
    }
    if (dir)
        closedir(dir);
    return n;
}

/* Appends to ports ("1,2,") the local port of each socket of table
 * (/proc/<pid>/net/tcp or tcp6) whose inode is one of inodes and whose
 * remote port is server_port: connections to other servers may share a
 * local port with another process's connection to PostgreSQL. */
static void local_ports_of(const char *table, const unsigned long *inodes, size_t n,
                           unsigned long server_port, char *ports, size_t cap)
{
    FILE *f = fopen(table, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        /* sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode */
        char *field[10], *save = NULL;
        size_t k = 0;
        for (char *t = strtok_r(line, " \t\n", &save); t && k < 10; t = strtok_r(NULL, " \t\n", &save))
            field[k++] = t;
        const char *colon = k == 10 ? strrchr(field[1], ':') : NULL;
        const char *remote = k == 10 ? strrchr(field[2], ':') : NULL;
        if (!colon || !remote || strtoul(remote + 1, NULL, 16) != server_port)
            continue;
        unsigned long port = strtoul(colon + 1, NULL, 16), inode = strtoul(field[9], NULL, 10);
        for (size_t i = 0; i < n; i++)
            if (inode && inodes[i] == inode)
                snprintf(ports + strlen(ports), cap - strlen(ports), "%lu,", port);
    }
    if (f)
        fclose(f);
}

char *itest_pg_backends_of(PGconn *conn, pid_t process)
{
    unsigned long inodes[512];
    size_t n = socket_inodes_of(process, inodes, sizeof inodes / sizeof inodes[0]);
    char ports[4096] = "", table[64];
    unsigned long server_port = strtoul(PQport(conn), NULL, 10);
    snprintf(table, sizeof table, "/proc/%d/net/tcp", (int)process);
    local_ports_of(table, inodes, n, server_port, ports, sizeof ports);
    snprintf(table, sizeof table, "/proc/%d/net/tcp6", (int)process);
    local_ports_of(table, inodes, n, server_port, ports, sizeof ports);
    if (*ports)
        ports[strlen(ports) - 1] = '\0';
    char *backends = itest_pg_textf(conn, "SELECT '{' || coalesce(string_agg(pid::text, ','), "
                                          "'') || '}' FROM pg_stat_activity WHERE client_port = "
                                          "ANY ('{%s}'::int[])", ports);
    if (strcmp(backends, "{}") == 0)
        fail_msg("process %d has no connection to PostgreSQL: a wait for its backends would "
                 "check nothing", (int)process);
    return backends;
}

void itest_pg_wait_backends_gone(PGconn *conn, const char *backends, int timeout_s)
{
    for (int waited = 0;; waited += 20) {
        int64_t left = itest_pg_int64f(conn, "SELECT count(*) FROM pg_stat_activity WHERE pid = "
                                             "ANY ('%s'::int[])", backends);
        if (left == 0)
            return;
        if (waited > timeout_s * 1000)
            fail_msg("%lld of the backends %s still there after %d s", (long long)left,
                     backends, timeout_s);
        itest_sleep_ms(20);
    }
}

void itest_assert_text(const char *expected, char *actual)
{
    assert_string_equal(actual, expected);
    free(actual);
}

/* Ports for the programs a test starts. Test programs run side by side
 * (scripts/test.sh), and a port is only bound once the program given it has
 * started, so the kernel's bind(0) is no source: it may hand the same port
 * to two processes in turn, and an outgoing connection may take it first.
 * Ports come instead from one counter shared by every test process
 * (BLAZZ_TEST_PORTS_FILE, under flock), in a range below the kernel's
 * ephemeral ports, skipping any that something already holds. */
#define SHARED_PORTS_FIRST 20000
#define SHARED_PORTS_LAST 32000

/* 1 when nothing listens on or holds 127.0.0.1:port. */
static int port_is_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    assert_true(fd >= 0);
    /* As the servers bind: a connection of an earlier program in TIME_WAIT
     * does not hold the port. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* The port after a span of count from port, wrapping to the start. */
static int next_shared_port(int port, int count)
{
    return port + count > SHARED_PORTS_LAST ? SHARED_PORTS_FIRST : port + count;
}

int itest_free_port(void)
{
    return itest_free_port_span(1);
}

int itest_free_port_span(int count)
{
    assert_true(count >= 1 && count <= (SHARED_PORTS_LAST - SHARED_PORTS_FIRST) / 4);
    const char *path = itest_env("BLAZZ_TEST_PORTS_FILE");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX) != 0)
        fail_msg("open and lock the port counter %s: %s", path, strerror(errno));
    char text[16] = {0};
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    int port = n > 0 ? (int)strtol(text, NULL, 10) : 0;
    if (port < SHARED_PORTS_FIRST || port + count - 1 > SHARED_PORTS_LAST)
        port = SHARED_PORTS_FIRST;
    int tried = 0;
    while (!port_is_free(port)) {
        port = next_shared_port(port, 1);
        if (port + count - 1 > SHARED_PORTS_LAST)
            port = SHARED_PORTS_FIRST;
        if (++tried > SHARED_PORTS_LAST - SHARED_PORTS_FIRST)
            fail_msg("no free port between %d and %d", SHARED_PORTS_FIRST, SHARED_PORTS_LAST);
    }
    int len = snprintf(text, sizeof text, "%d\n", next_shared_port(port, count));
    if (pwrite(fd, text, (size_t)len, 0) != len || ftruncate(fd, len) != 0)
        fail_msg("update the port counter %s: %s", path, strerror(errno));
    close(fd);
    return port;
}

/* Returns the whole file (NUL-terminated, caller frees). */
static char *read_whole_file(FILE *f)
{
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(len > 0 ? (size_t)len + 1 : 1);
    if (!buf)
        fail_msg("out of memory reading a file");
    size_t got = len > 0 ? fread(buf, 1, (size_t)len, f) : 0;
    buf[got] = '\0';
    return buf;
}

char *itest_read_repo_file(const char *relative)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", itest_repo_dir(relative), relative);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("open %s: %s", path, strerror(errno));
    char *text = read_whole_file(f);
    fclose(f);
    return text;
}

int itest_blazzctl(const char *const *args, const char *err_log, char **out)
{
    char ctl[1024];
    snprintf(ctl, sizeof ctl, "%s/bin/blazzctl", itest_env("BLAZZ_TEST_BIN_DIR"));
    char *argv[32];
    int argc = 0;
    argv[argc++] = ctl;
    for (size_t i = 0; args[i] && argc < 31; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    FILE *captured = tmpfile();
    if (!captured)
        fail_msg("tmpfile for blazzctl output: %s", strerror(errno));
    char **env = itest_program_env(ctl, NULL);
    int captured_fd = fileno(captured);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork failed");
    if (pid == 0) {
        int err = open(err_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (err < 0)
            _exit(126);
        dup2(captured_fd, 1);
        dup2(err, 2);
        execve(ctl, argv, env);
        _exit(127);
    }
    itest_env_free(env);
    int status = itest_wait(pid);
    *out = read_whole_file(captured);
    fclose(captured);
    return status;
}

json_t *itest_blazzctl_json(const char *const *args, const char *err_log)
{
    char *out = NULL;
    int status = itest_blazzctl(args, err_log, &out);
    if (status != 0)
        fail_msg("blazzctl %s %s exited %d; stdout: %s (stderr in %s)", args[0],
                 args[1] ? args[1] : "", status, out, err_log);
    json_error_t jerr;
    json_t *doc = json_loads(out, 0, &jerr);
    if (!doc)
        fail_msg("blazzctl %s printed no JSON (%s): %s", args[0], jerr.text, out);
    free(out);
    return doc;
}

void itest_stack(const char *action)
{
    const char *state = getenv("BLAZZ_STATE_DIR");
    char log_path[1024], words[256];
    snprintf(log_path, sizeof log_path, "%s/logs/stack-actions.log", state ? state : "/tmp");
    snprintf(words, sizeof words, "%s", action);
    char *argv[8] = {(char *)itest_env("BLAZZ_STACK_SCRIPT")};
    size_t n = 1;
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w && n < 7;
         w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    argv[n] = NULL;
    int rc = itest_wait(itest_spawn(argv, log_path));
    if (rc != 0)
        fail_msg("stack action '%s' failed (exit %d); see %s", action, rc, log_path);
}

/* Calls found(name, value, ctx) for each `export NAME=value` line of
 * state_dir's stack.env, value without its single quotes. */
static void each_stack_env_line(const char *state_dir,
                                void (*found)(const char *, const char *, void *), void *ctx)
{
    char path[1200], line[2048];
    snprintf(path, sizeof path, "%s/stack.env", state_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("no %s: the stack did not come up", path);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *name = strncmp(line, "export ", 7) == 0 ? line + 7 : line;
        char *eq = strchr(name, '=');
        if (!eq)
            continue;
        char *value = eq + 1;
        size_t n = strlen(value);
        *eq = '\0';
        if (n >= 2 && value[0] == '\'' && value[n - 1] == '\'') {
            value[n - 1] = '\0';
            value++;
        }
        found(name, value, ctx);
    }
    fclose(f);
}

static void set_env_line(const char *name, const char *value, void *ctx)
{
    (void)ctx;
    setenv(name, value, 1);
}

void itest_stack_env_apply(const char *state_dir)
{
    each_stack_env_line(state_dir, set_env_line, NULL);
}

typedef struct env_lookup {
    const char *name;
    char *out;
    size_t cap;
    int found;
} env_lookup;

static void match_env_line(const char *name, const char *value, void *ctx)
{
    env_lookup *l = ctx;
    if (strcmp(name, l->name) == 0) {
        snprintf(l->out, l->cap, "%s", value);
        l->found = 1;
    }
}

void itest_stack_env_value(const char *state_dir, const char *name, char *out, size_t cap)
{
    env_lookup l = {name, out, cap, 0};
    each_stack_env_line(state_dir, match_env_line, &l);
    if (!l.found)
        fail_msg("%s/stack.env sets no %s", state_dir, name);
}

int itest_file_contains(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return found;
}

int itest_file_contains_within(const char *path, const char *text, pid_t writer, int limit_ms)
{
    for (int waited = 0; waited <= limit_ms; waited += 50) {
        if (itest_file_contains(path, text))
            return 1;
        if (writer > 0 && waitpid(writer, NULL, WNOHANG) != 0)
            return itest_file_contains(path, text);
        itest_sleep_ms(50);
    }
    return 0;
}

long itest_status_value(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("status file %s is missing", path);
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == '=')
            v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void itest_remove_tree(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fail_msg("cannot remove %s", dir);
}

void itest_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

bz_producer *itest_producer(void)
{
    bz_kafka_settings settings = {.brokers = itest_env("BLAZZ_KAFKA_BROKERS"),
                                  .client_id = "itest"};
    bz_producer *p;
    bz_error err;
    if (bz_producer_new(&settings, &p, &err) != BZ_OK)
        fail_msg("create producer: %s", err.msg);
    return p;
}

static rd_kafka_t *new_reader(void)
{
    char errstr[256];
    char group[64];
    itest_unique("itest-reader-", group, sizeof group);
    const char *const defaults[] = {"group.id", group, "enable.auto.commit", "false",
                                    "isolation.level", "read_committed", NULL};
    bz_kafka_settings settings = {.brokers = itest_env("BLAZZ_KAFKA_BROKERS"),
                                  .client_id = "itest-reader"};
    rd_kafka_conf_t *conf;
    bz_error err;
    if (bz_kafka_conf_new(&settings, defaults, &conf, &err) != BZ_OK)
        fail_msg("reader config: %s", err.msg);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk)
        fail_msg("create reader: %s", errstr);
    return rk;
}

/* Whether the reader's position in every partition of topic not yet read
 * to its end (high > 0 here) is at its high watermark (librdkafka steps past the
 * commit markers that end a transactional partition, so this holds once
 * all the data is read). */
static int caught_up(rd_kafka_t *rk, const char *topic, const int64_t *high, int nparts)
{
    rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        if (high[p] > 0)
            rd_kafka_topic_partition_list_add(at, topic, p);
    int done = rd_kafka_position(rk, at) == RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; done && i < at->cnt; i++)
        done = at->elems[i].offset >= high[at->elems[i].partition];
    rd_kafka_topic_partition_list_destroy(at);
    return done;
}

void itest_consume_all(const char *topic, itest_record_fn fn, void *ctx)
{
    rd_kafka_t *rk = new_reader();
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1)
        fail_msg("metadata of %s unavailable", topic);
    int nparts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);

    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(nparts);
    int64_t *high = calloc((size_t)nparts, sizeof *high);
    int remaining = 0;
    for (int p = 0; p < nparts; p++) {
        int64_t low;
        rd_kafka_resp_err_t e;
        /* Right after a broker restart leaders may still be moving: retry
         * for a bounded time before calling the topic unreadable. */
        for (int tries = 0; (e = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high[p],
                                                                   5000)) !=
                                RD_KAFKA_RESP_ERR_NO_ERROR &&
                            tries < 12;
             tries++)
            itest_sleep_ms(500);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            free(high);
            fail_msg("watermarks of %s[%d] unavailable: %s", topic, p, rd_kafka_err2str(e));
        }
        if (high[p] > low) {
            rd_kafka_topic_partition_list_add(assignment, topic, p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
            remaining++;
        } else {
            high[p] = 0; /* nothing to read there */
        }
    }
    rd_kafka_assign(rk, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
    int idle_polls = 0;
    while (remaining > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) {
            /* Transaction markers occupy offsets too, so the last record
             * may lie before the watermark: stop once the position says
             * everything was read. A loaded machine can keep a fetch
             * waiting for seconds; giving up after 10 s of that made
             * test_sessions_failover see "0 RESTART commands" for a
             * session whose command was there (a partition not read to
             * its end). */
            if (caught_up(rk, topic, high, nparts) || ++idle_polls > 120)
                break;
            continue;
        }
        idle_polls = 0;
        if (!m->err) {
            fn(ctx, m);
            /* Once per partition: records written after the watermarks
             * were read (heartbeats' answers on a commands topic) lie past
             * it too, and counting each of them ended the read before
             * another partition was read at all (test_sessions_failover's
             * "0 RESTART commands"). high 0 also takes the partition out
             * of caught_up. */
            if (high[m->partition] > 0 && m->offset + 1 >= high[m->partition]) {
                high[m->partition] = 0;
                remaining--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    free(high);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

void itest_assert_value_cut(const Blazz__V1__DeadLetter *dl, const uint8_t *value, size_t len)
{
    assert_int_equal(dl->original_value_size, (int64_t)len);
    assert_true(dl->original_value.len > 0 && dl->original_value.len < len);
    assert_memory_equal(dl->original_value.data, value, dl->original_value.len);
    uint8_t sha[32];
    EVP_Digest(value, len, sha, NULL, EVP_sha256(), NULL);
    assert_int_equal(dl->original_value_sha256.len, 32);
    assert_memory_equal(dl->original_value_sha256.data, sha, 32);
}

void itest_header_text(const rd_kafka_message_t *m, const char *name, char *out, size_t cap)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;
    out[0] = '\0';
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, name, &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR && len < cap) {
        memcpy(out, v, len);
        out[len] = '\0';
    }
}

char *itest_open_endpoint_secret(PGconn *conn, const char *keys, int64_t endpoint,
                                 int64_t workspace, const char *column)
{
    bz_keyring ring;
    bz_error err;
    if (bz_keyring_parse(keys, &ring, &err) != BZ_OK)
        fail_msg("ring: %s", err.msg);
    char *hex = itest_pg_textf(conn, "SELECT encode(%s, 'hex') FROM webhook_endpoints WHERE id = "
                               "%lld",
                               column, (long long)endpoint);
    uint8_t sealed[512];
    size_t sealed_len, plain_len;
    if (bz_hex_decode(hex, strlen(hex), sealed, sizeof sealed, &sealed_len, &err) != BZ_OK)
        fail_msg("endpoint %lld's %s: %s", (long long)endpoint, column, err.msg);
    char id[24], scope[24], *plain = NULL;
    snprintf(id, sizeof id, "%lld", (long long)endpoint);
    snprintf(scope, sizeof scope, "%lld", (long long)workspace);
    if (bz_keyring_open_row(&ring, "webhook_endpoints", id, scope, sealed, sealed_len, NULL,
                            &plain, &plain_len, &err) != BZ_OK)
        fail_msg("endpoint %lld's %s does not open bound to its row: %s", (long long)endpoint,
                 column, err.msg);
    free(hex);
    bz_keyring_free(&ring);
    return plain;
}
