/*
 * meta_graph.c - the token and the error verdicts of the Graph API (see
 * meta_graph.h).
 */
#include "meta_graph.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"

/* ---- the access token -------------------------------------------------------------- */

static bz_status open_sealed(const bz_keyring *ring, const char *account, const char *workspace,
                             const uint8_t *ct, size_t ct_len, const char *nonce_hex,
                             char **token, bz_error *err)
{
    size_t plain_len;
    if (!*nonce_hex)
        return bz_keyring_open_row(ring, "meta_credentials", account, workspace, ct, ct_len, NULL,
                                   token, &plain_len, err);
    uint8_t nonce[BZ_SECRETBOX_NONCE_LEN];
    size_t nonce_len;
    if (bz_hex_decode(nonce_hex, strlen(nonce_hex), nonce, sizeof nonce, &nonce_len, err) != BZ_OK ||
        nonce_len != sizeof nonce)
        return bz_fail(err, BZ_ERR_INVALID, "malformed nonce");
    /* the associated data of that form: the account id alone */
    return bz_keyring_open_legacy(ring, ct, ct_len, nonce, account, strlen(account), token,
                                  &plain_len, err);
}

bz_status bz_meta_token_open(const bz_keyring *ring, const char *account, const char *workspace,
                             const char *ct_hex, const char *nonce_hex, char **token,
                             bz_error *err)
{
    *token = NULL;
    if (ring->count == 0)
        return bz_fail(err, BZ_ERR_CONFIG, "secrets.keys is not set: the token cannot be opened");
    size_t cap = strlen(ct_hex) / 2 + 1, ct_len;
    uint8_t *ct = malloc(cap);
    if (!ct)
        return bz_fail(err, BZ_ERR_NOMEM, "out of memory");
    bz_status st;
    if (bz_hex_decode(ct_hex, strlen(ct_hex), ct, cap, &ct_len, err) != BZ_OK)
        st = bz_fail(err, BZ_ERR_INVALID, "stored token is malformed");
    else if ((st = open_sealed(ring, account, workspace, ct, ct_len, nonce_hex, token, err)) !=
             BZ_OK)
        bz_wrap(err, "token does not open (its key not in secrets.keys?)");
    free(ct);
    return st;
}

/* ---- error answers ------------------------------------------------------------------ */

static int is_throttle(long code)
{
    return code == 130429 || code == 131056 || code == 4 || code == 80007;
}

static int is_temporary(long code)
{
    return code == 1 || code == 2 || code == 131000 || code == 131016 || code == 133004;
}

/* The error object's human text: details when Meta gives them (they name
 * the parameter), else the message. */
static const char *error_text(json_t *error)
{
    const char *details = json_string_value(json_object_get(json_object_get(error, "error_data"),
                                                            "details"));
    const char *message = json_string_value(json_object_get(error, "message"));
    return details && *details ? details : message ? message : "";
}

static bz_graph_kind kind_of_error(long http_status, int has_code, long code)
{
    if (has_code ? code == 190 || code == 0 : http_status == 401)
        return BZ_GRAPH_TOKEN;
    if (is_throttle(code) || (!code && http_status == 429))
        return BZ_GRAPH_THROTTLED;
    if (is_temporary(code) || (http_status >= 500 && !(code >= 100 && code < 1000)))
        return BZ_GRAPH_TEMPORARY;
    return BZ_GRAPH_REFUSED;
}

/* An answer without an error object: its status alone. */
static bz_graph_kind kind_of_status(long http_status)
{
    if (http_status == 401)
        return BZ_GRAPH_TOKEN;
    if (http_status == 429)
        return BZ_GRAPH_THROTTLED;
    return http_status >= 500 || http_status == 408 ? BZ_GRAPH_TEMPORARY : BZ_GRAPH_REFUSED;
}

void bz_graph_error_read(long http_status, const char *body, size_t len, bz_graph_error *out)
{
    memset(out, 0, sizeof *out);
    json_t *doc = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *error = json_object_get(doc, "error");
    if (json_is_object(error)) {
        json_t *jcode = json_object_get(error, "code");
        out->has_code = json_is_integer(jcode);
        out->code = out->has_code ? (long)json_integer_value(jcode) : 0;
        out->kind = kind_of_error(http_status, out->has_code, out->code);
        snprintf(out->text, sizeof out->text, "%s", error_text(error));
    } else {
        out->kind = kind_of_status(http_status);
        snprintf(out->text, sizeof out->text, "HTTP %ld", http_status);
    }
    json_decref(doc);
    static const char *const no_code[] = {[BZ_GRAPH_THROTTLED] = "429",
                                          [BZ_GRAPH_TEMPORARY] = "http_5xx",
                                          [BZ_GRAPH_REFUSED] = "http_error"};
    if (out->kind == BZ_GRAPH_TOKEN)
        snprintf(out->label, sizeof out->label, "token_invalid");
    else if (out->code)
        snprintf(out->label, sizeof out->label, "%ld", out->code);
    else
        snprintf(out->label, sizeof out->label, "%s", no_code[out->kind]);
}
