/*
 * test_webhook_receiver.c - blazz-webhook-receiver --secrets checks
 * Standard Webhooks signatures the way a tenant's endpoint would, so that
 * `make run` can report deliveries as verified.
 *
 * verifies_signatures_by_path: a secrets file with two prefixes ("/ok" and
 * the longer "/ok/a"); requests signed here, with OpenSSL directly (not the
 * project's signature code, which the receiver uses), must be recorded
 * "verified": true only when signed with the secret of their longest
 * prefix, over the exact body, with a fresh timestamp; a path no prefix
 * covers gets no verdict; the answers do not depend on the verdict.
 *
 * refuses_a_bad_secrets_file: a malformed line stops the receiver (exit 2)
 * with the line's number, and no secret of the file is printed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "itest.h"
#include "itest_http.h"

/* The Standard Webhooks test vector's secret, and a second one. */
#define SECRET_A "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET_B "whsec_c2Vjb25kLWRlbW8tc2VjcmV0LWtleS0wMQ=="

typedef struct receiver {
    char dir[256];
    char record[300];
    int port;
    pid_t pid;
} receiver;

static const char *receiver_program(void)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/bin/blazz-webhook-receiver", itest_env("BLAZZ_TEST_BIN_DIR"));
    return path;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void start_receiver(receiver *r, const char *secrets_text)
{
    char token[32], secrets[300], port_file[300], log[300];
    itest_unique("whrecv", token, sizeof token);
    snprintf(r->dir, sizeof r->dir, "/tmp/%s", token);
    assert_int_equal(mkdir(r->dir, 0700), 0);
    snprintf(secrets, sizeof secrets, "%s/secrets", r->dir);
    snprintf(r->record, sizeof r->record, "%s/record.jsonl", r->dir);
    snprintf(port_file, sizeof port_file, "%s/port", r->dir);
    snprintf(log, sizeof log, "%s/log", r->dir);
    write_file(secrets, secrets_text);
    char *argv[] = {(char *)receiver_program(), "--listen", "127.0.0.1:0", "--record", r->record,
                    "--port-file", port_file, "--secrets", secrets, NULL};
    r->pid = itest_spawn(argv, log);
    for (int waited = 0; r->port == 0 && waited < 10000; waited += 20) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            char line[16] = "";
            r->port = fgets(line, sizeof line, f) ? (int)strtol(line, NULL, 10) : 0;
            fclose(f);
        }
        if (r->port == 0)
            itest_sleep_ms(20);
    }
    assert_true(r->port > 0);
}

static void remove_dir(const receiver *r)
{
    char *argv[] = {"/bin/rm", "-rf", (char *)r->dir, NULL};
    itest_wait(itest_spawn(argv, "/dev/null"));
}

/* "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" with key the base64
 * after "whsec_", computed with OpenSSL alone. */
static void sign(const char *secret, const char *id, long long ts, const char *body, char *out,
                 size_t cap)
{
    const char *b64 = secret + strlen("whsec_");
    unsigned char key[64];
    int keylen = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)strlen(b64));
    assert_true(keylen > 0);
    keylen -= (int)(strlen(b64) - strcspn(b64, "=")); /* EVP_DecodeBlock counts padding */
    char msg[1024];
    snprintf(msg, sizeof msg, "%s.%lld.%s", id, ts, body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    assert_non_null(HMAC(EVP_sha256(), key, keylen, (const unsigned char *)msg, strlen(msg), mac,
                         &maclen));
    unsigned char sig[96];
    EVP_EncodeBlock(sig, mac, (int)maclen);
    snprintf(out, cap, "v1,%s", sig);
}

/* POST body to path with the Standard Webhooks headers (signature NULL:
 * none at all); the status answered. */
