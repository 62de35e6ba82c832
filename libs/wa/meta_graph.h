/*
 * meta_graph.h - what every program that talks to Meta's Graph API for a
 * Meta account needs (ARCHITECTURE.md §12): where the API is, the
 * account's access token opened from meta_credentials, and what an error
 * answer means. blazz-meta-sender (sending) and `blazzctl meta templates
 * sync` (reading the template list) both use it, so a token opens, and a
 * refusal reads, the same way in both.
 *
 * Where: `meta.base_url` and `meta.api_version` (env BLAZZ_META_BASE_URL,
 * BLAZZ_META_API_VERSION), defaults below; requests go to
 * {base_url}/{api_version}/{node}/{edge}.
 *
 * The token: meta_credentials.token_ciphertext (hex, as SQL's encode(...,
 * 'hex') gives it) sealed with the secrets ring and bound to
 * "meta_credentials:<account>:<workspace>" (core/keyring.h), or, sealed
 * before key ids, with its nonce in token_nonce (hex) and the account id as
 * associated data. The plaintext is the caller's to cleanse and free.
 *
 * Errors: by Meta's documented code (error.code of the Graph error object
 * {"error": {"message", "type", "code", "error_data": {"details"},
 * "error_subcode", "fbtrace_id"}}), never by message text, and the code
 * wins over the HTTP status (Meta's advice; its `type` is OAuthException
 * for nearly everything). The status decides only for an answer without a
 * code.
 *   190, 0 (the codes Meta documents with 401), a 401 without a code
 *       -> TOKEN: the token is refused;
 *   130429, 131056, 4, 80007 (throughput, pair, app and account rate
 *       limits), a 429 without a code -> THROTTLED: later, slower;
 *   1, 2, 131000, 131016, 133004 (temporary), a 5xx (or a 408 without an
 *       error object) whose code is not a request error (100-999)
 *       -> TEMPORARY: the same request may succeed later;
 *   everything else (100 invalid parameter or unknown object, 1320xx
 *       template errors, any other 4xx) -> REFUSED.
 */
#ifndef BZ_WA_META_GRAPH_H
#define BZ_WA_META_GRAPH_H

#include <stddef.h>

#include "core/keyring.h"
#include "core/status.h"

#define BZ_META_BASE_URL_DEFAULT "https://graph.facebook.com"
#define BZ_META_API_VERSION_DEFAULT "v23.0"

/* Open the sealed token of Meta account `account` of workspace `workspace`
 * (ids as decimal text) from its hex columns; nonce_hex is "" for the
 * current form. BZ_ERR_CONFIG with an empty ring, BZ_ERR_INVALID when the
 * stored form is malformed or does not open (wrong row, key not in the
 * ring); the message never holds key or token material. *token is heap,
 * NUL-terminated. */
bz_status bz_meta_token_open(const bz_keyring *ring, const char *account, const char *workspace,
                             const char *ct_hex, const char *nonce_hex, char **token,
                             bz_error *err);

typedef enum bz_graph_kind {
    BZ_GRAPH_TOKEN = 1, /* the access token is refused */
    BZ_GRAPH_THROTTLED, /* a rate limit: later, and slower */
    BZ_GRAPH_TEMPORARY, /* Meta's side failed: the same request may work later */
    BZ_GRAPH_REFUSED    /* the request itself is wrong: it will not work as it is */
} bz_graph_kind;

#define BZ_GRAPH_TEXT_MAX 256

typedef struct bz_graph_error {
    bz_graph_kind kind;
    long code;     /* error.code; 0 when the answer has none */
    int has_code;  /* error.code was there (0 is a code: AuthException) */
    char label[24]; /* "token_invalid" for TOKEN; else the code, or for none "429",
                       "http_5xx", "http_error" */
    char text[BZ_GRAPH_TEXT_MAX]; /* error_data.details, else error.message, else "HTTP <status>" */
} bz_graph_error;

/* What the non-2xx answer (http_status, body of len bytes, may be NULL)
 * means. */
void bz_graph_error_read(long http_status, const char *body, size_t len, bz_graph_error *out);

#endif
