/*
 * test_secrets_rotation.c - endpoint secrets re-sealed under a new key while
 * webhooks flow (issue 24 acceptance, ARCHITECTURE.md §9.3).
 *
 * Twelve endpoints, each with its own Standard Webhooks secret, start in the
 * form every deployment has today: sealed with the single key of
 * webhook.secret_key (key id "0", nonce in its own column, the workspace as
 * associated data). The dispatcher runs with the ring "0, k2": the old key
 * and the new one, newest last. Then:
 *  - before: events are delivered while every secret is in the old form;
 *  - during: `blazzctl secrets rotate --batch 1` runs while the test holds a
 *    KEY SHARE lock on the seventh endpoint's row, so the rotation commits
 *    the first six rows (one transaction each) and waits: events delivered
 *    now meet half the endpoints re-sealed with k2 and bound to their row,
 *    half in the old form;
 *  - racing: the lock is released and events are produced while the
 *    rotation finishes;
 *  - after: every endpoint's secret is sealed with k2 (checked in the rows)
 *    and events are delivered again. The first endpoint also holds, in the
 *    old form, the secret a rotation over the API replaced (0071, still
 *    signing): it is re-sealed with k2 too, bound to its row.
 * Every request the receiver got must verify with its endpoint's own secret
 * (an HMAC on OpenSSL, not the project's signing code), every (event,
 * endpoint) pair must have arrived, and no delivery may fail. The lock holds
 * only the rotation: the dispatcher's own row updates take a weaker lock
 * that KEY SHARE allows.
 *
 * Meta access tokens (meta_credentials, ARCHITECTURE.md §12.3) are secrets
 * of the same ring: one stored as blazzctl stored them before key ids
 * (nonce column, the account id as associated data), one set with
 * `blazzctl meta token` now (sealed with the ring's newest key, bound to
 * "meta_credentials:<account>:<workspace>"); `secrets rotate` re-seals both
 * with the new key, each still opens to its token bound to its own row, and
 * neither opens in the other's.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "core/clock.h"
#include "core/keyring.h"
#include "itest.h"
#include "wa/signature.h"
#include "webhook_itest.h"

#define ENDPOINTS 12
#define LOCKED 6 /* index of the endpoint whose row the test holds */
#define PHASE_EVENTS 10
#define PHASES 4
#define NEW_KEY "k2:a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
#define WAIT_MS 120000

typedef struct fixture {
    wh_env e;
    char secret[ENDPOINTS][64];
    char path[ENDPOINTS][96];
    int64_t endpoint[ENDPOINTS];
    char event[PHASES * PHASE_EVENTS][40];
    int events;
} fixture;

static fixture fx;

/* whsec_ + base64 of 24 bytes that differ per endpoint. */
static void make_secret(int i, char out[64])
{
    char raw[40];
    snprintf(raw, sizeof raw, "rotation-secret-%02d-%05d", i, itest_random(10000, 99999));
    memcpy(out, "whsec_", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)raw, 24);
}

/* The dispatcher's ring: the old key (id 0) and the new one, newest last. */
#define DISPATCHER_RING "BLAZZ_SECRETS_KEYS=0:" WH_TEST_KEY "," NEW_KEY

static const char *const dispatcher_settings[] = {
    "BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true", "BLAZZ_WEBHOOK_RETRY_SCHEDULE=0,300ms,600ms,1s",
    /* NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one setting, joined from the keys */
    "BLAZZ_WEBHOOK_POLL_MS=100", DISPATCHER_RING, NULL};

static void produce_phase(void)
{
    bz_producer *p = itest_producer();
    for (int i = 0; i < PHASE_EVENTS; i++) {
        wh_produce_message(p, &fx.e, fx.e.workspace_id, fx.event[fx.events++], "rotation");
        bz_producer_poll(p, 0);
    }
    bz_error err;
    if (bz_producer_flush(p, 60000, &err) != BZ_OK)
        fail_msg("flush: %s", err.msg);
    bz_producer_free(p, 1000);
}

