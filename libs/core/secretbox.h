/*
 * secretbox.h - small secrets encrypted at rest with AES-256-GCM.
 *
 * Used for webhook endpoint signing secrets (webhook_endpoints
 * secret_ciphertext / secret_nonce): the dispatcher decrypts them, blazzctl
 * encrypts them, both with the same 32-byte key from configuration.
 *
 * Sealing draws a fresh random 12-byte nonce per call and produces
 * ciphertext || 16-byte tag. Optional associated data (e.g. the owning
 * workspace id) binds a ciphertext to its row, so a ciphertext copied to
 * another row fails to open. Opening checks the tag before returning
 * anything; a wrong key, nonce, associated data or a tampered ciphertext is
 * BZ_ERR_INVALID. Key material and plaintexts never appear in messages.
 */
#ifndef BZ_SECRETBOX_H
#define BZ_SECRETBOX_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define BZ_SECRETBOX_KEY_LEN 32
#define BZ_SECRETBOX_NONCE_LEN 12
#define BZ_SECRETBOX_TAG_LEN 16

/* Parse a key given as 64 hex digits or as standard base64 of 32 bytes
 * (44 characters with padding). Surrounding whitespace is ignored. A key of
 * any other shape is BZ_ERR_CONFIG, and so is a weak one: fewer than 16
 * distinct bytes (all-zero, one byte repeated, a short pattern). */
bz_status bz_secretbox_key_parse(const char *text, uint8_t key[BZ_SECRETBOX_KEY_LEN],
                                 bz_error *err);

/* Encrypt plain (len bytes). *out receives heap memory (len + TAG_LEN bytes,
 * the caller frees); nonce receives the fresh nonce. aad may be NULL. */
bz_status bz_secretbox_seal(const uint8_t key[BZ_SECRETBOX_KEY_LEN], const void *plain,
                            size_t len, const void *aad, size_t aad_len,
                            uint8_t nonce[BZ_SECRETBOX_NONCE_LEN], uint8_t **out,
                            size_t *out_len, bz_error *err);

/* Decrypt and authenticate. *out receives a NUL-terminated heap copy of the
 * plaintext (the caller wipes with OPENSSL_cleanse and frees); *out_len
 * excludes the NUL. */
bz_status bz_secretbox_open(const uint8_t key[BZ_SECRETBOX_KEY_LEN], const uint8_t *sealed,
                            size_t sealed_len, const uint8_t nonce[BZ_SECRETBOX_NONCE_LEN],
                            const void *aad, size_t aad_len, char **out, size_t *out_len,
                            bz_error *err);

#endif
