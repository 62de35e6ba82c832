/*
 * test_media_sigv4.c - libs/media/sigv4.h against the example AWS publishes
 * in "Authenticating Requests: Using Query Parameters (AWS Signature
 * Version 4)": GET examplebucket/test.txt at 20130524T000000Z for 86400 s,
 * whose signature the page gives; then the URL's shape for a path-style
 * endpoint with a port, and the refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "media/sigv4.h"

/* 2013-05-24T00:00:00Z */
#define EXAMPLE_TIME ((time_t)1369353600)

static const bz_sigv4_credentials example = {
    .access_key = "AKIAIOSFODNN7EXAMPLE",
    .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    .region = "us-east-1",
    .service = "s3",
};

static void matches_the_published_example(void **state)
{
    (void)state;
    char *url = NULL;
    bz_error err;
    assert_int_equal(bz_sigv4_presign(&example, "GET", "https://examplebucket.s3.amazonaws.com",
                                      "/test.txt", EXAMPLE_TIME, 86400, &url, &err),
                     BZ_OK);
    assert_string_equal(url, "https://examplebucket.s3.amazonaws.com/test.txt"
                             "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                             "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3"
                             "%2Faws4_request"
                             "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
                             "&X-Amz-SignedHeaders=host"
                             "&X-Amz-Signature="
                             "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    free(url);
    /* the default port is not part of the signed host */
    assert_int_equal(bz_sigv4_presign(&example, "GET",
                                      "https://examplebucket.s3.amazonaws.com:443/", "/test.txt",
                                      EXAMPLE_TIME, 86400, &url, &err),
                     BZ_OK);
    assert_non_null(strstr(url, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"));
    free(url);
}

static void path_style_with_a_port(void **state)
{
    (void)state;
    char *url = NULL;
    bz_error err;
    assert_int_equal(bz_sigv4_presign(&example, "GET", "http://127.0.0.1:9000",
                                      "/bucket/ws/7/ab cd", EXAMPLE_TIME, 60, &url, &err),
                     BZ_OK);
    const char *prefix = "http://127.0.0.1:9000/bucket/ws/7/ab%20cd?X-Amz-Algorithm=";
    assert_memory_equal(url, prefix, strlen(prefix));
    assert_non_null(strstr(url, "&X-Amz-Expires=60&"));
    /* a different host signs differently */
    char *other = NULL;
    assert_int_equal(bz_sigv4_presign(&example, "GET", "http://127.0.0.1:9001",
                                      "/bucket/ws/7/ab cd", EXAMPLE_TIME, 60, &other, &err),
                     BZ_OK);
    assert_string_not_equal(strstr(url, "X-Amz-Signature="), strstr(other, "X-Amz-Signature="));
    free(url);
    free(other);
}

static void refuses_what_cannot_be_signed(void **state)
{
    (void)state;
    char *url = NULL;
    bz_error err;
    assert_int_equal(bz_sigv4_presign(&example, "GET", "http://h", "/k", EXAMPLE_TIME, 0, &url,
                                      &err),
                     BZ_ERR_CONFIG);
    assert_int_equal(bz_sigv4_presign(&example, "GET", "http://h", "/k", EXAMPLE_TIME, 604801,
                                      &url, &err),
                     BZ_ERR_CONFIG);
    assert_int_equal(bz_sigv4_presign(&example, "GET", "ftp://h", "/k", EXAMPLE_TIME, 60, &url,
                                      &err),
                     BZ_ERR_CONFIG);
    bz_sigv4_credentials none = example;
    none.secret_key = "";
    assert_int_equal(bz_sigv4_presign(&none, "GET", "http://h", "/k", EXAMPLE_TIME, 60, &url,
                                      &err),
                     BZ_ERR_CONFIG);
    assert_null(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_the_published_example),
        cmocka_unit_test(path_style_with_a_port),
        cmocka_unit_test(refuses_what_cannot_be_signed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