/* Every delivery of the events so far succeeded. */
static void wait_delivered(void)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND status = "
             "'success'", (long long)fx.e.workspace_id);
    wh_wait_for(&fx.e, sql, (int64_t)fx.events * ENDPOINTS, WAIT_MS);
}

/* How many of the test's endpoints are sealed with key id key_id in the
 * current form (no nonce column). */
static int64_t sealed_with(const char *key_id)
{
    return itest_pg_int64f(fx.e.conn,
                           "SELECT count(*) FROM webhook_endpoints WHERE workspace_id = %lld AND "
                           "CASE WHEN secret_nonce IS NULL AND get_byte(secret_ciphertext, 0) = 1 "
                           "THEN convert_from(substring(secret_ciphertext FROM 3 FOR "
                           "get_byte(secret_ciphertext, 1)), 'UTF8') END = '%s'",
                           (long long)fx.e.workspace_id, key_id);
}

/* Whether endpoint i's replaced secret (previous_secret_ciphertext) is
 * sealed with key id key_id in the current form. */
static int previous_sealed_with(int i, const char *key_id)
{
    return (int)itest_pg_int64f(fx.e.conn,
                                "SELECT count(*) FROM webhook_endpoints WHERE id = %lld AND "
                                "previous_secret_nonce IS NULL AND "
                                "get_byte(previous_secret_ciphertext, 0) = 1 AND "
                                "convert_from(substring(previous_secret_ciphertext FROM 3 FOR "
                                "get_byte(previous_secret_ciphertext, 1)), 'UTF8') = '%s'",
                                (long long)fx.endpoint[i], key_id);
}

/* Endpoint i's replaced secret, opened with the new key bound to its row:
 * what the dispatcher signs with beside the endpoint's own. */
static void assert_previous_opens(int i)
{
    char *plain = itest_open_endpoint_secret(fx.e.conn, NEW_KEY, fx.endpoint[i],
                                             fx.e.workspace_id, "previous_secret_ciphertext");
    assert_string_equal(plain, fx.secret[i]);
    free(plain);
}

/* `blazzctl secrets rotate --batch 1`, not waited for. Its ring also holds
 * the key other tests seal gateway keys with (rotation covers every row of
 * the database). */
static pid_t start_rotation(const char *log)
{
    char ctl[1024];
    snprintf(ctl, sizeof ctl, "%s/bin/blazzctl", itest_env("BLAZZ_TEST_BIN_DIR"));
    char *argv[] = {ctl, "secrets", "rotate", "--batch", "1", "--json", NULL};
    setenv("BLAZZ_SECRETS_KEYS", "0:" WH_TEST_KEY "," ITEST_SECRETS_KEYS "," NEW_KEY, 1);
    pid_t pid = itest_spawn(argv, log);
    unsetenv("BLAZZ_SECRETS_KEYS");
    return pid;
}

/* Hold a KEY SHARE lock on the row of endpoint i until the transaction ends. */
static PGconn *lock_endpoint(int i)
{
    PGconn *c = PQconnectdb(itest_env("BLAZZ_PG_DSN"));
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    itest_pg_exec(c, "BEGIN");
    itest_pg_int64f(c, "SELECT id FROM webhook_endpoints WHERE id = %lld FOR KEY SHARE",
                    (long long)fx.endpoint[i]);
    return c;
}

static void wait_rotated(int64_t n, pid_t rotation)
{
    int64_t deadline = bz_monotonic_ms() + WAIT_MS;
    while (sealed_with("k2") < n) {
        int status;
        if (waitpid(rotation, &status, WNOHANG) == rotation)
            fail_msg("the rotation ended (status %d) with %lld of %lld rows re-sealed", status,
                     (long long)sealed_with("k2"), (long long)n);
        if (bz_monotonic_ms() > deadline)
            fail_msg("the rotation re-sealed %lld of %lld rows", (long long)sealed_with("k2"),
                     (long long)n);
        itest_sleep_ms(50);
    }
}

