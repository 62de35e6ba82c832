/*
 * status_asserts.c - cmocka checks on bz_status and bz_error
 * (status_asserts.h).
 */
#include "status_asserts.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

void assert_failure(bz_status st, const bz_error *err, bz_status code, const char *want)
{
    if (st != code || err->code != code || !strstr(err->msg, want))
        fail_msg("expected %s containing \"%s\", got %s: \"%s\"", bz_status_name(code), want,
                 bz_status_name(st), err->msg);
}
