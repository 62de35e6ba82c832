/*
 * api_key.h - the CRM's API keys: "bzk_<key_id>_<secret>".
 *
 * key_id is 16 characters of [a-z0-9], public: it names the api_keys row.
 * The secret is 43 characters of base64url (256 random bits) and is never
 * stored: the row keeps its SHA-256, which is enough because the secret is
 * random and long (there is nothing to guess, so no slow password hash is
 * needed). blazzctl creates keys (bz_api_key_generate) and shows the whole
 * key once; ingest splits a presented key (bz_api_key_parse), hashes its
 * secret and compares hashes in constant time (bz_api_key_matches).
 */
#ifndef BZ_API_KEY_H
#define BZ_API_KEY_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

#define BZ_API_KEY_ID_LEN 16
#define BZ_API_KEY_SECRET_LEN 43
#define BZ_API_KEY_HASH_LEN 32
/* "bzk_" + id + "_" + secret + NUL */
#define BZ_API_KEY_SIZE (4 + BZ_API_KEY_ID_LEN + 1 + BZ_API_KEY_SECRET_LEN + 1)

/* A fresh key from the OS random source: the whole key text, its id and the
 * hash of its secret. BZ_ERR_IO when randomness is unavailable. */
bz_status bz_api_key_generate(char key[BZ_API_KEY_SIZE], char key_id[BZ_API_KEY_ID_LEN + 1],
                              uint8_t hash[BZ_API_KEY_HASH_LEN], bz_error *err);

/* Split a presented key into its id and the hash of its secret. false when
 * it does not have the key's shape (nothing about its content leaks: the
 * shape is public). */
/* Whether id's len bytes are a key id (the part of a key before its
 * secret): BZ_API_KEY_ID_LEN of [a-z0-9]. */
bool bz_api_key_id_valid(const char *id, size_t len);

bool bz_api_key_parse(const char *key, char key_id[BZ_API_KEY_ID_LEN + 1],
                      uint8_t hash[BZ_API_KEY_HASH_LEN]);

/* Constant-time comparison of two secret hashes. */
bool bz_api_key_matches(const uint8_t a[BZ_API_KEY_HASH_LEN], const uint8_t b[BZ_API_KEY_HASH_LEN]);

#endif