/* Each request verifies with its endpoint's secret; each pair arrived. */
static void check_every_request(void)
{
    json_t *all = wh_requests(&fx.e), *r;
    char *seen = calloc((size_t)fx.events * ENDPOINTS, 1);
    size_t i, checked = 0;
    json_array_foreach(all, i, r)
    {
        const char *path = json_string_value(json_object_get(r, "path"));
        int ep = -1;
        for (int k = 0; k < ENDPOINTS; k++)
            if (strcmp(path, fx.path[k]) == 0)
                ep = k;
        if (ep < 0)
            continue;
        const char *id = wh_header(r, "webhook-id");
        const char *body = json_string_value(json_object_get(r, "body"));
        if (!id || !body || !wh_header(r, "webhook-timestamp") ||
            !wh_header(r, "webhook-signature"))
            fail_msg("a request to endpoint %d lacks its webhook headers or body", ep);
        if (!wh_verify_standard(fx.secret[ep], id, wh_header(r, "webhook-timestamp"), body,
                                wh_header(r, "webhook-signature")))
            fail_msg("event %s to endpoint %d does not verify with its secret", id, ep);
        for (int k = 0; k < fx.events; k++)
            if (strcmp(id, fx.event[k]) == 0)
                seen[k * ENDPOINTS + ep] = 1;
        checked++;
    }
    for (int k = 0; k < fx.events * ENDPOINTS; k++)
        if (!seen[k])
            fail_msg("event %s never reached endpoint %d", fx.event[k / ENDPOINTS], k % ENDPOINTS);
    print_message("rotation: %zu requests verified, %d events x %d endpoints\n", checked,
                  fx.events, ENDPOINTS);
    free(seen);
    json_decref(all);
}

static void every_delivery_verifies_before_during_and_after_a_rotation(void **state)
{
    (void)state;
    wh_env_setup(&fx.e, "secrot");
    for (int i = 0; i < ENDPOINTS; i++) {
        make_secret(i, fx.secret[i]);
        snprintf(fx.path[i], sizeof fx.path[i], "/ok/rot%d-%s", i, fx.e.token);
        fx.endpoint[i] = wh_endpoint_add(&fx.e, fx.path[i], fx.secret[i], "standard", "{*}",
                                         1000, 4);
    }
    wh_dispatcher_start(&fx.e, dispatcher_settings);
    wh_wait_consuming(&fx.e);

    /* the first endpoint's secret, as a rotation over the API leaves the
     * one it replaced (in the old form here), signs beside it */
    itest_pg_int64f(fx.e.conn,
                    "WITH u AS (UPDATE webhook_endpoints SET previous_secret_ciphertext = "
                    "secret_ciphertext, previous_secret_nonce = secret_nonce, "
                    "previous_secret_until = now() + interval '1 hour' WHERE id = %lld "
                    "RETURNING 1) SELECT count(*) FROM u",
                    (long long)fx.endpoint[0]);
    produce_phase(); /* before */
    wait_delivered();
    assert_int_equal(sealed_with("k2"), 0);
    assert_int_equal(previous_sealed_with(0, "k2"), 0);

    char log[256];
    snprintf(log, sizeof log, "/tmp/%s-rotate.log", fx.e.prefix);
    PGconn *lock = lock_endpoint(LOCKED);
    pid_t rotation = start_rotation(log);
    wait_rotated(LOCKED, rotation);
    produce_phase(); /* during: half re-sealed, the rotation waiting */
    wait_delivered();
    assert_int_equal(sealed_with("k2"), LOCKED);

    itest_pg_exec(lock, "COMMIT");
    PQfinish(lock);
    produce_phase(); /* racing the rest of the rotation */
    if (itest_wait(rotation) != 0)
        fail_msg("blazzctl secrets rotate failed (log: %s)", log);
    assert_int_equal(sealed_with("k2"), ENDPOINTS);
    assert_int_equal(previous_sealed_with(0, "k2"), 1);
    assert_previous_opens(0);
    produce_phase(); /* after */
    wait_delivered();

    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND status <> "
             "'success'", (long long)fx.e.workspace_id);
    assert_int_equal(wh_int(&fx.e, sql), 0);
    check_every_request();
    wh_dispatcher_stop(&fx.e);
    wh_env_teardown(&fx.e);
}

