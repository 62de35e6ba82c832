/*
 * keyring.c - several secretbox keys with ids (see keyring.h), on top of
 * the AES-256-GCM primitives of secretbox.c.
 */
#include "keyring.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define HEADER_FIXED 2 /* version, id length */

static int is_id_char(int c)
{
    return isalnum(c) || c == '.' || c == '_' || c == '-';
}

static int is_separator(int c)
{
    return c == ',' || isspace(c);
}

/* One entry "ID:KEY" or "KEY" (in a writable copy) into key. */
static bz_status parse_entry(char *entry, size_t position, bz_keyring_key *key, bz_error *err)
{
    char *colon = strchr(entry, ':');
    const char *id = "0", *text = entry;
    if (colon) {
        *colon = '\0';
        id = entry;
        text = colon + 1;
        size_t len = strlen(id);
        if (len == 0 || len > BZ_KEY_ID_MAX)
            return bz_fail(err, BZ_ERR_CONFIG, "secret keys: entry %zu: the id must be 1 to %d "
                           "characters", position, BZ_KEY_ID_MAX);
        for (size_t i = 0; i < len; i++)
            if (!is_id_char((unsigned char)id[i]))
                return bz_fail(err, BZ_ERR_CONFIG, "secret keys: entry %zu: the id may hold only "
                               "A-Z a-z 0-9 . _ -", position);
    }
    snprintf(key->id, sizeof key->id, "%s", id);
    if (bz_secretbox_key_parse(text, key->key, err) != BZ_OK)
        return bz_wrap(err, "secret keys: entry %zu (id %s)", position, key->id);
    return BZ_OK;
}

static size_t count_entries(const char *s)
{
    size_t n = 0;
    for (size_t i = 0; s[i]; i++)
        if (!is_separator((unsigned char)s[i]) && (i == 0 || is_separator((unsigned char)s[i - 1])))
            n++;
    return n;
}

static bz_status check_unique(const bz_keyring *r, bz_error *err)
{
    for (size_t i = 0; i < r->count; i++)
        for (size_t j = i + 1; j < r->count; j++)
            if (strcmp(r->keys[i].id, r->keys[j].id) == 0)
                return bz_fail(err, BZ_ERR_CONFIG, "secret keys: id %s appears twice",
                               r->keys[i].id);
    return BZ_OK;
}

bz_status bz_keyring_parse(const char *text, bz_keyring *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    size_t n = text ? count_entries(text) : 0;
    if (n == 0)
        return bz_fail(err, BZ_ERR_CONFIG, "secret keys: none given");
    char *copy = strdup(text);
    out->keys = calloc(n, sizeof *out->keys);
    if (!copy || !out->keys) {
        free(copy);
        bz_keyring_free(out);
        return bz_fail(err, BZ_ERR_NOMEM, "secret keys: out of memory");
    }
    bz_status st = BZ_OK;
    char *save = NULL;
    for (char *entry = strtok_r(copy, ", \t\r\n", &save); st == BZ_OK && entry;
         entry = strtok_r(NULL, ", \t\r\n", &save)) {
        st = parse_entry(entry, out->count + 1, &out->keys[out->count], err);
        out->count++;
    }
    OPENSSL_cleanse(copy, strlen(text));
    free(copy);
    if (st == BZ_OK)
        st = check_unique(out, err);
    if (st != BZ_OK)
        bz_keyring_free(out);
    return st;
}

void bz_keyring_free(bz_keyring *r)
{
    if (!r)
        return;
    if (r->keys)
        OPENSSL_cleanse(r->keys, r->count * sizeof *r->keys);
    free(r->keys);
    r->keys = NULL;
    r->count = 0;
}

bz_status bz_keyring_from_config(const bz_config *cfg, const char *older_name, bz_keyring *out,
                                 bz_error *err)
{
    memset(out, 0, sizeof *out);
    const char *name = "secrets.keys";
    if (!bz_config_is_set(cfg, name) && older_name && bz_config_is_set(cfg, older_name))
        name = older_name;
    if (!bz_config_is_set(cfg, name))
        return BZ_OK;
    if (bz_keyring_parse(bz_config_string(cfg, name), out, err) != BZ_OK)
        return bz_wrap(err, "%s", name);
    return BZ_OK;
}

const bz_keyring_key *bz_keyring_newest(const bz_keyring *r)
{
    return r && r->count ? &r->keys[r->count - 1] : NULL;
}

