/*
 * test_chaos.c - the system chaos test, short: runs scripts/chaos.sh for
 * BLAZZ_CHAOS_TEST_DURATION seconds (40 by default) and requires it to pass.
 *
 * chaos.sh does all the work (see its header): its own fresh stack (state
 * .run/chaos, PostgreSQL 19435, Kafka 19392/19393, so it never meets the
 * stack scripts/test.sh runs the other tests against), the release
 * services of build/bin under simulated load while they, the broker and
 * the database are killed and restarted, then the checks. Its output,
 * including the summary table of checks, goes to this test's output; its
 * exit status is the verdict. The load is kept modest (BLAZZ_CHAOS_RATE 25
 * events/s unless set) because the machine is shared with the test stack.
 * The script is found next to $BLAZZ_STACK_SCRIPT, which test.sh exports.
 */
#include <libgen.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

/* Run `bash script duration` with this process's stdout and stderr; returns
 * its exit status (128 + signal if it was killed). */
static int run_script(const char *script, const char *duration)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/bash", "bash", script, duration, (char *)NULL);
        perror("exec /bin/bash");
        _exit(127);
    }
    assert_true(pid > 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_pipeline_survives_kills_and_restarts(void **state)
{
    (void)state;
    char stack_script[1024];
    snprintf(stack_script, sizeof stack_script, "%s", itest_env("BLAZZ_STACK_SCRIPT"));
    char script[1100];
    snprintf(script, sizeof script, "%s/chaos.sh", dirname(stack_script));
    assert_int_equal(access(script, X_OK), 0);

    int duration = itest_env_int("BLAZZ_CHAOS_TEST_DURATION", 40, 20, 3600);
    char duration_text[16];
    snprintf(duration_text, sizeof duration_text, "%d", duration);
    setenv("BLAZZ_CHAOS_RATE", "25", 0);
    setenv("BLAZZ_CHAOS_QUIESCE_S", "150", 0);

    int rc = run_script(script, duration_text);
    if (rc != 0)
        fail_msg("scripts/chaos.sh %d exited %d: see the summary table above and the logs in "
                 ".run/chaos/logs", duration, rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_survives_kills_and_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
