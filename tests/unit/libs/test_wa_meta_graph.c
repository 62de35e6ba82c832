/*
 * test_wa_meta_graph.c - what every program reading Meta's Graph API
 * shares (libs/wa/meta_graph.h): a Meta account's token opened from its
 * stored hex form, bound to its own row, and Graph error answers read by
 * Meta's codes (the code over the HTTP status; the status alone only
 * without a code), with the label meta-sender reports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "core/hex.h"
#include "status_asserts.h"
#include "wa/meta_graph.h"

#define KEYS "k1:550276c546df070ec58d04e49409febf97ce59350e0faab5e5021dfd15a2dc72"

/* "EAAG-token" sealed for account 12 of workspace 3, as hex (heap). */
static char *sealed_hex(const bz_keyring *r)
{
    uint8_t *sealed;
    size_t len;
    bz_error err;
    assert_int_equal(bz_keyring_seal_row(r, "meta_credentials", "12", "3", "EAAG-token", 10,
                                         &sealed, &len, &err),
                     BZ_OK);
    char *hex = malloc(2 * len + 1);
    assert_non_null(hex);
    assert_int_equal(bz_hex_encode(sealed, len, hex, 2 * len + 1, &err), BZ_OK);
    free(sealed);
    return hex;
}

static void a_token_opens_for_its_own_row_only(void **state)
{
    (void)state;
    bz_keyring r;
    bz_error err;
    assert_int_equal(bz_keyring_parse(KEYS, &r, &err), BZ_OK);
    char *hex = sealed_hex(&r), *token = NULL;
    assert_int_equal(bz_meta_token_open(&r, "12", "3", hex, "", &token, &err), BZ_OK);
    assert_string_equal(token, "EAAG-token");
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    /* another account's row: the associated data differs */
    assert_failure(bz_meta_token_open(&r, "13", "3", hex, "", &token, &err), &err,
                   BZ_ERR_INVALID, "token does not open");
    assert_null(token);
    assert_failure(bz_meta_token_open(&r, "12", "3", "zz", "", &token, &err), &err, BZ_ERR_INVALID,
                   "malformed");
    bz_keyring empty = {0};
    assert_failure(bz_meta_token_open(&empty, "12", "3", hex, "", &token, &err), &err,
                   BZ_ERR_CONFIG, "secrets.keys is not set");
    free(hex);
    bz_keyring_free(&r);
}

static bz_graph_error answer_of(long status, const char *body)
{
    bz_graph_error e;
    bz_graph_error_read(status, body, body ? strlen(body) : 0, &e);
    return e;
}

static void errors_read_by_code_before_status(void **state)
{
    (void)state;
    bz_graph_error e = answer_of(401, "{\"error\": {\"message\": \"Session has expired\", \"type\": "
                                 "\"OAuthException\", \"code\": 190, \"error_subcode\": 463}}");
    assert_int_equal(e.kind, BZ_GRAPH_TOKEN);
    assert_int_equal(e.code, 190);
    assert_string_equal(e.label, "token_invalid");
    assert_string_equal(e.text, "Session has expired");
    /* an unknown WABA: 100 with Meta's words, even on a 5xx */
    e = answer_of(500, "{\"error\": {\"message\": \"Unsupported get request.\", \"code\": 100, "
                  "\"error_subcode\": 33}}");
    assert_int_equal(e.kind, BZ_GRAPH_REFUSED);
    assert_string_equal(e.label, "100");
    /* rate limits of the app and the account */
    assert_int_equal(answer_of(400, "{\"error\": {\"code\": 4}}").kind, BZ_GRAPH_THROTTLED);
    assert_int_equal(answer_of(400, "{\"error\": {\"code\": 80007}}").kind, BZ_GRAPH_THROTTLED);
    /* details win over the message */
    e = answer_of(400, "{\"error\": {\"message\": \"(#131009)\", \"code\": 131009, \"error_data\": "
                  "{\"details\": \"title too long\"}}}");
    assert_string_equal(e.text, "title too long");
    /* AuthException 0 is a code */
    e = answer_of(400, "{\"error\": {\"code\": 0}}");
    assert_int_equal(e.kind, BZ_GRAPH_TOKEN);
}

static void without_a_code_the_status_decides(void **state)
{
    (void)state;
    bz_graph_error e = answer_of(503, "<html>busy</html>");
    assert_int_equal(e.kind, BZ_GRAPH_TEMPORARY);
    assert_string_equal(e.label, "http_5xx");
    assert_string_equal(e.text, "HTTP 503");
    e = answer_of(429, NULL);
    assert_int_equal(e.kind, BZ_GRAPH_THROTTLED);
    assert_string_equal(e.label, "429");
    assert_int_equal(answer_of(401, "").kind, BZ_GRAPH_TOKEN);
    assert_int_equal(answer_of(408, NULL).kind, BZ_GRAPH_TEMPORARY);
    e = answer_of(404, "{}");
    assert_int_equal(e.kind, BZ_GRAPH_REFUSED);
    assert_string_equal(e.label, "http_error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_token_opens_for_its_own_row_only),
        cmocka_unit_test(errors_read_by_code_before_status),
        cmocka_unit_test(without_a_code_the_status_decides),
    };
    return cmocka_run_group_tests_name("wa meta graph", tests, NULL, NULL);
}