size_t bz_secret_aad(char *buf, size_t cap, const char *table, const char *id,
                     const char *scope)
{
    int n = snprintf(buf, cap, "%s:%s:%s", table, id, scope ? scope : "");
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

bz_status bz_keyring_seal(const bz_keyring *r, const void *plain, size_t len, const void *aad,
                          size_t aad_len, uint8_t **out, size_t *out_len, bz_error *err)
{
    const bz_keyring_key *k = bz_keyring_newest(r);
    if (!k)
        return bz_fail(err, BZ_ERR_CONFIG, "seal secret: no key");
    size_t id_len = strlen(k->id), head = HEADER_FIXED + id_len + BZ_SECRETBOX_NONCE_LEN;
    uint8_t nonce[BZ_SECRETBOX_NONCE_LEN], *body = NULL;
    size_t body_len = 0;
    bz_status st = bz_secretbox_seal(k->key, plain, len, aad, aad_len, nonce, &body, &body_len, err);
    if (st != BZ_OK)
        return st;
    uint8_t *buf = malloc(head + body_len);
    if (!buf) {
        free(body);
        return bz_fail(err, BZ_ERR_NOMEM, "seal secret: out of memory");
    }
    buf[0] = BZ_SEALED_VERSION;
    buf[1] = (uint8_t)id_len;
    memcpy(buf + HEADER_FIXED, k->id, id_len);
    memcpy(buf + HEADER_FIXED + id_len, nonce, BZ_SECRETBOX_NONCE_LEN);
    memcpy(buf + head, body, body_len);
    free(body);
    *out = buf;
    *out_len = head + body_len;
    return BZ_OK;
}

/* Split a sealed secret into its id, nonce and secretbox part. */
static bz_status split_sealed(const uint8_t *sealed, size_t len, char id[BZ_KEY_ID_MAX + 1],
                              const uint8_t **nonce, const uint8_t **body, size_t *body_len,
                              bz_error *err)
{
    if (len < HEADER_FIXED || sealed[0] != BZ_SEALED_VERSION)
        return bz_fail(err, BZ_ERR_INVALID, "open secret: not a sealed secret of version %d",
                       BZ_SEALED_VERSION);
    size_t id_len = sealed[1], head = HEADER_FIXED + id_len + BZ_SECRETBOX_NONCE_LEN;
    if (id_len == 0 || id_len > BZ_KEY_ID_MAX || len < head + BZ_SECRETBOX_TAG_LEN)
        return bz_fail(err, BZ_ERR_INVALID, "open secret: malformed header");
    memcpy(id, sealed + HEADER_FIXED, id_len);
    id[id_len] = '\0';
    for (size_t i = 0; i < id_len; i++)
        if (!is_id_char((unsigned char)id[i]))
            return bz_fail(err, BZ_ERR_INVALID, "open secret: malformed key id");
    *nonce = sealed + HEADER_FIXED + id_len;
    *body = sealed + head;
    *body_len = len - head;
    return BZ_OK;
}

bz_status bz_sealed_key_id(const uint8_t *sealed, size_t len, char id[BZ_KEY_ID_MAX + 1],
                           bz_error *err)
{
    const uint8_t *nonce, *body;
    size_t body_len;
    return split_sealed(sealed, len, id, &nonce, &body, &body_len, err);
}

bz_status bz_keyring_open(const bz_keyring *r, const uint8_t *sealed, size_t len,
                          const void *aad, size_t aad_len, char **out, size_t *out_len,
                          bz_error *err)
{
    char id[BZ_KEY_ID_MAX + 1];
    const uint8_t *nonce, *body;
    size_t body_len;
    bz_status st = split_sealed(sealed, len, id, &nonce, &body, &body_len, err);
    if (st != BZ_OK)
        return st;
    for (size_t i = 0; r && i < r->count; i++)
        if (strcmp(r->keys[i].id, id) == 0)
            return bz_secretbox_open(r->keys[i].key, body, body_len, nonce, aad, aad_len, out,
                                     out_len, err);
    return bz_fail(err, BZ_ERR_NOT_FOUND, "open secret: sealed with key %s, which is not loaded",
                   id);
}

bz_status bz_keyring_open_legacy(const bz_keyring *r, const uint8_t *sealed, size_t len,
                                 const uint8_t nonce[BZ_SECRETBOX_NONCE_LEN], const void *aad,
                                 size_t aad_len, char **out, size_t *out_len, bz_error *err)
{
    for (size_t i = 0; r && i < r->count; i++)
        if (bz_secretbox_open(r->keys[i].key, sealed, len, nonce, aad, aad_len, out, out_len,
                              NULL) == BZ_OK)
            return BZ_OK;
    return bz_fail(err, BZ_ERR_INVALID,
                   "open secret: no loaded key authenticates it (wrong keys or tampered)");
}

bz_status bz_keyring_open_row(const bz_keyring *r, const char *table, const char *id,
                              const char *scope, const uint8_t *sealed, size_t len,
                              const uint8_t *nonce, char **out, size_t *out_len, bz_error *err)
{
    if (nonce)
        return bz_keyring_open_legacy(r, sealed, len, nonce, scope, strlen(scope), out, out_len,
                                      err);
    char aad[256];
    size_t aad_len = bz_secret_aad(aad, sizeof aad, table, id, scope);
    return bz_keyring_open(r, sealed, len, aad, aad_len, out, out_len, err);
}

bz_status bz_keyring_seal_row(const bz_keyring *r, const char *table, const char *id,
                              const char *scope, const void *plain, size_t len, uint8_t **out,
                              size_t *out_len, bz_error *err)
{
    char aad[256];
    size_t aad_len = bz_secret_aad(aad, sizeof aad, table, id, scope);
    return bz_keyring_seal(r, plain, len, aad, aad_len, out, out_len, err);
}
