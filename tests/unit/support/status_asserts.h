/*
 * status_asserts.h - cmocka checks on the library's error convention
 * (libs/core/status.h), shared by the unit tests (tests/unit/support/ is
 * linked into every one of them, see the Makefile's "components").
 */
#ifndef BZ_TEST_STATUS_ASSERTS_H
#define BZ_TEST_STATUS_ASSERTS_H

#include "core/status.h"

/* Fail the test, showing what came instead, unless the call returned code,
 * filled err with code, and err's message contains want. */
void assert_failure(bz_status st, const bz_error *err, bz_status code, const char *want);

#endif
