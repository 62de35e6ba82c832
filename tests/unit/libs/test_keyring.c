/*
 * test_keyring.c - secrets at rest under rotatable keys (libs/core/keyring.h):
 * the text form of a ring, the newest key sealing, every key opening, the
 * key id travelling in the sealed bytes, the row binding of the associated
 * data, and the old single-key rows still opening.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/keyring.h"

#define K1 "550276c546df070ec58d04e49409febf97ce59350e0faab5e5021dfd15a2dc72"
#define K2 "c1a8ef01c0dc6a0438624e0df40e041bc631737c79d9fea96cd4899d9c611d91"

static bz_keyring ring(const char *text)
{
    bz_keyring r;
    bz_error err;
    if (bz_keyring_parse(text, &r, &err) != BZ_OK)
        fail_msg("%s", err.msg);
    return r;
}

static uint8_t *seal(const bz_keyring *r, const char *plain, const char *aad, size_t *len)
{
    uint8_t *out;
    bz_error err;
    assert_int_equal(bz_keyring_seal(r, plain, strlen(plain), aad, strlen(aad), &out, len, &err),
                     BZ_OK);
    return out;
}

static void the_text_form_names_keys_and_keeps_their_order(void **state)
{
    (void)state;
    bz_keyring r = ring("old:" K1 ",\n new:" K2 "\n");
    assert_int_equal(r.count, 2);
    assert_string_equal(r.keys[0].id, "old");
    assert_string_equal(bz_keyring_newest(&r)->id, "new");
    bz_keyring_free(&r);
    r = ring(K1);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.keys[0].id, "0");
    bz_keyring_free(&r);
}

static void malformed_rings_are_refused_without_echoing_keys(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "  ,\n", "a:" K1 ",a:" K2, "a:tooshort",
                                      ":" K1, "bad id:" K1, "0123456789012345678901234567890123:" K1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bz_keyring r;
        bz_error err;
        assert_int_equal(bz_keyring_parse(bad[i], &r, &err), BZ_ERR_CONFIG);
        assert_null(strstr(err.msg, K1));
        assert_null(strstr(err.msg, K2));
        assert_int_equal(r.count, 0);
    }
}

/* .env.example's all-zero key started a stack before (issue 32): typed
 * keys are refused with what to do instead. */
static void weak_keys_are_refused(void **state)
{
    (void)state;
    char beside_a_strong_one[160];
    snprintf(beside_a_strong_one, sizeof beside_a_strong_one, "k1:%s,k2:%s", K1,
             "abababababababababababababababababababababababababababababababab");
    const char *const weak[] = {
        "k1:0000000000000000000000000000000000000000000000000000000000000000",
        "k1:1111111111111111111111111111111111111111111111111111111111111111",
        beside_a_strong_one,
        "k1:0102030405060708090a0b0c0d0e0f0102030405060708090a0b0c0d0e0f0102",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    };
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
        bz_keyring r;
        bz_error err;
        if (bz_keyring_parse(weak[i], &r, &err) == BZ_OK)
            fail_msg("weak ring %zu accepted", i);
        assert_non_null(strstr(err.msg, "weak"));
        assert_non_null(strstr(err.msg, "make secrets"));
        assert_int_equal(r.count, 0);
    }
}

static void the_newest_key_seals_and_every_key_opens(void **state)
{
    (void)state;
    bz_keyring before = ring("k1:" K1), during = ring("k1:" K1 ",k2:" K2), after = ring("k2:" K2);
    size_t len_old, len_new;
    uint8_t *old = seal(&before, "whsec_old", "webhook_endpoints:7:3", &len_old);
    uint8_t *fresh = seal(&during, "whsec_new", "webhook_endpoints:7:3", &len_new);
    char id[BZ_KEY_ID_MAX + 1];
    assert_int_equal(bz_sealed_key_id(old, len_old, id, NULL), BZ_OK);
    assert_string_equal(id, "k1");
    assert_int_equal(bz_sealed_key_id(fresh, len_new, id, NULL), BZ_OK);
    assert_string_equal(id, "k2");
    char *plain;
    size_t plen;
    bz_error err;
    assert_int_equal(bz_keyring_open(&during, old, len_old, "webhook_endpoints:7:3", 21, &plain,
                                     &plen, &err), BZ_OK);
    assert_string_equal(plain, "whsec_old");
    free(plain);
    assert_int_equal(bz_keyring_open(&after, fresh, len_new, "webhook_endpoints:7:3", 21, &plain,
                                     &plen, &err), BZ_OK);
    assert_string_equal(plain, "whsec_new");
    free(plain);
    /* the retired key is gone: its secrets no longer open, and say why */
    assert_int_equal(bz_keyring_open(&after, old, len_old, "webhook_endpoints:7:3", 21, &plain,
                                     &plen, &err), BZ_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "k1"));
    free(old);
    free(fresh);
    bz_keyring_free(&before);
    bz_keyring_free(&during);
    bz_keyring_free(&after);
}

static void a_secret_moved_to_another_row_does_not_open(void **state)
{
    (void)state;
    bz_keyring r = ring("k1:" K1);
    char aad[64], other[64];
    size_t n = bz_secret_aad(aad, sizeof aad, "webhook_endpoints", "7", "3");
    size_t m = bz_secret_aad(other, sizeof other, "webhook_endpoints", "8", "3");
    assert_string_equal(aad, "webhook_endpoints:7:3");
    size_t len;
    uint8_t *sealed = seal(&r, "whsec_x", aad, &len);
    char *plain;
    size_t plen;
    bz_error err;
    assert_int_equal(bz_keyring_open(&r, sealed, len, other, m, &plain, &plen, &err),
                     BZ_ERR_INVALID);
    sealed[len - 1] ^= 1;
    assert_int_equal(bz_keyring_open(&r, sealed, len, aad, n, &plain, &plen, &err),
                     BZ_ERR_INVALID);
    assert_int_equal(bz_keyring_open(&r, (const uint8_t *)"\x02\x01x", 3, aad, n, &plain, &plen,
                                     &err), BZ_ERR_INVALID);
    free(sealed);
    bz_keyring_free(&r);
}

static void rows_from_before_key_ids_open_with_any_loaded_key(void **state)
{
    (void)state;
    bz_keyring r = ring("k1:" K1 ",k2:" K2);
    uint8_t nonce[BZ_SECRETBOX_NONCE_LEN], *sealed;
    size_t len;
    assert_int_equal(bz_secretbox_seal(r.keys[0].key, "whsec_legacy", 12, "3", 1, nonce, &sealed,
                                       &len, NULL), BZ_OK);
    char *plain;
    size_t plen;
    bz_error err;
    assert_int_equal(bz_keyring_open_legacy(&r, sealed, len, nonce, "3", 1, &plain, &plen, &err),
                     BZ_OK);
    assert_string_equal(plain, "whsec_legacy");
    free(plain);
    assert_int_equal(bz_keyring_open_legacy(&r, sealed, len, nonce, "4", 1, &plain, &plen, &err),
                     BZ_ERR_INVALID);
    free(sealed);
    bz_keyring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_text_form_names_keys_and_keeps_their_order),
        cmocka_unit_test(malformed_rings_are_refused_without_echoing_keys),
        cmocka_unit_test(weak_keys_are_refused),
        cmocka_unit_test(the_newest_key_seals_and_every_key_opens),
        cmocka_unit_test(a_secret_moved_to_another_row_does_not_open),
        cmocka_unit_test(rows_from_before_key_ids_open_with_any_loaded_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
