/*
 * signals.c - SIGTERM/SIGINT set an atomic flag (see signals.h).
 *
 * The flag and the signal number are lock-free atomics, which C11 allows a
 * signal handler to touch; the handler does nothing else. SA_RESTART keeps
 * slow system calls in other code from failing with EINTR merely because
 * someone pressed Ctrl-C: loops notice the flag at their next poll timeout.
 */
#include "signals.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>

static atomic_bool shutdown_flag;
static atomic_int shutdown_signo;

_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2, "the shutdown flag must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal number must be lock-free");

static void on_shutdown_signal(int signo)
{
    int none = 0;
    atomic_compare_exchange_strong(&shutdown_signo, &none, signo);
    atomic_store(&shutdown_flag, true);
}

static int install_handler(int signo, void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    return sigaction(signo, &sa, NULL);
}

bz_status bz_signals_install_shutdown(void)
{
    if (install_handler(SIGTERM, on_shutdown_signal) != 0 ||
        install_handler(SIGINT, on_shutdown_signal) != 0 ||
        install_handler(SIGPIPE, SIG_IGN) != 0)
        return BZ_ERR_INTERNAL;
    return BZ_OK;
}

bool bz_shutdown_requested(void)
{
    return atomic_load(&shutdown_flag);
}

void bz_shutdown_request(void)
{
    atomic_store(&shutdown_flag, true);
}

int bz_shutdown_signal(void)
{
    return atomic_load(&shutdown_signo);
}
