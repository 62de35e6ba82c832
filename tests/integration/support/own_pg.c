/*
 * own_pg.c - a PostgreSQL of a test's own (see own_pg.h).
 */
#include "own_pg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

void own_pg_init(own_pg *p, const char *prefix)
{
    memset(p, 0, sizeof *p);
    itest_unique(prefix, p->state, sizeof p->state);
    assert_int_equal(mkdir(p->state, 0755), 0);
    snprintf(p->log, sizeof p->log, "%s/stack.log", p->state);
    char kafka[300], shared_kafka[600];
    snprintf(kafka, sizeof kafka, "%s/kafka", p->state);
    snprintf(shared_kafka, sizeof shared_kafka, "%s/..", itest_env("BLAZZ_KAFKA_CREDENTIALS_DIR"));
    assert_int_equal(symlink(shared_kafka, kafka), 0);
    p->port = itest_free_port();
}

int own_pg_stack(const own_pg *p, const char *action, const char *arg1, const char *arg2)
{
    char state_env[300], port_env[64], migrations_env[340];
    snprintf(state_env, sizeof state_env, "BLAZZ_STATE_DIR=%s", p->state);
    snprintf(port_env, sizeof port_env, "BLAZZ_PG_PORT=%d", p->port);
    snprintf(migrations_env, sizeof migrations_env, "BLAZZ_MIGRATIONS_DIR=%s", p->migrations);
    const char *env[] = {state_env, port_env, "BLAZZ_PG_STANDBY=0",
                         *p->migrations ? migrations_env : NULL, NULL};
    char *argv[] = {(char *)itest_env("BLAZZ_STACK_SCRIPT"), (char *)action, (char *)arg1,
                    (char *)arg2, NULL};
    return itest_wait(itest_spawn_env(argv, env, p->log));
}

/* The last lines of the log (the folder goes with the teardown). */
static void print_log_tail(const own_pg *p)
{
    FILE *f = fopen(p->log, "r");
    char lines[8][512];
    int n = 0;
    while (f && fgets(lines[n % 8], sizeof lines[0], f))
        n++;
    if (f)
        fclose(f);
    for (int i = n > 8 ? n - 8 : 0; i < n; i++)
        print_message("  %s", lines[i % 8]);
}

void own_pg_stack_ok(const own_pg *p, const char *action, const char *arg)
{
    int rc = own_pg_stack(p, action, arg, NULL);
    if (rc != 0) {
        print_log_tail(p);
        fail_msg("stack.sh %s %s exited %d (log above, from %s)", action, arg ? arg : "", rc,
                 p->log);
    }
}

void own_pg_dsn(const own_pg *p, const char *user, char *out, size_t cap)
{
    snprintf(out, cap, "postgresql://%s@127.0.0.1:%d/blazz", user, p->port);
}

int own_pg_log_count(const own_pg *p, const char *text)
{
    FILE *f = fopen(p->log, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return n;
}

void own_pg_remove(own_pg *p)
{
    own_pg_stack(p, "stop-pg", NULL, NULL);
    itest_remove_tree(p->state);
}
