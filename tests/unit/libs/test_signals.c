/*
 * test_signals.c - the shutdown flag: unset at start, set by SIGTERM, SIGINT
 * or bz_shutdown_request, the process survives the signal, SIGPIPE is
 * ignored. Each scenario runs in a forked child, because the flag is
 * process-wide and cannot be cleared; the child reports through its exit
 * status which check failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/signals.h"

/* Run scenario in a child; it returns 0 on success or the number of the
 * failed check, which becomes the child's exit status. */
static void assert_child_passes(int (*scenario)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(scenario());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("child died from signal %d", WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("child failed check %d", WEXITSTATUS(status));
}

static int shutdown_by_signal(int signo)
{
    if (bz_signals_install_shutdown() != BZ_OK)
        return 1;
    if (bz_shutdown_requested() || bz_shutdown_signal() != 0)
        return 2;
    if (raise(signo) != 0)
        return 3;
    if (!bz_shutdown_requested())
        return 4;
    if (bz_shutdown_signal() != signo)
        return 5;
    /* A second, different signal neither kills nor relabels the request. */
    if (raise(signo == SIGTERM ? SIGINT : SIGTERM) != 0 || bz_shutdown_signal() != signo)
        return 6;
    return 0;
}

static int sigterm_scenario(void)
{
    return shutdown_by_signal(SIGTERM);
}

static int sigint_scenario(void)
{
    return shutdown_by_signal(SIGINT);
}

static int programmatic_scenario(void)
{
    if (bz_shutdown_requested())
        return 1;
    bz_shutdown_request();
    if (!bz_shutdown_requested())
        return 2;
    if (bz_shutdown_signal() != 0)
        return 3;
    return 0;
}

static int sigpipe_scenario(void)
{
    if (bz_signals_install_shutdown() != BZ_OK)
        return 1;
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) != 0 || sa.sa_handler != SIG_IGN)
        return 2;
    int fds[2];
    if (pipe(fds) != 0)
        return 3;
    close(fds[0]);
    /* Writing to a pipe without a reader fails with EPIPE instead of killing us. */
    if (write(fds[1], "x", 1) != -1)
        return 4;
    close(fds[1]);
    if (bz_shutdown_requested())
        return 5;
    return 0;
}

static int handlers_restart_scenario(void)
{
    if (bz_signals_install_shutdown() != BZ_OK)
        return 1;
    struct sigaction sa;
    if (sigaction(SIGTERM, NULL, &sa) != 0 || !(sa.sa_flags & SA_RESTART) ||
        sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)
        return 2;
    if (sigaction(SIGINT, NULL, &sa) != 0 || sa.sa_handler == SIG_DFL)
        return 3;
    return 0;
}

static void test_sigterm_requests_shutdown(void **state)
{
    (void)state;
    assert_child_passes(sigterm_scenario);
}

static void test_sigint_requests_shutdown(void **state)
{
    (void)state;
    assert_child_passes(sigint_scenario);
}

static void test_shutdown_can_be_requested_from_code(void **state)
{
    (void)state;
    assert_child_passes(programmatic_scenario);
}

static void test_sigpipe_is_ignored(void **state)
{
    (void)state;
    assert_child_passes(sigpipe_scenario);
}

static void test_handlers_are_installed_with_restart(void **state)
{
    (void)state;
    assert_child_passes(handlers_restart_scenario);
}

static void test_signal_from_another_process(void **state)
{
    (void)state;
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        bz_signals_install_shutdown();
        ssize_t w = write(ready[1], "r", 1);
        (void)w;
        for (int i = 0; i < 500 && !bz_shutdown_requested(); i++)
            usleep(10000);
        _exit(bz_shutdown_requested() && bz_shutdown_signal() == SIGTERM ? 0 : 1);
    }
    close(ready[1]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_requests_shutdown),
        cmocka_unit_test(test_sigint_requests_shutdown),
        cmocka_unit_test(test_shutdown_can_be_requested_from_code),
        cmocka_unit_test(test_sigpipe_is_ignored),
        cmocka_unit_test(test_handlers_are_installed_with_restart),
        cmocka_unit_test(test_signal_from_another_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
