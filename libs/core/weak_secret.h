/*
 * weak_secret.h - the secrets the project refuses to run with.
 *
 * A stack started from .env.example's values (every password "change-me",
 * an all-zero key ring) or from a key someone typed is open to whoever read
 * that file. Services, blazzctl and the compose jobs refuse such a secret at
 * start, saying what is weak (never the secret itself) and how to get a
 * random one (`make secrets`). Weak means: a password or shared signing key
 * shorter than its minimum, or a 32-byte key with fewer than 16 distinct
 * byte values (all-zero, one byte repeated, a short pattern); 32 bytes from
 * a random source hold about 30.
 */
#ifndef BZ_WEAK_SECRET_H
#define BZ_WEAK_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Passwords (Kafka SASL, PostgreSQL): "change-me" is 9. */
#define BZ_PASSWORD_LEN_MIN 16
/* Shared HMAC keys of gateways: Meta's app secret is 32 hex digits. */
#define BZ_SIGNING_KEY_LEN_MIN 32

/* BZ_ERR_CONFIG naming what when secret is shorter than min_len bytes. */
bz_status bz_secret_refuse_short(const char *what, const char *secret, size_t min_len,
                                 bz_error *err);

/* BZ_ERR_CONFIG when key (len bytes) holds fewer than 16 distinct bytes. */
bz_status bz_secret_refuse_weak_key(const char *what, const uint8_t *key, size_t len,
                                    bz_error *err);

#endif
