/*
 * status.h - the one error convention used by every Blazz module.
 *
 * Modelled on curl: every fallible function returns a bz_status and, when it
 * fails, leaves a human-readable message in a caller-supplied bz_error. The
 * caller decides what to do; libraries never exit() and never log on behalf of
 * the caller. The message carries context (what was being done, with which
 * id), PostgreSQL-style, e.g.
 *   "apply batch: insert chat wam_id=ABC: duplicate key value ...".
 *
 * The codes are deliberately few. What matters to callers is the class of
 * failure: TRANSIENT means "retry later, do not dead-letter" (database or
 * broker unreachable, serialization failure, timeout); INVALID means the input
 * is bad for good and belongs on a dead-letter topic; everything else is a
 * programming, configuration or resource error.
 */
#ifndef BZ_STATUS_H
#define BZ_STATUS_H

#include <stddef.h>

typedef enum bz_status {
    BZ_OK = 0,
    BZ_ERR_INVALID,   /* permanent: bad input, undecodable, fails validation */
    BZ_ERR_TRANSIENT, /* retry later: peer down, timeout, serialization failure */
    BZ_ERR_CONFIG,    /* bad configuration key or value */
    BZ_ERR_NOMEM,     /* allocation failed */
    BZ_ERR_IO,        /* file or socket error that is not worth retrying */
    BZ_ERR_NOT_FOUND, /* a looked-up thing does not exist */
    BZ_ERR_CONFLICT,  /* a compare-and-set lost: someone else moved first */
    BZ_ERR_FATAL,     /* unrecoverable state; the component must be rebuilt */
    BZ_ERR_INTERNAL   /* a bug: an invariant did not hold */
} bz_status;

#define BZ_ERROR_MSG_MAX 512

typedef struct bz_error {
    bz_status code;
    /* For BZ_ERR_INVALID: a stable machine-readable reason such as
     * "decode_error" or "unknown_session", used as a dead letter's error_code
     * and a metrics label. Always a string literal (static storage); NULL
     * when the failure has no specific reason. */
    const char *reason;
    char msg[BZ_ERROR_MSG_MAX];
} bz_error;

/* Record a failure in err (may be NULL) and return code, so that a failure
 * path reads `return bz_fail(err, BZ_ERR_INVALID, "phone %s: too short", p);` */
bz_status bz_fail(bz_error *err, bz_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* bz_fail with a stable reason (a string literal, see bz_error.reason),
 * for a failure whose caller answers by its reason (an HTTP error code). */
bz_status bz_fail_because(bz_error *err, bz_status code, const char *reason, const char *fmt,
                          ...) __attribute__((format(printf, 4, 5)));

/* Reject bad input for good: BZ_ERR_INVALID with a stable reason (a string
 * literal, see bz_error.reason) and a message. */
bz_status bz_reject(bz_error *err, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the message already in err with more context ("outer: inner") and
 * return its code unchanged. Used when a failure travels up a layer. This,
 * never bz_fail or bz_reject with err->msg among their arguments, is how a
 * message grows: those format into err->msg, and a buffer read while it is
 * written garbles the answer (scripts/check_error_msgs.sh refuses it). */
bz_status bz_wrap(bz_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Give the failure already in err another meaning where it arrives (a phone
 * that did not parse is a request's invalid field; a template not found is
 * a send's unknown_template), keeping its message: set code and reason (a
 * string literal or NULL, see bz_error.reason) and return code. */
bz_status bz_reclass(bz_error *err, bz_status code, const char *reason);

/* The static analyzer (clang-tidy) cannot see into status.c, so it assumes
 * that bz_fail, bz_fail_because and bz_reject may return BZ_OK; every
 * `return bz_fail(...)` then looks like a success that left its
 * out-parameters unset. For the analyzer only, state what they (and
 * bz_reclass) return. status.c defines BZ_STATUS_IMPL to keep its
 * definitions readable to the analyzer. */
#if defined(__clang_analyzer__) && !defined(BZ_STATUS_IMPL)
#define bz_fail(err, code, ...) (bz_fail((err), (code), __VA_ARGS__), (code))
#define bz_fail_because(err, code, reason, ...) \
    (bz_fail_because((err), (code), (reason), __VA_ARGS__), (code))
#define bz_reject(err, reason, ...) (bz_reject((err), (reason), __VA_ARGS__), BZ_ERR_INVALID)
#define bz_reclass(err, code, reason) (bz_reclass((err), (code), (reason)), (code))
#endif

/* Reset err to BZ_OK with an empty message. */
void bz_error_clear(bz_error *err);

/* A short stable name for a code ("transient", "invalid", ...), for logs,
 * metrics labels and dead-letter error codes. */
const char *bz_status_name(bz_status code);

#endif