/* ---- Meta access tokens -------------------------------------------------- */

#define LEGACY_TOKEN "EAAG-legacy-token-of-the-first-account"
#define CURRENT_TOKEN "EAAG-token-set-with-the-ring"

static int64_t meta_account(const char *session)
{
    return itest_pg_int64f(fx.e.conn,
                           "INSERT INTO whatsapp_accounts (workspace_id, session_id, phone_number, "
                           "status, provider_type) VALUES (%lld, '%s-%s', '+15550000001', "
                           "'connected', 'meta') RETURNING id",
                           (long long)fx.e.workspace_id, session, fx.e.prefix);
}

/* The row as blazzctl meta token wrote it before key ids: AES-256-GCM under
 * the single key (WH_TEST_KEY, id 0 of the ring), the account id as
 * associated data, the nonce in token_nonce. */
static void store_legacy_token(int64_t account, const char *token)
{
    uint8_t key[BZ_SECRETBOX_KEY_LEN], nonce[BZ_SECRETBOX_NONCE_LEN], *sealed = NULL;
    size_t len = 0;
    char aad[24];
    bz_error err;
    snprintf(aad, sizeof aad, "%lld", (long long)account);
    if (bz_secretbox_key_parse(WH_TEST_KEY, key, &err) != BZ_OK ||
        bz_secretbox_seal(key, token, strlen(token), aad, strlen(aad), nonce, &sealed, &len,
                          &err) != BZ_OK)
        fail_msg("seal a token the old way: %s", err.msg);
    char hex[512] = "", nonce_hex[2 * BZ_SECRETBOX_NONCE_LEN + 1] = "";
    for (size_t i = 0; i < len && 2 * i + 2 < sizeof hex; i++)
        snprintf(hex + 2 * i, 3, "%02x", sealed[i]);
    for (size_t i = 0; i < sizeof nonce; i++)
        snprintf(nonce_hex + 2 * i, 3, "%02x", nonce[i]);
    free(sealed);
    itest_pg_int64f(fx.e.conn,
                    "INSERT INTO meta_credentials (whatsapp_account_id, workspace_id, "
                    "token_ciphertext, token_nonce) VALUES (%lld, %lld, decode('%s', 'hex'), "
                    "decode('%s', 'hex')) RETURNING 1",
                    (long long)account, (long long)fx.e.workspace_id, hex, nonce_hex);
}

static void set_token_with_blazzctl(int64_t account, const char *token, const char *log)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)account);
    setenv("BLAZZ_SECRETS_KEYS", ITEST_SECRETS_KEYS, 1);
    setenv("BLAZZ_META_ACCESS_TOKEN", token, 1);
    const char *args[] = {"meta", "token", "--account", id, "--json", NULL};
    json_decref(itest_blazzctl_json(args, log));
    unsetenv("BLAZZ_META_ACCESS_TOKEN");
    unsetenv("BLAZZ_SECRETS_KEYS");
}

/* The key id a token row is sealed with; "legacy" for the older form. */
static char *token_key_id(int64_t account)
{
    return itest_pg_textf(fx.e.conn,
                          "SELECT CASE WHEN token_nonce IS NOT NULL THEN 'legacy' ELSE "
                          "convert_from(substring(token_ciphertext FROM 3 FOR "
                          "get_byte(token_ciphertext, 1)), 'UTF8') END FROM meta_credentials "
                          "WHERE whatsapp_account_id = %lld",
                          (long long)account);
}

