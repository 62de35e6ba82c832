/*
 * signals.h - the process-wide "please shut down" flag.
 *
 * main() calls bz_signals_install_shutdown() once, before starting threads.
 * From then on SIGTERM and SIGINT only set a flag (a lock-free atomic, so the
 * handler is async-signal-safe); every loop in the service polls
 * bz_shutdown_requested() and winds down in order: stop taking work, finish
 * in-flight work, flush, commit, exit 0. A second signal does not kill the
 * process, since that would defeat the bounded, lossless shutdown; use
 * SIGKILL for that. SIGPIPE is ignored so that a peer closing a socket shows
 * up as EPIPE on the write instead of killing the process.
 */
#ifndef BZ_SIGNALS_H
#define BZ_SIGNALS_H

#include <stdbool.h>

#include "status.h"

/* Install the SIGTERM/SIGINT handlers and ignore SIGPIPE. Returns
 * BZ_ERR_INTERNAL only if sigaction itself fails. */
bz_status bz_signals_install_shutdown(void);

/* True once a shutdown signal arrived or bz_shutdown_request was called. */
bool bz_shutdown_requested(void);

/* Ask for shutdown from code (fatal errors, tests). Async-signal-safe. */
void bz_shutdown_request(void);

/* The number of the signal that requested shutdown, 0 if none did (not yet,
 * or it was requested from code). For the final log line. */
int bz_shutdown_signal(void);

#endif