static long post(const receiver *r, const char *path, const char *body, const char *id,
                 long long ts, const char *signature)
{
    char url[128], h_id[128], h_ts[64], h_sig[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", r->port, path);
    snprintf(h_id, sizeof h_id, "webhook-id: %s", id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", ts);
    snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", signature ? signature : "");
    const char *headers[] = {"Content-Type: application/json", h_id, h_ts, h_sig, NULL};
    if (!signature)
        headers[1] = NULL;
    static itest_http_reply reply;
    itest_http("POST", url, body, strlen(body), headers, 5000, &reply);
    return reply.status;
}

/* The recorded verdict of the request to path: 1, 0, or -1 for none. */
static int verdict(const receiver *r, const char *path)
{
    FILE *f = fopen(r->record, "r");
    assert_non_null(f);
    char line[8192];
    int found = -2;
    while (fgets(line, sizeof line, f)) {
        json_t *doc = json_loads(line, 0, NULL);
        assert_non_null(doc);
        if (strcmp(json_string_value(json_object_get(doc, "path")), path) == 0) {
            json_t *v = json_object_get(doc, "verified");
            found = v ? json_is_true(v) : -1;
        }
        json_decref(doc);
    }
    fclose(f);
    if (found == -2)
        fail_msg("no request to %s was recorded", path);
    return found;
}

static void verifies_signatures_by_path(void **state)
{
    (void)state;
    static receiver r;
    memset(&r, 0, sizeof r);
    start_receiver(&r, "# demo secrets\n/ok " SECRET_B "\n\n/ok/a " SECRET_A "\n");
    const char *body = "{\"type\":\"message.created\",\"data\":{\"n\":1}}";
    long long now = (long long)time(NULL);
    char sig_a[128], sig_b[128], sig_old[128];
    sign(SECRET_A, "msg_1", now, body, sig_a, sizeof sig_a);
    sign(SECRET_B, "msg_1", now, body, sig_b, sizeof sig_b);
    sign(SECRET_A, "msg_1", now - 600, body, sig_old, sizeof sig_old);

    assert_int_equal(post(&r, "/ok/a/right", body, "msg_1", now, sig_a), 200);
    assert_int_equal(post(&r, "/ok/a/other-secret", body, "msg_1", now, sig_b), 200);
    assert_int_equal(post(&r, "/ok/b/shorter-prefix", body, "msg_1", now, sig_b), 200);
    assert_int_equal(post(&r, "/ok/a/body-changed", "{\"type\":\"other\"}", "msg_1", now, sig_a),
                     200);
    assert_int_equal(post(&r, "/ok/a/stale", body, "msg_1", now - 600, sig_old), 200);
    assert_int_equal(post(&r, "/ok/a/unsigned", body, "msg_1", now, NULL), 200);
    char both[300];
    snprintf(both, sizeof both, "%s %s", sig_b, sig_a); /* rotation: any entry may match */
    assert_int_equal(post(&r, "/ok/a/rotation", body, "msg_1", now, both), 200);
    assert_int_equal(post(&r, "/status/503/uncovered", body, "msg_1", now, sig_a), 503);

    assert_int_equal(verdict(&r, "/ok/a/right"), 1);
    assert_int_equal(verdict(&r, "/ok/a/other-secret"), 0);
    assert_int_equal(verdict(&r, "/ok/b/shorter-prefix"), 1);
    assert_int_equal(verdict(&r, "/ok/a/body-changed"), 0);
    assert_int_equal(verdict(&r, "/ok/a/stale"), 0);
    assert_int_equal(verdict(&r, "/ok/a/unsigned"), 0);
    assert_int_equal(verdict(&r, "/ok/a/rotation"), 1);
    assert_int_equal(verdict(&r, "/status/503/uncovered"), -1);

    kill(r.pid, SIGTERM);
    assert_int_equal(itest_wait(r.pid), 0);
    remove_dir(&r);
}

static void refuses_a_bad_secrets_file(void **state)
{
    (void)state;
    char token[32], dir[256], secrets[300], log[300];
    itest_unique("whrecvbad", token, sizeof token);
    snprintf(dir, sizeof dir, "/tmp/%s", token);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(secrets, sizeof secrets, "%s/secrets", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    write_file(secrets, "/ok whsec_FIRSTSECRETVALUE\nno-leading-slash whsec_SECONDSECRETVALUE\n");
    char *argv[] = {(char *)receiver_program(), "--listen", "127.0.0.1:0", "--secrets", secrets,
                    NULL};
    assert_int_equal(itest_wait(itest_spawn(argv, log)), 2);
    assert_int_equal(itest_file_contains(log, "line 2"), 1);
    assert_int_equal(itest_file_contains(log, "SECRETVALUE"), 0);
    char *rm[] = {"/bin/rm", "-rf", dir, NULL};
    itest_wait(itest_spawn(rm, "/dev/null"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verifies_signatures_by_path),
        cmocka_unit_test(refuses_a_bad_secrets_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