/* Open the current-form token of account `owner` as if it were stored in
 * the row of account `as`: the plaintext (heap) or NULL. */
static char *open_token_as(const bz_keyring *ring, int64_t owner, int64_t as)
{
    char *hex = itest_pg_textf(fx.e.conn,
                               "SELECT encode(token_ciphertext, 'hex') FROM meta_credentials "
                               "WHERE whatsapp_account_id = %lld",
                               (long long)owner);
    uint8_t sealed[512];
    size_t len;
    bz_error err;
    if (bz_hex_decode(hex, strlen(hex), sealed, sizeof sealed, &len, &err) != BZ_OK)
        fail_msg("token of account %lld: %s", (long long)owner, err.msg);
    free(hex);
    char id[24], ws[24], *plain = NULL;
    size_t plain_len;
    snprintf(id, sizeof id, "%lld", (long long)as);
    snprintf(ws, sizeof ws, "%lld", (long long)fx.e.workspace_id);
    if (bz_keyring_open_row(ring, "meta_credentials", id, ws, sealed, len, NULL, &plain,
                            &plain_len, &err) != BZ_OK)
        return NULL;
    return plain;
}

static void meta_tokens_are_resealed_bound_to_their_account(void **state)
{
    (void)state;
    wh_env_setup(&fx.e, "metarot");
    int64_t legacy = meta_account("legacy"), current = meta_account("current");
    char log[256];
    snprintf(log, sizeof log, "/tmp/%s-meta-rotate.log", fx.e.prefix);
    store_legacy_token(legacy, LEGACY_TOKEN);
    set_token_with_blazzctl(current, CURRENT_TOKEN, log);
    itest_assert_text("legacy", token_key_id(legacy));
    itest_assert_text("itest", token_key_id(current));

    pid_t rotation = start_rotation(log);
    if (itest_wait(rotation) != 0)
        fail_msg("blazzctl secrets rotate failed (log: %s)", log);
    itest_assert_text("k2", token_key_id(legacy));
    itest_assert_text("k2", token_key_id(current));

    bz_keyring ring;
    bz_error err;
    if (bz_keyring_parse(NEW_KEY, &ring, &err) != BZ_OK)
        fail_msg("ring: %s", err.msg);
    char *a = open_token_as(&ring, legacy, legacy), *b = open_token_as(&ring, current, current);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, LEGACY_TOKEN);
    assert_string_equal(b, CURRENT_TOKEN);
    free(a);
    free(b);
    /* bound to its row: another account's row does not open it */
    assert_null(open_token_as(&ring, legacy, current));
    assert_null(open_token_as(&ring, current, legacy));
    bz_keyring_free(&ring);

    const char *args[] = {"secrets", "status", "--json", NULL};
    json_t *status = itest_blazzctl_json(args, log);
    json_t *meta = json_object_get(status, "meta_credentials");
    assert_true(json_integer_value(json_object_get(meta, "k2")) >= 2);
    assert_null(json_object_get(meta, "legacy"));
    json_decref(status);
    wh_env_teardown(&fx.e);
}

/* A rotation re-seals every secret of its database: in the pool's place
 * (scripts/test.sh) the programs before this one left endpoints sealed
 * with keys of theirs, which this ring cannot open (failed so in make
 * test: webhook_endpoints 1, left as it is). */
static int use_own_database(void **state)
{
    (void)state;
    char log[1024];
    snprintf(log, sizeof log, "%s/logs/itest-secrets-rotation-migrate.log",
             itest_env("BLAZZ_STATE_DIR"));
    itest_pg_use_own_database("itest_secrot_", log);
    return 0;
}

static int leave_own_database(void **state)
{
    (void)state;
    itest_pg_leave_own_database();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_delivery_verifies_before_during_and_after_a_rotation),
        cmocka_unit_test(meta_tokens_are_resealed_bound_to_their_account),
    };
    return cmocka_run_group_tests(tests, use_own_database, leave_own_database);
}
