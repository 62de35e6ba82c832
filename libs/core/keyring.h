/*
 * keyring.h - secrets at rest under rotatable keys (ARCHITECTURE.md §9.3).
 *
 * A keyring is the list of AES-256 keys a process holds, each with an id,
 * oldest first: the newest encrypts, every one decrypts. Its text form (the
 * `secrets.keys` configuration key, BLAZZ_SECRETS_KEYS or its _FILE) is
 * entries separated by commas or white space, each "ID:KEY" with KEY as
 * core/secretbox.h parses it (64 hex digits or base64 of 32 bytes) and ID 1
 * to 32 characters of [A-Za-z0-9._-]; a lone KEY without an id is the key
 * "0" (what a single `webhook.secret_key` always was). Ids are unique.
 *
 * A sealed secret carries the id of the key that sealed it, so any holder
 * of the ring opens it without guessing:
 *
 *   0x01 | id length (1 byte) | id | nonce (12 bytes) | ciphertext | tag (16)
 *
 * The associated data names the row the secret belongs to, so a ciphertext
 * copied to another row (another endpoint of the same workspace, another
 * gateway's key) does not open: bz_secret_aad writes "table:id:scope".
 * Rows written before key ids existed (ciphertext || tag with the nonce in
 * a column of its own, the workspace id as associated data) open with
 * bz_keyring_open_legacy, which tries every key; `blazzctl secrets rotate`
 * rewrites them in the current form. Plaintexts come back NUL-terminated
 * for the caller to wipe (OPENSSL_cleanse) and free; key material is wiped
 * by bz_keyring_free and never appears in messages.
 */
#ifndef BZ_KEYRING_H
#define BZ_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "secretbox.h"
#include "status.h"

#define BZ_KEY_ID_MAX 32
#define BZ_SEALED_VERSION 1

typedef struct bz_keyring_key {
    char id[BZ_KEY_ID_MAX + 1];
    uint8_t key[BZ_SECRETBOX_KEY_LEN];
} bz_keyring_key;

typedef struct bz_keyring {
    bz_keyring_key *keys; /* heap, oldest first */
    size_t count;
} bz_keyring;

/* Parse text (see above) into out. An empty text, a malformed entry or a
 * repeated id is BZ_ERR_CONFIG naming the entry by position, never by
 * value. Free with bz_keyring_free. */
bz_status bz_keyring_parse(const char *text, bz_keyring *out, bz_error *err);

/* The ring a configuration holds: `secrets.keys`, else the single key of
 * the older setting older_name (a key without an id: "0"; NULL: none).
 * Neither set leaves out empty (count 0) and returns BZ_OK: the caller
 * says what cannot work without keys. A malformed ring is BZ_ERR_CONFIG
 * naming the setting. Free with bz_keyring_free. */
bz_status bz_keyring_from_config(const bz_config *cfg, const char *older_name, bz_keyring *out,
                                 bz_error *err);

/* Wipe and free the keys; r is left empty. */
void bz_keyring_free(bz_keyring *r);

/* The key that seals: the last one. NULL for an empty ring. */
const bz_keyring_key *bz_keyring_newest(const bz_keyring *r);

/* "table:id:scope" into buf (truncated to cap); returns the length. */
size_t bz_secret_aad(char *buf, size_t cap, const char *table, const char *id,
                     const char *scope);

/* Seal plain with the newest key. *out is heap (the caller frees). */
bz_status bz_keyring_seal(const bz_keyring *r, const void *plain, size_t len, const void *aad,
                          size_t aad_len, uint8_t **out, size_t *out_len, bz_error *err);

/* The key id sealed into a sealed secret, into id. BZ_ERR_INVALID when
 * sealed is not in the current form. */
bz_status bz_sealed_key_id(const uint8_t *sealed, size_t len, char id[BZ_KEY_ID_MAX + 1],
                           bz_error *err);

/* Open a sealed secret with the key its id names. BZ_ERR_NOT_FOUND when
 * the ring lacks that key; BZ_ERR_INVALID when it is malformed or does not
 * authenticate (wrong row, tampered). */
bz_status bz_keyring_open(const bz_keyring *r, const uint8_t *sealed, size_t len,
                          const void *aad, size_t aad_len, char **out, size_t *out_len,
                          bz_error *err);

/* Open a secret in the old form (ciphertext || tag, separate nonce) with
 * whichever key authenticates it. */
bz_status bz_keyring_open_legacy(const bz_keyring *r, const uint8_t *sealed, size_t len,
                                 const uint8_t nonce[BZ_SECRETBOX_NONCE_LEN], const void *aad,
                                 size_t aad_len, char **out, size_t *out_len, bz_error *err);

/* The secret of one row: sealed with a key id and bound to "table:id:scope"
 * when nonce is NULL, else in the older form, bound to scope alone (what
 * webhook endpoints always used: the workspace id). */
bz_status bz_keyring_open_row(const bz_keyring *r, const char *table, const char *id,
                              const char *scope, const uint8_t *sealed, size_t len,
                              const uint8_t *nonce, char **out, size_t *out_len, bz_error *err);

/* Seal plain for one row ("table:id:scope") with the newest key. */
bz_status bz_keyring_seal_row(const bz_keyring *r, const char *table, const char *id,
                              const char *scope, const void *plain, size_t len, uint8_t **out,
                              size_t *out_len, bz_error *err);

#endif
